"""``--set STEP.params.K=V`` and ``--vary AXIS=V1,V2``: reading assignments off the command line.

Values are YAML scalars (``0.1``, ``true``, ``text``; also ``1e-3``, which YAML 1.1 would
leave a string), so they reach the engine as typed values that it then checks against the
module's interface. A ``--vary`` value list is split on commas — except that a ``.uses``
axis keeps a version range's own commas (``vision/prep@>=1.2, <2,vision/prep-robust@0.3.1``
is two references): a piece without a ``/`` continues the reference before it.
"""

from __future__ import annotations

import re
from typing import Any

import click

FLOAT = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$")


def scalar(text: str) -> Any:
    """One value as YAML reads it (a float also for ``1e-3``)."""
    import yaml

    text = text.strip()
    if FLOAT.match(text):
        return float(text)
    try:
        return yaml.safe_load(text) if text else ""
    except yaml.YAMLError:
        return text


def _split(item: str, option: str, shape: str) -> tuple[str, str]:
    key, eq, raw = item.partition("=")
    if not eq or not key.strip():
        raise click.BadParameter(f"expected {shape}, got {item!r}", param_hint=option)
    return key.strip(), raw


def parse_sets(items: tuple[str, ...]) -> dict[str, Any]:
    """``--set step.params.k=v`` options, as ``{"step.params.k": value}``."""
    return {
        key: scalar(raw)
        for key, raw in (_split(item, "--set", "STEP.params.NAME=VALUE") for item in items)
    }


def _references(raw: str) -> list[str]:
    refs: list[str] = []
    for piece in (part.strip() for part in raw.split(",")):
        if refs and piece and "/" not in piece:
            refs[-1] = f"{refs[-1]}, {piece}"
        elif piece:
            refs.append(piece)
    return refs


def _values(raw: str) -> list[Any]:
    """``0.1,0.01`` -> [0.1, 0.01]; a YAML flow list keeps ``[1,2],[3]`` together."""
    import yaml

    try:
        parsed = yaml.safe_load(f"[{raw}]")
    except yaml.YAMLError:
        parsed = None
    if isinstance(parsed, list) and all(not isinstance(v, str) or "," not in v for v in parsed):
        return [float(v) if isinstance(v, str) and FLOAT.match(v) else v for v in parsed]
    return [scalar(piece) for piece in raw.split(",") if piece.strip()]


def parse_vary(items: tuple[str, ...]) -> dict[str, list[Any]]:
    """``--vary`` options, as ``{axis: [values]}``; an axis given twice is a usage error."""
    axes: dict[str, list[Any]] = {}
    for item in items:
        axis, raw = _split(item, "--vary", "STEP.uses=A,B or STEP.params.NAME=V1,V2")
        if axis in axes:
            raise click.BadParameter(f"axis {axis!r} given twice", param_hint="--vary")
        axes[axis] = _references(raw) if axis.endswith(".uses") else _values(raw)
    return axes
