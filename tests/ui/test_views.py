"""What the pages draw, without a browser: commit links, uses lines, the run graph, the sweep
table's order, and the changes between two versions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from modreg.registry.schemas import (
    EnvironmentPublic,
    Interface,
    Manifest,
    Param,
    Port,
    RunPublic,
    StepRunRecord,
    VersionPublic,
)
from modreg.registry.ui.changes import Change, changes_since
from modreg.registry.ui.views import commit_url, run_graph, sweep_table, tail, uses_line

SHA = "a" * 40
NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("remote", "expected"),
    [
        ("https://github.com/acme/prep.git", f"https://github.com/acme/prep/commit/{SHA}"),
        ("git@github.com:acme/prep.git", f"https://github.com/acme/prep/commit/{SHA}"),
        (
            "ssh://git@gitlab.example.com:2222/ml/prep",
            f"https://gitlab.example.com/ml/prep/-/commit/{SHA}",
        ),
        ("https://user@codeberg.org/acme/prep/", f"https://codeberg.org/acme/prep/commit/{SHA}"),
        ("/srv/git/prep.git", None),
        ("file:///srv/git/prep.git", None),
        (None, None),
    ],
)
def test_commit_url(remote: str | None, expected: str | None) -> None:
    assert commit_url(remote, SHA) == expected


def _version(number: str, interface: Interface, packages: dict[str, str] | None = None) -> Any:
    manifest = Manifest(name="t/m", version=number, command=["x"], interface=interface)
    environment = (
        EnvironmentPublic(sha256="1" * 64, python="3.11", packages=packages) if packages else None
    )
    return VersionPublic(
        module="t/m",
        version=number,
        status="active",
        commit=SHA,
        tree_sha=SHA,
        path="",
        sha256="0" * 64,
        size=1,
        manifest=manifest,
        published_at=NOW,
        environment=environment,
    )


@pytest.mark.parametrize(
    ("number", "line"), [("1.2.0", "uses: t/m@^1.2.0"), ("2.0.0-rc.1", "uses: t/m@2.0.0-rc.1")]
)
def test_uses_line(number: str, line: str) -> None:
    assert uses_line(_version(number, Interface())) == line


def test_changes_since_lists_interface_and_environment_changes() -> None:
    before = Interface(
        inputs={"raw": Port(type="dir")},
        params={"lr": Param(type="float", default=0.1), "old": Param(type="int", default=1)},
    )
    after = Interface(
        inputs={"raw": Port(type="dir", optional=True)},
        params={"lr": Param(type="float", required=True), "new": Param(type="str", default="a")},
    )
    changes = changes_since(
        _version("1.0.0", before, {"numpy": "1.26.4"}),
        _version("2.0.0", after, {"numpy": "2.0.1", "scipy": "1.13.0"}),
    )
    assert changes.previous == "1.0.0"
    assert changes.interface == [
        Change("inputs.raw", "dir", "dir (optional)"),
        Change("params.lr", "float, default 0.1", "float, required"),
        Change("params.new", None, "str, default 'a'"),
        Change("params.old", "int, default 1", None),
    ]
    assert [(c.what, c.kind) for c in changes.environment] == [
        ("numpy", "changed"),
        ("scipy", "added"),
    ]
    assert changes_since(None, _version("1.0.0", before)).previous is None


def _run(run_id: str, variant: dict[str, Any], steps: dict[str, dict[str, Any]]) -> RunPublic:
    spec = {
        "steps": {
            "prep": {"uses": "t/prep"},
            "train": {"uses": "t/train", "inputs": {"data": "prep.outputs.out"}},
            "report": {"uses": "t/r", "inputs": {"model": "train.outputs.model"}},
        }
    }
    records = {
        name: StepRunRecord(module=f"t/{name}", version="1.0.0", **body)
        for name, body in steps.items()
    }
    return RunPublic(
        id=run_id,
        team="t",
        pipeline="p",
        variant=variant,
        status="succeeded",
        spec=spec,
        created_at=NOW,
        steps=records,
    )


def test_run_graph_has_a_node_per_step_and_an_edge_per_output_read() -> None:
    run = _run("r-1", {}, {"prep": {"status": "reused"}, "train": {"status": "failed"}})
    graph = run_graph(run)
    assert [(n.id, n.status) for n in graph.nodes] == [
        ("prep", "reused"),
        ("train", "failed"),
        ("report", "pending"),
    ]
    assert graph.edges == [("prep", "train"), ("train", "report")]


def test_sweep_table_sorts_by_any_column_missing_values_last() -> None:
    def trained(run_id: str, lr: float, metrics: dict[str, Any] | None) -> RunPublic:
        status = "executed" if metrics is not None else "failed"
        step = {"train": {"status": status, "metrics": metrics or {}}}
        return _run(run_id, {"train.params.lr": lr}, step)

    runs = [
        trained("r-1", 0.1, {"acc": 0.8}),
        trained("r-2", 0.9, None),
        trained("r-3", 0.3, {"acc": 1}),
    ]
    table = sweep_table(runs, "train.acc", descending=True)
    assert table.columns == ["run", "status", "train.params.lr", "train.acc"]
    assert [row["run"] for row in table.rows] == ["r-3", "r-1", "r-2"]
    ascending = sweep_table(runs, "train.acc", descending=False)
    assert [row["run"] for row in ascending.rows] == ["r-1", "r-3", "r-2"]
    assert [row["run"] for row in sweep_table(runs, "nonsense", True).rows] == ["r-1", "r-2", "r-3"]


def test_tail_keeps_the_last_lines() -> None:
    assert tail("a\nb\nc", 2) == ("b\nc", True)
    assert tail("a\nb", 2) == ("a\nb", False)
