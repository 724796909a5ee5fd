"""Builders of test data: real module git repositories.

``make_module_repo`` writes a module (``modreg.toml`` + a small Python script) into a real git
repository made with gitpython, commits it, and returns the module folder. Called again for the
same module name in the same ``tmp_path``, it commits the new files on top of the same repo, so
a test can publish 1.0.0, then 1.1.0 from a later commit.

The default script is generic: it is called as ``python main.py --NAME VALUE …`` with one
pair per input, output and param (the default command), writes every ``file`` output as a text
file naming the module, version, params and the inputs' contents, makes every ``dir`` output a
folder holding one such file, and appends one line to ``$TEST_STEP_COUNTER`` when that
variable is set, so tests can count real executions.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import git

AUTHOR = git.Actor("modreg tests", "tests@modreg.invalid")

DEFAULT_SCRIPT = '''\
"""A generic test step: writes its outputs from its inputs and params."""
import json
import os
import sys
from pathlib import Path

SPEC = json.loads({spec!r})


def main(argv):
    values = dict(zip(argv[1::2], argv[2::2]))
    values = {{key.lstrip("-"): value for key, value in values.items()}}
    inputs = {{}}
    for name in SPEC["inputs"]:
        path = values.get(name)
        if path and Path(path).is_file():
            inputs[name] = Path(path).read_text()
        elif path and Path(path).is_dir():
            inputs[name] = sorted(p.name for p in Path(path).iterdir())
    params = {{name: values.get(name) for name in SPEC["params"]}}
    text = json.dumps({{"module": SPEC["module"], "version": SPEC["version"],
                       "params": params, "inputs": inputs}}, sort_keys=True)
    for name, kind in SPEC["outputs"].items():
        target = Path(values[name])
        if kind == "dir":
            target.mkdir(parents=True, exist_ok=True)
            (target / "data.txt").write_text(text)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
    counter = os.environ.get("TEST_STEP_COUNTER")
    if counter:
        with open(counter, "a") as out:
            out.write(SPEC["module"] + "\\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
'''


def toml_value(value: Any) -> str:
    """A Python value as TOML (strings, numbers, booleans, lists, inline tables)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    if isinstance(value, Mapping):
        pairs = ", ".join(f"{json.dumps(str(k))} = {toml_value(v)}" for k, v in value.items())
        return "{" + pairs + "}"
    raise TypeError(f"cannot write {value!r} as TOML")


def _ports(ports: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """``{"raw": "dir"}`` or ``{"raw": {"type": "dir", "optional": True}}`` -> tables."""
    return {
        name: ({"type": spec} if isinstance(spec, str) else dict(spec))
        for name, spec in (ports or {}).items()
    }


def _params(params: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """``{"size": "int"}`` (required) or ``{"size": {"type": "int", "default": 8}}``."""
    return {
        name: ({"type": spec} if isinstance(spec, str) else dict(spec))
        for name, spec in (params or {}).items()
    }


def default_command(
    inputs: Mapping[str, Any], outputs: Mapping[str, Any], params: Mapping[str, Any]
) -> list[str]:
    """``python main.py --NAME {kind.NAME} …`` for every input, output and param."""
    command = ["python", "main.py"]
    for kind, names in (("inputs", inputs), ("outputs", outputs), ("params", params)):
        for name in names:
            command += [f"--{name}", f"{{{kind}.{name}}}"]
    return command


def manifest_toml(
    name: str,
    version: str,
    command: list[str],
    inputs: Mapping[str, Mapping[str, Any]],
    outputs: Mapping[str, Mapping[str, Any]],
    params: Mapping[str, Mapping[str, Any]],
    module_extra: Mapping[str, Any] | None = None,
) -> str:
    """The text of a ``modreg.toml``."""
    module = {"name": name, "version": version, "description": f"test module {name}"}
    module.update({"command": command, **(module_extra or {})})
    lines = ["[module]", *(f"{key} = {toml_value(value)}" for key, value in module.items())]
    for section, tables in (("inputs", inputs), ("outputs", outputs), ("params", params)):
        for port, table in tables.items():
            lines += ["", f"[{section}.{port}]"]
            lines += [f"{key} = {toml_value(value)}" for key, value in table.items()]
    return "\n".join(lines) + "\n"


def _script(
    name: str,
    version: str,
    inputs: Mapping[str, Any],
    outputs: Mapping[str, Any],
    params: Mapping[str, Any],
) -> str:
    spec = {
        "module": name,
        "version": version,
        "inputs": list(inputs),
        "outputs": {port: table["type"] for port, table in outputs.items()},
        "params": list(params),
    }
    return DEFAULT_SCRIPT.format(spec=json.dumps(spec))


def _open_or_init(root: Path) -> git.Repo:
    if (root / ".git").exists():
        return git.Repo(root)
    root.mkdir(parents=True, exist_ok=True)
    repo = git.Repo.init(root, initial_branch="main")
    with repo.config_writer() as config:
        config.set_value("user", "name", AUTHOR.name)
        config.set_value("user", "email", AUTHOR.email)
    return repo


def _write(folder: Path, files: Mapping[str, str | bytes]) -> None:
    for relative, content in files.items():
        target = folder / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content)


def make_module_repo(
    tmp_path: Path,
    name: str = "vision/prep",
    version: str = "1.0.0",
    files: Mapping[str, str | bytes] | None = None,
    command: list[str] | None = None,
    inputs: Mapping[str, Any] | None = None,
    outputs: Mapping[str, Any] | None = None,
    params: Mapping[str, Any] | None = None,
    subdir: str = "",
    *,
    module_extra: Mapping[str, Any] | None = None,
    manifest: str | None = None,
    remote: str | None = None,
    repo_dir: Path | None = None,
) -> Path:
    """Write and commit a module in a real git repo; returns the module folder.

    ``outputs`` defaults to one file output ``out``. ``files`` are written last, so they can
    replace ``main.py``; ``manifest`` replaces the generated ``modreg.toml`` text verbatim.
    ``repo_dir`` puts several modules in one repo (a monorepo, with ``subdir``).
    """
    root = repo_dir or tmp_path / "repos" / name.replace("/", "__")
    repo = _open_or_init(root)
    ins, pars = _ports(inputs), _params(params)
    outs = _ports({"out": "file"} if outputs is None else outputs)
    text = manifest or manifest_toml(
        name, version, command or default_command(ins, outs, pars), ins, outs, pars, module_extra
    )
    script = _script(name, version, ins, outs, pars)
    _write(root / subdir, {"main.py": script, "modreg.toml": text, **(files or {})})
    _commit(repo, f"{name} {version}", subdir, remote)
    return root / subdir if subdir else root


def _commit(repo: git.Repo, message: str, subdir: str, remote: str | None) -> None:
    if remote and "origin" not in [r.name for r in repo.remotes]:
        repo.create_remote("origin", remote)
    repo.git.add("--all", "--", subdir or ".")
    if not repo.head.is_valid() or repo.is_dirty(index=True, working_tree=False):
        repo.index.commit(message, author=AUTHOR, committer=AUTHOR)
    repo.close()
