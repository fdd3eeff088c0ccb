"""The app factory: the bundled OpenAPI document, handlers by operationId, errors as problems."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

from connexion import AsyncApp
from connexion.exceptions import ProblemException
from connexion.middleware import MiddlewarePosition
from connexion.operations import OpenAPIOperation
from connexion.options import SwaggerUIOptions
from connexion.resolver import RelativeResolver
from connexion.spec import OpenAPISpecification
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from starlette.exceptions import HTTPException

import openapi
from bundles.errors import BundleError
from handlers.document import serve_document_with_refs
from handlers.headers import SecurityHeadersMiddleware
from handlers.jsonifier import fast_jsonifier
from handlers.landing import RootRedirectMiddleware
from handlers.middleware import BodyLimitMiddleware, NulRefusalMiddleware, RequestIdMiddleware
from handlers.problems import (
    AllowedMethods,
    Problem,
    handle_data_error,
    handle_domain_error,
    handle_framework_problem,
    handle_integrity_error,
    handle_operational_error,
    handle_too_deep,
    handle_undecodable_body,
    handle_unexpected,
    http_exception_handler,
)
from handlers.runtime import Runtime, RuntimeMiddleware
from handlers.settings import Settings
from handlers.slow_clients import BodyTimeoutMiddleware
from handlers.validation import validator_map
from storage.db import create_registry_engine
from storage.errors import StorageError
from storage.migrate import upgrade
from storage.telemetry.errors import TelemetryUnavailable

BASE_PATH = "/api"


class SuccessContentOperation(OpenAPIOperation):
    """An operation whose handlers' content type is inferred from its success responses.

    Every operation also documents problem+json errors; those are built by the error
    handlers, so a handler returning a dict means the success response's media type.
    """

    @property
    def produces(self) -> list[str]:
        success = [content_type for status, definition in self._responses.items()
                   if str(status).startswith("2")
                   for content_type in definition.get("content", {})]
        return success or ["application/json"]  # no body: any one type will do


OpenAPISpecification.operation_cls = SuccessContentOperation
serve_document_with_refs()


def create_runtime(settings: Settings, *, migrate: bool = True) -> Runtime:
    """Open the registry (migrated to the newest schema) and the signing key."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_registry_engine(settings.resolved_database_url())
    if migrate:
        upgrade(engine)
    return Runtime(settings=settings, engine=engine, jwt_secret=settings.resolved_jwt_secret())


def open_telemetry(runtime: Runtime) -> None:
    """Open the telemetry store now rather than on first use; a store that cannot be opened
    is logged, and its requests answer 503 as before."""
    try:
        runtime.telemetry  # noqa: B018 - opened on first access
    except TelemetryUnavailable as error:
        logging.getLogger("commonwatt").warning("telemetry store unavailable: %s", error)


def closing_on_shutdown(runtime: Runtime) -> Callable[[Any], AbstractAsyncContextManager[None]]:
    """An ASGI lifespan that freezes what starting made for the garbage collector, and closes
    the runtime when the server stops (SIGTERM, Ctrl-C)."""

    @asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        # Opening the telemetry store sweeps what an earlier run left in its temporary
        # directory (uploads and exports cut short by a crash).
        await asyncio.to_thread(open_telemetry, runtime)
        # Background jobs: the worker, recovery of what a stop interrupted, the scheduler.
        await asyncio.to_thread(runtime.start_jobs, server=True)
        # Devices' readings over MQTT, when COMMONWATT_MQTT_URL is set.
        await asyncio.to_thread(runtime.start_mqtt)
        # What starting made (the spec, its validators, the routes: some 150,000 objects)
        # lives as long as the server: out of the collector's way, a large answer no longer
        # pays for full collections walking it.
        gc.collect()
        gc.freeze()
        yield
        # Checkpoints the telemetry store: the next start replays no write-ahead log.
        await asyncio.to_thread(runtime.close)

    return lifespan


def create_app(settings: Settings | None = None, *, runtime: Runtime | None = None) -> AsyncApp:
    """A ready ASGI app serving the API under /api, its document and Swagger UI.

    A runtime made here is closed when the app shuts down; one passed in stays open.
    """
    settings = settings or (runtime.settings if runtime else Settings())
    lifespan = None if runtime else closing_on_shutdown
    runtime = runtime or create_runtime(settings)
    logging.getLogger("commonwatt").setLevel(settings.log_level.upper())
    # Connexion warns on every request to an operation that accepts several media types
    # (the YAML import takes three names of YAML); the choice it logs is always right.
    logging.getLogger("connexion.operations.openapi3").setLevel(logging.ERROR)

    spec = openapi.bundled_spec()
    app = AsyncApp(__name__, specification_dir=str(Path(openapi.__file__).parent),
                   jsonifier=fast_jsonifier(),
                   lifespan=lifespan(runtime) if lifespan else None)
    app.add_api(
        spec,
        base_path=BASE_PATH,
        resolver=RelativeResolver("handlers"),
        strict_validation=True,
        validate_responses=settings.validate_responses,
        validator_map=validator_map(),
        swagger_ui_options=SwaggerUIOptions(swagger_ui=True, swagger_ui_path="/ui"),
    )
    # Outermost of ours: the 413s and 400s of BodyLimitMiddleware get the headers too.
    app.add_middleware(SecurityHeadersMiddleware, position=MiddlewarePosition.BEFORE_EXCEPTION)
    app.add_middleware(RuntimeMiddleware, position=MiddlewarePosition.BEFORE_EXCEPTION,
                       runtime=runtime)
    app.add_middleware(BodyLimitMiddleware, position=MiddlewarePosition.BEFORE_EXCEPTION,
                       max_bytes=settings.max_body_bytes,
                       upload_max_bytes=settings.telemetry_upload_max_bytes)
    app.add_middleware(RequestIdMiddleware, position=MiddlewarePosition.BEFORE_EXCEPTION)
    app.add_middleware(BodyTimeoutMiddleware, position=MiddlewarePosition.BEFORE_EXCEPTION,
                       timeout_s=settings.body_timeout_seconds,
                       min_bytes_per_second=settings.body_min_bytes_per_second)
    app.add_middleware(RootRedirectMiddleware, position=MiddlewarePosition.BEFORE_EXCEPTION)
    app.add_middleware(NulRefusalMiddleware, position=MiddlewarePosition.BEFORE_VALIDATION)
    for domain_error in (Problem, StorageError, BundleError):
        app.add_error_handler(domain_error, handle_domain_error)
    app.add_error_handler(ProblemException, handle_framework_problem)
    app.add_error_handler(HTTPException,
                          http_exception_handler(AllowedMethods(spec["paths"], BASE_PATH)))
    app.add_error_handler(UnicodeDecodeError, handle_undecodable_body)
    app.add_error_handler(DataError, handle_data_error)
    app.add_error_handler(IntegrityError, handle_integrity_error)
    app.add_error_handler(OperationalError, handle_operational_error)
    app.add_error_handler(RecursionError, handle_too_deep)
    app.add_error_handler(OverflowError, handle_data_error)
    app.add_error_handler(Exception, handle_unexpected)
    app.runtime = runtime
    return app
