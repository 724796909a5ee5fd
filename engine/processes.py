"""Child processes that die with the engine: the step processes of ``LocalExecutor`` and the
``uv`` processes that build module environments (``environments``).

Each gets SIGKILL when the thread that started it goes away (PR_SET_PDEATHSIG), so a killed
run leaves no step or half-finished ``uv`` running behind it. A step also leads its own process
group, so stopping it (``kill_group``) stops everything it started; ``uv`` stays in the
engine's, so the Ctrl-C that stops a run stops its builds at once.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
from collections.abc import Callable

KILL_GRACE_SECONDS = 2.0
PR_SET_PDEATHSIG = 1


def death_signal() -> Callable[[], None] | None:
    """A pre-exec hook: the child gets SIGKILL when the thread that started it goes away.

    prctl is looked up here, in the parent, so the forked child only makes the call.
    """
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None

    def hook() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)

    return hook


def kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group, then SIGKILL what is left after a grace period."""
    for sig, wait in ((signal.SIGTERM, KILL_GRACE_SECONDS), (signal.SIGKILL, None)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue
