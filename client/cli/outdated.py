"""``modreg outdated PIPELINE``: which locked versions have newer ones, and how to take them.

The engine's ``find_outdated`` does the asking (one resolve call); this prints its rows, and
``note_upgradable`` is the line ``modreg lock`` adds when a range would allow a newer version.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from modreg.client.cli.context import App, json_option, pass_app
from modreg.client.output import emit, print_message, print_table

if TYPE_CHECKING:
    from modreg.engine import Outdated


@click.command("outdated")
@click.argument("pipeline", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@json_option
@pass_app
def outdated_command(app: App, pipeline: Path, as_json: bool) -> None:
    """List the steps of PIPELINE's lock that have newer versions: the newest its range
    allows (`modreg lock PIPELINE --upgrade STEP` takes it) and the newest at all.

    \b
    Example:
        modreg outdated pipeline.yaml
        modreg outdated pipeline.yaml --json
    """
    from modreg.engine import LockMismatchError, find_outdated, lock_path, read_lock

    path = lock_path(pipeline)
    lock = read_lock(path)
    if lock is None:
        raise LockMismatchError(f"{path.name} does not exist: run `modreg lock {pipeline}` first")
    found = find_outdated(lock, app.client)
    rows = [(o.step, o.uses, o.locked, o.allowed, o.latest) for o in found]
    emit(
        [o.to_dict() for o in found],
        as_json,
        lambda: print_table(
            ["step", "uses", "locked", "newest allowed", "newest"],
            rows,
            title=f"{path.name}: steps with newer versions",
        ),
    )


def note_upgradable(pipeline: Path, found: list[Outdated]) -> None:
    """After ``modreg lock``: the steps whose range allows a newer version than locked."""
    upgradable = [o for o in found if o.upgradable]
    if not upgradable:
        return
    listed = ", ".join(f"{o.step} ({o.module} {o.locked} -> {o.allowed})" for o in upgradable)
    print_message(
        f"newer versions the ranges allow: {listed}; `modreg lock {pipeline} --upgrade STEP` "
        f"takes one, `modreg outdated {pipeline}` lists them"
    )
