"""``modreg init`` never invents an entry point, and ``publish`` warns about a module that
declares no outputs: the exact lines users read, on a terminal and without one."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from factories import make_module_repo

from modreg.registry.manifest import parse_manifest

MODREG = Path(sys.executable).with_name("modreg")
EMPTY_COMMAND = (
    "[module] command: is empty: write the program that runs the module and its arguments, "
    'e.g. ["python", "train.py"]'
)


@pytest.fixture
def two_scripts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder whose entry point cannot be told: two .py files, none of them main.py."""
    folder = tmp_path / "trainer"
    folder.mkdir()
    (folder / "train.py").write_text("print('train')\n")
    (folder / "util.py").write_text("")
    monkeypatch.chdir(folder)
    return folder


def test_without_a_terminal_init_leaves_the_command_for_the_check_to_name(
    two_scripts: Path, run: Any
) -> None:
    result = run("init", "--name", "vision/trainer")
    assert result.exit_code == 0, result.stderr
    path = two_scripts / "modreg.toml"
    assert result.stdout == (
        f"Wrote {path}: edit the command and the interface, then `modreg publish`\n"
    )
    assert result.stderr == (
        "warning: cannot tell which program runs this module (no main.py, and not one .py "
        f"file): write [module] command in {path}\n"
    )
    assert "python main.py" not in path.read_text()
    published = run("publish", two_scripts)
    assert (published.exit_code, published.stdout) == (1, "")
    assert published.stderr == f"error: {path}: {EMPTY_COMMAND}\n"


@pytest.mark.parametrize(
    ("scripts", "command"),
    [(["main.py", "util.py"], ["python", "main.py"]), (["prep.py"], ["python", "prep.py"])],
)
def test_init_writes_the_entry_point_it_can_tell(
    tmp_path: Path, run: Any, monkeypatch: pytest.MonkeyPatch, scripts: list[str], command: Any
) -> None:
    for script in scripts:
        (tmp_path / script).write_text("")
    monkeypatch.chdir(tmp_path)
    result = run("init", "--name", "vision/known")
    assert (result.exit_code, result.stderr) == (0, "")
    assert parse_manifest((tmp_path / "modreg.toml").read_text()).command == command


def _read_until(fd: int, wanted: bytes, seen: bytearray) -> None:
    deadline = time.monotonic() + 30
    while wanted not in seen:
        assert time.monotonic() < deadline, f"no {wanted!r} in {bytes(seen)!r}"
        ready, _, _ = select.select([fd], [], [], 1.0)
        if ready:
            seen += os.read(fd, 4096)


def test_on_a_terminal_init_asks_for_the_command(two_scripts: Path) -> None:
    main, tty = pty.openpty()
    env = {**os.environ, "XDG_CONFIG_HOME": str(two_scripts.parent / "config")}
    process = subprocess.Popen(
        [str(MODREG), "init", "--name", "vision/trainer"],
        stdin=tty,
        stdout=tty,
        stderr=tty,
        cwd=two_scripts,
        env=env,
    )
    os.close(tty)
    seen = bytearray()
    try:
        _read_until(main, b"Which command runs this module? (e.g. python train.py): ", seen)
        os.write(main, b"python train.py --epochs '3 4'\n")
        _read_until(main, b"modreg publish", seen)
        assert process.wait(30) == 0
    finally:
        process.kill()
        os.close(main)
    manifest = parse_manifest((two_scripts / "modreg.toml").read_text())
    assert manifest.command == ["python", "train.py", "--epochs", "3 4"]


def test_publish_warns_about_a_module_without_outputs(tmp_path: Path, run: Any) -> None:
    folder = make_module_repo(tmp_path, name="vision/quiet", outputs={})
    result = run("publish", folder, "--dry-run")
    assert result.exit_code == 0, result.stderr
    no_outputs, *others = result.stderr.splitlines()
    assert no_outputs == (
        "warning: vision/quiet@1.0.0 declares no outputs: its steps produce nothing a later "
        "step, a re-run or `modreg runs download` can use (declare them as [outputs.NAME])"
    )
    assert all(line.startswith("warning: semver not checked") for line in others)
    with_outputs = make_module_repo(tmp_path, name="vision/loud")
    assert "no outputs" not in run("publish", with_outputs, "--dry-run").stderr
