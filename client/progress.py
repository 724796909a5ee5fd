"""Per-step progress of ``modreg run`` as it happens, on stderr: two kinds of ``RunObserver``.

On a terminal, ``LiveProgress`` redraws a rich table of the steps that really run or have
finished (a step waiting for a worker is not shown), each running one with its elapsed
time. Anywhere else (a pipe, ``tee``, a CI log), ``LineProgress`` prints one plain line per
event the moment it happens, since a redrawn table there would be either invisible until the
end or noise. Both name a step of a sweep by the choices that set it apart
(``train (prep=vision/prep@^1.2, lr=0.1)``). The scheduler calls ``step_changed`` from its
own threads; rich is imported only when a terminal shows progress.
"""

from __future__ import annotations

import threading
import time
from types import TracebackType
from typing import TYPE_CHECKING, Any

import click

from modreg.client.output import variant_label

if TYPE_CHECKING:
    from modreg.engine import StepEvent

STYLES = {
    "executed": "green",
    "reused": "cyan",
    "failed": "bold red",
    "skipped": "yellow",
    "cancelled": "yellow",
    "running": "bold",
}


def step_label(event: StepEvent) -> str:
    """``train``, or ``train (lr=0.1)`` for a step only some variants of a sweep share."""
    if not event.variant:
        return event.step
    return f"{event.step} ({variant_label(event.variant)})"


def seconds_text(seconds: float) -> str:
    """A duration as a person reads it: ``0.4s``, ``12.0s``, ``3m05s``."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}m{rest:02d}s"


def event_text(event: StepEvent) -> str:
    """What happened, after the step's label: ``executed in 3.2s``, ``reused from r-…``."""
    status = str(event.status)
    took = f" in {seconds_text(event.seconds)}" if event.seconds is not None else ""
    if status == "running":
        return f"started ({event.detail})" if event.detail else "started"
    if status == "executed":
        return f"executed{took}"
    if status == "reused":
        return f"reused from {event.reused_from}" if event.reused_from else "reused"
    if status == "failed":
        return f"failed{took}: {event.detail}" if event.detail else f"failed{took}"
    return event.detail or status  # skipped and cancelled say why themselves


class LineProgress:
    """One line per step event on stderr, as it happens: for pipes and CI logs.

    Progress never fails a run: once stderr cannot be written (its reader went away), the
    lines stop and the run goes on.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._gone = False

    def step_changed(self, event: StepEvent) -> None:
        with self._lock:
            if self._gone:
                return
            try:
                click.echo(f"{step_label(event)}: {event_text(event)}", err=True)
            except OSError:
                self._gone = True

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


class LiveProgress:
    """A rich live table of the steps that run or ran, on stderr (a terminal)."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.rows: dict[str, tuple[StepEvent, float]] = {}  # label: (last event, when)
        self._lock = threading.Lock()
        self._live: Any = None

    def step_changed(self, event: StepEvent) -> None:
        with self._lock:
            self.rows[step_label(event)] = (event, time.monotonic())

    def _render(self) -> Any:
        from rich.table import Table

        table = Table(title=self.title, title_justify="left", box=None, header_style="bold")
        table.add_column("step", no_wrap=True)
        table.add_column("status", no_wrap=True)
        table.add_column("")
        with self._lock:
            rows = list(self.rows.items())
        now = time.monotonic()
        for label, (event, since) in rows:
            status = str(event.status)
            styled = f"[{STYLES.get(status, 'dim')}]{status}[/]"
            table.add_row(label, styled, _detail(event, now - since))
        return table

    def __enter__(self) -> LiveProgress:
        from rich.console import Console
        from rich.live import Live

        self._live = Live(
            console=Console(stderr=True),
            get_renderable=self._render,
            refresh_per_second=8,
            transient=True,
        )
        self._live.__enter__()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._live is not None:
            self._live.__exit__(kind, exc, tb)
            self._live = None


def _detail(event: StepEvent, elapsed: float) -> str:
    """The third column: how long a step runs or ran, where a reused one came from, why a
    step failed or was skipped."""
    status = str(event.status)
    if status == "running":
        return seconds_text(elapsed) + (f" ({event.detail})" if event.detail else "")
    if status == "executed" and event.seconds is not None:
        return seconds_text(event.seconds)
    if status == "reused":
        return f"from {event.reused_from}" if event.reused_from else ""
    return event.detail
