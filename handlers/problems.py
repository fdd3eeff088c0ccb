"""Every error as application/problem+json (RFC 7807) with a stable `code`, framework ones too."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from connexion.exceptions import OAuthResponseProblem, ProblemException
from connexion.lifecycle import ConnexionRequest, ConnexionResponse
from starlette.exceptions import HTTPException

from bundles.errors import BundleError, BundleRefused, BundleTooLarge, CommunityExists
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
    return problem_response(problem.status, problem.code, problem.detail,
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
    return problem_response(status, code, detail, headers=headers)


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
    return problem_response(400, "invalid_value",
                            "a value in the request cannot be stored (for instance a NUL "
                            "character or an out-of-range number)")


async def handle_too_deep(request: ConnexionRequest, error: Exception) -> ConnexionResponse:
    """A body nested deeper than the parser can follow."""
    return problem_response(400, "too_deep", "the request body is nested too deeply")


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
    return problem_response(400, "invalid_encoding", "the request body is not valid UTF-8")


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
