"""``modreg init``: a starting ``modreg.toml`` for a folder, valid as written.

The interface sections are written as comments: the command and its placeholders are the
module author's to decide, and an undeclared placeholder would make the file invalid.
The command runs the folder's entry point (``main.py``, or its only ``.py`` file). When
that cannot be told and nobody can be asked, the command is left empty with a comment:
the manifest check then names it instead of a guessed ``python main.py`` failing at run time.
What the folder already says it needs becomes the ``[environment]``: a ``requirements.txt``
is named as the ``requirements-file`` (so it stays the one list to edit), else the
``pyproject.toml`` ``[project] dependencies`` are copied; its ``requires-python`` becomes
``python``.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from pathlib import Path

from modreg.client.errors import ClientError

DEFAULT_VERSION = "0.1.0"
REQUIREMENTS_TXT = "requirements.txt"

_TEMPLATE = """\
[module]
name = {name}
version = {version}
description = {description}
{command}

# The interface: declare every input, output and param the command's placeholders use,
# e.g. command = ["python", "prep.py", "--raw", "{{inputs.raw}}", "--out", "{{outputs.dataset}}"]
#
# [inputs.raw]
# type = "dir"            # "file" or "dir"
#
# [outputs.dataset]
# type = "dir"
#
# [params.size]
# type = "int"            # str, int, float, bool or json
# default = 8             # no default: the param is required
"""


def slug(text: str) -> str:
    """``My Module!`` -> ``my-module``: a valid name part."""
    cleaned = re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-._")
    return cleaned or "module"


_UNKNOWN_COMMAND = """\
# modreg init could not tell which program runs this module: write it here, e.g.
# command = ["python", "train.py", "--out", "{outputs.model}"]
command = []"""


def guess_script(folder: Path) -> str | None:
    """``main.py`` if present, else the folder's only ``.py`` file, else None (unknown)."""
    scripts = sorted(path.name for path in folder.glob("*.py"))
    if "main.py" in scripts:
        return "main.py"
    return scripts[0] if len(scripts) == 1 else None


def split_command(text: str) -> list[str]:
    """A command typed as a shell line (``python train.py --epochs 3``), as its arguments."""
    try:
        command = shlex.split(text)
    except ValueError as exc:
        raise ValueError(f"cannot read {text!r} as a command: {exc}") from exc
    if not command:
        raise ValueError("the command is empty")
    return command


def pyproject_environment(folder: Path) -> tuple[str | None, list[str]]:
    """``requires-python`` and ``dependencies`` of ``folder/pyproject.toml`` (None, [] if none)."""
    import tomllib

    path = folder / "pyproject.toml"
    if not path.is_file():
        return None, []
    try:
        project = tomllib.loads(path.read_text(encoding="utf-8")).get("project", {})
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ClientError(f"{path}: cannot read: {exc}") from exc
    python, dependencies = project.get("requires-python"), project.get("dependencies", [])
    if python is not None and not isinstance(python, str):
        raise ClientError(f"{path}: [project] requires-python: expected a string, got {python!r}")
    if not isinstance(dependencies, list) or not all(isinstance(d, str) for d in dependencies):
        raise ClientError(f"{path}: [project] dependencies: expected a list of strings")
    return python, dependencies


def environment_text(folder: Path) -> str:
    """An ``[environment]`` table for what ``folder`` declares it needs, or "" if nothing."""
    python, dependencies = pyproject_environment(folder)
    if (folder / REQUIREMENTS_TXT).is_file():
        requirements = f"requirements-file = {json.dumps(REQUIREMENTS_TXT)}"
    elif dependencies:
        listed = "".join(f"    {json.dumps(line)},\n" for line in dependencies)
        requirements = f"requirements = [\n{listed}]"
    else:
        return ""
    version = f"python = {json.dumps(python)}\n" if python else ""
    return f"\n[environment]\n{version}{requirements}\n"


def _render(name: str, version: str, description: str, command: list[str] | None) -> str:
    line = f"command = {json.dumps(command)}" if command else _UNKNOWN_COMMAND
    return _TEMPLATE.format(
        name=json.dumps(name),
        version=json.dumps(version),
        description=json.dumps(description),
        command=line,
    )


def manifest_text(
    name: str, version: str, description: str, command: list[str] | None, environment: str = ""
) -> str:
    """The text of a new ``modreg.toml`` with ``environment`` (an ``[environment]`` table or
    ""), validated before it is returned; with no command (None), everything but the empty
    command, which the manifest check then names."""
    from modreg.registry.manifest import parse_manifest

    checked = _render(name, version, description, command or ["program"]) + environment
    parse_manifest(checked, "modreg.toml")
    return _render(name, version, description, command) + environment


def write_manifest(folder: Path, text: str) -> Path:
    """Create ``folder/modreg.toml``; never overwrites an existing one."""
    path = folder / "modreg.toml"
    try:
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError as exc:
        raise ClientError(f"{path}: already exists; not overwriting it") from exc
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        out.write(text)
    return path
