"""The semver classifier: a table of every kind of interface change, the bump rules
(0.x, pre-releases, backports), and a property: an accepted version never removes anything
its base had within the same major."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modreg.registry.schemas import (
    EnvironmentPublic,
    EnvironmentSpec,
    Interface,
    Manifest,
    VersionStatus,
)
from modreg.registry.semver_check import (
    Bump,
    Published,
    check,
    classify,
    package_changes,
    python_narrowed,
)

BASE_INTERFACE: dict[str, Any] = {
    "inputs": {"raw": {"type": "dir"}, "mask": {"type": "file", "optional": True}},
    "outputs": {"dataset": {"type": "dir"}, "report": {"type": "file", "optional": True}},
    "params": {"size": {"type": "int", "default": 8}, "mode": {"type": "str", "required": True}},
}


def manifest(version: str = "1.2.0", python: str | None = None, **changes: Any) -> Manifest:
    """The base manifest with ``changes`` applied: ``params={"size": None}`` removes one."""
    interface = {kind: dict(ports) for kind, ports in BASE_INTERFACE.items()}
    for kind, edits in changes.items():
        for name, spec in edits.items():
            if spec is None:
                interface[kind].pop(name)
            else:
                interface[kind][name] = spec
    environment = EnvironmentSpec(python=python) if python else None
    return Manifest(
        name="vision/prep", version=version, command=["python", "prep.py"],
        interface=Interface.model_validate(interface), environment=environment,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("changes", "line"),
    [
        ({"inputs": {"raw": None}}, "input 'raw' removed (breaking)"),
        ({"outputs": {"dataset": None}}, "output 'dataset' removed (breaking)"),
        ({"params": {"size": None}}, "param 'size' removed (breaking)"),
        ({"inputs": {"raw": {"type": "file"}}}, "input 'raw' type changed dir -> file (breaking)"),
        (
            {"outputs": {"dataset": {"type": "file"}}},
            "output 'dataset' type changed dir -> file (breaking)",
        ),
        (
            {"params": {"size": {"type": "float", "default": 8}}},
            "param 'size' type changed int -> float (breaking)",
        ),
        ({"inputs": {"mask": {"type": "file"}}}, "input 'mask' made required (breaking)"),
        (
            {"outputs": {"dataset": {"type": "dir", "optional": True}}},
            "output 'dataset' made optional (breaking)",
        ),
        (
            {"params": {"size": {"type": "int", "required": True}}},
            "param 'size' made required (breaking)",
        ),
        ({"inputs": {"extra": {"type": "file"}}}, "input 'extra' added as required (breaking)"),
        (
            {"params": {"seed": {"type": "int", "required": True}}},
            "param 'seed' added without a default (breaking)",
        ),
        ({"inputs": {"extra": {"type": "file", "optional": True}}}, "input 'extra' added (minor)"),
        ({"outputs": {"plot": {"type": "file"}}}, "output 'plot' added (minor)"),
        ({"params": {"seed": {"type": "int", "default": 0}}}, "param 'seed' added (minor)"),
        (
            {"inputs": {"raw": {"type": "dir", "optional": True}}},
            "input 'raw' made optional (minor)",
        ),
        ({"outputs": {"report": {"type": "file"}}}, "output 'report' made required (minor)"),
        (
            {"params": {"mode": {"type": "str", "default": "fast"}}},
            "param 'mode' given a default ('fast') (minor)",
        ),
        (
            {"params": {"size": {"type": "int", "default": 16}}},
            "param 'size' default changed 8 -> 16 (behaviour change)",
        ),
    ],
)
def test_each_interface_change_is_classified(changes: dict[str, Any], line: str) -> None:
    assert [change.line() for change in classify(manifest(), manifest(**changes))] == [line]


def test_a_rename_is_a_removal_and_an_addition() -> None:
    renamed = manifest(params={"size": None, "width": {"type": "int", "default": 8}})
    assert [c.line() for c in classify(manifest(), renamed)] == [
        "param 'size' removed (breaking)",
        "param 'width' added (minor)",
    ]


@pytest.mark.parametrize(
    ("old", "new", "narrowed"),
    [
        (None, ">=3.11", True),
        (">=3.10", ">=3.11", True),
        (">=3.11", ">=3.10", False),
        (">=3.11", ">=3.11,<4", False),
        (">=3.11", ">=3.11,<3.13", True),
        (">=3.11", None, False),
    ],
)
def test_a_narrowed_python_range_is_a_behaviour_change(
    old: str | None, new: str | None, narrowed: bool
) -> None:
    assert python_narrowed(old, new) is narrowed
    changes = classify(manifest(python=old), manifest(python=new))
    assert [c.line() for c in changes if "python" in c.what] == (
        [f"python range narrowed {old or 'any'!r} -> {new!r} (behaviour change)"]
        if narrowed
        else []
    )


def test_a_changed_environment_lock_is_reported_not_refused() -> None:
    old = EnvironmentPublic(sha256="a" * 64, python="3.11", packages={"numpy": "1.26.0"})
    new = EnvironmentPublic(sha256="b" * 64, python="3.11", packages={"numpy": "1.26.4"})
    published = [Published("1.2.0", VersionStatus.active, manifest(python=">=3.11"), old)]
    verdict = check("vision/prep", manifest("1.2.1", python=">=3.11"), published, new)
    assert verdict.ok
    assert [c.line() for c in verdict.changes] == [
        "environment lock changed (1 packages) (environment)"
    ]


def published(*history: str) -> list[Published]:
    """Published versions of the base manifest; ``"1.3.0 yanked"`` is a yanked one."""
    found = []
    for entry in history:
        version, _, yanked = entry.partition(" ")
        status = VersionStatus.yanked if yanked else VersionStatus.active
        found.append(Published(version, status, manifest(version)))
    return found


REMOVED = {"params": {"size": None}}
ADDED = {"params": {"seed": {"type": "int", "default": 0}}}
BEHAVIOUR = {"params": {"size": {"type": "int", "default": 16}}}


@pytest.mark.parametrize(
    ("history", "version", "changes", "base", "accepted"),
    [
        # nothing published below: nothing to compare
        ((), "1.0.0", REMOVED, None, None),
        (("1.2.0",), "2.0.0", REMOVED, "1.2.0", None),
        (("1.2.0",), "1.3.0", REMOVED, "1.2.0", "2.0.0"),
        (("1.2.0",), "1.2.1", REMOVED, "1.2.0", "2.0.0"),
        (("1.2.0",), "1.3.0", ADDED, "1.2.0", None),
        (("1.2.0",), "1.2.1", ADDED, "1.2.0", "1.3.0"),
        (("1.2.0",), "1.2.1", BEHAVIOUR, "1.2.0", "1.3.0"),
        (("1.2.0",), "1.2.1", {}, "1.2.0", None),
        # 0.y.z: a breaking change needs a new minor, an addition any bump (cargo)
        (("0.2.3",), "0.3.0", REMOVED, "0.2.3", None),
        (("0.2.3",), "0.2.4", REMOVED, "0.2.3", "0.3.0"),
        (("0.2.3",), "0.2.4", ADDED, "0.2.3", None),
        (("0.0.3",), "0.0.4", REMOVED, "0.0.3", None),
        # pre-releases are checked as their release, against stable versions below it
        (("1.2.0",), "1.3.0-rc.1", REMOVED, "1.2.0", "2.0.0-rc.1"),
        (("1.2.0",), "2.0.0-rc.1", REMOVED, "1.2.0", None),
        (("1.2.0", "1.3.0-rc.1"), "1.3.0", ADDED, "1.2.0", None),
        (("1.2.0", "2.0.0-rc.1"), "2.0.0-rc.2", REMOVED, "1.2.0", None),
        # a backport compares with the versions below it only
        (("1.2.3", "1.3.0"), "1.2.4", {}, "1.2.3", None),
        (("1.2.3", "1.3.0"), "1.2.4", ADDED, "1.2.3", "1.3.0"),
        # yanked versions are no base
        (("1.2.0", "1.3.0"), "1.3.1", REMOVED, "1.3.0", "2.0.0"),
        (("1.2.0", "1.3.0 yanked"), "1.3.1", {}, "1.2.0", None),
    ],
)
def test_the_bump_is_checked_against_the_base(
    history: tuple[str, ...], version: str, changes: dict[str, Any], base: str | None,
    accepted: str | None,
) -> None:  # fmt: skip
    verdict = check("vision/prep", manifest(version, **changes), published(*history))
    assert (verdict.base, verdict.accepted, verdict.ok) == (base, accepted, accepted is None)


def test_refusal_lines_name_each_breaking_change_and_the_version_to_use() -> None:
    changes = {"params": {"size": None}, "inputs": {"raw": {"type": "file"}}}
    verdict = check("vision/prep", manifest("1.3.0", **changes), published("1.2.0"))
    assert verdict.refusals() == [
        "vision/prep 1.3.0: input 'raw' type changed dir -> file (breaking): publish as 2.0.0",
        "vision/prep 1.3.0: param 'size' removed (breaking): publish as 2.0.0",
    ]


# --- property: an accepted version keeps everything its base had in the same major -------

PORT = st.fixed_dictionaries({"type": st.sampled_from(["file", "dir"]), "optional": st.booleans()})
PARAM = st.one_of(
    st.fixed_dictionaries({"type": st.sampled_from(["int", "str"]), "required": st.just(True)}),
    st.fixed_dictionaries(
        {"type": st.sampled_from(["int", "str"]), "default": st.sampled_from([0, 1, "a"])}
    ),
)
NAMES = st.sampled_from(["a", "b", "c", "d"])
INTERFACE = st.fixed_dictionaries(
    {
        "inputs": st.dictionaries(NAMES, PORT, max_size=3),
        "outputs": st.dictionaries(NAMES, PORT, max_size=3),
        "params": st.dictionaries(NAMES, PARAM, max_size=3),
    }
)
VERSION = st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(0, 3))


def _with(version: tuple[int, int, int], interface: dict[str, Any]) -> Manifest:
    return Manifest(
        name="t/m", version="{}.{}.{}".format(*version), command=["x"],
        interface=Interface.model_validate(interface),
    )  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(VERSION, VERSION, INTERFACE, INTERFACE)
def test_an_accepted_version_removes_nothing_within_its_major(
    base: tuple[int, int, int],
    new: tuple[int, int, int],
    old_i: dict[str, Any],
    new_i: dict[str, Any],
) -> None:
    if new <= base:
        return
    old_m, new_m = _with(base, old_i), _with(new, new_i)
    verdict = check("t/m", new_m, [Published(old_m.version, VersionStatus.active, old_m)])
    if not verdict.ok or verdict.made == Bump.major:
        return
    old, fresh = old_m.interface, new_m.interface
    for before, after in (
        (old.inputs, fresh.inputs),
        (old.outputs, fresh.outputs),
        (old.params, fresh.params),
    ):
        for name, spec in before.items():
            assert name in after and after[name].type == spec.type
    assert all(fresh.params[n].required <= old.params[n].required for n in old.params)
    assert all(not p.required for n, p in fresh.params.items() if n not in old.params)


def test_a_version_already_published_is_left_to_the_server() -> None:
    verdict = check("vision/prep", manifest("1.2.1", **REMOVED), published("1.2.0", "1.2.1"))
    assert verdict.ok and verdict.base is None, "a replay or a conflict: the server says which"


def test_package_changes_name_each_added_removed_and_upgraded_package() -> None:
    old = EnvironmentPublic(
        sha256="a" * 64, python="3.11", packages={"numpy": "1.26.0", "six": "1"}
    )
    new = EnvironmentPublic(
        sha256="b" * 64, python="3.11", packages={"numpy": "2.0.0", "rich": "13"}
    )
    assert package_changes(old, new) == [
        ("numpy", "1.26.0", "2.0.0"),
        ("rich", None, "13"),
        ("six", "1", None),
    ]
    assert package_changes(None, None) == []
