"""The digits example, end to end, exactly as a newcomer runs it (slow: about a minute).

``examples/digits/run_demo.py`` runs in a temporary work folder (``MODREG_DEMO_DIR``); its
modules append a line per real execution to ``DIGITS_EXAMPLE_COUNTER``, so the count below
comes from the modules themselves, not from what the engine reports.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "examples" / "digits" / "run_demo.py"

pytestmark = pytest.mark.slow


def run_demo(work: Path, counter: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODREG_")}
    env.update(MODREG_DEMO_DIR=str(work), DIGITS_EXAMPLE_COUNTER=str(counter))
    return subprocess.run(
        [sys.executable, str(DEMO), "--jobs", "2"],
        cwd=work.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def envs_list(work: Path) -> str:
    """``modreg envs list --json`` in the demo's state folder."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODREG_")}
    env["XDG_CACHE_HOME"] = str(work / "home" / "cache")
    modreg = str(Path(sys.executable).with_name("modreg"))
    done = subprocess.run(
        [modreg, "envs", "list", "--json"], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout


def port_open(url: str) -> bool:
    host, port = re.fullmatch(r"http://([\d.]+):(\d+)", url).groups()  # type: ignore[union-attr]
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex((host, int(port))) == 0


def test_digits_example_sweeps_once_then_reuses_everything(tmp_path: Path) -> None:
    work, counter = tmp_path / "demo", tmp_path / "executions.txt"
    work.mkdir()
    (work / ".modreg-demo-folder").touch()
    (work / "stale-file").write_text("left by an earlier demo")

    done = run_demo(work, counter)

    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    executions = Counter(line.split()[0] for line in counter.read_text().splitlines())
    assert executions == {"prep": 3, "augment": 6, "train": 18}
    summary = json.loads((work / "summary.json").read_text())
    first, second = summary["sweeps"]
    assert (first["runs"], first["executed"], first["status"]) == (18, 27, "succeeded")
    assert (second["runs"], second["executed"], second["reused"]) == (18, 0, 54)
    assert summary["compare_rows"] == 18
    assert "What to try next" in done.stdout
    environments = json.loads(envs_list(work))["environments"]
    assert sorted(sorted(env["modules"]) for env in environments) == [
        ["vision/augment@1.0.0"],
        ["vision/prep@1.0.0", "vision/prep@1.1.0", "vision/prep@2.0.0", "vision/train@1.0.0"],
    ], "each distinct environment built once, shared by the modules that declare the same"
    # The folder was reset, and the server is gone.
    assert not (work / "stale-file").exists() and not (work / "server.pid").exists()
    url = re.search(r"registry up at (http://\S+)", done.stdout)
    assert url and not port_open(url.group(1))
