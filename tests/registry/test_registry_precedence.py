"""The fast precedence key used by resolution orders versions exactly as semver does."""

from __future__ import annotations

import semver
from hypothesis import given
from hypothesis import strategies as st

from modreg.registry.versioning import parse_version, precedence

identifier = st.one_of(
    st.integers(min_value=0, max_value=20).map(str),
    st.text(alphabet="abrc-", min_size=1, max_size=4).filter(lambda s: not s.isdigit()),
)
versions = st.builds(
    lambda major, minor, patch, pre: (
        f"{major}.{minor}.{patch}" + (f"-{'.'.join(pre)}" if pre else "")
    ),
    st.integers(0, 3),
    st.integers(0, 3),
    st.integers(0, 3),
    st.lists(identifier, max_size=3),
)


@given(versions, versions)
def test_precedence_agrees_with_semver(left: str, right: str) -> None:
    a, b = semver.Version.parse(left), semver.Version.parse(right)
    expected = a.compare(b)
    key_a, key_b = precedence(parse_version(left)), precedence(parse_version(right))
    assert (key_a > key_b) - (key_a < key_b) == expected
    assert precedence(a) == key_a
