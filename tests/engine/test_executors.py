"""LocalExecutor on its own: a real process per job, cancellation scoped to one run."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

from modreg.engine.executors.base import JobContext, StepJob
from modreg.engine.executors.local import LocalExecutor
from modreg.engine.sources import SourceCache
from modreg.engine.store import LocalArtifactStore
from modreg.registry.schemas import PortType

SOURCE = "a" * 64


def _context(tmp_path: Path) -> JobContext:
    sources = SourceCache(tmp_path / "sources", None)
    (sources.path(SOURCE)).mkdir(parents=True)
    (sources.path(SOURCE) / "main.py").write_text(
        "import sys, time\ntime.sleep(float(sys.argv[2]))\nopen(sys.argv[1], 'w').write('ok')\n"
    )
    return JobContext(LocalArtifactStore(tmp_path / "store"), sources, tmp_path / "scratch")


def _job(tmp_path: Path, seconds: float) -> StepJob:
    return StepJob(
        step="s",
        command=[sys.executable, "main.py", "{outputs.out}", "{params.seconds}"],
        source_sha256=SOURCE,
        inputs={},
        params={"seconds": seconds},
        outputs={"out": PortType.file},
        log_path=tmp_path / "s.log",
    )


def test_a_cancelled_run_does_not_cancel_the_next(tmp_path: Path) -> None:
    executor = LocalExecutor(1)
    first = _context(tmp_path / "first")
    threading.Timer(0.5, lambda: (first.cancelled.set(), executor.cancel())).start()
    started = time.monotonic()
    cancelled = executor.run(_job(tmp_path, 30), first)
    assert cancelled.cancelled and cancelled.error == "cancelled"
    assert time.monotonic() - started < 10, "the running process was killed"
    again = executor.run(_job(tmp_path, 0), _context(tmp_path / "second"))
    assert again.ok, again.error
    assert set(again.outputs) == {"out"}
