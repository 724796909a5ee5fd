"""The web UI at ``/``: server-rendered pages that read what the API reads, no more.

Pages (``pages``) are Jinja2 templates (``templates/``) over the same domain functions the
API routes call (``modules``, ``runs``, ``accounts``), after the same rules of ``auth``: a
page is the API's answer drawn for a person. The caller is the token of a sign-in cookie
(``signin``), which only these pages read: the API takes bearer tokens and nothing else.
Assets (``static/``, with the vendored dagre and uPlot beside their licences) ship as package
data and are served from here, so the UI works on a network with no way out.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

HERE = Path(__file__).parent
STATIC_PREFIX = "/static"


def mount_ui(app: FastAPI) -> None:
    """Serve the pages at ``/`` and their assets under ``/static`` on ``app``."""
    from modreg.registry.ui import pages, signin

    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.globals["static"] = lambda path: f"{STATIC_PREFIX}/{path}"
    app.state.templates = templates
    app.mount(STATIC_PREFIX, StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(signin.router, include_in_schema=False)
    app.include_router(pages.router, include_in_schema=False)
