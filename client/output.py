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
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any

import click

UNBOUNDED_WIDTH = 100_000  # tables printed to a pipe or file: as wide as they need


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


def variant_label(variant: Mapping[str, Any]) -> str:
    """A variant's choices as people name them: ``prep=vision/prep@^1.2, lr=0.1``.

    An axis reads as its step (``STEP.uses``) or its param (``STEP.params.K``) when no other
    axis of the variant would read the same; else by its full name.
    """
    short = {axis: _axis_name(axis) for axis in variant}
    taken = Counter(short.values())
    return ", ".join(
        f"{short[axis] if taken[short[axis]] == 1 else axis}={cell(value)}"
        for axis, value in variant.items()
    )


def _axis_name(axis: str) -> str:
    step, _, field = axis.partition(".")
    if field == "uses":
        return step
    return field.removeprefix("params.") if field.startswith("params.") else axis


def print_table(
    columns: Sequence[str], rows: Iterable[Sequence[Any]], title: str | None = None
) -> None:
    """A rich table on stdout; an empty one says so in a line instead."""
    from rich.table import Table

    cells = [[cell(value) for value in row] for row in rows]
    if not cells:
        click.echo(f"{title or 'nothing'}: none")
        return
    table = Table(title=title, title_justify="left", header_style="bold")
    for index, column in enumerate(columns):
        texts = [row[index] for row in cells]
        table.add_column(
            column,
            overflow="fold",
            min_width=_longest_word([column, *texts]),
            no_wrap=not any(" " in text for text in texts),  # ids, digests, statuses
        )
    for row in cells:
        table.add_row(*row)
    _print(table)


def _longest_word(texts: Iterable[str]) -> int:
    """A column's narrowest width that splits no word: an id, digest or status stays whole
    (a narrow terminal wraps the columns of texts at spaces, or at worst crops the table)."""
    return max((len(word) for text in texts for word in text.split()), default=1)


def _print(table: Any) -> None:
    """A table on stdout: a terminal's width, else as wide as it needs, since a pipe or a CI
    log has no width to fit and a folded id can no longer be copied; no trailing blanks."""
    from rich.console import Console

    console = Console(soft_wrap=False, width=None if sys.stdout.isatty() else UNBOUNDED_WIDTH)
    with console.capture() as captured:
        console.print(table)
    click.echo("\n".join(line.rstrip() for line in captured.get().splitlines()))


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
    from rich.table import Table

    values = [(name, cell(value)) for name, value in fields]
    table = Table(title=title, title_justify="left", show_header=False, box=None)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold", min_width=_longest_word(value for _, value in values))
    for name, value in values:
        table.add_row(name, value)
    _print(table)


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
