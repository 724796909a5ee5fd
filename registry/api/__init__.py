"""The HTTP API under ``/api/v1``: one router per area, gathered by ``api_router()``."""

from __future__ import annotations

from fastapi import APIRouter, Depends


def api_router() -> APIRouter:
    """All routes of the API, to mount under ``/api/v1``."""
    from modreg.registry.api import accounts, blobs, deps, gc, leases, modules, runs

    router = APIRouter(dependencies=[Depends(deps.refusing_nul)])
    for area in (accounts, modules, blobs, runs, leases, gc):
        router.include_router(area.router)
    return router
