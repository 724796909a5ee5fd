"""``modreg.toml``: reading it, and the interface rules a published module must follow.

The client validates a manifest before it publishes, and the server validates it again on
publish (a client is not trusted). Every problem is reported as one ``ManifestError`` line
naming the file and the key, e.g. ``modreg.toml: [params.size] default: expected int, got 'x'``.
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from collections.abc import Callable
from typing import Any

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
MODULE_KEYS = {
    "name",
    "version",
    "description",
    "command",
    "allow_reuse",
    "timeout",
    "retries",
    "env",
}
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
MAX_ENV_NAMES = 32
# What a step may never ask for (DESIGN.md, "a module is someone else's code"): the engine's
# own configuration and credentials (MODREG_*: the token, the registry, the store URL), the
# artifact store's (AWS_*), the folders that lead to the login file (XDG_*), and what the
# engine sets for every step itself (PATH from the caller; HOME, TMPDIR in the scratch folder).
RESERVED_ENV_PREFIXES = ("MODREG_", "AWS_", "XDG_")
RESERVED_ENV_NAMES = frozenset({"HOME", "TMPDIR", "PATH"})
ENVIRONMENT_KEYS = {"python", "requirements", "requirements-file"}
PORT_KEYS = {"type", "optional", "description"}
PARAM_KEYS = {"type", "default", "description"}
PLACEHOLDER_KINDS = {"inputs", "outputs", "params"}


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


def _read_module(table: Any, source: str) -> dict[str, Any]:
    _expect(table, dict, source, "[module]", "a table")
    _unknown_keys(table, MODULE_KEYS, source, "[module]")
    for key in ("name", "version", "command"):
        if key not in table:
            raise _fail(source, "[module]", f"missing required key {key!r}")
    _expect(table["name"], str, source, "[module] name", "a string")
    _expect(table["version"], str, source, "[module] version", "a string")
    _expect(table.get("description", ""), str, source, "[module] description", "a string")
    command = table["command"]
    if not isinstance(command, list) or not command or not all(isinstance(a, str) for a in command):
        raise _fail(source, "[module] command", "expected a non-empty list of strings")
    _expect(table.get("allow_reuse", True), bool, source, "[module] allow_reuse", "true or false")
    if "timeout" in table:
        _expect(table["timeout"], (int, float), source, "[module] timeout", "a number of seconds")
    _expect(table.get("retries", 0), int, source, "[module] retries", "an integer")
    env = table.get("env", [])
    if not isinstance(env, list) or not all(isinstance(name, str) for name in env):
        raise _fail(source, "[module] env", f"expected a list of variable names, got {env!r}")
    return dict(table)


def _read_ports(tables: Any, section: str, source: str) -> dict[str, dict[str, Any]]:
    _expect(tables, dict, source, f"[{section}]", "a table of tables")
    ports: dict[str, dict[str, Any]] = {}
    for name, table in tables.items():
        where = f"[{section}.{name}]"
        _expect(table, dict, source, where, "a table")
        _unknown_keys(table, PORT_KEYS, source, where)
        if table.get("type") not in [t.value for t in PortType]:
            raise _fail(
                source, f"{where} type", f"expected 'file' or 'dir', got {table.get('type')!r}"
            )
        _expect(table.get("optional", False), bool, source, f"{where} optional", "true or false")
        ports[name] = dict(table)
    return ports


def _read_params(tables: Any, source: str) -> dict[str, dict[str, Any]]:
    _expect(tables, dict, source, "[params]", "a table of tables")
    params: dict[str, dict[str, Any]] = {}
    for name, table in tables.items():
        where = f"[params.{name}]"
        _expect(table, dict, source, where, "a table")
        _unknown_keys(table, PARAM_KEYS, source, where)
        types = [t.value for t in ParamType]
        if table.get("type") not in types:
            raise _fail(
                source,
                f"{where} type",
                f"expected one of {', '.join(types)}, got {table.get('type')!r}",
            )
        params[name] = {**table, "required": "default" not in table}
    return params


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
    """Read and validate the text of a ``modreg.toml``."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError(f"{source}: not valid TOML: {exc}") from exc
    _unknown_keys(data, set(SECTIONS), source, "top level")
    if "module" not in data:
        raise _fail(source, "top level", "missing the [module] table")
    module = _read_module(data["module"], source)
    interface = {
        "inputs": _read_ports(data.get("inputs", {}), "inputs", source),
        "outputs": _read_ports(data.get("outputs", {}), "outputs", source),
        "params": _read_params(data.get("params", {}), source),
    }
    if "environment" in data:
        module["environment"] = _read_environment(data["environment"], source)
    try:
        manifest = Manifest(**module, interface=Interface.model_validate(interface))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise _fail(source, where, first["msg"]) from exc
    validate_manifest(manifest, source)
    return manifest


def _check_names(interface: Interface, source: str) -> None:
    for section in PLACEHOLDER_KINDS:
        for name in getattr(interface, section):
            if not IDENTIFIER.match(name):
                raise _fail(source, f"[{section}.{name}]", "names are letters, digits and '_'")


def _check_placeholders(manifest: Manifest, source: str) -> None:
    declared = {kind: set(getattr(manifest.interface, kind)) for kind in PLACEHOLDER_KINDS}
    for argument in manifest.command:
        for kind, name in PLACEHOLDER.findall(argument):
            if kind not in PLACEHOLDER_KINDS:
                raise _fail(source, "[module] command", f"unknown placeholder {{{kind}.{name}}}")
            if name not in declared[kind]:
                raise _fail(
                    source,
                    "[module] command",
                    f"placeholder {{{kind}.{name}}} names no declared {kind[:-1]} "
                    f"(declared: {', '.join(sorted(declared[kind])) or 'none'})",
                )


def validate_manifest(manifest: Manifest, source: str = "modreg.toml") -> None:
    """The interface rules: names, version, limits, defaults typed, placeholders declared."""
    try:
        check_module_name(manifest.name)
        parse_version(manifest.version)
    except (InvalidNameError, InvalidVersionError) as exc:
        raise _fail(source, "[module]", exc.detail) from exc
    if not manifest.command or not manifest.command[0].strip():
        raise _fail(
            source, "[module] command", "expected a non-empty list that starts with a program"
        )
    if manifest.timeout is not None and not (
        manifest.timeout > 0 and math.isfinite(manifest.timeout)
    ):
        raise _fail(
            source, "[module] timeout", f"expected a positive number, got {manifest.timeout!r}"
        )
    if not 0 <= manifest.retries <= 10:
        raise _fail(source, "[module] retries", f"expected 0 to 10, got {manifest.retries!r}")
    check_env_names(manifest.env, source)
    if manifest.environment is not None:
        check_environment(manifest.environment, source)
    _check_names(manifest.interface, source)
    for name, param in manifest.interface.params.items():
        if not param.required:
            try:
                check_param_value(name, param, param.default)
            except ValueError as exc:
                raise _fail(source, f"[params.{name}] default", str(exc)) from exc
    _check_placeholders(manifest, source)


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
