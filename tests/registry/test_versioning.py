"""Ranges, references and version selection: tables plus property tests."""

from __future__ import annotations

import pytest
import semver
from hypothesis import given
from hypothesis import strategies as st

from modreg.registry.errors import (
    InvalidNameError,
    InvalidRangeError,
    InvalidVersionError,
    UnsatisfiableRangeError,
)
from modreg.registry.names import check_module_name
from modreg.registry.schemas import VersionStatus
from modreg.registry.versioning import (
    Candidate,
    canonical_version,
    highest_stable,
    parse_range,
    parse_ref,
    select_version,
)

ACTIVE = VersionStatus.active


@pytest.mark.parametrize(
    ("range_text", "version", "allowed"),
    [
        ("1.2.0", "1.2.0", True),
        ("1.2.0", "1.2.1", False),
        ("=1.2.0", "1.2.0", True),
        ("1.2", "1.2.9", True),
        ("1.2", "1.3.0", False),
        ("1.x", "1.9.0", True),
        ("^1.2", "1.9.9", True),
        ("^1.2", "2.0.0", False),
        ("^1.2", "1.1.9", False),
        ("^1.2.3", "1.2.3", True),
        ("^0.2.3", "0.2.9", True),
        ("^0.2.3", "0.3.0", False),
        ("^0.0.3", "0.0.3", True),
        ("^0.0.3", "0.0.4", False),
        ("^0.0", "0.0.9", True),
        ("^0.0", "0.1.0", False),
        ("~1.2.3", "1.2.9", True),
        ("~1.2.3", "1.3.0", False),
        ("~1.2", "1.2.0", True),
        ("~1", "1.9.0", True),
        ("~1", "2.0.0", False),
        (">=1.2, <2", "1.5.0", True),
        (">=1.2, <2", "2.0.0", False),
        (">=1.2, <2", "1.1.0", False),
        (">1.2", "1.2.9", False),
        (">1.2", "1.3.0", True),
        ("<=1.2", "1.2.9", True),
        ("<=1.2", "1.3.0", False),
        ("<1.2", "1.1.9", True),
        ("<1.2", "1.2.0", False),
        ("*", "5.0.0", True),
        ("*", "2.1.1-beta.1", False),
        (">=1.0.0-rc.1", "2.1.1-beta.1", False),
        (">=1.0.0-rc.1", "1.0.0-rc.2", True),
        (">=1.0.0-rc.1", "1.0.0", True),
        ("^1.3.0-rc.0", "1.3.0-rc.1", True),
        ("^1.3.0-rc.0", "1.3.0", True),
        ("^1.3.0-rc.0", "1.4.0-rc.1", False),
        ("^1.2", "2.0.0-rc.1", False),
        ("1.2.3 - 2.3", "2.3.9", True),
        ("1.2.3 - 2.3", "2.4.0", False),
        ("1.2.3 - 2.3", "1.2.2", False),
        ("^1.0 || ^3.0", "3.1.0", True),
        ("^1.0 || ^3.0", "2.1.0", False),
    ],
)
def test_range_allows(range_text: str, version: str, allowed: bool) -> None:
    assert parse_range(range_text).allows(semver.Version.parse(version)) is allowed


@pytest.mark.parametrize("bad", ["^", "1.2.3.4", ">=1.2,", "abc", "^1.2, ", ">= 1..2", "1.2.3 -"])
def test_bad_ranges_are_named(bad: str) -> None:
    with pytest.raises(InvalidRangeError, match="invalid version range"):
        parse_range(bad)


FORMS = "ranges look like 1.2.0 (exact), ^1.2, ~1.2.3, 1.2.x, '>=1.2, <2', '1.0 - 1.4' or *"


@pytest.mark.parametrize(
    ("bad", "problem"),
    [
        ("banana", "cannot read 'banana'"),
        (">=1.2, banana", "cannot read 'banana'"),
        (">=1.2,", "empty comparator"),
        ("1.0 - two", "cannot read 'two'"),
    ],
)
def test_a_bad_range_says_which_forms_are_accepted(bad: str, problem: str) -> None:
    with pytest.raises(InvalidRangeError) as caught:
        parse_range(bad)
    assert str(caught.value) == f"invalid version range {bad!r}: {problem}; {FORMS}"


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("vision/prep", ("vision/prep", None)),
        ("vision/prep@^1.2", ("vision/prep", "^1.2")),
        ("vision/prep-robust@0.3.1", ("vision/prep-robust", "0.3.1")),
        ("a.b/c_d@>=1.2, <2", ("a.b/c_d", ">=1.2, <2")),
    ],
)
def test_parse_ref(ref: str, expected: tuple[str, str | None]) -> None:
    assert parse_ref(ref) == expected


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("Vision/prep", InvalidNameError),
        ("vision", InvalidNameError),
        ("vision/", InvalidNameError),
        ("vision/pre p", InvalidNameError),
        ("vision/" + "x" * 101, InvalidNameError),
        ("vision/prep@", InvalidRangeError),
        ("vision/prep@^", InvalidRangeError),
    ],
)
def test_bad_refs(name: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_ref(name)


def test_module_name_accepts_allowed_characters() -> None:
    check_module_name("team-1/name_2.x")


@pytest.mark.parametrize(
    "bad", ["1.0", "v1.0.0", "01.0.0", "1.0.0-", "", " 1.2.3", "1.0.0\n", "1.0.0 ", "1.0.0-rc.1\t"]
)
def test_versions_are_strict(bad: str) -> None:
    with pytest.raises(InvalidVersionError):
        canonical_version(bad)


def test_build_metadata_does_not_count() -> None:
    assert canonical_version("1.0.0+build.7") == "1.0.0"


def _cands(*specs: str) -> list[Candidate]:
    out = []
    for spec in specs:
        version, _, status = spec.partition(":")
        out.append(Candidate(version, VersionStatus(status or "active")))
    return out


@pytest.mark.parametrize(
    ("versions", "range_text", "default", "chosen", "warns"),
    [
        (["1.0.0", "1.2.0", "1.3.0", "2.0.0"], "^1.2", None, "1.3.0", False),
        (["1.2.0", "1.3.0:yanked"], "^1.2", None, "1.2.0", False),
        (["1.2.0", "1.3.0:deprecated"], "^1.2", None, "1.3.0", True),
        (["1.2.0", "1.3.0:yanked"], "1.3.0", None, "1.3.0", True),
        (["1.2.0", "1.3.0"], None, "1.2.0", "1.2.0", False),
        (["1.2.0", "1.3.0", "2.0.0-rc.1"], None, None, "1.3.0", False),
        (["1.2.0", "1.3.0:yanked"], None, "1.3.0", "1.2.0", True),
        (["1.3.0-rc.0", "1.3.0-rc.1", "1.2.0"], "^1.3.0-rc.0", None, "1.3.0-rc.1", False),
        (["1.0.0", "2.1.1-beta.1"], "*", None, "1.0.0", False),
        (["1.0.0", "2.1.1-beta.1"], ">=1.0.0-rc.1", None, "1.0.0", False),
    ],
)
def test_select_version(
    versions: list[str], range_text: str | None, default: str | None, chosen: str, warns: bool
) -> None:
    choice = select_version(_cands(*versions), range_text, default, name="vision/prep")
    assert choice.version == chosen
    assert bool(choice.warnings) is warns
    assert choice.reason


@pytest.mark.parametrize(
    ("versions", "range_text", "message"),
    [
        (["1.0.0"], "^2", "no version of vision/prep satisfies ^2; latest published: 1.0.0"),
        (["1.3.0:yanked"], "^1.2", "only yanked versions match: 1.3.0"),
        (["1.0.0"], "1.0.1", "vision/prep@1.0.1 is not published"),
        (["1.0.0-rc.1"], None, "vision/prep has no stable, unyanked version"),
    ],
)
def test_unsatisfiable(versions: list[str], range_text: str | None, message: str) -> None:
    with pytest.raises(UnsatisfiableRangeError, match=message.replace("^", r"\^")):
        select_version(_cands(*versions), range_text, None, name="vision/prep")


_versions = st.builds(
    lambda ma, mi, pa, pre: str(semver.Version(ma, mi, pa, pre)),
    st.integers(0, 3),
    st.integers(0, 3),
    st.integers(0, 3),
    st.sampled_from([None, None, None, "rc.0", "rc.1", "beta.1"]),
)
_statuses = st.sampled_from(list(VersionStatus))
_ranges = st.builds(
    lambda op, v: f"{op}{v}",
    st.sampled_from(["^", "~", ">=", "<", "<=", ">", ""]),
    _versions,
) | st.sampled_from(["*", "^1", "~2.1", ">=1.0, <3", "1.x"])


@given(st.dictionaries(_versions, _statuses, min_size=1, max_size=12), _ranges)
def test_choice_satisfies_and_is_highest(table: dict[str, VersionStatus], range_text: str) -> None:
    candidates = [Candidate(v, s) for v, s in table.items()]
    rng = parse_range(range_text)
    try:
        choice = select_version(candidates, range_text, None)
    except UnsatisfiableRangeError:
        if rng.exact is None:
            assert not any(
                rng.allows(semver.Version.parse(c.version))
                for c in candidates
                if c.status != VersionStatus.yanked
            )
        return
    chosen = semver.Version.parse(choice.version)
    assert rng.allows(chosen)
    if rng.exact is None:
        assert table[choice.version] != VersionStatus.yanked
        higher_active = [
            c
            for c in candidates
            if c.status == VersionStatus.active
            and rng.allows(semver.Version.parse(c.version))
            and semver.Version.parse(c.version) > chosen
        ]
        assert not higher_active


@given(st.dictionaries(_versions, _statuses, min_size=1, max_size=12))
def test_unranged_choice_is_stable_and_unyanked(table: dict[str, VersionStatus]) -> None:
    candidates = [Candidate(v, s) for v, s in table.items()]
    try:
        choice = select_version(candidates, None, None)
    except UnsatisfiableRangeError:
        assert highest_stable(candidates) is None, "a latest version that no bare ref can pick"
        return
    assert not semver.Version.parse(choice.version).prerelease
    assert table[choice.version] != VersionStatus.yanked
    assert highest_stable(candidates) == choice.version
