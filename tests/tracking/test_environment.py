"""What a run records about where it ran: git commit and dirtiness, Python, packages."""

from __future__ import annotations

import subprocess
from pathlib import Path

from dsops.tracking.environment import environment_lock, git_state


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
                          cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


def test_git_state_commit_and_dirtiness(tmp_path: Path) -> None:
    assert git_state(tmp_path) == (None, None)  # not a repository
    git(tmp_path, "init", "-q")
    assert git_state(tmp_path) == (None, None)  # no commit yet
    (tmp_path / "train.py").write_text("print(1)\n")
    git(tmp_path, "add", "train.py")
    git(tmp_path, "commit", "-q", "-m", "first")
    head = git(tmp_path, "rev-parse", "HEAD")
    assert git_state(tmp_path) == (head, False)
    (tmp_path / "notes.txt").write_text("untracked files do not make the tree dirty")
    assert git_state(tmp_path) == (head, False)
    (tmp_path / "train.py").write_text("print(2)\n")
    assert git_state(tmp_path) == (head, True)
    git(tmp_path, "add", "train.py")  # staged counts too
    assert git_state(tmp_path) == (head, True)
    (tmp_path / "sub").mkdir()
    assert git_state(tmp_path / "sub") == (head, True)  # from inside the work tree


def test_environment_lock_lists_installed_packages() -> None:
    lock = environment_lock()
    assert lock["python"].count(".") == 2
    assert "sqlalchemy" in lock["packages"] and "pydantic" in lock["packages"]
    lock["packages"].clear()  # a copy: the cached lock is not changed
    assert environment_lock()["packages"]
