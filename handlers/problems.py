"""Every error as application/problem+json (RFC 7807) with a stable `code`, framework ones too."""

from __future__ import annotations

import json
import logging
import re
from functools import cache
from typing import Any

from connexion.exceptions import OAuthResponseProblem, ProblemException
from connexion.lifecycle import ConnexionRequest, ConnexionResponse
from starlette.exceptions import HTTPException

import openapi
from bundles.errors import BundleError, BundleRefused, BundleTooLarge, CommunityExists
from handlers.validation import RequestInvalid, failure
from storage.errors import Conflict, Forbidden, Invalid, InvalidCursor, NotFound, StorageError
from storage.telemetry.errors import (
    MalformedUpload,
    QueryTooLarge,
    RangeTooLong,
    ReadingsRefused,
    TelemetryUnavailable,
    TooManyReadings,
)

logger = logging.getLogger("commonwatt")

PROBLEM_JSON = "application/problem+json"
TITLES = {
    400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 406: "Not Acceptable", 408: "Request Timeout", 409: "Conflict",
    410: "Gone", 413: "Content Too Large", 415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable",
}
DEFAULT_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 406: "not_acceptable", 409: "conflict",
    413: "body_too_large", 415: "unsupported_media_type", 422: "unprocessable",
    429: "too_many_requests", 500: "internal_error", 503: "unavailable",
}


class Problem(Exception):
    """An error the API answers with: raise it anywhere in a handler."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra or {}


def refused_value(code: str, detail: str) -> Problem:
    """A 422 for one refused value, its refusal repeated in `errors` (ValidationProblem)."""
    return Problem(422, code, detail, extra={"errors": [{"code": code, "message": detail}]})


def problem_body(status: int, code: str, detail: str, **extra: Any) -> dict[str, Any]:
    """The JSON body of a problem."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "code": code,
    }
    body.update(extra)
    return body


def problem_response(
    status: int,
    code: str,
    detail: str,
    *,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> ConnexionResponse:
    """A problem+json response."""
    return ConnexionResponse(
        status_code=status,
        mimetype=PROBLEM_JSON,
        content_type=PROBLEM_JSON,
        body=json.dumps(problem_body(status, code, detail, **(extra or {}))),
        headers=headers or {},
    )


# The rec-registry's operations answer every refusal of a request with 422 (never 400), and
# list what failed where (`detail: [{loc, msg, type}]`, its validation errors). Which shape an
# operation answers is read from its documented 422: `InvalidRequest` lists every refusal;
# `RefusalOrInvalidRequest` lists schema failures and keeps a coded refusal's sentence.
WIRE_MEDIA_TYPE = "application/json"
LISTED = "InvalidRequest"
CODED_OR_LISTED = "RefusalOrInvalidRequest"


@cache
def wire_refusal_shapes() -> dict[str, str]:
    """The refusal shape (LISTED or CODED_OR_LISTED) of each operation that has one."""
    document = openapi.bundled_spec()
    shapes: dict[str, str] = {}
    for item in document["paths"].values():
        for operation in item.values():
            if not isinstance(operation, dict) or "operationId" not in operation:
                continue
            response = operation.get("responses", {}).get("422", {})
            if "$ref" in response:
                response = document["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
            schema = response.get("content", {}).get(WIRE_MEDIA_TYPE, {}).get("schema", {})
            name = schema.get("$ref", "").rsplit("/", 1)[-1]
            if name in (LISTED, CODED_OR_LISTED):
                shapes[operation["operationId"]] = name
    return shapes


def _operation_id(request: ConnexionRequest) -> str | None:
    routing = request.scope.get("extensions", {}).get("connexion_routing", {})
    operation_id = routing.get("operation_id")
    return operation_id.rsplit(".", 1)[-1] if isinstance(operation_id, str) else None


def answer(
    request: ConnexionRequest,
    status: int,
    code: str,
    detail: str,
    *,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
    failures: list[dict[str, Any]] | None = None,
) -> ConnexionResponse:
    """The problem for this request: problem+json, or on an operation of the rec-registry's
    contract a refused request (400 or 422) in that contract's shape."""
    shape = wire_refusal_shapes().get(_operation_id(request) or "")
    if shape is None or status not in (400, 422):
        return problem_response(status, code, detail, headers=headers, extra=extra)
    if code == DEFAULT_CODES[400]:
        code = "invalid_request"  # what was a malformed request here is an unprocessable one
    body = problem_body(422, code, detail, **(extra or {}))
    if status == 400 or shape == LISTED:
        where = ["query", "cursor"] if code == "invalid_cursor" else ["body"]
        body["detail"] = failures or [failure(where, detail, code)]
    return ConnexionResponse(status_code=422, mimetype=WIRE_MEDIA_TYPE,
                             content_type=WIRE_MEDIA_TYPE, body=json.dumps(body),
                             headers=headers or {})


def _request_id(request: ConnexionRequest) -> str:
    return str(request.scope.get("commonwatt.request_id", "-"))


def as_problem(error: Exception) -> Problem:
    """The problem a domain error (storage or bundles layer) answers with."""
    if isinstance(error, Problem):
        return error
    if isinstance(error, NotFound):
        return Problem(404, error.code, error.detail)
    if isinstance(error, InvalidCursor):
        return Problem(400, error.code, error.detail)
    if isinstance(error, Forbidden):
        return Problem(403, error.code, error.detail)
    if isinstance(error, Conflict):
        return Problem(409, error.code, error.detail)
    if isinstance(error, Invalid):
        return Problem(422, error.code, error.detail,
                       extra={"errors": [{"code": error.code, "message": error.detail}]})
    if isinstance(error, ReadingsRefused):
        return Problem(422, error.code, error.detail,
                       extra={"errors": error.refusals, "refused": error.refused})
    if isinstance(error, MalformedUpload):
        return Problem(400, error.code, error.detail)
    if isinstance(error, (QueryTooLarge, RangeTooLong)):
        return Problem(422, error.code, error.detail)
    if isinstance(error, TooManyReadings):
        return Problem(413, error.code, error.detail)
    if isinstance(error, TelemetryUnavailable):
        return Problem(503, error.code, error.detail, headers={"Retry-After": "5"})
    if isinstance(error, BundleRefused):
        refusals = [refusal.as_dict() for refusal in error.refusals]
        return Problem(422, error.code, error.detail, extra={"errors": refusals})
    if isinstance(error, CommunityExists):
        return Problem(409, error.code, error.detail,
                       extra={"community_keys": list(error.community_keys)})
    if isinstance(error, BundleTooLarge):
        return Problem(413, error.code, error.detail)
    if isinstance(error, BundleError):
        return Problem(400, error.code, error.detail)
    if isinstance(error, StorageError):
        return Problem(422, error.code, error.detail)
    raise TypeError(f"not a domain error: {error!r}")


async def handle_domain_error(request: ConnexionRequest, error: Exception) -> ConnexionResponse:
    """Error handler for Problem and the storage and bundles errors."""
    problem = as_problem(error)
    return answer(request, problem.status, problem.code, problem.detail,
                  headers=problem.headers, extra=problem.extra)


async def handle_framework_problem(
    request: ConnexionRequest, error: Exception
) -> ConnexionResponse:
    """Connexion's own problems (validation, auth, media type) with a stable code added."""
    assert isinstance(error, ProblemException)
    status = int(error.status or 500)
    if status >= 500:
        return await handle_unexpected(request, error)
    headers = dict(error.headers or {})
    code = DEFAULT_CODES.get(status, "error")
    detail = str(error.detail or error.title or TITLES.get(status, "Error"))
    if status == 401:
        code = "invalid_token" if isinstance(error, OAuthResponseProblem) else "missing_token"
        headers.setdefault("WWW-Authenticate", 'Bearer realm="commonwatt"')
    failures = error.failures if isinstance(error, RequestInvalid) else None
    return answer(request, status, code, detail, headers=headers, failures=failures)


class AllowedMethods:
    """The methods the spec documents for each path, to answer 405 with a true Allow header."""

    def __init__(self, paths: dict[str, dict[str, Any]], base_path: str) -> None:
        self.routes = [
            (re.compile("^" + re.escape(base_path) +
                        re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path)) + "$"),
             sorted({method.upper() for method in item} |
                    ({"HEAD"} if "get" in item else set())))
            for path, item in paths.items()
        ]

    def for_path(self, path: str) -> list[str]:
        for pattern, methods in self.routes:
            if pattern.match(path):
                return methods
        return []


def http_exception_handler(allowed: AllowedMethods) -> Any:
    """Starlette HTTP errors (unknown path 404, wrong method 405) as problems."""

    async def handle_http_exception(
        request: ConnexionRequest, error: Exception
    ) -> ConnexionResponse:
        assert isinstance(error, HTTPException)
        status = error.status_code
        if status >= 500:
            return await handle_unexpected(request, error)
        headers = dict(error.headers or {})
        if status == 405:
            headers["Allow"] = ", ".join(allowed.for_path(request.url.path))
        detail = str(error.detail) if error.detail else TITLES.get(status, "Error")
        return problem_response(status, DEFAULT_CODES.get(status, "error"), detail,
                                headers=headers)

    return handle_http_exception


async def handle_data_error(request: ConnexionRequest, error: Exception) -> ConnexionResponse:
    """A value the database cannot store (a NUL character, a number out of range)."""
    logger.info("database refused a value: %s", type(error).__name__)
    return answer(request, 400, "invalid_value",
                  "a value in the request cannot be stored (for instance a NUL character or an "
                  "out-of-range number)")


async def handle_too_deep(request: ConnexionRequest, error: Exception) -> ConnexionResponse:
    """A body nested deeper than the parser can follow."""
    return answer(request, 400, "too_deep", "the request body is nested too deeply")


async def handle_integrity_error(request: ConnexionRequest, error: Exception) -> ConnexionResponse:
    """A write that lost a race on a unique key to a concurrent one: the client may retry."""
    logger.info("write collided with a concurrent one: %s", type(error).__name__)
    return problem_response(409, "conflict",
                            "the change collides with one made at the same moment; retry it")


async def handle_operational_error(
    request: ConnexionRequest, error: Exception
) -> ConnexionResponse:
    """The database is busy (a long write holds the lock) or does not answer."""
    logger.warning("database unavailable, request_id=%s: %s", _request_id(request),
                   str(error).splitlines()[0][:200])
    return problem_response(503, "database_unavailable",
                            "the database is busy or does not answer; retry shortly",
                            headers={"Retry-After": "2"})


async def handle_undecodable_body(request: ConnexionRequest, error: Exception) -> ConnexionResponse:
    """A JSON body that is not UTF-8."""
    return answer(request, 400, "invalid_encoding", "the request body is not valid UTF-8")


async def handle_unexpected(request: ConnexionRequest, error: Exception) -> ConnexionResponse:
    """Any other exception: logged with the request id, answered without internals."""
    request_id = _request_id(request)
    logger.error("unhandled error, request_id=%s", request_id, exc_info=error)
    return problem_response(
        500, "internal_error",
        f"The server could not answer this request. Quote request id {request_id} when "
        "reporting it.",
        extra={"request_id": request_id},
    )
