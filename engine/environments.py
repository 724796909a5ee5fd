"""Module environments: the digest that keys each one, and the venvs built for them.

**Digest.** A module version with an environment (``LockedModule.environment``: the sha256
of its hash-pinned environment lock and its ``python`` range) has the digest
``sha256(lock sha256, interpreter implementation, major.minor, platform)``. A module without
one runs in the engine's own interpreter, so its digest covers that interpreter and every
distribution installed beside it (sorted ``name==version``, read once per process): upgrading
scikit-learn next to modreg re-executes those steps instead of serving a stale result. The
digest is part of every step fingerprint (``fingerprint``), and it names the venv.

**The interpreter identity and its seam.** The identity is an ``Interpreter``
(implementation, major.minor, platform) handed in as ``Workspace.interpreter``, by default the
engine's own. The CLI sets it from ``MODREG_INTERPRETER=IMPLEMENTATION-MAJOR.MINOR-PLATFORM``
(e.g. ``cpython-3.12-linux-x86_64``), so a test can stand for another interpreter on a
machine that has one. The seam changes what digests say, never which interpreter runs.
A venv is built from the engine's interpreter when the identity satisfies the module's
``python`` range (3.11 or later when it has none); otherwise uv picks a local interpreter for
the range and the digest holds the range in place of a version.

**Layout** (``STATE`` is the engine's state folder)::

    STATE/envs/<digest>/venv/        the venv
    STATE/envs/<digest>/ready.json   the completion marker, written last; its time = last use
    STATE/envs/<digest>/users/<key>  one file per module version that used it (its name)
    STATE/env-locks/<sha256>.txt     environment locks fetched from the registry (--offline)
    STATE/locks/env-<digest>.lock    flock: exclusive while building or pruning, shared in use

**Materialising** (``Environments.activate``, on the executor's side, where the job runs):
take the digest's flock shared; without the marker, take it exclusive (one builder per digest
across processes), look again, remove any leftover of a builder that died, fetch the lock
blob (kept for offline runs), ``uv venv --python …`` then ``uv pip sync --require-hashes
--python <venv>/bin/python <lock>`` with the state folder as working directory (no stray
``.python-version`` or ``uv.toml`` steers uv), ``UV_PYTHON_DOWNLOADS=never`` and the caller's
``UV_*``, TLS, ``PATH`` and ``HOME`` settings; then write the marker and go back to shared
for the job's lifetime, so ``modreg envs prune`` never removes an environment in use. uv's
output goes to the step's log; a failed build removes what it made and fails the step.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import IO, Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet

from modreg.engine.digests import canonical_json, sha256_bytes
from modreg.engine.errors import EnvironmentBuildError
from modreg.engine.processes import death_signal
from modreg.engine.protocol import RegistryProtocol
from modreg.engine.state import StateDir, write_json_atomic

DEFAULT_RANGE = ">=3.11"  # what a module's environment gets when it names no python range
UV_PASSED = frozenset({"PATH", "HOME", "XDG_CACHE_HOME", "SSL_CERT_FILE", "SSL_CERT_DIR"})
INTERPRETER = re.compile(r"^([A-Za-z0-9_.]+)-(\d+\.\d+)-(\S+)$")
DIGEST = re.compile(r"^[0-9a-f]{64}$")
MARKER = "ready.json"


@dataclass(frozen=True)
class Interpreter:
    """What identifies an interpreter for digests: ``cpython``, ``3.11``, ``linux-x86_64``."""

    implementation: str
    version: str
    platform: str

    @classmethod
    def current(cls) -> Interpreter:
        """The interpreter the engine runs on."""
        major, minor = sys.version_info[:2]
        return cls(sys.implementation.name, f"{major}.{minor}", sysconfig.get_platform())

    @classmethod
    def parse(cls, text: str) -> Interpreter:
        """``cpython-3.12-linux-x86_64`` (the ``MODREG_INTERPRETER`` seam); ValueError else."""
        match = INTERPRETER.match(text.strip())
        if match is None:
            raise ValueError(
                f"{text!r} is not IMPLEMENTATION-MAJOR.MINOR-PLATFORM "
                "(e.g. cpython-3.12-linux-x86_64)"
            )
        return cls(*match.groups())

    def __str__(self) -> str:
        return f"{self.implementation}-{self.version}-{self.platform}"

    def satisfies(self, python_range: str | None) -> bool:
        """Whether this major.minor is in the range (3.11 or later when there is none)."""
        try:
            return SpecifierSet(python_range or DEFAULT_RANGE).contains(self.version)
        except InvalidSpecifier:
            return False


@dataclass(frozen=True)
class StepEnvironment:
    """Where a step's module runs: its digest and, for a module environment, how to build it.

    ``lock_sha256`` None: the engine's own interpreter (nothing to build). ``python`` is what
    ``uv venv --python`` gets: the engine's interpreter, or the module's range.
    """

    digest: str
    module: str  # team/name@version, for `modreg envs list`
    lock_sha256: str | None = None
    python_range: str | None = None
    python: str = ""

    @property
    def builds(self) -> bool:
        return self.lock_sha256 is not None


@functools.cache
def installed_distributions() -> tuple[str, ...]:
    """Sorted ``name==version`` of every distribution the engine's interpreter can import
    (the first of a name on ``sys.path``, as import finds it); read once per process, from
    the names of the ``*.dist-info`` / ``*.egg-info`` folders (a few ms, where parsing each
    one's metadata takes ~100 ms), their metadata only when a name holds no version."""
    seen: dict[str, str] = {}
    for entry in sys.path:
        for name, version in _distributions_in(Path(entry or ".")):
            seen.setdefault(name, version)
    return tuple(sorted(f"{name}=={version}" for name, version in seen.items()))


def _distributions_in(folder: Path) -> Iterator[tuple[str, str]]:
    try:
        entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
    except OSError:  # not a folder (a zip, a missing entry)
        return
    for entry in entries:
        stem, dot, kind = entry.name.rpartition(".")
        if not dot or kind not in ("dist-info", "egg-info"):
            continue
        name, _, version = stem.partition("-")
        version = version.partition("-")[0]  # an egg's name-version-pyX.Y
        if not version:
            version = metadata.Distribution.at(entry.path).version or ""
        yield re.sub(r"[-_.]+", "-", name).lower(), version


def step_environment(
    module: str, lock_sha256: str | None, python_range: str | None, interpreter: Interpreter
) -> StepEnvironment:
    """The environment of one module version (see the module docstring for the digest)."""
    if lock_sha256 is None:
        identity = [interpreter.implementation, interpreter.version, interpreter.platform]
        parts: dict[str, Any] = {"interpreter": identity, "installed": installed_distributions()}
        return StepEnvironment(sha256_bytes(canonical_json(parts)), module)
    if interpreter.satisfies(python_range):
        identity = [interpreter.implementation, interpreter.version, interpreter.platform]
        python = getattr(sys, "_base_executable", "") or sys.executable
    else:
        identity = ["range", python_range or DEFAULT_RANGE, interpreter.platform]
        python = python_range or DEFAULT_RANGE
    digest = sha256_bytes(canonical_json({"lock": lock_sha256, "interpreter": identity}))
    return StepEnvironment(digest, module, lock_sha256, python_range, python)


def uv_environment(caller: Mapping[str, str]) -> dict[str, str]:
    """The caller's variables uv gets: its own settings (``UV_*``), TLS, PATH and HOME (its
    cache); never a Python download."""
    passed = {k: v for k, v in caller.items() if k.startswith("UV_") or k in UV_PASSED}
    return {**passed, "UV_PYTHON_DOWNLOADS": "never"}


def envs_root(state: StateDir) -> Path:
    return state.root / "envs"


def env_lock_path(state: StateDir, digest: str) -> Path:
    """The flock of one environment's folder."""
    path = state.root / "locks" / f"env-{digest}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


class Environments:
    """Builds and hands out the venvs of module environments on this machine.

    ``registry`` is None offline: then only environments already built, or whose lock was
    kept here, can be used, and uv runs ``--offline`` (its cache only).
    """

    def __init__(
        self,
        state: StateDir,
        uv_env: Mapping[str, str],
        registry: RegistryProtocol | None,
        offline: bool = False,
    ) -> None:
        self.state = state
        self.uv_env = dict(uv_env)
        self.registry = registry
        self.offline = offline

    def folder(self, env: StepEnvironment) -> Path:
        return envs_root(self.state) / env.digest

    def ready(self, env: StepEnvironment) -> bool:
        """Whether the environment is built (its marker is written); True for none."""
        return not env.builds or (self.folder(env) / MARKER).exists()

    @contextlib.contextmanager
    def activate(self, env: StepEnvironment, log: Path | None) -> Iterator[Path]:
        """The environment's venv, built first if needed, kept from pruning until the block
        ends; EnvironmentBuildError (uv's output in ``log``) if it cannot be built."""
        with open(env_lock_path(self.state, env.digest), "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_SH)
            try:
                if not self.ready(env):
                    fcntl.flock(handle, fcntl.LOCK_EX)  # one builder per digest
                    if not self.ready(env):
                        self._build(env, log)
                    fcntl.flock(handle, fcntl.LOCK_SH)
                self._mark_used(env)
                yield self.folder(env) / "venv"
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _mark_used(self, env: StepEnvironment) -> None:
        folder = self.folder(env)
        os.utime(folder / MARKER)
        user = folder / "users" / hashlib.sha256(env.module.encode()).hexdigest()[:24]
        if not user.exists():  # written by rename: `envs list` never reads half a name
            user.parent.mkdir(exist_ok=True)
            temp = user.with_name(f".{user.name}.{os.getpid()}.{threading.get_ident()}")
            temp.write_text(env.module, encoding="utf-8")
            os.replace(temp, user)

    def _build(self, env: StepEnvironment, log_path: Path | None) -> None:
        folder = self.folder(env)
        shutil.rmtree(folder, ignore_errors=True)  # what a builder that died left
        with open(log_path or os.devnull, "a", encoding="utf-8") as log:
            log.write(f"[modreg] building environment {env.digest[:12]} for {env.module}\n")
            log.flush()
            try:
                lock = self._lock_file(env)
                self._create_venv(env, folder / "venv", log)
                python = str(folder / "venv" / "bin" / "python")
                sync = ["pip", "sync", "--require-hashes", "--python", python, str(lock)]
                self._uv(env, sync, log)
            except BaseException:
                shutil.rmtree(folder, ignore_errors=True)
                raise
            marker = {
                "lock": env.lock_sha256,
                "python_range": env.python_range,
                "python": env.python,
                "built_at": datetime.now(UTC).isoformat(),
            }
            write_json_atomic(folder / MARKER, marker)  # last: now the venv is visible
            log.write(f"[modreg] environment {env.digest[:12]} ready\n")

    def _create_venv(self, env: StepEnvironment, venv: Path, log: IO[str]) -> None:
        try:
            self._uv(env, ["venv", "--python", env.python, str(venv)], log)
        except EnvironmentBuildError as exc:
            if env.python == (env.python_range or DEFAULT_RANGE):
                raise EnvironmentBuildError(
                    f"no local Python satisfies {env.python!r}, the [environment] python of "
                    f"{env.module} (modreg does not download interpreters): {exc}"
                ) from exc
            raise

    def _lock_file(self, env: StepEnvironment) -> Path:
        """The environment lock's bytes, kept in the state folder (fetched once, online)."""
        assert env.lock_sha256 is not None
        path = self.state.root / "env-locks" / f"{env.lock_sha256}.txt"
        if path.exists():
            return path
        if self.registry is None:
            raise EnvironmentBuildError(
                f"the environment of {env.module} is not on this machine and --offline cannot "
                f"fetch its lock {env.lock_sha256[:12]}: run it once online"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        self.registry.get_blob(env.lock_sha256, path)
        return path

    def _uv(self, env: StepEnvironment, args: list[str], log: IO[str]) -> None:
        """Run uv; its output goes to ``log``, its last line into the error if it fails."""
        import uv

        argv = [uv.find_uv_bin(), *args, *(["--offline"] if self.offline else [])]
        log.write(f"[modreg] $ uv {' '.join(args)}\n")
        log.flush()
        done = subprocess.run(
            argv,
            cwd=self.state.root,
            env=self.uv_env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            preexec_fn=death_signal(),  # in the engine's process group: Ctrl-C stops it too
            check=False,
        )
        output = done.stdout + done.stderr
        log.write(output)
        if done.returncode != 0:
            raise EnvironmentBuildError(
                f"could not build the environment of {env.module}: uv {args[0]} failed: "
                + _uv_error(output, done.returncode)
            )


def _uv_error(output: str, code: int) -> str:
    """uv's error in a line: its ``error:`` line and the deepest cause it gives."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line.removeprefix("error:").strip() for line in lines if line.startswith("error:")]
    causes = [
        line.split(":", 1)[1].strip()
        for line in lines
        if line.lower().startswith(("caused by:", "cause:"))
    ]
    if errors:
        return ": ".join([errors[-1], *causes[-1:]])
    return lines[-1] if lines else f"exit status {code}"


@dataclass(frozen=True, kw_only=True)
class EnvironmentInfo:
    """One built environment, as ``modreg envs list`` shows it."""

    digest: str
    size: int
    last_used: float  # seconds since the epoch
    lock_sha256: str | None
    python_range: str | None
    modules: list[str]
    path: Path

    def to_json(self) -> dict[str, Any]:
        return {
            "digest": self.digest,
            "size": self.size,
            "last_used": datetime.fromtimestamp(self.last_used, UTC).isoformat(),
            "lock": self.lock_sha256,
            "python_range": self.python_range,
            "modules": self.modules,
        }


def folder_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def _info(folder: Path) -> EnvironmentInfo | None:
    try:
        marker = json.loads((folder / MARKER).read_bytes())
        last_used = (folder / MARKER).stat().st_mtime
    except (OSError, ValueError):
        return None
    users = (folder / "users").glob("[!.]*")  # not a name being written
    modules = sorted(path.read_text(encoding="utf-8") for path in users)
    return EnvironmentInfo(
        digest=folder.name,
        size=folder_size(folder),
        last_used=last_used,
        lock_sha256=marker.get("lock"),
        python_range=marker.get("python_range"),
        modules=modules,
        path=folder,
    )


def list_environments(state: StateDir) -> list[EnvironmentInfo]:
    """Every built environment (with its marker), most recently used first."""
    root = envs_root(state)
    folders = [p for p in root.iterdir() if DIGEST.match(p.name)] if root.is_dir() else []
    infos = [info for folder in folders if (info := _info(folder)) is not None]
    return sorted(infos, key=lambda info: (-info.last_used, info.digest))


def leftovers(state: StateDir) -> list[Path]:
    """Environment folders without a marker: a build that died, or one in progress."""
    root = envs_root(state)
    if not root.is_dir():
        return []
    return [p for p in root.iterdir() if DIGEST.match(p.name) and not (p / MARKER).exists()]


@contextlib.contextmanager
def held_exclusively(state: StateDir, digest: str) -> Iterator[bool]:
    """Try the environment's flock exclusively, without waiting: True if we hold it (no run
    uses or builds it meanwhile), False if it is busy."""
    with open(env_lock_path(state, digest), "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
