"""What every page shares: the caller from the sign-in cookie, the CSRF token, the error page.

The caller of a page is the token its sign-in cookie holds (``TOKEN_COOKIE``), looked up by
``auth.identify`` exactly as a bearer token is; without the cookie, the anonymous. A page
then applies the same rule of ``auth`` that the API route for the same data applies.

CSRF: a double-submit token. Every page sets a random ``CSRF_COOKIE`` (HttpOnly,
SameSite=Strict) if there is none and puts the same value in its forms; the sign-in and
sign-out posts must carry it back (``check_csrf``). SameSite=Strict already keeps other sites'
posts from carrying the cookies; the token also refuses a post made without a page of ours.

Errors: ``PageRoute`` answers a ``RegistryError`` raised by a page (or a query value of the
wrong type) with the error page at the error's status (a 401 is the sign-in form), instead of
the API's problem+json body.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from modreg.registry import auth
from modreg.registry.api.deps import SessionDep
from modreg.registry.auth import Identity
from modreg.registry.errors import (
    AuthenticationError,
    InvalidInputError,
    PermissionDeniedError,
    RegistryError,
)
from modreg.registry.settings import Settings

TOKEN_COOKIE = "modreg_token"
CSRF_COOKIE = "modreg_csrf"


def set_cookie(request: Request, response: Response, name: str, value: str) -> None:
    """A cookie no script can read and no other site's request carries."""
    secure = request.url.scheme == "https"
    response.set_cookie(
        name, value, httponly=True, samesite="strict", secure=secure, path="/", max_age=None
    )


def csrf_token(request: Request) -> str:
    """This browser's CSRF token: the cookie's, or a new one ``render`` will set."""
    token = request.cookies.get(CSRF_COOKIE) or request.scope.get("modreg_new_csrf")
    if not token:
        token = request.scope["modreg_new_csrf"] = secrets.token_urlsafe(32)
    return str(token)


def check_csrf(request: Request, sent: str | None) -> None:
    """Refuse a form post whose CSRF field is not this browser's CSRF cookie."""
    cookie = request.cookies.get(CSRF_COOKIE)
    if not (cookie and sent and secrets.compare_digest(cookie, sent)):
        raise PermissionDeniedError(
            "the form's CSRF token does not match this browser's: reload the page and retry"
        )


def _identify(session: Session, secret: str | None) -> Identity:
    return auth.identify(session, secret)


async def page_identity(request: Request, session: SessionDep) -> Identity:
    """The caller of a page: the signed-in token, else the anonymous."""
    secret = request.cookies.get(TOKEN_COOKIE)
    if not secret:
        return auth.ANONYMOUS
    return await run_in_threadpool(_identify, session, secret)


PageIdentityDep = Annotated[Identity, Depends(page_identity)]


def settings_of(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


def render(
    request: Request,
    template: str,
    context: dict[str, Any],
    identity: Identity = auth.ANONYMOUS,
    status: int = 200,
) -> Response:
    """``template`` with ``context`` and what the page frame needs (the caller, the CSRF
    token); sets the CSRF cookie the first time."""
    frame = {
        "identity": identity,
        "csrf": csrf_token(request),
        "private": settings_of(request).private,
        "path": request.url.path,
    }
    templates = request.app.state.templates
    response: Response = templates.TemplateResponse(
        request, template, {**frame, **context}, status_code=status
    )
    new = request.scope.get("modreg_new_csrf")
    if new and not request.cookies.get(CSRF_COOKIE):
        set_cookie(request, response, CSRF_COOKIE, new)
    return response


def error_page(request: Request, exc: RegistryError) -> Response:
    """The page for an error: the sign-in form for a 401, else the status and its one line."""
    if isinstance(exc, AuthenticationError):
        stale = bool(request.cookies.get(TOKEN_COOKIE))  # revoked or expired since sign-in
        message = exc.detail if stale else "This page needs a token: sign in with your team's."
        form = {"message": message, "next": request.url.path}
        response = render(request, "signin.html", form, status=401)
        if stale:
            response.delete_cookie(TOKEN_COOKIE, path="/")
        return response
    context: dict[str, Any] = {"status": exc.status, "title": exc.title, "detail": exc.detail}
    return render(request, "error.html", context, status=exc.status)


def wants_page(request: Request, api_prefix: str) -> bool:
    """Whether an error outside any page should be answered as a page: a browser's request
    (it accepts HTML) for a URL outside the API."""
    path = request.url.path
    html = "text/html" in request.headers.get("accept", "")
    return html and path != api_prefix and not path.startswith(f"{api_prefix}/")


def http_error_page(request: Request, status: int, title: str) -> Response:
    """The error page for a URL no route serves (404) or a method it does not take (405)."""
    detail = f"There is no page at {request.url.path}." if status == 404 else title
    context: dict[str, Any] = {"status": status, "title": title, "detail": detail}
    return render(request, "error.html", context, status=status)


class PageRoute(APIRoute):
    """A route whose ``RegistryError`` is answered with the error page, not problem+json."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page(request: Request) -> Response:
            try:
                return await handler(request)
            except RegistryError as exc:
                return error_page(request, exc)
            except RequestValidationError as exc:  # ?page=abc: the 422 as a page too
                where = ", ".join(".".join(map(str, e["loc"])) for e in exc.errors())
                return error_page(request, InvalidInputError(f"not a valid value: {where}"))

        return page
