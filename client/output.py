"""The one place the CLI prints results: ``--json`` documents, rich tables, messages, warnings.

Commands build plain data (dicts and lists with the DESIGN.md keys) and hand it here. Data
goes to stdout, warnings and progress to stderr, so ``--json`` output stays parseable.
Besides this module, stdout gets only click's ``--help`` and ``--version`` and the log that
``modreg runs logs`` copies through as it is; error lines go to stderr from the CLI's one
error handler and from ``modreg run``'s failure report. rich is imported only when a table,
a field list or a spinner is actually drawn.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any

import click


def _jsonable(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot print {type(value).__name__} as JSON")


def print_json(data: Any) -> None:
    """Print ``data`` as an indented JSON document."""
    click.echo(json.dumps(data, indent=2, default=_jsonable))


def print_message(text: str) -> None:
    """A line of human-readable output on stdout."""
    click.echo(text)


def print_warning(text: str) -> None:
    """``warning: …`` on stderr."""
    click.echo(f"warning: {text}", err=True)


def cell(value: Any) -> str:
    """How one value reads in a table."""
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, Enum):
        return str(value.value)
    return str(value)


def print_table(
    columns: Sequence[str], rows: Iterable[Sequence[Any]], title: str | None = None
) -> None:
    """A rich table on stdout; an empty one says so in a line instead."""
    from rich.console import Console
    from rich.table import Table

    rows = list(rows)
    if not rows:
        click.echo(f"{title or 'nothing'}: none")
        return
    table = Table(title=title, title_justify="left", header_style="bold")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(cell(value) for value in row))
    Console(soft_wrap=False).print(table)


def print_csv(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """CSV on stdout (the csv module's quoting), a header line first."""
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    click.echo(buffer.getvalue(), nl=False)


def print_fields(fields: Sequence[tuple[str, Any]], title: str | None = None) -> None:
    """A two-column ``name  value`` table, for one object."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left", show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for name, value in fields:
        table.add_row(name, cell(value))
    Console(soft_wrap=False).print(table)


def emit(data: Any, as_json: bool, render: Callable[[], None]) -> None:
    """``data`` as JSON with ``--json``, else whatever ``render`` prints."""
    if as_json:
        print_json(data)
    else:
        render()


def progress(text: str, enabled: bool = True) -> AbstractContextManager[None]:
    """A spinner on stderr while long work runs, only when stderr is a terminal."""
    if not enabled or not sys.stderr.isatty():
        return nullcontext()
    return _spinner(text)


@contextmanager
def _spinner(text: str) -> Iterator[None]:
    from rich.console import Console

    with Console(stderr=True).status(text):
        yield
