"""``modreg.toml``: reading it, and the interface rules a published module must follow.

The client validates a manifest before it publishes, and the server validates it again on
publish (a client is not trusted). Every problem is one line naming the file and the key,
e.g. ``modreg.toml: [params.size] default: expected int, got 'x'``, and all the problems of
a file are reported at once: ``Problems`` collects them from each section's reader and each
rule, and raises one ``ManifestError`` listing them (its ``problems``).
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import ValidationError

from modreg.registry.environment_lock import LOCK_FILE, check_requirement, lowest_python
from modreg.registry.errors import InvalidNameError, InvalidVersionError, ManifestError
from modreg.registry.names import check_module_name
from modreg.registry.schemas import (
    EnvironmentSpec,
    Interface,
    Manifest,
    Param,
    ParamType,
    PortType,
    check_module_path,
)
from modreg.registry.versioning import parse_version

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\.([^{}]*)\}")
SECTIONS = ("module", "inputs", "outputs", "params", "environment")
INTERFACE = ("inputs", "outputs", "params")
MODULE_KEYS = {
    "name",
    "version",
    "description",
    "command",
    "allow_reuse",
    "timeout",
    "retries",
    "env",
    "resources",
}
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
MAX_ENV_NAMES = 32
# What a step may never ask for (DESIGN.md, "a module is someone else's code"): the engine's
# own configuration and credentials (MODREG_*: the token, the registry, the store URL), the
# artifact store's (AWS_*), the folders that lead to the login file (XDG_*), and what the
# engine sets for every step itself (PATH from the caller; HOME, TMPDIR in the scratch folder).
RESERVED_ENV_PREFIXES = ("MODREG_", "AWS_", "XDG_")
RESERVED_ENV_NAMES = frozenset({"HOME", "TMPDIR", "PATH"})
EMPTY_COMMAND = (
    "is empty: write the program that runs the module and its arguments, "
    'e.g. ["python", "train.py"]'
)
ENVIRONMENT_KEYS = {"python", "requirements", "requirements-file"}
PORT_KEYS = {"type", "optional", "description"}
PARAM_KEYS = {"type", "default", "description"}
PLACEHOLDER_KINDS = {"inputs", "outputs", "params"}
T = TypeVar("T")


class Problems:
    """Every problem of one manifest, so they are all reported at once.

    The readers and checks below raise a ``ManifestError`` for what they find; ``ok`` and
    ``read`` run one, keep its problem lines and go on, and ``raise_all`` raises one
    ``ManifestError`` listing them (a single problem stays one line). A new section's
    reader slots in as ``problems.read(_read_section, table, source)``.
    """

    def __init__(self, source: str) -> None:
        self.source = source
        self.lines: list[str] = []

    def add(self, where: str, problem: str) -> None:
        self.lines.append(f"{self.source}: {where}: {problem}")

    def read(self, reader: Callable[..., T], *args: Any) -> T | None:
        """What ``reader`` returns, or None when it found problems (kept)."""
        try:
            return reader(*args)
        except ManifestError as exc:
            self.lines += exc.problems or [exc.detail]
            return None

    def ok(self, check: Callable[..., object], *args: Any) -> bool:
        """Run ``check``; False when it found problems (kept)."""
        before = len(self.lines)
        self.read(check, *args)
        return len(self.lines) == before

    def raise_all(self) -> None:
        lines = list(dict.fromkeys(self.lines))
        if len(lines) == 1:
            raise ManifestError(lines[0])
        if lines:
            head = f"{len(lines)} problems in {self.source}:"
            raise ManifestError("\n".join([head, *lines]), problems=lines)


def _fail(source: str, where: str, problem: str) -> ManifestError:
    return ManifestError(f"{source}: {where}: {problem}")


def _unknown_keys(table: dict[str, Any], allowed: set[str], source: str, where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise _fail(
            source, where, f"unknown key {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})"
        )


def _expect(value: Any, kind: type | tuple[type, ...], source: str, where: str, label: str) -> None:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
        raise _fail(source, where, f"expected {label}, got {value!r}")


def _expect_command(command: Any, source: str) -> None:
    if command == []:  # what `modreg init` writes when it cannot tell the entry point
        raise _fail(source, "[module] command", EMPTY_COMMAND)
    if not isinstance(command, list) or not command or not all(isinstance(a, str) for a in command):
        raise _fail(source, "[module] command", "expected a non-empty list of strings")


MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)?\s*$", re.IGNORECASE)
MEMORY_UNITS = {
    "b": 1,
    **{f"{p}b": 1000**i for i, p in enumerate("kmgt", 1)},
    **{f"{p}ib": 1024**i for i, p in enumerate("kmgt", 1)},
}
RESOURCE_KEYS = ("cpus", "memory", "GPU")


def parse_resources(table: Any) -> dict[str, float]:
    """``resources`` (``{cpus = 4, memory = "8GiB", GPU = 1}``) as numbers: cpus, memory in
    bytes, GPUs — what a Dask worker's ``--resources`` declares. ValueError says what is wrong,
    naming the key; the manifest and the pipeline spec give it their place."""
    if not isinstance(table, dict):
        raise ValueError(f'expected a table such as {{cpus = 4, memory = "8GiB"}}, got {table!r}')
    parsed: dict[str, float] = {}
    for key, value in table.items():
        if key not in RESOURCE_KEYS:
            raise ValueError(f"unknown key {key!r} (allowed: {', '.join(RESOURCE_KEYS)})")
        parsed[key] = _resource_value(key, value)
    return parsed


def _resource_value(key: str, value: Any) -> float:
    if key == "memory" and isinstance(value, str):
        match = MEMORY.match(value)
        if match is None:
            raise ValueError(f'memory: expected a size such as "8GiB" or "512MB", got {value!r}')
        return float(match.group(1)) * MEMORY_UNITS[(match.group(2) or "B").lower()]
    number = value if isinstance(value, int | float) and not isinstance(value, bool) else None
    if number is None or not math.isfinite(number) or number <= 0:
        raise ValueError(f"{key}: expected a positive number, got {value!r}")
    if key == "GPU" and number != int(number):
        raise ValueError(f"GPU: expected a whole number, got {value!r}")
    return float(number)


def _expect_resources(table: Any, source: str) -> None:
    try:
        parse_resources(table)
    except ValueError as exc:
        raise _fail(source, "[module] resources", str(exc)) from exc


def _expect_env(env: Any, source: str) -> None:
    if not isinstance(env, list) or not all(isinstance(name, str) for name in env):
        raise _fail(source, "[module] env", f"expected a list of variable names, got {env!r}")


REQUIRED_MODULE_KEYS = ("name", "version", "command")
MODULE_TYPES: dict[str, tuple[type | tuple[type, ...], str]] = {
    "name": (str, "a string"),
    "version": (str, "a string"),
    "description": (str, "a string"),
    "allow_reuse": (bool, "true or false"),
    "timeout": ((int, float), "a number of seconds"),
    "retries": (int, "an integer"),
}


def _check_module_key(key: str, value: Any, source: str) -> None:
    if key == "command":
        _expect_command(value, source)
    elif key == "env":
        _expect_env(value, source)
    elif key == "resources":
        _expect_resources(value, source)
    else:
        kind, label = MODULE_TYPES[key]
        _expect(value, kind, source, f"[module] {key}", label)


def _read_module(table: Any, problems: Problems) -> dict[str, Any] | None:
    """``[module]``'s keys that read well (each other one's problem kept), or None when a
    required one is missing or broken: the rules then still run on everything else."""
    source = problems.source
    if not problems.ok(_expect, table, dict, source, "[module]", "a table"):
        return None
    problems.ok(_unknown_keys, table, MODULE_KEYS, source, "[module]")
    good = {
        key: value
        for key, value in table.items()
        if key in MODULE_KEYS and problems.ok(_check_module_key, key, value, source)
    }
    if "resources" in good:
        good["resources"] = parse_resources(good["resources"])
    for key in REQUIRED_MODULE_KEYS:
        if key not in table:
            problems.add("[module]", f"missing required key {key!r}")
    return good if all(key in good for key in REQUIRED_MODULE_KEYS) else None


def _read_port(table: Any, where: str, source: str) -> dict[str, Any]:
    _expect(table, dict, source, where, "a table")
    _unknown_keys(table, PORT_KEYS, source, where)
    if table.get("type") not in [t.value for t in PortType]:
        raise _fail(source, f"{where} type", f"expected 'file' or 'dir', got {table.get('type')!r}")
    _expect(table.get("optional", False), bool, source, f"{where} optional", "true or false")
    return dict(table)


def _read_param(table: Any, where: str, source: str) -> dict[str, Any]:
    _expect(table, dict, source, where, "a table")
    _unknown_keys(table, PARAM_KEYS, source, where)
    types = [t.value for t in ParamType]
    if table.get("type") not in types:
        raise _fail(
            source,
            f"{where} type",
            f"expected one of {', '.join(types)}, got {table.get('type')!r}",
        )
    return {**table, "required": "default" not in table}


def _read_entries(tables: Any, section: str, problems: Problems) -> dict[str, dict[str, Any]]:
    """``[inputs]`` / ``[outputs]`` / ``[params]``: the entries that read well (the others'
    problems kept)."""
    if not problems.ok(_expect, tables, dict, problems.source, f"[{section}]", "a table of tables"):
        return {}
    reader = _read_param if section == "params" else _read_port
    entries = {}
    for name, table in tables.items():
        entry = problems.read(reader, table, f"[{section}.{name}]", problems.source)
        if entry is not None:
            entries[name] = entry
    return entries


def _declared(data: dict[str, Any]) -> dict[str, set[str]]:
    """The names each interface section declares, also those whose entry is broken (so a
    broken entry is not reported a second time as an undeclared placeholder)."""
    return {
        kind: set(data[kind]) if isinstance(data.get(kind), dict) else set()
        for kind in PLACEHOLDER_KINDS
    }


def _read_environment(table: Any, source: str) -> dict[str, Any]:
    """``[environment]`` as ``EnvironmentSpec`` fields (``requirements-file`` spelled as in
    TOML); each line and the range are checked in ``check_environment``."""
    _expect(table, dict, source, "[environment]", "a table")
    _unknown_keys(table, ENVIRONMENT_KEYS, source, "[environment]")
    if "python" in table:
        _expect(table["python"], str, source, "[environment] python", "a version range string")
    requirements = table.get("requirements", [])
    if not isinstance(requirements, list) or not all(isinstance(r, str) for r in requirements):
        problem = f"expected a list of strings, got {requirements!r}"
        raise _fail(source, "[environment] requirements", problem)
    if "requirements-file" in table:
        _expect(
            table["requirements-file"], str, source, "[environment] requirements-file", "a path"
        )
    return {
        "python": table.get("python"),
        "requirements": requirements,
        "requirements_file": table.get("requirements-file"),
    }


def parse_manifest(text: str, source: str = "modreg.toml") -> Manifest:
    """Read and validate the text of a ``modreg.toml``; one ManifestError lists every problem.

    The rules run on whatever reads well, so a broken entry or a missing key does not hide
    the problems of the rest of the file.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError(f"{source}: not valid TOML: {exc}") from exc
    problems = Problems(source)
    problems.ok(_unknown_keys, data, set(SECTIONS), source, "top level")
    if "module" not in data:
        problems.add("top level", "missing the [module] table")
    module = _read_module(data["module"], problems) if "module" in data else None
    entries = {kind: _read_entries(data.get(kind, {}), kind, problems) for kind in INTERFACE}
    declared = _declared(data)
    interface = _model(problems, lambda: Interface.model_validate(entries))
    if "environment" in data:
        environment = problems.read(_read_environment, data["environment"], source)
        if module is not None and environment is not None:
            module = {**module, "environment": environment}
    manifest = None
    if module is not None and interface is not None:
        manifest = _model(problems, lambda: Manifest(**module, interface=interface))
    if manifest is not None:
        _check_module(manifest, declared, problems)
    if interface is not None:
        _check_interface(interface, declared, problems)
    problems.raise_all()
    assert manifest is not None  # raise_all raised otherwise
    return manifest


def _model(problems: Problems, build: Callable[[], T]) -> T | None:
    """``build()`` (a pydantic model), or None with each of its validation errors kept."""
    try:
        return build()
    except ValidationError as exc:
        for error in exc.errors():
            problems.add(".".join(str(part) for part in error["loc"]), error["msg"])
        return None


def _check_identity(manifest: Manifest, source: str) -> None:
    try:
        check_module_name(manifest.name)
        parse_version(manifest.version)
    except (InvalidNameError, InvalidVersionError) as exc:
        raise _fail(source, "[module]", exc.detail) from exc


def _check_command(command: list[str], source: str) -> None:
    if not command or not command[0].strip():
        raise _fail(
            source, "[module] command", "expected a non-empty list that starts with a program"
        )


def _check_limits(manifest: Manifest, problems: Problems) -> None:
    timeout = manifest.timeout
    if timeout is not None and not (timeout > 0 and math.isfinite(timeout)):
        problems.add("[module] timeout", f"expected a positive number, got {timeout!r}")
    if not 0 <= manifest.retries <= 10:
        problems.add("[module] retries", f"expected 0 to 10, got {manifest.retries!r}")


def _check_names(declared: dict[str, set[str]], problems: Problems) -> None:
    for section in sorted(declared):
        for name in sorted(declared[section]):
            if not IDENTIFIER.match(name):
                problems.add(f"[{section}.{name}]", "names are letters, digits and '_'")


def _check_defaults(interface: Interface, problems: Problems) -> None:
    for name, param in interface.params.items():
        if not param.required:
            try:
                check_param_value(name, param, param.default)
            except ValueError as exc:
                problems.add(f"[params.{name}] default", str(exc))


def _check_placeholders(
    command: list[str], declared: dict[str, set[str]], problems: Problems
) -> None:
    for argument in command:
        for kind, name in PLACEHOLDER.findall(argument):
            if kind not in PLACEHOLDER_KINDS:
                problems.add("[module] command", f"unknown placeholder {{{kind}.{name}}}")
            elif name not in declared[kind]:
                problems.add(
                    "[module] command",
                    f"placeholder {{{kind}.{name}}} names no declared {kind[:-1]} "
                    f"(declared: {', '.join(sorted(declared[kind])) or 'none'})",
                )


def _check_interface(
    interface: Interface, declared: dict[str, set[str]], problems: Problems
) -> None:
    """The rules of the interface alone: names, and defaults of their param's type."""
    _check_names(declared, problems)
    _check_defaults(interface, problems)


def _check_module(manifest: Manifest, declared: dict[str, set[str]], problems: Problems) -> None:
    """The rules of ``[module]``: name, version, command and its placeholders, limits, env."""
    source = problems.source
    problems.ok(_check_identity, manifest, source)
    problems.ok(_check_command, manifest.command, source)
    _check_limits(manifest, problems)
    problems.ok(check_env_names, manifest.env, source)
    if manifest.environment is not None:
        problems.ok(check_environment, manifest.environment, source)
    _check_placeholders(manifest.command, declared, problems)


def validate_manifest(manifest: Manifest, source: str = "modreg.toml") -> None:
    """The interface rules: names, version, limits, defaults typed, placeholders declared.
    One ManifestError lists every problem."""
    problems = Problems(source)
    declared = {kind: set(getattr(manifest.interface, kind)) for kind in PLACEHOLDER_KINDS}
    _check_module(manifest, declared, problems)
    _check_interface(manifest.interface, declared, problems)
    problems.raise_all()


def check_environment(spec: EnvironmentSpec, source: str = "modreg.toml") -> None:
    """``[environment]``: a range that allows some Python, PEP 508 lines, a plain file path."""
    if spec.python is not None:
        try:
            lowest_python(spec.python)
        except ValueError as exc:
            raise _fail(source, "[environment] python", str(exc)) from exc
    for index, line in enumerate(spec.requirements):
        try:
            check_requirement(line)
        except ValueError as exc:
            raise _fail(source, f"[environment] requirements[{index}]", str(exc)) from exc
    if spec.requirements_file is not None:
        if spec.requirements and spec.requirements_file:
            raise _fail(
                source, "[environment]", "give 'requirements' or 'requirements-file', not both"
            )
        try:
            plain = bool(spec.requirements_file) and check_module_path(spec.requirements_file)
        except ValueError:
            plain = False
        if not plain:
            raise _fail(
                source,
                "[environment] requirements-file",
                f"expected a file inside the module such as 'requirements.txt', "
                f"got {spec.requirements_file!r}",
            )


def environment_source(spec: EnvironmentSpec, has_file: Callable[[str], bool], source: str) -> str:
    """Where a module's environment comes from: ``"requirements"``, or the module's file that
    holds its requirements (``requirements-file``) or its committed lock. ``has_file`` says
    whether the module (its folder, or its archive) has a file; ManifestError when the
    requirements file is missing."""
    if spec.requirements_file is not None:
        if not has_file(spec.requirements_file):
            raise _fail(
                source,
                "[environment] requirements-file",
                f"{spec.requirements_file!r} is not a file of the module",
            )
        return spec.requirements_file
    if not spec.requirements and has_file(LOCK_FILE):
        return LOCK_FILE
    return "requirements"


def env_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a variable a step receives, or None when it can."""
    if not ENV_NAME.match(name):
        return "is not a variable name (letters, digits and '_', at most 128)"
    if name in RESERVED_ENV_NAMES or name.startswith(RESERVED_ENV_PREFIXES):
        return (
            "is reserved: a step never receives MODREG_*, AWS_* or XDG_* variables, "
            "and the engine sets HOME, TMPDIR and PATH itself"
        )
    return None


def check_env_names(names: list[str], source: str = "modreg.toml") -> None:
    """``[module] env``: distinct, valid, unreserved variable names, at most 32."""
    if len(names) > MAX_ENV_NAMES:
        raise _fail(source, "[module] env", f"at most {MAX_ENV_NAMES} names, got {len(names)}")
    if len(set(names)) != len(names):
        twice = next(name for name in names if names.count(name) > 1)
        raise _fail(source, "[module] env", f"{twice!r} is listed twice")
    for name in names:
        if problem := env_name_problem(name):
            raise _fail(source, "[module] env", f"{name!r} {problem}")


def check_param_value(name: str, param: Param, value: object) -> object:
    """``value`` as the param's type, or ValueError saying what was expected.

    ``name`` is for callers that log; the message itself names only the type, so each
    caller can say where the value came from (a manifest key, a pipeline step).
    """
    expected = param.type.value
    if param.type == ParamType.json:
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"expected JSON data, got {value!r}") from exc
        return value
    if param.type == ParamType.float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    python_type = {"str": str, "int": int, "float": float, "bool": bool}.get(expected)
    if python_type is None:  # a newer registry's type (schemas.WireEnum)
        raise ValueError(f"type {expected!r} is unknown to this modreg: upgrade modreg")
    if isinstance(value, bool) and python_type is not bool:
        raise ValueError(f"expected {expected}, got {value!r}")
    if not isinstance(value, python_type):
        raise ValueError(f"expected {expected}, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"expected a finite float, got {value!r}")
    return value


def placeholders(command: list[str]) -> set[tuple[str, str]]:
    """Every ``(kind, name)`` the command's placeholders name."""
    return {(kind, name) for argument in command for kind, name in PLACEHOLDER.findall(argument)}
