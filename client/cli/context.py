"""What every command shares: the ``App`` on ``ctx.obj``, ``--json``, and reference arguments.

``App`` holds the global options and builds the ``RegistryClient`` only when a command first
asks for it, so commands that need no registry (``init --name``, ``publish --dry-run``,
``--help``) never import httpx or resolve any config; ``init`` without ``--name`` asks the
registry for the token's team.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from modreg.client.config import ClientConfig
    from modreg.client.http import RegistryClient


@dataclass
class App:
    """The global options of one ``modreg`` invocation, and its lazily built client."""

    registry: str | None = None
    token: str | None = field(default=None, repr=False)
    debug: bool = False
    _client: RegistryClient | None = field(default=None, repr=False)

    def config(self) -> ClientConfig:
        from modreg.client.config import load_config

        return load_config(self.registry, self.token)

    @property
    def client(self) -> RegistryClient:
        """The registry client, built on first use and closed when the command ends."""
        if self._client is None:
            from modreg.client.http import RegistryClient

            self._client = RegistryClient.from_config(self.config())
            click.get_current_context().call_on_close(self._client.close)
        return self._client


pass_app = click.make_pass_decorator(App, ensure=True)

json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print machine-readable JSON instead of a table."
)


class ModuleRefType(click.ParamType):
    """``team/name`` or ``team/name@RANGE``, checked before any request is sent."""

    name = "team/name[@RANGE]"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        from modreg.registry.errors import InvalidInputError
        from modreg.registry.versioning import parse_ref

        try:
            parse_ref(str(value))
        except InvalidInputError as exc:
            self.fail(exc.detail, param, ctx)
        return str(value).strip()


class ModuleNameType(click.ParamType):
    """A bare ``team/name``."""

    name = "team/name"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        from modreg.registry.errors import InvalidInputError
        from modreg.registry.names import check_module_name

        try:
            check_module_name(str(value))
        except InvalidInputError as exc:
            self.fail(exc.detail, param, ctx)
        return str(value)


class ExactRefType(click.ParamType):
    """``team/name@VERSION`` with one exact version; converts to ``(module, version)``."""

    name = "team/name@VERSION"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[str, str]:
        from modreg.registry.errors import InvalidInputError
        from modreg.registry.names import check_module_name
        from modreg.registry.versioning import canonical_version

        if isinstance(value, tuple):
            return value
        module, at, version = str(value).partition("@")
        if not at:
            self.fail(f"expected team/name@VERSION, got {value!r}", param, ctx)
        try:
            check_module_name(module)
            return module, canonical_version(version)
        except InvalidInputError as exc:
            self.fail(exc.detail, param, ctx)


MODULE_REF = ModuleRefType()
MODULE_NAME = ModuleNameType()
EXACT_REF = ExactRefType()


def _units_param(parser: str) -> Callable[[click.Context, click.Parameter, str | None], Any]:
    """A click callback reading a value with ``registry.units``' ``parser``; None stays None."""

    def callback(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
        from modreg.registry import units

        if value is None:
            return None
        try:
            return getattr(units, parser)(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from exc

    return callback


duration_param = _units_param("parse_duration")  # ``30d``, ``24h``, … as a timedelta
size_param = _units_param("parse_size")  # ``20G``, ``500M``, … as bytes
