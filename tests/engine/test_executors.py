"""LocalExecutor on its own: a real process per job, cancellation scoped to one run."""

from __future__ import annotations

import hashlib
import pickle
import sys
import threading
import time
from pathlib import Path

from registry_data import tar_gz

from modreg.engine.errors import CorruptBlobError, MissingBlobError
from modreg.engine.executors.base import JobContext, StepJob
from modreg.engine.executors.local import LocalExecutor
from modreg.engine.sources import SourceCache
from modreg.engine.store import LocalArtifactStore
from modreg.registry.schemas import PortType

MAIN = "import sys, time\ntime.sleep(float(sys.argv[2]))\nopen(sys.argv[1], 'w').write('ok')\n"
ARCHIVE = tar_gz({"main.py": MAIN})
SOURCE = hashlib.sha256(ARCHIVE).hexdigest()


def _context(tmp_path: Path) -> JobContext:
    sources = SourceCache(tmp_path / "sources", None)
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "module.tar.gz").write_bytes(ARCHIVE)
    sources.add_archive(tmp_path / "module.tar.gz", SOURCE)  # verified before each use
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


def test_blob_errors_cross_a_pickle_whole() -> None:
    """A Dask task's exception comes back pickled: the engine must see which blob is gone."""
    for error in (MissingBlobError("ab" * 32, "gone"), CorruptBlobError("cd" * 32, "bad")):
        again = pickle.loads(pickle.dumps(error))
        assert type(again) is type(error)
        assert (again.digest, str(again)) == (error.digest, str(error))
