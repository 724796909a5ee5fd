"""The README's hand-run session and its Python example run as written (issue 10, items 20-21).

The session's shell lines run in order, in one bash with ``set -e``, in a temporary folder
with its own home (no ``MODREG_*`` from the outside); the only change made to them is the
registry's port, a free one instead of 8470. The Python example then runs in the session's
folder with no ``MODREG_*`` at all: it finds the registry and token that the session's
``modreg login`` saved. The README's test command is not among them (CI runs it).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from registry_servers import free_port

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BIN = Path(sys.executable).parent

pytestmark = pytest.mark.slow


def readme_block(heading: str, language: str) -> str:
    """The first fenced ``language`` block after the ``## heading`` of the README."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index(f"## {heading}\n") :]
    match = re.search(rf"```{language}\n(.*?)```", section, re.DOTALL)
    assert match is not None, f"no {language} block under {heading!r}"
    return match.group(1)


def session_script(port: int) -> str:
    lines = readme_block("A first session by hand", "sh").replace("8470", str(port))
    lines = lines.replace("examples/first-session", str(ROOT / "examples" / "first-session"))
    trap = "trap 'echo \"README line failed: $BASH_COMMAND\" >&2' ERR\n"
    return "set -euo pipefail\n" + trap + lines


def session_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODREG_", "XDG_"))}
    env.update(
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        HOME=str(home),
        GIT_AUTHOR_NAME="README reader",
        GIT_AUTHOR_EMAIL="reader@modreg.invalid",
        GIT_COMMITTER_NAME="README reader",
        GIT_COMMITTER_EMAIL="reader@modreg.invalid",
        GIT_CONFIG_GLOBAL=os.devnull,
    )
    return env


def test_the_readme_session_and_python_example_run_as_written(tmp_path: Path) -> None:
    home, out, err = tmp_path / "home", tmp_path / "session.out", tmp_path / "session.err"
    home.mkdir()
    env = session_env(home)
    with out.open("w") as stdout, err.open("w") as stderr:
        shell = subprocess.Popen(
            ["bash", "-c", session_script(free_port())],
            cwd=tmp_path,
            env=env,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,  # the server it leaves running is stopped below
        )
    try:
        assert shell.wait(timeout=240) == 0, out.read_text()[-3000:] + err.read_text()[-3000:]
        folder = tmp_path / "first-session"
        sweep = json.loads((folder / "sweep.json").read_text())
        assert (sweep["status"], len(sweep["runs"])) == ("succeeded", 2)
        assert {"pipeline.lock", "eval.lock"} <= {p.name for p in folder.iterdir()}
        assert "train.accuracy" in out.read_text()
        example = subprocess.run(
            [sys.executable, "-c", readme_block("The same from Python", "python")],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert example.returncode == 0, example.stderr[-3000:]
        assert json.loads((folder / "out" / "model").read_text())["weight"] > 0
    finally:
        os.killpg(shell.pid, signal.SIGTERM)
