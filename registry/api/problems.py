"""The error answers of each route, as the OpenAPI document lists them.

Every error the registry answers is an ``application/problem+json`` body (``schemas.Problem``)
with one of these statuses; a route declares the ones it can really give, so a client
generated from the document knows them:

- 400 on every route: a client too old to be served (``app.ApiLevel``), before routing;
- 401 / 403 on every route that looks at the caller: an unknown or malformed token, a token
  without the scope or team (``deps``);
- 404 where the path names something that may not exist (a team, module, version, blob, run);
- 409 where a write may collide (a team, a version); 413 where bytes are uploaded;
- 422 on every route with input: the request's shape, a NUL, a number out of bounds, and
  the domain's checks (names, versions, manifests, archives).
"""

from __future__ import annotations

from typing import Any

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_REF = "#/components/schemas/Problem"

_MEANINGS = {
    400: "Bad request: the client is too old for this registry",
    401: "Authentication required: no valid token",
    403: "Permission denied: the token lacks the scope or team",
    404: "Not found",
    409: "Conflict: it exists already",
    413: "Payload too large",
    422: "Invalid input",
}

GUARDED = (400, 401, 403, 422)  # a route that looks at the caller and takes input


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: each status answered with a problem body."""
    content = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": PROBLEM_REF}}}
    return {status: {"description": _MEANINGS[status], "content": content} for status in statuses}
