"""modreg.toml parsing and the interface rules, with the exact lines users read."""

from __future__ import annotations

import pytest

from modreg.registry.errors import ManifestError
from modreg.registry.manifest import check_param_value, parse_manifest, placeholders
from modreg.registry.schemas import Param, ParamType, PortType

RESERVED = " is reserved: a step never receives MODREG_*, AWS_* or XDG_* variables"
GOOD = """
[module]
name = "vision/prep"
version = "1.2.0"
description = "Normalise and split the raw images"
command = ["python", "prep.py", "--raw", "{inputs.raw}", "--out", "{outputs.dataset}",
           "--size", "{params.size}"]
timeout = 60

[inputs.raw]
type = "dir"
[outputs.dataset]
type = "dir"
[params.size]
type = "int"
default = 8
[params.mode]
type = "str"
"""


def test_good_manifest() -> None:
    manifest = parse_manifest(GOOD)
    assert manifest.name == "vision/prep"
    assert manifest.interface.inputs["raw"].type == PortType.dir
    assert manifest.interface.params["size"].default == 8
    assert not manifest.interface.params["size"].required
    assert manifest.interface.params["mode"].required
    assert manifest.timeout == 60
    assert manifest.allow_reuse is True
    assert placeholders(manifest.command) == {
        ("inputs", "raw"),
        ("outputs", "dataset"),
        ("params", "size"),
    }


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            'command = ["python"',
            'command = [" "',
            "modreg.toml: [module] command: expected a non-empty list that starts with a program",
        ),
        (
            "timeout = 60",
            'timeout = 60\ncolour = "red"',
            "modreg.toml: [module]: unknown key 'colour'",
        ),
        (
            "default = 8",
            'default = "x"',
            "modreg.toml: [params.size] default: expected int, got 'x'",
        ),
        (
            '"{params.size}"',
            '"{params.nope}"',
            "modreg.toml: [module] command: placeholder {params.nope} names no declared param",
        ),
        (
            '"{params.size}"',
            '"{env.HOME}"',
            "modreg.toml: [module] command: unknown placeholder {env.HOME}",
        ),
        (
            'type = "int"',
            'type = "integer"',
            "modreg.toml: [params.size] type: expected one of str, int, float, bool, json",
        ),
        (
            '[inputs.raw]\ntype = "dir"',
            '[inputs.raw]\ntype = "folder"',
            "modreg.toml: [inputs.raw] type: expected 'file' or 'dir', got 'folder'",
        ),
        ('version = "1.2.0"', 'version = "1.2"', "modreg.toml: [module]: invalid version '1.2'"),
        (
            'name = "vision/prep"',
            'name = "Vision/Prep"',
            "modreg.toml: [module]: invalid module name 'Vision/Prep'",
        ),
        (
            "timeout = 60",
            'timeout = "soon"',
            "modreg.toml: [module] timeout: expected a number of seconds, got 'soon'",
        ),
        (
            "timeout = 60",
            "timeout = -1",
            "modreg.toml: [module] timeout: expected a positive number, got -1",
        ),
        (
            "timeout = 60",
            "retries = true",
            "modreg.toml: [module] retries: expected an integer, got True",
        ),
        (
            "[params.mode]",
            '[params."bad-name"]',
            "modreg.toml: [params.bad-name]: names are letters, digits and '_'",
        ),
        (
            "timeout = 60",
            'timeout = 60\nresources = {cpus = 2, memory = "lots"}',
            'modreg.toml: [module] resources: memory: expected a size such as "8GiB" or '
            "\"512MB\", got 'lots'",
        ),
        (
            "timeout = 60",
            "timeout = 60\nresources = {gpus = 1}",
            "modreg.toml: [module] resources: unknown key 'gpus' (allowed: cpus, memory, GPU)",
        ),
        (
            "timeout = 60",
            "timeout = 60\nresources = {cpus = 0}",
            "modreg.toml: [module] resources: cpus: expected a positive number, got 0",
        ),
        (
            "timeout = 60",
            'timeout = 60\nenv = "HF_TOKEN"',
            "modreg.toml: [module] env: expected a list of variable names, got 'HF_TOKEN'",
        ),
        (
            "timeout = 60",
            'timeout = 60\nenv = ["HF-TOKEN"]',
            "modreg.toml: [module] env: 'HF-TOKEN' is not a variable name",
        ),
        (
            "timeout = 60",
            'timeout = 60\nenv = ["A=B"]',
            "modreg.toml: [module] env: 'A=B' is not a variable name",
        ),
        (
            "timeout = 60",
            'timeout = 60\nenv = ["HF_TOKEN", "HF_TOKEN"]',
            "modreg.toml: [module] env: 'HF_TOKEN' is listed twice",
        ),
        (
            "timeout = 60",
            'timeout = 60\nenv = ["MODREG_TOKEN"]',
            "modreg.toml: [module] env: 'MODREG_TOKEN'" + RESERVED,
        ),
        (
            "timeout = 60",
            'timeout = 60\nenv = ["AWS_SECRET_ACCESS_KEY"]',
            "modreg.toml: [module] env: 'AWS_SECRET_ACCESS_KEY'" + RESERVED,
        ),
        (
            "timeout = 60",
            'timeout = 60\nenv = ["XDG_CONFIG_HOME"]',
            "modreg.toml: [module] env: 'XDG_CONFIG_HOME'" + RESERVED,
        ),
        (
            "timeout = 60",
            'timeout = 60\nenv = ["HOME"]',
            "modreg.toml: [module] env: 'HOME'" + RESERVED,
        ),
        ('version = "1.2.0"\n', "", "modreg.toml: [module]: missing required key 'version'"),
        ("[inputs.raw]", "[inputs.raw\n", "modreg.toml: not valid TOML"),
        ("[params.mode]", "[other]", "modreg.toml: top level: unknown key 'other'"),
    ],
)
def test_manifest_errors_name_the_key(old: str, new: str, message: str) -> None:
    assert old in GOOD
    with pytest.raises(ManifestError) as info:
        parse_manifest(GOOD.replace(old, new, 1))
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("kind", "value", "expected"),
    [
        ("int", 3, 3),
        ("float", 3, 3.0),
        ("float", 0.5, 0.5),
        ("bool", True, True),
        ("str", "a", "a"),
        ("json", {"a": [1, 2]}, {"a": [1, 2]}),
    ],
)
def test_param_values_accepted(kind: str, value: object, expected: object) -> None:
    assert check_param_value("p", Param(type=ParamType(kind)), value) == expected


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("int", True),
        ("int", 1.5),
        ("int", "3"),
        ("bool", 1),
        ("str", 3),
        ("float", "x"),
        ("float", float("nan")),
        ("json", {1, 2}),
    ],
)
def test_param_values_rejected(kind: str, value: object) -> None:
    with pytest.raises(ValueError, match=f"expected {kind}|expected a finite|expected JSON"):
        check_param_value("p", Param(type=ParamType(kind)), value)


def test_declared_variables_are_kept_by_name() -> None:
    manifest = parse_manifest(GOOD.replace("timeout = 60", 'env = ["HF_TOKEN", "WANDB_API_KEY"]'))
    assert manifest.env == ["HF_TOKEN", "WANDB_API_KEY"]
    assert parse_manifest(GOOD).env == []


def test_resources_are_kept_as_numbers_memory_in_bytes() -> None:
    text = 'resources = {cpus = 4, memory = "8GiB", GPU = 1}'
    manifest = parse_manifest(GOOD.replace("timeout = 60", text))
    assert manifest.resources == {"cpus": 4, "memory": 8 * 1024**3, "GPU": 1}
    assert parse_manifest(
        GOOD.replace("timeout = 60", 'resources = {memory = "512MB"}')
    ).resources == {"memory": 512e6}
    assert parse_manifest(GOOD).resources == {}


def test_at_most_32_declared_variables() -> None:
    names = ", ".join(f'"V{i}"' for i in range(33))
    with pytest.raises(ManifestError, match=r"^modreg.toml: \[module\] env: at most 32 names"):
        parse_manifest(GOOD.replace("timeout = 60", f"env = [{names}]"))


MANY_PROBLEMS = """
[module]
name = "vision/prep"
version = "1.2"
command = ["python", "prep.py", "{inputs.raw}", "{params.nope}", "{outputs.dataset}"]
colour = "red"
timeout = "soon"

[inputs.raw]
type = "folder"
[outputs.dataset]
type = "dir"
[params.size]
type = "int"
default = "x"
"""


def test_every_problem_of_a_manifest_is_reported_at_once() -> None:
    """Like a pipeline's: shape problems of each section, and the rules on all that reads
    well — a broken entry (inputs.raw) still counts as declared for the placeholders."""
    lines = [
        "modreg.toml: [module]: unknown key 'colour' (allowed: allow_reuse, command, "
        "description, env, name, resources, retries, timeout, version)",
        "modreg.toml: [module] timeout: expected a number of seconds, got 'soon'",
        "modreg.toml: [inputs.raw] type: expected 'file' or 'dir', got 'folder'",
        "modreg.toml: [module]: invalid version '1.2': expected strict semver such as 1.2.0 "
        "or 1.3.0-rc.1",
        "modreg.toml: [module] command: placeholder {params.nope} names no declared param "
        "(declared: size)",
        "modreg.toml: [params.size] default: expected int, got 'x'",
    ]
    with pytest.raises(ManifestError) as info:
        parse_manifest(MANY_PROBLEMS)
    assert info.value.problems == lines
    assert str(info.value) == "\n".join(["6 problems in modreg.toml:", *lines])
    assert info.value.to_problem()["problems"] == lines, "the server sends them all"


def test_a_missing_required_key_does_not_hide_the_interface_problems() -> None:
    text = GOOD.replace('version = "1.2.0"\n', "").replace("default = 8", 'default = "x"')
    with pytest.raises(ManifestError) as info:
        parse_manifest(text)
    assert info.value.problems == [
        "modreg.toml: [module]: missing required key 'version'",
        "modreg.toml: [params.size] default: expected int, got 'x'",
    ]


def test_environment_problems_are_listed_with_the_rest() -> None:
    text = GOOD.replace('version = "1.2.0"', 'version = "1.2"') + (
        '[environment]\nrequirements = "numpy"\n'
    )
    with pytest.raises(ManifestError) as info:
        parse_manifest(text)
    assert info.value.problems == [
        "modreg.toml: [environment] requirements: expected a list of strings, got 'numpy'",
        "modreg.toml: [module]: invalid version '1.2': expected strict semver such as 1.2.0 "
        "or 1.3.0-rc.1",
    ]
