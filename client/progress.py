"""Live per-step progress on a terminal (rich), as a ``RunObserver``.

The scheduler calls ``step_changed`` from its own thread; the live table redraws a few
times a second. rich is imported only when a terminal actually shows progress.
"""

from __future__ import annotations

import threading
import time
from types import TracebackType
from typing import Any

STYLES = {
    "executed": "green",
    "reused": "cyan",
    "failed": "bold red",
    "skipped": "yellow",
    "cancelled": "yellow",
    "running": "bold",
}


class LiveProgress:
    """A rich live table of step statuses, on stderr."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.rows: dict[str, tuple[str, str, float]] = {}
        self._lock = threading.Lock()
        self._live: Any = None

    def step_changed(self, label: str, status: str, detail: str = "") -> None:
        with self._lock:
            self.rows[label] = (status, detail, time.monotonic())
        if self._live is not None:
            self._live.update(self._render())

    def _render(self) -> Any:
        from rich.table import Table

        table = Table(title=self.title, title_justify="left", box=None, header_style="bold")
        table.add_column("step")
        table.add_column("status")
        table.add_column("")
        with self._lock:
            rows = list(self.rows.items())
        for label, (status, detail, _) in rows:
            table.add_row(label, f"[{STYLES.get(status, 'dim')}]{status}[/]", detail)
        return table

    def __enter__(self) -> LiveProgress:
        from rich.console import Console
        from rich.live import Live

        self._live = Live(
            self._render(), console=Console(stderr=True), refresh_per_second=8, transient=True
        )
        self._live.__enter__()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._live is not None:
            self._live.__exit__(kind, exc, tb)
            self._live = None
