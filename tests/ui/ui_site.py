"""What the UI tests share: the data of their registries, screenshots, signing in.

``publish_modules`` publishes ``prep`` (1.0.0, 1.1.0, and 1.2.0 which is then yanked),
``train`` (with a README) and ``report`` through the real client; ``run_sweep`` runs a sweep
of ``prep -> train -> report`` over three learning rates through the real CLI: one variant's
``train`` fails, so its ``report`` is skipped, and ``prep`` runs once and is reused by the
other runs. ``Shots`` keeps screenshots of whole pages as test artifacts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine_env import EngineEnv

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]

STEP = """\
import json, os, sys
from pathlib import Path
args = {{k.lstrip("-"): v for k, v in zip(sys.argv[1::2], sys.argv[2::2])}}
{body}
"""
PREP = 'Path(args["out"]).write_text(Path(args["raw"]).read_text().upper())\nprint("prepared")'
TRAIN = """\
lr = float(args["lr"])
for epoch in range(60):
    print(f"epoch {epoch} lr {lr} loss {1 / (epoch + 1):.4f}")
if lr > 0.5:
    print(f"learning rate {lr} diverged", file=sys.stderr)
    sys.exit(3)
Path(args["model"]).write_text(Path(args["data"]).read_text() + f" lr={lr}")
metrics = {"accuracy": round(1 - abs(lr - 0.3), 3), "loss": round(lr / 10, 4)}
Path(os.environ["MODREG_METRICS"]).write_text(json.dumps(metrics))
"""
REPORT = 'Path(args["out"]).write_text("report of " + Path(args["model"]).read_text())'
README = "# train\n\nFits the model on the prepared data. Try lr between 0.1 and 0.5.\n"
PIPELINE = """\
name: ui-demo
steps:
  prep:
    uses: TEAM/prep@^1.0
    inputs: {raw: raw.txt}
  train:
    uses: TEAM/train@^1.0
    inputs: {data: prep.outputs.out}
  report:
    uses: TEAM/report@^1.0
    inputs: {model: train.outputs.model}
variants:
  train.params.lr: [0.1, 0.3, 0.9]
"""


@dataclass(frozen=True)
class Site:
    """The session's registry and what was published and run on it."""

    url: str
    env: EngineEnv
    sweep: dict[str, Any]  # ``modreg run --json`` of the sweep

    @property
    def team(self) -> str:
        return self.env.team

    def run_with(self, lr: float) -> dict[str, Any]:
        """The sweep's run whose variant had this learning rate."""
        return next(r for r in self.sweep["runs"] if r["variant"]["train.params.lr"] == lr)


@dataclass(frozen=True)
class PrivateSite:
    """A ``--private`` registry with two teams; ``alpha`` has a module and a run."""

    url: str
    alpha: str
    alpha_token: str
    beta_token: str
    run_id: str


def publish_modules(env: EngineEnv) -> None:
    remote = "https://github.com/example/prep.git"
    step = {"files": {"main.py": STEP.format(body=PREP)}, "inputs": {"raw": "file"}}
    env.module(
        "prep", "1.0.0", params={"size": {"type": "int", "default": 8}}, remote=remote, **step
    )
    params = {"size": {"type": "int", "default": 8}, "scale": {"type": "float", "default": 1.0}}
    env.module("prep", "1.1.0", params=params, **step)
    env.module("prep", "1.2.0", params=params, **step)
    files = {"main.py": STEP.format(body=TRAIN), "README.md": README}
    env.module(
        "train",
        "1.0.0",
        files=files,
        inputs={"data": "file"},
        outputs={"model": "file"},
        params={"lr": {"type": "float", "default": 0.1}},
    )
    env.module(
        "report", "1.0.0", files={"main.py": STEP.format(body=REPORT)}, inputs={"model": "file"}
    )
    with env.client() as client:
        client.yank(f"{env.team}/prep", "1.2.0", "normalises twice; use 1.1.0")


def run_sweep(env: EngineEnv) -> dict[str, Any]:
    pipeline = env.pipeline(PIPELINE)
    (pipeline.parent / "raw.txt").write_text("digits")
    result = env.run("run", pipeline, "--json", "--jobs", "2")
    assert result.exit_code == 1, result.output  # the lr=0.9 variant fails, by design
    return json.loads(result.stdout)


class Shots:
    """Screenshots of whole pages, kept under the pytest temp folder as test artifacts."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def __call__(self, page: Any, name: str) -> Path:
        path = self.folder / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path


def sign_in(page: Any, url: str, token: str) -> None:
    """Sign ``page``'s browser in with ``token`` through the sign-in form."""
    page.goto(f"{url}/signin")
    page.fill("#token", token)
    page.click("form.stack button[type=submit]")
    page.wait_for_load_state()
