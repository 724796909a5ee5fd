"""The digits example, end to end: a registry, three modules, an 18-variant sweep, twice.

Run it from the repository root, after ``pip install -e '.[example]'`` (``make demo`` does both)::

    python examples/digits/run_demo.py [--jobs N]

What it does, each step printed with the ``modreg`` command it runs:

1. starts ``modreg server`` on SQLite in ``.modreg-demo/registry`` on a free loopback port;
2. creates the team ``vision`` with the admin token, and a publish token for it;
3. turns ``modules/*`` into three git repos, one commit per version, and publishes each
   version (``vision/prep`` 1.0.0, 1.1.0, 2.0.0; ``vision/augment`` and ``vision/train`` 1.0.0);
4. runs ``pipeline.yaml``: 3 prep versions x 2 noise levels x 3 models = 18 runs, which share
   their common steps, so 3 + 6 + 18 = 27 steps execute instead of 54;
5. prints the comparison, sorted by test accuracy;
6. runs the sweep again: every step is reused, nothing executes;
7. stops the server (always, also on an error or Ctrl-C) and says what to try next.

Everything lives in the work folder (``.modreg-demo/`` in the current directory, or
``$MODREG_DEMO_DIR``), which is reset at the start, so running the demo twice is safe. The
engine's local state and caches go there too (XDG folders), never to your home folder.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TEAM = "vision"
STARTUP_SECONDS = 60
RUN_SECONDS = 900
DEFAULT_WORK = ".modreg-demo"
MARKER = ".modreg-demo-folder"
VERSION = re.compile(r"\d+\.\d+\.\d+")
COMMIT_DATE = "2024-06-{day:02d}T12:00:00+00:00"  # fixed dates: same commits on every run


class DemoError(Exception):
    """A step of the demo failed; the message says which and why."""


def section(title: str) -> None:
    print(f"\n==> {title}", flush=True)


def modreg_executable() -> str:
    """The ``modreg`` script beside this Python (a venv), else the one on PATH."""
    beside = Path(sys.executable).parent / "modreg"
    found = str(beside) if beside.exists() else shutil.which("modreg")
    if not found:
        raise DemoError("`modreg` is not installed: run `pip install -e '.[example]'` first")
    return found


def check_example_dependencies() -> None:
    """What the demo itself needs: git. The steps' scikit-learn and numpy come in their
    modules' environments, which the first run builds with uv."""
    if shutil.which("git") is None:
        raise DemoError("git is not installed; the example makes git repos for its modules")


def uv_cache_dir() -> Path:
    """The folder uv caches packages in for this user, as uv itself finds it."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "uv"


class Demo:
    """The work folder, the environment every command gets, and the running server."""

    def __init__(self, work: Path, jobs: int) -> None:
        self.work = work
        self.jobs = jobs
        self.modreg = modreg_executable()
        self.server: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.env = self._base_env()

    def _base_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MODREG_")}
        # `modreg` (also in env.sh) is this install's; the modules' steps run in their own
        # environments (scikit-learn, numpy), which the first run builds with uv
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        # uv keeps downloading into the cache it always uses, so a second demo, or your own
        # projects, reuse the packages; only modreg's own state moves into the work folder
        env.setdefault("UV_CACHE_DIR", str(uv_cache_dir()))
        for name in ("CONFIG", "CACHE", "STATE", "DATA"):
            env[f"XDG_{name}_HOME"] = str(self.work / "home" / name.lower())
        if not sys.stdout.isatty():  # tables printed to a log or CI: wide enough for compare
            env.setdefault("COLUMNS", "150")
        if "DIGITS_EXAMPLE_COUNTER" in os.environ:  # the example's test counts executions
            env["DIGITS_EXAMPLE_COUNTER"] = os.environ["DIGITS_EXAMPLE_COUNTER"]
        return env

    def shown(self, path: Path) -> str:
        try:
            return str(path.relative_to(Path.cwd()))
        except ValueError:
            return str(path)

    def cli(
        self, *args: str, token: str | None = None, quiet: bool = False, capture: bool = True
    ) -> str:
        """Run ``modreg ARGS``; returns its stdout, or prints it when not ``capture``.

        Its stderr (warnings, progress of a run) goes straight to the terminal, unless quiet.
        Fails with the command's own error line.
        """
        if not quiet:
            print("$ modreg " + " ".join(args), flush=True)
        env = dict(self.env, MODREG_URL=self.url)
        if token:
            env["MODREG_TOKEN"] = token
        try:
            done = subprocess.run(
                [self.modreg, *args],
                env=env,
                stdout=subprocess.PIPE if capture else None,
                stderr=subprocess.PIPE if quiet else None,
                text=True,
                timeout=RUN_SECONDS,
            )
        except subprocess.TimeoutExpired as exc:
            raise DemoError(f"`modreg {' '.join(args)}` took over {RUN_SECONDS}s") from exc
        if done.returncode != 0:
            raise DemoError(_failure_line(args, done))
        return done.stdout or ""


def _failure_line(args: tuple[str, ...], done: subprocess.CompletedProcess[str]) -> str:
    lines = (done.stderr or "").strip().splitlines()
    reason = lines[-1] if lines else "see its message above"
    return f"`modreg {' '.join(args)}` failed (exit {done.returncode}): {reason}"


# --- the work folder and the server -------------------------------------------------------


def stop_leftover_server(work: Path) -> None:
    """Stop a server an interrupted earlier demo left behind (only if it is that server)."""
    pid_file = work / "server.pid"
    try:
        pid = int(pid_file.read_text())
    except (OSError, ValueError):
        return
    command = subprocess.run(
        ["ps", "-p", str(pid), "-o", "command="], capture_output=True, text=True
    ).stdout
    if "modreg" in command and str(work / "registry") in command:
        os.kill(pid, signal.SIGTERM)
        _wait_gone(pid)


def _wait_gone(pid: int, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def reset_work_folder(work: Path) -> None:
    """Empty the work folder, refusing to delete a folder an earlier demo did not make."""
    ours = work.name == DEFAULT_WORK or (work / MARKER).exists()
    if work.exists() and any(work.iterdir()) and not ours:
        raise DemoError(f"{work} is not empty and not a demo folder: choose another one")
    stop_leftover_server(work)
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    (work / MARKER).write_text("made by examples/digits/run_demo.py; deleted by its next run\n")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_server(demo: Demo) -> str:
    """Start ``modreg server`` and wait for its health endpoint; returns the admin token."""
    data, port = demo.work / "registry", free_port()
    demo.url = f"http://127.0.0.1:{port}"
    print(f"$ modreg server --data {demo.shown(data)} --port {port} &", flush=True)
    log = open(demo.work / "server.log", "wb")  # the server's, once started
    demo.server = subprocess.Popen(
        [demo.modreg, "server", "--data", str(data), "--port", str(port)],
        env=demo.env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    (demo.work / "server.pid").write_text(str(demo.server.pid))
    wait_for_health(demo)
    print(f"registry up at {demo.url} (log: {demo.shown(demo.work / 'server.log')})")
    return (data / "admin.token").read_text().strip()


def wait_for_health(demo: Demo) -> None:
    assert demo.server is not None
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if demo.server.poll() is not None:
            tail = (demo.work / "server.log").read_text(errors="replace")[-2000:]
            raise DemoError(f"the server exited with {demo.server.returncode}:\n{tail}")
        try:
            with urllib.request.urlopen(f"{demo.url}/api/v1/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise DemoError(f"the server did not answer on {demo.url} within {STARTUP_SECONDS}s")


def stop_server(demo: Demo) -> None:
    if demo.server is None:
        return
    if demo.server.poll() is None:
        demo.server.terminate()
        try:
            demo.server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            demo.server.kill()
            demo.server.wait()
    (demo.work / "server.pid").unlink(missing_ok=True)
    print(f"server stopped (its data stays in {demo.shown(demo.work / 'registry')})")


# --- team, token, git repos, publishing ---------------------------------------------------


def create_team_and_token(demo: Demo, admin_token: str) -> str:
    """Team ``vision`` (an existing one is fine) and a publish token for it."""
    print(f"$ modreg team create {TEAM}")
    try:
        print(demo.cli("team", "create", TEAM, token=admin_token, quiet=True), end="")
    except DemoError as exc:
        if "exist" not in str(exc):
            raise
        print(f"team {TEAM} exists already")
    created = json.loads(
        demo.cli(
            "token", "create", "--team", TEAM, "--scope", "publish", "--json", token=admin_token
        )
    )
    print(f"publish token for team {created['team']} created (kept in the environment)")
    return str(created["token"])


def version_folders(module: Path) -> list[Path]:
    """``modules/<name>/<X.Y.Z>/`` folders, oldest version first."""
    folders = [f for f in module.iterdir() if f.is_dir() and VERSION.fullmatch(f.name)]
    return sorted(folders, key=lambda f: tuple(int(part) for part in f.name.split(".")))


def git(repo: Path, *args: str, day: int = 1) -> None:
    date = COMMIT_DATE.format(day=day)
    env = dict(os.environ, GIT_AUTHOR_DATE=date, GIT_COMMITTER_DATE=date)
    identity = ["-c", "user.name=modreg demo", "-c", "user.email=demo@modreg.invalid"]
    done = subprocess.run(
        ["git", *identity, "-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false", *args],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise DemoError(f"`git {' '.join(args)}` in {repo} failed: {done.stderr.strip()}")


def commit_version(repo: Path, source: Path, day: int) -> None:
    """Replace the repo's files by ``source``'s, and commit and tag them as that version."""
    for old in repo.iterdir():
        if old.is_dir() and old.name != ".git":
            shutil.rmtree(old)
        elif not old.is_dir():
            old.unlink()
    shutil.copytree(source, repo, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "-m", f"{repo.name} {source.name}", day=day)
    git(repo, "tag", f"v{source.name}")


def publish_modules(demo: Demo, token: str) -> list[dict[str, Any]]:
    """One git repo per module, one commit per version, each published from its commit."""
    published = []
    for module in sorted(path for path in (HERE / "modules").iterdir() if path.is_dir()):
        repo = demo.work / "repos" / module.name
        repo.mkdir(parents=True)
        git(repo, "init", "--quiet")
        for day, version in enumerate(version_folders(module), start=1):
            commit_version(repo, version, day)
            out = demo.cli("publish", demo.shown(repo), "--skip-existing", "--json", token=token)
            result = json.loads(out)
            print(f"   {result['module']}@{result['version']}  commit {result['commit'][:12]}")
            published.append(result)
    return published


# --- the sweep ------------------------------------------------------------------------------


def step_counts(sweep: dict[str, Any]) -> dict[str, int]:
    """Executions counted once per fingerprint: variants share a step's one execution."""
    executed, slots = set(), 0
    for run in sweep["runs"]:
        for step in run["steps"].values():
            slots += 1
            if step["status"] == "executed":
                executed.add(step["fingerprint"])
    failed = [run["run"] for run in sweep["runs"] if run["status"] != "succeeded"]
    return {
        "runs": len(sweep["runs"]),
        "steps": slots,
        "executed": len(executed),
        "reused": slots - len(executed),
        "failed": len(failed),
    }


def run_sweep(demo: Demo, pipeline: Path, token: str) -> dict[str, Any]:
    started = time.monotonic()
    sweep = json.loads(
        demo.cli("run", demo.shown(pipeline), "--jobs", str(demo.jobs), "--json", token=token)
    )
    counts = step_counts(sweep)
    print(
        f"sweep {sweep['sweep']}: {counts['runs']} runs, {counts['steps']} steps in all: "
        f"{counts['executed']} executed, {counts['reused']} shared or reused "
        f"({time.monotonic() - started:.1f}s)"
    )
    if counts["failed"]:
        raise DemoError(f"{counts['failed']} runs of sweep {sweep['sweep']} failed")
    return {"sweep": sweep["sweep"], "status": sweep["status"], **counts}


def compare(demo: Demo, sweep_id: str, token: str) -> int:
    """Print the comparison table; returns how many rows it has."""
    demo.cli("runs", "compare", sweep_id, "--sort", "train.accuracy", token=token, capture=False)
    rows = json.loads(demo.cli("runs", "compare", sweep_id, "--json", token=token, quiet=True))
    return len(rows)


# --- the whole demo -------------------------------------------------------------------------


def write_env_file(demo: Demo, token: str) -> Path:
    """``source`` it to use the demo's registry, token and state from your shell."""
    names = ("PATH", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME",
             "UV_CACHE_DIR")  # fmt: skip
    lines = [f"export {name}='{demo.env[name]}'" for name in names]
    lines += [f"export MODREG_URL='{demo.url}'", f"export MODREG_TOKEN='{token}'"]
    path = demo.work / "env.sh"
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    return path


def print_next_steps(demo: Demo, sweep_id: str) -> None:
    section("What to try next (the server is stopped; the first two lines bring it back)")
    work, port = demo.shown(demo.work), demo.url.rsplit(":", 1)[1]
    steps = [
        ("the demo's registry URL, token and state, in your shell", f"source {work}/env.sh"),
        ("the same registry again", f"modreg server --data {work}/registry --port {port} &"),
        ("the three versions of prep", "modreg versions vision/prep"),
        ("which version a range picks, and why", "modreg show 'vision/prep@^1'"),
        ("recent runs, with their sweep and variant", "modreg runs list"),
        ("the comparison as CSV, and as a chart", f"modreg runs compare {sweep_id} --csv"),
        ("", f"modreg runs compare {sweep_id} --sort train.accuracy --plot accuracy.png"),
        (
            "another noise level: 3 augment + 9 train steps execute, the rest is reused",
            f"modreg run {work}/pipeline.yaml --vary 'augment.params.noise=0.3,0.6'",
        ),
        (
            f"a new version: edit {work}/repos/train (version = 1.0.1), commit, then",
            f"modreg publish {work}/repos/train",
        ),
        ("", f"modreg lock {work}/pipeline.yaml --upgrade train"),
        ("", f"modreg run {work}/pipeline.yaml     # only the 18 train steps execute"),
    ]
    for comment, command in steps:
        print(f"  # {comment}\n  {command}" if comment else f"  {command}")


def run_demo(demo: Demo) -> dict[str, Any]:
    section(f"1. A registry on SQLite in {demo.shown(demo.work / 'registry')}")
    admin_token = start_server(demo)
    section(f"2. Team {TEAM!r} and a publish token (with the admin token)")
    token = create_team_and_token(demo, admin_token)
    write_env_file(demo, token)
    section("3. Three modules, each its own git repo; every version published from its commit")
    publish_modules(demo, token)
    demo.cli("versions", "vision/prep", token=token, capture=False)
    pipeline = demo.work / "pipeline.yaml"
    shutil.copy(HERE / "pipeline.yaml", pipeline)
    section("4. The sweep: 3 prep versions x 2 noise levels x 3 models = 18 runs")
    first = run_sweep(demo, pipeline, token)
    print("pipeline.lock pins every range of the sweep to one exact version and commit:")
    demo.cli("lock", demo.shown(pipeline), token=token, capture=False)
    print("The modules' environments, built once on this machine by the first run and shared:")
    demo.cli("envs", "list", capture=False)
    section("5. The comparison, best test accuracy first")
    rows = compare(demo, first["sweep"], token)
    section("6. The same sweep again: every step is reused, nothing executes")
    second = run_sweep(demo, pipeline, token)
    summary = {"sweeps": [first, second], "compare_rows": rows}
    (demo.work / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2, help="steps run in parallel [2]")
    args = parser.parse_args(argv)
    work = Path(os.environ.get("MODREG_DEMO_DIR") or DEFAULT_WORK).resolve()
    started = time.monotonic()
    try:
        check_example_dependencies()
        reset_work_folder(work)
        demo = Demo(work, args.jobs)
        try:
            summary = run_demo(demo)
        finally:
            section("7. Stopping the server")
            stop_server(demo)
    except DemoError as exc:
        print(f"\ndemo failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    print_next_steps(demo, summary["sweeps"][0]["sweep"])
    print(f"\nThe demo took {time.monotonic() - started:.0f}s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
