"""When the change behind a production deploy started: the first commit between the previously
deployed version's run commit and this version's (read from the project's git history), or
the creation of a newer dataset version it was trained on, with the fallbacks when neither
can be known. Every start says which source gave it, and why."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

GIT_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class VersionFacts:
    """What lead time needs to know about one model version."""

    ref: str
    created_at: datetime
    run_id: str | None = None
    run_started_at: datetime | None = None
    commit: str | None = None
    dirty: bool | None = None
    datasets: dict[str, datetime] = field(default_factory=dict)  # "data:NAME@N" -> created_at


@dataclass(frozen=True)
class LeadStart:
    """The start of a change: when, from which source, how many commits it spans, and why."""

    at: datetime
    source: str  # git | data | run | registry
    note: str
    commits: int = 0


@dataclass(frozen=True)
class CommitRange:
    """The commits of ``PREV..THIS`` (or THIS alone), or why they could not be read."""

    first_at: datetime | None
    commits: int
    error: str | None = None


class GitHistory:
    """Commit times from the git repository holding ``root``, read with ``git log``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._problem: str | bool | None = False  # False: not checked yet
        self._ranges: dict[tuple[str | None, str], CommitRange] = {}
        self._known: dict[str, bool] = {}

    @property
    def problem(self) -> str | None:
        """Why the history cannot be read (no git, no repository), or None when it can."""
        if self._problem is False:
            result = self._git("rev-parse", "--git-dir")
            if result is None:
                self._problem = "git is not installed"
            elif result.returncode != 0:
                self._problem = f"{self.root} is not in a git repository"
            else:
                self._problem = None
        return self._problem if isinstance(self._problem, str) else None

    def commits(self, previous: str | None, current: str) -> CommitRange:
        """The commits in ``previous..current`` (``git log --reverse``) and the earliest
        author time among them; with no ``previous``, the commit ``current`` alone."""
        key = (previous, current)
        if key not in self._ranges:
            self._ranges[key] = self._read(previous, current)
        return self._ranges[key]

    def _read(self, previous: str | None, current: str) -> CommitRange:
        if self.problem:
            return CommitRange(None, 0, self.problem)
        for commit in (current, previous):
            if commit is not None and not self._exists(commit):
                return CommitRange(None, 0, f"commit {commit[:12]} is not in the git repository "
                                            f"of {self.root}")
        spec = ["-1", current] if previous is None else [f"{previous}..{current}"]
        result = self._git("log", "--reverse", "--format=%H %at", *spec, "--")
        if result is None or result.returncode != 0:
            detail = result.stderr.strip().splitlines()[-1] if result and result.stderr else ""
            return CommitRange(None, 0, f"git log failed: {detail or 'no output'}")
        times = [int(line.split()[1]) for line in result.stdout.splitlines() if line.strip()]
        if not times:
            return CommitRange(None, 0)
        # The first commit of the change is the earliest authored one: the author date
        # survives rebases and cherry-picks, the committer date does not.
        return CommitRange(datetime.fromtimestamp(min(times), UTC), len(times))

    def _exists(self, commit: str) -> bool:
        if commit not in self._known:
            result = self._git("cat-file", "-e", f"{commit}^{{commit}}")
            self._known[commit] = result is not None and result.returncode == 0
        return self._known[commit]

    def _git(self, *args: str) -> subprocess.CompletedProcess[str] | None:
        env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
        try:
            return subprocess.run(["git", "-C", str(self.root), *args], capture_output=True,
                                  text=True, timeout=GIT_TIMEOUT_S, env=env, check=False)
        except (OSError, subprocess.SubprocessError):
            return None


def lead_start(git: GitHistory, this: VersionFacts, previous: VersionFacts | None) -> LeadStart:
    """Where the change deployed as ``this`` began, after ``previous`` (the version serving
    before it; None for a first production deploy).

    The code side is the earliest commit in ``previous.commit..this.commit`` (for a first
    deploy, the run's own commit). The data side is the newest dataset version ``this`` was
    trained on that ``previous`` was not. The later of the two wins — the change could not
    reach production before its last ingredient existed — and when only the data changed,
    the data side alone. Without either: the training run's start, else the registration.
    """
    code_at, commits, why = None, 0, ""
    if this.commit is None:
        why = "its run recorded no git commit" if this.run_id else "it was registered without a run"
    else:
        base = previous.commit if previous is not None else None
        found = git.commits(base, this.commit)
        if found.error:
            why = found.error
        elif found.first_at is None:
            why = f"no commit between {base[:12]} and {this.commit[:12]}" if base else \
                f"commit {this.commit[:12]} has no history"
        else:
            code_at, commits = found.first_at, found.commits
            if base is None:
                why = ("first production deploy: the run's commit" if previous is None else
                       f"{previous.ref} has no commit: the run's commit")
            else:
                why = f"first of {commits} commit{'s' if commits != 1 else ''} " \
                      f"{base[:12]}..{this.commit[:12]}"
            if this.dirty:
                why += " (the run's work tree had uncommitted changes)"
    known = previous.datasets if previous is not None else {}
    new_data = {ref: at for ref, at in this.datasets.items() if ref not in known}
    if new_data:
        ref, data_at = max(new_data.items(), key=lambda item: item[1])
        if code_at is None or data_at > code_at:
            reason = f"{ref.removeprefix('data:')} created" + (
                "; code: " + why if why and code_at is None else
                " after the first commit" if code_at is not None else "")
            return LeadStart(data_at, "data", reason, commits)
    if code_at is not None:
        return LeadStart(code_at, "git", why, commits)
    if this.run_started_at is not None:
        return LeadStart(this.run_started_at, "run", f"training run started ({why})")
    return LeadStart(this.created_at, "registry", f"version registered ({why})")
