"""Request validation whose errors name where the problem is, never echoing the value sent."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from connexion.datastructures import MediaTypeDict
from connexion.exceptions import BadRequestProblem
from connexion.json_schema import Draft4ResponseValidator, allow_nullable
from connexion.utils import is_null, is_nullable
from connexion.validators import (
    VALIDATOR_MAP,
    JSONRequestBodyValidator,
    JSONResponseBodyValidator,
    ParameterValidator,
)
from jsonschema import Draft4Validator, ValidationError
from jsonschema.exceptions import best_match
from jsonschema.validators import extend

# OpenAPI 3.0 makes a referenced schema nullable as `{nullable: true, allOf: [{$ref: ...}]}`;
# Connexion honours `nullable` beside `type` and `enum` only, so `allOf` learns it too.
NullableAllOfResponseValidator = extend(
    Draft4ResponseValidator, {"allOf": allow_nullable(Draft4Validator.VALIDATORS["allOf"])})

# Messages of these validators name only keys of the schema or of the body, not values.
_SAFE_MESSAGES = {"required", "additionalProperties", "minProperties", "maxProperties"}


class RequestInvalid(BadRequestProblem):
    """A request that fails its operation's schema, with each failure as `{loc, msg, type}`:
    where (`["query", "limit"]`, `["body", "members", 0, "key"]`), what, and the rule."""

    def __init__(self, detail: str, failures: list[dict[str, Any]]) -> None:
        super().__init__(detail=detail)
        self.failures = failures


def failure(loc: Sequence[str | int], msg: str, kind: str) -> dict[str, Any]:
    """One failure of a request, in the shape of the rec-registry's validation errors."""
    return {"loc": list(loc), "msg": msg, "type": kind}


def describe(error: ValidationError) -> str:
    """What is wrong, without the offending value (which may be huge, or a password)."""
    if error.validator in _SAFE_MESSAGES:
        return error.message[:300]
    expected = json.dumps(error.validator_value, default=str)
    if len(expected) > 120:
        expected = expected[:117] + "..."
    return f"fails '{error.validator}' ({expected})"


class NamedParameterValidator(ParameterValidator):
    """Connexion's parameter validator, with errors such as `query parameter 'limit': ...`,
    and one refusal naming every missing or wrong parameter at once."""

    def validate_request(self, request: Any) -> None:
        if self.strict_validation:
            extra = self.validate_query_parameter_list(
                request, security_params=self.security_query_params)
            if extra:
                raise RequestInvalid(
                    f"unknown query parameter{'s' if len(extra) > 1 else ''}: "
                    + ", ".join(f"'{name}'" for name in sorted(extra)),
                    [failure(["query", name], "not a parameter of this operation",
                             "extra_forbidden") for name in sorted(extra)])
        checks = (("query", self.validate_query_parameter), ("path", self.validate_path_parameter),
                  ("header", self.validate_header_parameter),
                  ("cookie", self.validate_cookie_parameter))
        missing: dict[str, list[str]] = {}
        wrong: list[str] = []
        failures: list[dict[str, Any]] = []
        for kind, check in checks:
            for param in self.parameters.get(kind, []):
                error = check(param, request)
                if error is None:
                    continue
                name = param["name"]
                if error.startswith("Missing"):
                    missing.setdefault(kind, []).append(name)
                    failures.append(failure([kind, name], "required", "missing"))
                    continue
                message = f"{kind} parameter '{name}': {error}"
                wrong.append(message)
                failures.append(failure([kind, name], message,
                                        getattr(error, "rule", "invalid")))
        problems = [f"missing required {kind} parameter{'s' if len(names) > 1 else ''}: "
                    + ", ".join(f"'{name}'" for name in names)
                    for kind, names in missing.items()]
        if problems or wrong:
            raise RequestInvalid("; ".join(problems + wrong), failures)

    @staticmethod
    def validate_parameter(
        parameter_type: str, value: Any, param: dict[str, Any], param_name: str | None = None
    ) -> str | None:
        """What is wrong with one parameter's value, without the value; the rule that failed
        rides along as `.rule`."""
        if value is None or (is_nullable(param) and is_null(value)):
            return (f"Missing {parameter_type} parameter '{param['name']}'"
                    if value is None and param.get("required") else None)
        validator = Draft4Validator(param.get("schema", param),
                                    format_checker=Draft4Validator.FORMAT_CHECKER)
        error = best_match(validator.iter_errors(value))
        return None if error is None else _Failure(describe(error), str(error.validator))


class _Failure(str):
    """A parameter's failure as a sentence, with the rule that failed."""

    rule: str

    def __new__(cls, text: str, rule: str) -> _Failure:
        made = super().__new__(cls, text)
        made.rule = rule
        return made


class PointedJSONBodyValidator(JSONRequestBodyValidator):
    """JSON body validation whose errors give the JSON pointer and the rule that failed.

    Bodies whose schema says `x-commonwatt-bulk` (readings batches) pass unread: their
    handler reads them as a stream and checks them column-wise (BRIEF decision 7). A property
    whose schema says `x-commonwatt-bundle-format` (the JSON import's `bundle`) is only checked
    to be an object here: the import checks it against the same bundle format with the
    format's own validator, whose refusals name the document, the pointer and a code.
    """

    def __init__(self, *, schema: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(schema=_bundle_format_deferred(schema), **kwargs)

    async def wrap_receive(self, receive: Any, *, scope: Any) -> Any:
        if self._schema.get("x-commonwatt-bulk"):
            return receive, scope
        return await super().wrap_receive(receive, scope=scope)

    def _validate(self, body: Any) -> dict[str, Any] | None:
        if not self._nullable and body is None:
            raise BadRequestProblem("the request body must not be empty")
        error = next(iter(sorted(self._validator.iter_errors(body),
                                 key=lambda item: list(item.absolute_path))), None)
        if error is None:
            return None
        pointer = "".join(f"/{part}" for part in error.absolute_path)
        message = describe(error)
        raise RequestInvalid(f"body{pointer or ''}: {message}",
                             [failure(["body", *error.absolute_path], message,
                                      str(error.validator))])


def _bundle_format_deferred(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` with each property described by the bundle format reduced to an object."""
    properties = schema.get("properties")
    if not isinstance(properties, dict) or not any(
            isinstance(sub, dict) and sub.get("x-commonwatt-bundle-format")
            for sub in properties.values()):
        return schema
    return {**schema, "properties": {
        name: ({"type": "object"} if isinstance(sub, dict)
               and sub.get("x-commonwatt-bundle-format") else sub)
        for name, sub in properties.items()}}


class NullableRefJSONResponseValidator(JSONResponseBodyValidator):
    """Connexion's JSON response validator, with `nullable` beside `allOf` allowing null."""

    @property
    def validator(self) -> Draft4Validator:
        return NullableAllOfResponseValidator(
            self._schema, format_checker=Draft4Validator.FORMAT_CHECKER)


def validator_map() -> dict[str, Any]:
    """Connexion's validators, with ours for parameters, JSON bodies and JSON responses."""
    bodies = MediaTypeDict(dict(VALIDATOR_MAP["body"]))
    bodies["*/*json"] = PointedJSONBodyValidator
    responses = MediaTypeDict(dict(VALIDATOR_MAP["response"]))
    responses["*/*json"] = NullableRefJSONResponseValidator
    return {"parameter": NamedParameterValidator, "body": bodies, "response": responses}
