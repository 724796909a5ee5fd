"""The FastAPI application: ``create_app(settings)`` builds one, with nothing global.

The database engine, blob store and settings live on ``app.state``, so every test can build
its own app. One set of exception handlers turns every error into an
``application/problem+json`` body: ``RegistryError`` subclasses carry their own status and
type slug; request validation is a 422; an unknown route a 404; a bug a 500 without details
(``InternalErrors``, which keeps the connection open).
The web UI (``ui``) is served at ``/`` beside the API; its pages answer errors as pages.
Every answer names the registry's version and API level; a client too old to be served is
refused before routing (``ApiLevel``, with the policy in ``compatibility``).
"""

from __future__ import annotations

import json
import logging
import time
import warnings
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from pydantic.warnings import UnsupportedFieldAttributeWarning
from sqlalchemy import Engine
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modreg.registry import compatibility
from modreg.registry.api import api_router
from modreg.registry.blobs import make_blob_store
from modreg.registry.db import create_db_engine
from modreg.registry.errors import (
    PROBLEM_DETAIL_HEADER,
    PROBLEM_TYPE_HEADER,
    AuthenticationError,
    ClientTooOldError,
    InvalidInputError,
    RegistryError,
)
from modreg.registry.schemas import Problem
from modreg.registry.settings import Settings
from modreg.registry.ui import mount_ui
from modreg.registry.ui.rendering import http_error_page, wants_page

API_PREFIX = "/api/v1"
log = logging.getLogger("modreg.registry")


HEADER_SAFE = " !\"#$&'()*+,-./:;<=>?@[]^_`{|}~"  # printable ASCII but '%': kept as is


class ProblemResponse(JSONResponse):
    """A problem+json answer; to a HEAD request, which gets no body, its type and detail
    travel in headers too, so the client can say the same one line as for any other verb
    (a revoked token on ``HEAD /blobs/…`` during a publish reads as on every command)."""

    media_type = "application/problem+json"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("method") == "HEAD":
            body = json.loads(bytes(self.body))
            self.headers[PROBLEM_TYPE_HEADER] = quote(str(body.get("type", "")), safe=HEADER_SAFE)
            detail = str(body.get("detail", ""))
            self.headers[PROBLEM_DETAIL_HEADER] = quote(detail, safe=HEADER_SAFE)
        await super().__call__(scope, receive, send)


def problem(status: int, type_: str, title: str, detail: str, **extra: Any) -> ProblemResponse:
    body = {"type": type_, "title": title, "status": status, "detail": detail, **extra}
    return ProblemResponse(jsonable_encoder(body), status_code=status)


async def _registry_error(_: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, RegistryError)
    response = ProblemResponse(jsonable_encoder(exc.to_problem()), status_code=exc.status)
    if isinstance(exc, AuthenticationError):
        response.headers["WWW-Authenticate"] = "Bearer"
    return response


def _where(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc) or "request"


async def _validation_error(_: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [{"loc": _where(e["loc"]), "msg": e["msg"]} for e in exc.errors()]
    detail = "; ".join(f"{e['loc']}: {e['msg']}" for e in errors[:5]) or "invalid request"
    return problem(422, "invalid-input", "Invalid input", detail, errors=errors)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if wants_page(request, API_PREFIX):  # a browser on a URL of no page: the 404 page
        return http_error_page(request, exc.status_code, str(exc.detail))
    slug = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
    return problem(exc.status_code, slug, str(exc.detail), str(exc.detail))


class InternalErrors:
    """ASGI middleware: a bug is logged and answered with a 500 problem, and that is all.

    Not an exception handler for ``Exception``: Starlette runs that one in its outermost
    ``ServerErrorMiddleware``, which re-raises after answering, and uvicorn then closes the
    connection under the answer (the client saw a reset instead of the 500, and lost its
    keep-alive connection). Here the exception ends where it is answered.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched_send)
        except Exception as exc:
            log.exception("internal error on %s %s", scope["method"], scope["path"], exc_info=exc)
            if started:  # half an answer is out: only closing the connection can end it
                raise
            detail = "the registry failed; see its log"
            await problem(500, "internal-error", "Internal error", detail)(scope, receive, send)


class ServerTiming:
    """ASGI middleware: a ``Server-Timing: app;dur=MS`` header on every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def timed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                elapsed = (time.perf_counter() - started) * 1000
                headers = MutableHeaders(scope=message)
                headers.append("Server-Timing", f"app;dur={elapsed:.2f}")
            await send(message)

        await self.app(scope, receive, timed_send)


class ApiLevel:
    """ASGI middleware: every answer says which modreg and API level it comes from, and a
    client too old to be served gets one problem saying so (``compatibility``)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_level(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in compatibility.answer_headers().items():
                    headers[name] = value
            await send(message)

        refusal = _client_refusal(Headers(scope=scope))
        if refusal is None:
            await self.app(scope, receive, send_with_level)
            return
        answer = ProblemResponse(jsonable_encoder(refusal.to_problem()), status_code=refusal.status)
        await answer(scope, receive, send_with_level)


def _client_refusal(headers: Headers) -> RegistryError | None:
    """The error that refuses the client of a request with ``headers``; None to serve it."""
    try:
        detail = compatibility.client_refusal(headers)
    except ValueError as exc:
        return InvalidInputError(str(exc))
    return ClientTooOldError(detail) if detail else None


def _install_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RegistryError, _registry_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)


def _openapi_with_problems(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """The app's ``openapi()``, with the ``Problem`` schema the routes' errors refer to
    (``api.problems``): FastAPI adds schemas only of the models it serves itself."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title, version=app.version, summary=app.summary, routes=app.routes
            )
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            schemas["Problem"] = Problem.model_json_schema()
            app.openapi_schema = document
        return app.openapi_schema

    return openapi


def create_app(settings: Settings, engine: Engine | None = None) -> FastAPI:
    """A registry app for ``settings``; pass ``engine`` to share one (it is then not disposed)."""
    # FastAPI wraps body models in Annotated[Model, Body(alias=...)]; pydantic warns that the
    # alias has no effect when such a model is built lazily (schemas.Wire defers building
    # for the CLI's sake). It has none either way, so the warning is noise.
    warnings.filterwarnings("ignore", category=UnsupportedFieldAttributeWarning)
    owned = engine is None
    db_engine = engine if engine is not None else create_db_engine(settings.database_url)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        if owned:
            db_engine.dispose()

    app = FastAPI(
        title="modreg registry",
        summary="Versioned modules, their archives, and the records of pipeline runs",
        openapi_url="/openapi.json",
        docs_url="/docs",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = db_engine
    app.state.blobs = make_blob_store(settings.data_dir, settings.blob_url)
    app.include_router(api_router(), prefix=API_PREFIX)
    mount_ui(app)
    app.openapi = _openapi_with_problems(app)  # type: ignore[method-assign]
    _install_handlers(app)
    app.add_middleware(InternalErrors)
    app.add_middleware(ServerTiming)
    app.add_middleware(ApiLevel)
    return app
