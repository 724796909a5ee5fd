"""The ``modreg`` command line: a click group with the registry and pipeline commands.

Errors are handled in one place, ``ModregGroup.invoke``: any ``ModregError`` (or OS error)
raised by a command becomes one ``error: …`` line on stderr and exit status 1; click's usage
errors exit 2; a traceback is shown only with ``--debug``. Output whose reader went away
(``modreg runs list | head``) is no error: click's ``main`` ends such a command quietly.
Only click is imported at start-up: each command imports what it needs when it runs, so
``modreg --help`` stays fast.
"""

from __future__ import annotations

import sys
import traceback
from typing import Any

import click

from modreg.client.cli import (
    cache_commands,
    envs_commands,
    evolution_commands,
    maintenance,
    module_commands,
    pipelines,
    registry_commands,
)
from modreg.client.cli.context import App
from modreg.registry.compatibility import API_LEVEL, VERSION
from modreg.registry.errors import ModregError

__all__ = ["cli", "main"]


class ModregGroup(click.Group):
    """A click group that turns modreg's errors into one line and exit status 1 (an error
    that lists several refusals, ``SemverError``, gets one line each)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            raise  # the reader went away (`| head`): click's main ends quietly, no error line
        except (ModregError, OSError) as exc:
            app = ctx.find_object(App)
            if app is not None and app.debug:
                traceback.print_exc()
            for line in getattr(exc, "lines", None) or [_describe(exc)]:
                click.echo(f"error: {line}", err=True)
            ctx.exit(1)


def _describe(exc: BaseException) -> str:
    problems = getattr(exc, "problems", None)
    if problems:  # a pipeline's or a manifest's problems: its heading, then one line each
        head = str(exc).strip().splitlines()[0]
        return head + "".join(f"\n  {problem}" for problem in problems)
    text = str(exc).strip() or type(exc).__name__
    return " ".join(text.split())  # one line, whatever the message held


@click.group(cls=ModregGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--registry", metavar="URL", help="Registry URL (else $MODREG_URL, else login file).")
@click.option("--token", metavar="TOKEN", help="API token (else $MODREG_TOKEN, else login file).")
@click.option("--debug", is_flag=True, help="Show tracebacks of errors.")
@click.version_option(
    VERSION, prog_name="modreg", message=f"%(prog)s %(version)s (API level {API_LEVEL})"
)
@click.pass_context
def cli(ctx: click.Context, registry: str | None, token: str | None, debug: bool) -> None:
    """modreg: versioned pipeline modules, and pipelines that reuse their results.

    \b
    Example:
        modreg login http://127.0.0.1:8470 --token mr_...
        modreg publish path/to/module
        modreg pull vision/prep@^1.2 --dest prep
    """
    ctx.obj = App(registry=registry, token=token, debug=debug)


registry_commands.register(cli)
module_commands.register(cli)
evolution_commands.register(cli)
pipelines.register(cli)
maintenance.register(cli)
cache_commands.register(cli)
envs_commands.register(cli)


def main() -> None:
    """Console-script entry point of ``modreg``."""
    # httpx imports its own command-line tool (rich.progress, pygments …) on import, ~0.1 s
    # that modreg never uses: marking it absent makes httpx skip it (it catches ImportError).
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
    cli.main(prog_name="modreg")
