"""The registry's own commands: ``server``, ``login``, ``whoami``, ``team``, ``token``.

Each command asks ``App`` for the client, calls one operation, and hands plain data (the
DESIGN.md ``--json`` keys) to ``modreg.client.output``. Heavy modules are imported inside the
commands, never here, so ``modreg --help`` does not pay for them. The module commands
(publish, pull, show …) are in ``module_commands``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import click

from modreg.client import output
from modreg.client.cli.context import App, json_option, pass_app

_DURATION = re.compile(r"^(\d+)([dwy])$")
_DAYS_PER_UNIT = {"d": 1, "w": 7, "y": 365}


# --- server and identity -------------------------------------------------------------------


@click.command()
@click.option("--host", default=None, help="Interface to listen on [127.0.0.1].")
@click.option("--port", type=int, default=None, help="Port to listen on [8470].")
@click.option("--db", "db_url", metavar="URL", default=None, help="Database URL [SQLite in DIR].")
@click.option(
    "--data",
    "data_dir",
    metavar="DIR",
    type=click.Path(path_type=Path),
    default=None,
    help="Data folder: database, blobs, admin.token [.modreg-data].",
)
@click.option("--private", is_flag=True, default=None, help="Reading needs a token of the team.")
@click.option("--max-upload", type=click.IntRange(1), metavar="MIB", help="Upload limit [100].")
@click.option("--blob-url", metavar="URL", help="fsspec URL for blobs instead of DIR/blobs.")
@click.option("--access-log", is_flag=True, default=None, help="Log every request.")
@click.option(
    "--cache-retention",
    metavar="DURATION",
    help="Cache entries expire after this long, e.g. 90d [never]; `modreg gc` removes them.",
)
def server(
    host: str | None,
    port: int | None,
    db_url: str | None,
    data_dir: Path | None,
    private: bool | None,
    max_upload: int | None,
    blob_url: str | None,
    access_log: bool | None,
    cache_retention: str | None,
) -> None:
    """Run a registry server (SQLite in the data folder unless --db is given).

    \b
    Example:
        modreg server --data ./registry-data --port 8470
        modreg server --db postgresql+psycopg://user@db/modreg --host 0.0.0.0
    """
    from modreg.registry.server import serve
    from modreg.registry.settings import Settings

    upload = max_upload * 1024 * 1024 if max_upload else None
    settings = Settings.from_env(
        host=host, port=port, db_url=db_url, data_dir=data_dir, private=private,
        max_upload_bytes=upload, blob_url=blob_url, access_log=access_log,
        cache_retention=cache_retention,
    )  # fmt: skip
    serve(settings)


@click.command()
@click.argument("url")
@click.option("--token", help="API token to save for this registry (prompted on a terminal).")
@click.option("--anonymous", is_flag=True, help="Save the registry without a token (reads only).")
@pass_app
def login(app: App, url: str, token: str | None, anonymous: bool) -> None:
    """Check a registry and a token, and save them as the defaults (file mode 0600).

    Without --token, the token comes from the global --token, then $MODREG_TOKEN, then a
    prompt on a terminal; with none of them (a script, CI) nothing is saved, unless
    --anonymous says that no token is meant.

    \b
    Example:
        modreg login http://127.0.0.1:8470 --token mr_0123...
    """
    from modreg.client.config import save_login
    from modreg.client.http import RegistryClient
    from modreg.registry.errors import AuthenticationError

    if anonymous and token:
        raise click.UsageError("--anonymous saves no token: drop --token, or --anonymous")
    token = "" if anonymous else _login_token(token if token is not None else app.token)
    with RegistryClient(url, token) as client:
        identity = client.whoami()
    if token and not identity.authenticated:
        raise AuthenticationError(f"the registry at {client.url} does not accept this token")
    path = save_login(url, token)
    who = f"team {identity.team} ({identity.scope})" if identity.team else "anonymous"
    who = "admin" if identity.admin else who
    output.print_message(f"Logged in to {client.url} as {who}; saved in {path}")


def _login_token(given: str | None) -> str:
    """The token to log in with; "" for an anonymous login chosen at the prompt."""
    import os
    import sys

    from modreg.client.errors import ConfigError

    token = given or os.environ.get("MODREG_TOKEN")
    if token:
        return token
    if not sys.stdin.isatty():
        raise ConfigError(
            "no token to log in with (stdin is not a terminal to ask on): pass --token T or "
            "set MODREG_TOKEN, or --anonymous to save this registry without one"
        )
    entered: str = click.prompt(
        "Token (empty: anonymous)", default="", show_default=False, hide_input=True
    )
    return entered


@click.command()
@click.argument("url", required=False)
@pass_app
def logout(app: App, url: str | None) -> None:
    """Forget the token `modreg login` saved for URL (without URL: the default registry).

    \b
    Example:
        modreg logout
        modreg logout http://127.0.0.1:8470
    """
    import os

    from modreg.client.config import remove_login

    done = remove_login(url)
    if done.removed:
        output.print_message(f"Logged out of {done.url}; removed its login from {done.path}")
    else:
        output.print_message(f"No login saved for {done.url} in {done.path}")
    if os.environ.get("MODREG_TOKEN"):
        output.print_warning("MODREG_TOKEN is set in this environment and is still used")


@click.command()
@json_option
@pass_app
def whoami(app: App, as_json: bool) -> None:
    """Show which registry is configured and who its token belongs to.

    \b
    Example:
        modreg whoami --json
    """
    identity = app.client.whoami()
    data = {"registry": app.client.url, **identity.model_dump(mode="json")}
    who = "admin" if identity.admin else f"team {identity.team} ({identity.scope})"
    who = who if identity.authenticated else "anonymous"
    output.emit(data, as_json, lambda: output.print_message(f"{app.client.url}: {who}"))


# --- teams and tokens ----------------------------------------------------------------------


@click.group()
def team() -> None:
    """Manage teams (admin)."""


@team.command("create")
@click.argument("name")
@json_option
@pass_app
def team_create(app: App, name: str, as_json: bool) -> None:
    """Create a team (needs the admin token).

    \b
    Example:
        modreg --token "$(cat data/admin.token)" team create vision
    """
    created = app.client.create_team(name)
    output.emit(created, as_json, lambda: output.print_message(f"Created team {created.name}"))


@click.group()
def token() -> None:
    """Create, list and revoke API tokens."""


def _days(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    if value is None:
        return None
    match = _DURATION.match(value.strip())
    if not match or int(match.group(1)) < 1:
        raise click.BadParameter(f"expected a duration such as 90d, 12w or 1y, got {value!r}")
    return int(match.group(1)) * _DAYS_PER_UNIT[match.group(2)]


@token.command("create")
@click.option("--team", "team_name", required=True, help="The team the token acts for.")
@click.option(
    "--scope",
    type=click.Choice(["read", "run", "publish"]),  # schemas.Scope (not imported: start-up)
    required=True,
    help="read: read only; run: also record runs, cache entries and step outputs; "
    "publish: also publish modules and manage the team's tokens.",
)
@click.option("--expires", callback=_days, metavar="90d|12w|1y", help="Expire after this long.")
@click.option("--description", default="", help="A note to recognise the token by.")
@json_option
@pass_app
def token_create(
    app: App, team_name: str, scope: str, expires: int | None, description: str, as_json: bool
) -> None:
    """Create a token; its secret is shown this once only.

    \b
    Example:
        modreg token create --team vision --scope run --expires 90d
    """
    created = app.client.create_token(team_name, scope, expires, description)
    data = {
        "token": created.token,
        "team": created.team,
        "scope": created.scope,
        "id": created.id,
        "expires_at": created.expires_at,
    }
    output.emit(data, as_json, lambda: _show_new_token(data))


def _show_new_token(data: dict[str, Any]) -> None:
    expiry = f", expires {output.cell(data['expires_at'])}" if data["expires_at"] else ""
    output.print_message(
        f"Token {data['id']} ({data['scope']} on {data['team']}{expiry}); shown once:"
    )
    output.print_message(str(data["token"]))


@token.command("list")
@click.option("--team", "team_name", help="Only this team's tokens.")
@json_option
@pass_app
def token_list(app: App, team_name: str | None, as_json: bool) -> None:
    """List tokens (never their secrets).

    \b
    Example:
        modreg token list --team vision
    """
    tokens = app.client.list_tokens(team_name)
    columns = ["id", "team", "scope", "description", "created", "expires", "revoked"]
    rows = [
        [
            t.id,
            t.team or "(admin)",
            t.scope,
            t.description,
            t.created_at,
            t.expires_at,
            t.revoked_at,
        ]
        for t in tokens
    ]
    output.emit(tokens, as_json, lambda: output.print_table(columns, rows, title="tokens"))


@token.command("revoke")
@click.argument("token_id", metavar="ID", type=int)
@pass_app
def token_revoke(app: App, token_id: int) -> None:
    """Revoke a token by its id (see `modreg token list`).

    \b
    Example:
        modreg token revoke 7
    """
    app.client.revoke_token(token_id)
    output.print_message(f"Revoked token {token_id}")


COMMANDS: tuple[click.Command, ...] = (server, login, logout, whoami, team, token)


def register(group: click.Group) -> None:
    """Add the registry commands to the ``modreg`` group."""
    for command in COMMANDS:
        group.add_command(command)
