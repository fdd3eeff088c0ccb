"""The GraphQL endpoint (POST and GET /graphql): limits checked before a query runs, the
query run against the executable schema, errors with the codes of REST problems."""

from __future__ import annotations

import inspect
import json
import logging
from typing import Any

from graphql import (
    ExecutionResult,
    GraphQLError,
    GraphQLSyntaxError,
    OperationDefinitionNode,
    OperationType,
    execute,
    parse,
    specified_rules,
    validate,
)

from bundles.errors import BundleError
from handlers.access import caller_of
from handlers.graphql_limits import CostMeter, alias_limit, depth_limit
from handlers.graphql_loaders import Loaders
from handlers.graphql_resolvers import RequestContext
from handlers.graphql_schema import executable_schema
from handlers.problems import Problem, as_problem
from handlers.runtime import Runtime, current_runtime
from storage.errors import StorageError

LOG = logging.getLogger("commonwatt.graphql")
MAX_TOKENS = 20_000
PARSE_FAILED = "graphql_parse_failed"
VALIDATION_FAILED = "graphql_validation_failed"


async def graphql_query(body: dict[str, Any], token_info: dict[str, Any]) -> dict[str, Any]:
    variables = body.get("variables")
    if variables is not None and not isinstance(variables, dict):
        raise Problem(400, "invalid_variables", "'variables' must be a JSON object or null")
    return await run_query(current_runtime(), token_info, body["query"], variables=variables,
                           operation_name=body.get("operationName"), read_only=False)


async def graphql_query_get(query: str, token_info: dict[str, Any], variables: str | None = None,
                            operationName: str | None = None) -> dict[str, Any]:
    try:
        parsed = None if variables is None else json.loads(variables)
    except ValueError as error:
        raise Problem(400, "invalid_variables",
                      "query parameter 'variables' is not JSON") from error
    if parsed is not None and not isinstance(parsed, dict):
        raise Problem(400, "invalid_variables", "query parameter 'variables' is no JSON object")
    return await run_query(current_runtime(), token_info, query, variables=parsed,
                           operation_name=operationName, read_only=True)


async def run_query(runtime: Runtime, token_info: dict[str, Any], query: str, *,
                    variables: dict[str, Any] | None, operation_name: str | None,
                    read_only: bool) -> dict[str, Any]:
    """The GraphQL answer to one request ({data, errors}); a 429 Problem when the caller
    ran too many expensive queries this minute."""
    try:
        document = parse(query, max_tokens=MAX_TOKENS)
    except GraphQLSyntaxError as error:
        return {"errors": [format_error(error, default_code=PARSE_FAILED)]}
    settings = runtime.settings
    meter = CostMeter()
    errors = validate(executable_schema(), document, [
        *specified_rules, depth_limit(settings.graphql_max_depth),
        alias_limit(settings.graphql_max_aliases),
        meter.rule(settings.graphql_max_cost, variables)])
    if errors:
        return {"errors": [format_error(error) for error in errors]}
    if read_only and _mutates(document.definitions, operation_name):
        raise Problem(405, "method_not_allowed", "GET runs queries only; POST a mutation")
    caller = caller_of(token_info)
    if meter.cost >= settings.graphql_expensive_cost:
        wait = runtime.graphql_budget.take(caller.user_id,
                                           per_minute=settings.graphql_expensive_per_minute)
        if wait:
            detail = (f"more than {settings.graphql_expensive_per_minute} queries costing "
                      f"{settings.graphql_expensive_cost} or more this minute; retry in {wait} s")
            raise Problem(429, "too_many_requests", detail, headers={"Retry-After": str(wait)},
                          extra={"errors": [{"message": detail, "extensions": {
                              "code": "too_many_requests", "retryAfter": wait}}]})
    context = RequestContext(caller=caller, token_info=token_info, runtime=runtime,
                             loaders=Loaders(runtime.telemetry))
    result = execute(executable_schema(), document, context_value=context,
                     variable_values=variables, operation_name=operation_name)
    if inspect.isawaitable(result):
        result = await result
    assert isinstance(result, ExecutionResult)
    answer: dict[str, Any] = {"data": result.data}
    if result.errors:
        answer["errors"] = [format_error(error) for error in result.errors]
    answer["extensions"] = {"cost": meter.cost}
    return answer


def _mutates(definitions: Any, operation_name: str | None) -> bool:
    return any(isinstance(definition, OperationDefinitionNode)
               and definition.operation is not OperationType.QUERY
               and (operation_name is None or (definition.name is not None
                                               and definition.name.value == operation_name))
               for definition in definitions)


def format_error(error: GraphQLError, *, default_code: str = VALIDATION_FAILED) -> dict[str, Any]:
    """A GraphQL error as answered: message, locations, path, and extensions.code (with the
    status) of the REST problem a domain error would have been; never a stack. Its
    `classification` is the one generic GraphQL tools know (Apollo's codes): the caller's
    fault or the server's."""
    formatted: dict[str, Any] = {"message": error.message}
    if error.locations:
        formatted["locations"] = [{"line": place.line, "column": place.column}
                                  for place in error.locations]
    if error.path:
        formatted["path"] = list(error.path)
    original = error.original_error
    if isinstance(original, Problem | StorageError | BundleError):
        problem = as_problem(original)
        formatted["message"] = problem.detail
        formatted["extensions"] = {
            "code": problem.code, "status": problem.status,
            "classification": "BAD_USER_INPUT" if problem.status < 500
            else "INTERNAL_SERVER_ERROR"}
    elif original is not None and not isinstance(original, GraphQLError | ValueError):
        LOG.error("GraphQL resolver failed at %s", error.path, exc_info=original)
        formatted["message"] = "The server could not answer this field."
        formatted["extensions"] = {"code": "internal_error", "status": 500,
                                   "classification": "INTERNAL_SERVER_ERROR"}
    else:
        code = (error.extensions or {}).get("code", default_code)
        formatted["extensions"] = {
            **(error.extensions or {}), "code": code, "status": 400,
            "classification": "GRAPHQL_PARSE_FAILED" if code == PARSE_FAILED
            else "GRAPHQL_VALIDATION_FAILED"}
    return formatted
