"""What publish needs from git: the module's repo, its clean state, commit, tree and archive.

A module is a folder inside a git repository (the root, or a sub-folder of a monorepo). It is
published from HEAD, never from the working tree, so a module path with uncommitted changes
(untracked files included; ignored files are not) is refused with the files named.

The archive is ``git archive --format=tar COMMIT:PATH`` (the module folder is the archive
root), re-written with every member's mtime set to the commit time and gzip'd without a
timestamp. ``git archive`` of a tree (``COMMIT:PATH``, unlike ``COMMIT``) stamps members with
the current time, which would give every build of the same commit a different sha256 and turn
a safe, identical re-publish into a 409.
"""

from __future__ import annotations

import gzip
import hashlib
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from modreg.client.errors import GitError

if TYPE_CHECKING:
    import git

MAX_LISTED_FILES = 10


@dataclass(frozen=True)
class ModuleSource:
    """Where a module's code is: the repo, the folder in it, and HEAD's commit and tree."""

    root: Path  # the repository's working tree
    path: str  # the module folder inside it, POSIX, "" for the root
    commit: str  # HEAD, 40 hex
    tree_sha: str  # the git tree of ``path`` at ``commit``
    commit_time: int  # seconds since the epoch, the archive members' mtime
    remote: str | None  # ``origin``'s URL without credentials, if there is an origin

    @property
    def treeish(self) -> str:
        return f"{self.commit}:{self.path}"


@dataclass(frozen=True)
class BuiltArchive:
    """A module's source archive on disk, with its digest."""

    path: Path
    sha256: str
    size: int
    files: int


def open_repo(folder: Path) -> git.Repo:
    """The git repository containing ``folder``."""
    import git

    try:
        repo = git.Repo(folder, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError) as exc:
        raise GitError(f"{folder}: not inside a git repository") from exc
    if repo.bare or repo.working_tree_dir is None:
        raise GitError(f"{folder}: the repository has no working tree")
    return repo


def module_relpath(repo: git.Repo, folder: Path) -> str:
    """``folder`` relative to the repository root, POSIX, ``""`` for the root itself."""
    root = Path(str(repo.working_tree_dir)).resolve()
    relative = folder.resolve().relative_to(root).as_posix()
    return "" if relative == "." else relative


def dirty_files(repo: git.Repo, path: str) -> list[str]:
    """Files under ``path`` that differ from HEAD: modified, staged, deleted or untracked."""
    output = repo.git.status("--porcelain=v1", "-z", "--untracked-files=all", "--", path or ".")
    entries = output.split("\0")
    files: list[str] = []
    skip_next = False
    for entry in entries:
        if skip_next or not entry:
            skip_next = False
            continue
        status, name = entry[:2], entry[3:]
        skip_next = "R" in status or "C" in status  # the entry after a rename is its origin
        files.append(name)
    return sorted(files)


def require_clean(repo: git.Repo, path: str, folder: Path) -> None:
    """Refuse a module path with uncommitted changes, naming the files."""
    files = dirty_files(repo, path)
    if not files:
        return
    shown = ", ".join(files[:MAX_LISTED_FILES])
    more = f" and {len(files) - MAX_LISTED_FILES} more" if len(files) > MAX_LISTED_FILES else ""
    raise GitError(
        f"{folder}: uncommitted changes in the module path: {shown}{more} "
        "(commit them, or list them in .gitignore)"
    )


def public_remote(url: str) -> str:
    """A remote URL without secrets: no user info over http(s), no password over ssh."""
    parts = urlsplit(url)
    if "@" not in parts.netloc or parts.scheme not in ("http", "https", "ssh", "git+ssh"):
        return url
    userinfo, host = parts.netloc.rsplit("@", 1)
    if parts.scheme.startswith(("ssh", "git")):
        host = f"{userinfo.split(':', 1)[0]}@{host}"
    return urlunsplit(parts._replace(netloc=host))


def origin_url(repo: git.Repo) -> str | None:
    """``origin``'s URL, credentials removed, or None."""
    if "origin" not in [remote.name for remote in repo.remotes]:
        return None
    urls = list(repo.remotes.origin.urls)
    return public_remote(urls[0]) if urls else None


def module_source(folder: Path, require_clean_tree: bool = True) -> ModuleSource:
    """Inspect the module at ``folder``: repo, path, HEAD commit and tree, origin."""
    import git

    repo = open_repo(folder)
    try:
        path = module_relpath(repo, folder)
        if not repo.head.is_valid():
            raise GitError(f"{repo.working_tree_dir}: the repository has no commits yet")
        if require_clean_tree:
            require_clean(repo, path, folder)
        commit = repo.head.commit
        tree_sha = _tree_sha(repo, commit.hexsha, path, folder)
        root = Path(str(repo.working_tree_dir))
        return ModuleSource(
            root, path, commit.hexsha, tree_sha, commit.committed_date, origin_url(repo)
        )
    except git.GitCommandError as exc:
        raise GitError(f"{folder}: git failed: {exc.stderr.strip() or exc}") from exc
    finally:
        repo.close()


def _tree_sha(repo: git.Repo, commit: str, path: str, folder: Path) -> str:
    import git

    try:
        sha = str(repo.git.rev_parse(f"{commit}:{path}"))
    except git.GitCommandError as exc:
        raise GitError(f"{folder}: the module path is not in commit {commit}") from exc
    if repo.git.cat_file("-t", sha) != "tree":
        raise GitError(f"{folder}: the module path is not a folder in commit {commit}")
    return sha


def read_committed(source: ModuleSource, name: str) -> bytes | None:
    """The bytes of file ``name`` of the module folder at the published commit, or None.

    Read from the commit, not the working tree, so what the version is built from (a
    requirements file, a committed lock) is what its archive holds, even when an ignored
    file of that name sits in the folder.
    """
    import git

    repo = git.Repo(source.root)
    try:
        tree = repo.commit(source.commit).tree
        found = tree / f"{source.path}/{name}" if source.path else tree / name
        return bytes(found.data_stream.read()) if found.type == "blob" else None
    except KeyError:
        return None
    finally:
        repo.close()


def build_archive(source: ModuleSource, dest_dir: Path) -> BuiltArchive:
    """Write the module's reproducible ``.tar.gz`` into ``dest_dir`` and hash it."""
    import git

    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / f"{source.commit[:12]}.tar.gz"
    repo = git.Repo(source.root)
    try:
        with tempfile.TemporaryFile(dir=dest_dir) as raw:
            repo.git.archive("--format=tar", source.treeish, output_stream=raw)
            raw.seek(0)
            files = _normalise(raw, dest, source.commit_time)
    except git.GitCommandError as exc:
        raise GitError(f"{source.root}: git archive failed: {exc.stderr.strip() or exc}") from exc
    finally:
        repo.close()
    sha256, size = _digest(dest)
    return BuiltArchive(dest, sha256, size, files)


def _normalise(raw: object, dest: Path, mtime: int) -> int:
    """Copy the tar stream ``raw`` into a gzip'd tar at ``dest`` with fixed times; count files."""
    files = 0
    with (
        tarfile.open(fileobj=raw, mode="r:") as source,  # type: ignore[call-overload]
        dest.open("wb") as out,
        gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0) as zipped,
        tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as target,
    ):
        for member in source:
            member.mtime = mtime
            member.pax_headers = {}
            files += member.isfile()
            target.addfile(member, source.extractfile(member) if member.isfile() else None)
    return files


def _digest(path: Path) -> tuple[str, int]:
    hasher, size = hashlib.sha256(), 0
    with path.open("rb") as stream:
        while chunk := stream.read(1024 * 1024):
            hasher.update(chunk)
            size += len(chunk)
    return hasher.hexdigest(), size
