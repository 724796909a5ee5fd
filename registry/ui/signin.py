"""Signing in to the pages with a token, and out again.

Sign-in checks the token as the API checks a bearer token (``auth.identify``: unknown,
expired or revoked tokens are refused) and keeps it in an HttpOnly, SameSite=Strict cookie
that only the pages read. Both forms carry the CSRF token (``rendering.check_csrf``). The
form body is parsed here (``application/x-www-form-urlencoded``, two short fields) rather
than with FastAPI's ``Form``, which would need python-multipart for this alone.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from modreg.registry import auth
from modreg.registry.api.deps import SessionDep
from modreg.registry.errors import AuthenticationError, InvalidInputError
from modreg.registry.ui.rendering import (
    TOKEN_COOKIE,
    PageIdentityDep,
    PageRoute,
    check_csrf,
    render,
    set_cookie,
)

router = APIRouter(route_class=PageRoute)
MAX_FORM_BYTES = 4096


async def _form(request: Request) -> dict[str, str]:
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise InvalidInputError(f"the form is over {MAX_FORM_BYTES} bytes")
    fields = parse_qs(body.decode("utf-8", "replace"), max_num_fields=10)
    return {name: values[-1] for name, values in fields.items()}


def _local(next_path: str | None) -> str:
    """Where to go after signing in: a path of this site only (never ``//other.host``)."""
    if next_path and next_path.startswith("/") and not next_path.startswith("//"):
        return next_path
    return "/"


@router.get("/signin")
def signin_form(request: Request, identity: PageIdentityDep, next: str = "/") -> Response:
    return render(request, "signin.html", {"next": _local(next)}, identity)


@router.post("/signin")
async def signin(request: Request, session: SessionDep) -> Response:
    form = await _form(request)
    check_csrf(request, form.get("csrf"))
    secret, next_path = form.get("token", "").strip(), _local(form.get("next"))
    try:
        if not secret:
            raise AuthenticationError("paste a token: `modreg token create` makes one")
        await run_in_threadpool(auth.identify, session, secret)
    except AuthenticationError as exc:  # the form again, saying what was wrong with the token
        return render(
            request, "signin.html", {"message": exc.detail, "next": next_path}, status=401
        )
    response = RedirectResponse(next_path, status_code=303)
    set_cookie(request, response, TOKEN_COOKIE, secret)
    return response


@router.post("/signout")
async def signout(request: Request) -> Response:
    form = await _form(request)
    check_csrf(request, form.get("csrf"))
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(TOKEN_COOKIE, path="/")
    return response
