"""Git operations of publish, on real repositories made with gitpython."""

from __future__ import annotations

import tarfile
import time
from pathlib import Path

import git
import pytest
from factories import make_module_repo

from modreg.client.errors import GitError
from modreg.client.gitops import build_archive, module_source, public_remote


def test_module_at_the_repo_root(tmp_path: Path) -> None:
    folder = make_module_repo(tmp_path, remote="https://example.com/vision/prep.git")
    source = module_source(folder)
    repo = git.Repo(folder)
    assert source.path == ""
    assert source.commit == repo.head.commit.hexsha and len(source.commit) == 40
    assert source.tree_sha == repo.head.commit.tree.hexsha
    assert source.remote == "https://example.com/vision/prep.git"


def test_module_in_a_monorepo_folder(tmp_path: Path) -> None:
    folder = make_module_repo(tmp_path, subdir="steps/prep")
    source = module_source(folder)
    repo = git.Repo(folder, search_parent_directories=True)
    assert source.path == "steps/prep"
    assert source.tree_sha == (repo.head.commit.tree / "steps" / "prep").hexsha
    assert source.remote is None


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda f: (f / "main.py").write_text("print('edited')\n"), "main.py"),
        (lambda f: (f / "notes.txt").write_text("untracked\n"), "notes.txt"),
        (
            lambda f: (f / "deep" / "x.py").parent.mkdir() or (f / "deep" / "x.py").write_text(""),
            "deep/x.py",
        ),
        (lambda f: (f / "main.py").unlink(), "main.py"),
    ],
    ids=["modified", "untracked", "untracked-nested", "deleted"],
)
def test_a_dirty_module_path_is_refused_naming_the_files(
    tmp_path: Path, change, named: str
) -> None:  # type: ignore[no-untyped-def]
    folder = make_module_repo(tmp_path)
    change(folder)
    with pytest.raises(GitError) as caught:
        module_source(folder)
    assert str(caught.value) == (
        f"{folder}: uncommitted changes in the module path: {named} "
        "(commit them, or list them in .gitignore)"
    )


def test_staged_changes_are_dirty_too(tmp_path: Path) -> None:
    folder = make_module_repo(tmp_path)
    (folder / "main.py").write_text("print('staged')\n")
    git.Repo(folder).git.add("main.py")
    with pytest.raises(GitError, match=r"uncommitted changes in the module path: main.py"):
        module_source(folder)


def test_changes_outside_the_module_path_and_ignored_files_do_not_count(tmp_path: Path) -> None:
    folder = make_module_repo(tmp_path, subdir="steps/prep", files={".gitignore": "*.log\n"})
    (folder.parent / "other.txt").write_text("elsewhere\n")
    (folder / "run.log").write_text("ignored\n")
    assert module_source(folder).path == "steps/prep"


def test_not_a_repository_and_no_commits(tmp_path: Path) -> None:
    with pytest.raises(GitError, match=rf"^{tmp_path}: not inside a git repository$"):
        module_source(tmp_path)
    git.Repo.init(tmp_path / "empty")
    with pytest.raises(GitError, match="the repository has no commits yet"):
        module_source(tmp_path / "empty")


def test_archive_holds_the_module_folder_at_its_root(tmp_path: Path) -> None:
    folder = make_module_repo(tmp_path, subdir="steps/prep", files={"lib/util.py": "X = 1\n"})
    (folder.parent / "sibling.txt").write_text("not in the module\n")
    archive = build_archive(module_source(folder, require_clean_tree=False), tmp_path / "out")
    with tarfile.open(archive.path, "r:gz") as tar:
        names = sorted(member.name for member in tar.getmembers() if member.isfile())
    assert names == ["lib/util.py", "main.py", "modreg.toml"]
    assert archive.files == 3 and archive.size == archive.path.stat().st_size


def test_archive_is_reproducible_from_the_same_commit(tmp_path: Path) -> None:
    folder = make_module_repo(tmp_path, subdir="m")
    source = module_source(folder)
    first = build_archive(source, tmp_path / "a")
    time.sleep(1.1)  # git archive of a tree stamps the current time; ours must not
    second = build_archive(source, tmp_path / "b")
    assert first.sha256 == second.sha256


def test_archive_comes_from_the_commit_not_the_working_tree(tmp_path: Path) -> None:
    folder = make_module_repo(tmp_path)
    source = module_source(folder)
    (folder / "main.py").write_text("print('not committed')\n")
    archive = build_archive(source, tmp_path / "out")
    with tarfile.open(archive.path, "r:gz") as tar:
        member = tar.extractfile("main.py")
        assert member is not None and b"not committed" not in member.read()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://user:secret@example.com/x.git", "https://example.com/x.git"),
        ("https://example.com/x.git", "https://example.com/x.git"),
        ("ssh://git@example.com/x.git", "ssh://git@example.com/x.git"),
        ("ssh://git:pw@example.com/x.git", "ssh://git@example.com/x.git"),
        ("https://ghp_token@example.com/x.git", "https://example.com/x.git"),
        ("git@example.com:team/x.git", "git@example.com:team/x.git"),
    ],
)
def test_remote_urls_lose_their_credentials(url: str, expected: str) -> None:
    assert public_remote(url) == expected
