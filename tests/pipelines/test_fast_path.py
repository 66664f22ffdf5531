"""The no-op fast path of ``dsops run`` and ``dsops status`` (pipelines/fastpath.py).

Every test goes through the installed ``dsops`` script, with ``PYTHONPROFILEIMPORTTIME``
telling which modules the process imported: the fast path is the one that imported no
SQLAlchemy. Each invalidation shows that the fast path steps aside and the full path
reruns exactly the affected stages.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.pipelines.conftest import Project

SQLITE = "sqlite:///(the project's default)"
HEAVY = ("sqlalchemy", "pydantic", "typer", "rich", "yaml", "dsops.workspace",
         "dsops.pipelines.planner")


class Cli:
    """``dsops`` in one project, with the store given by ``DSOPS_STORE_URL``."""

    def __init__(self, run_cli: Any, root: Path, store_url: str | None) -> None:
        self.run_cli = run_cli
        self.root = root
        self.env = {"DSOPS_STORE_URL": store_url} if store_url else {}

    def call(self, *args: str, env: dict[str, str] | None = None
             ) -> tuple[subprocess.CompletedProcess[str], set[str]]:
        """Run a command; its result and the modules it imported."""
        result = self.run_cli(*args, cwd=self.root,
                              env={**self.env, "PYTHONPROFILEIMPORTTIME": "1", **(env or {})})
        assert result.returncode == 0, result.stderr[-3000:]
        imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()
                    if line.startswith("import time:")}
        return result, imported

    def run(self, **env: str) -> tuple[dict[str, dict[str, Any]], bool]:
        """``dsops run --json``: stage → result, and whether the fast path answered."""
        result, imported = self.call("run", "--json", env=env)
        stages = {s["stage"]: s for s in json.loads(result.stdout)["stages"]}
        return stages, "sqlalchemy" not in imported

    def status(self, **env: str) -> tuple[dict[str, dict[str, Any]], bool]:
        """``dsops status --json``: stage → row, and whether the fast path answered."""
        result, imported = self.call("status", "--json", env=env)
        rows = {r["name"]: r for r in json.loads(result.stdout) if r["kind"] == "stage"}
        return rows, "sqlalchemy" not in imported


def _server(store_url: str) -> str | None:
    """PostgreSQL through DSOPS_STORE_URL; SQLite as a user has it: the project's default."""
    return None if store_url.startswith("sqlite") else store_url


def actions(stages: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {name: s["action"] for name, s in stages.items()}


def _first_run(make_project: Callable[..., Project], run_cli: Any, store_url: str) -> Cli:
    project = make_project()
    cli = Cli(run_cli, project.root, _server(store_url))
    stages, fast = cli.run()
    assert actions(stages) == {"prepare": "run", "train": "run"} and not fast
    return cli


@pytest.fixture
def cli(make_project: Callable[..., Project], run_cli: Any, store_url: str) -> Cli:
    """The two-stage project after a first full run, on SQLite and on PostgreSQL."""
    return _first_run(make_project, run_cli, store_url)


@pytest.fixture
def sqlite_cli(make_project: Callable[..., Project], run_cli: Any) -> Cli:
    """The same on the project's default SQLite store only: where the fast path answers
    (on PostgreSQL every command is the full path, which test_cache.py covers)."""
    return _first_run(make_project, run_cli, SQLITE)


def fast_on_sqlite(cli: Cli, store_url: str) -> None:
    """A no-op now answers without the full path on SQLite, and never on PostgreSQL."""
    stages, fast = cli.run()
    assert actions(stages) == {"prepare": "cached", "train": "cached"}
    assert all(s["why"] == ["up to date"] for s in stages.values())
    assert fast == store_url.startswith("sqlite"), "fast path on the wrong store"


def test_noop_run_and_status_import_nothing_heavy(cli: Cli, store_url: str) -> None:
    fast_on_sqlite(cli, store_url)
    rows, fast = cli.status()
    assert {n: (r["state"], r["why"]) for n, r in rows.items()} == {
        "prepare": ("cached", ["up to date"]), "train": ("cached", ["up to date"])}
    assert fast == store_url.startswith("sqlite")
    if fast:
        for command in (["run"], ["run", "--json"], ["status"]):
            _, imported = cli.call(*command)
            heavy = sorted(m for m in imported if m.split(".")[0] in HEAVY or m in HEAVY)
            assert not heavy, f"dsops {' '.join(command)} imported {heavy}"


def test_fast_output_is_the_full_paths(sqlite_cli: Cli) -> None:
    cli = sqlite_cli
    fast_on_sqlite(cli, SQLITE)
    full_json, full_imports = cli.call("run", "--json", env={"DSOPS_FAST_PATH": "0"})
    fast_json, fast_imports = cli.call("run", "--json")
    assert "sqlalchemy" in full_imports and "sqlalchemy" not in fast_imports

    def without_duration(out: str) -> Any:
        value = json.loads(out)
        for stage in value["stages"]:
            stage.pop("duration_s")
        return value

    assert without_duration(fast_json.stdout) == without_duration(full_json.stdout)
    full_text, _ = cli.call("run", env={"DSOPS_FAST_PATH": "0"})
    fast_text, _ = cli.call("run")

    def lines(out: str) -> list[str]:  # durations differ from run to run: "0.0 s" vs "0.1 s"
        return [re.sub(r"\d+\.\d s", "T s", line.rstrip()) for line in out.splitlines()]

    assert lines(fast_text.stdout) == lines(full_text.stdout)
    assert fast_text.stdout.splitlines()[-1] == "0 ran, 2 cached"


def _restore_mtime_edit(root: Path) -> None:
    path = root / "raw.csv"
    before = path.stat()
    path.write_text("x\ny\nz\n")  # same size
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (
        before.st_size, before.st_mtime_ns, before.st_ino)


def _append(rel: str, text: str) -> Callable[[Path], None]:
    def change(root: Path) -> None:
        with (root / rel).open("a") as f:
            f.write(text)
    return change


def _write(rel: str, text: str) -> Callable[[Path], None]:
    def change(root: Path) -> None:
        (root / rel).write_text(text)
    return change


def _stages(old: str, new: str) -> Callable[[Path], None]:
    def change(root: Path) -> None:
        config = root / "dsops.yaml"
        text = config.read_text()
        assert old in text
        config.write_text(text.replace(old, new))
    return change


# case: (change, expected actions, a reason `dsops status` must give for a stage)
INVALIDATIONS: dict[str, tuple[Callable[[Path], None], dict[str, str], tuple[str, str]]] = {
    "dep edited": (_append("raw.csv", "d\n"), {"prepare": "run", "train": "run"},
                   ("prepare", "dep raw.csv changed")),
    "dep edited, same size and mtime restored": (
        _restore_mtime_edit, {"prepare": "run", "train": "run"},
        ("prepare", "dep raw.csv changed")),
    "param changed": (_write("params.yaml", "prepare:\n  repeat: 2\ntrain:\n  lr: 0.5\n"),
                      {"prepare": "cached", "train": "run"},
                      ("train", "param train.lr changed 0.1 → 0.5")),
    "command changed": (_stages("cmd: python prepare.py", "cmd: python prepare.py --v2"),
                        {"prepare": "run", "train": "cached"}, ("prepare", "command changed")),
    "out deleted": (lambda root: (root / "build/model.txt").unlink(),
                    {"prepare": "cached", "train": "cached"},
                    ("train", "out build/model.txt missing")),
    "out modified": (_write("build/model.txt", "tampered"),
                     {"prepare": "cached", "train": "cached"},
                     ("train", "out build/model.txt modified")),
    "dsops.yaml edited elsewhere": (_append("dsops.yaml", "# a comment\n"),
                                    {"prepare": "cached", "train": "cached"},
                                    ("train", "up to date")),
}


@pytest.mark.parametrize("case", list(INVALIDATIONS))
def test_each_change_takes_the_full_path(case: str, sqlite_cli: Cli) -> None:
    cli, store_url = sqlite_cli, SQLITE
    change, expected, (stage, reason) = INVALIDATIONS[case]
    fast_on_sqlite(cli, store_url)
    change(cli.root)
    rows, fast = cli.status()
    assert not fast, "status answered from stale fingerprints"
    assert reason in rows[stage]["why"], rows
    assert rows[stage]["state"] == ("will run" if expected[stage] == "run" else "cached")
    # A status that found every stage up to date recorded that: the run may then be fast.
    up_to_date = all(r["why"] == ["up to date"] for r in rows.values())
    stages, fast = cli.run()
    assert fast == (up_to_date and store_url.startswith("sqlite")), "stale fingerprints used"
    assert actions(stages) == expected
    assert reason in stages[stage]["why"] or reason == "up to date"
    assert (cli.root / "build/model.txt").read_text() != "tampered"
    fast_on_sqlite(cli, store_url)  # the full path recorded the new state


def test_an_environment_change_reruns_every_stage(cli: Cli, store_url: str,
                                                  tmp_path: Path) -> None:
    fast_on_sqlite(cli, store_url)
    site = tmp_path / "extra-site"
    (site / "fakepkg-1.0.dist-info").mkdir(parents=True)
    rows, fast = cli.status(PYTHONPATH=str(site))
    assert not fast and rows["prepare"]["why"] == ["environment changed (fakepkg added)"]
    stages, fast = cli.run(PYTHONPATH=str(site))
    assert not fast and actions(stages) == {"prepare": "run", "train": "run"}
    stages, fast = cli.run(PYTHONPATH=str(site))
    assert actions(stages) == {"prepare": "cached", "train": "cached"}
    assert fast == store_url.startswith("sqlite")


def test_touched_files_are_rehashed_then_trusted(sqlite_cli: Cli) -> None:
    fast_on_sqlite(sqlite_cli, SQLITE)
    for rel in ("raw.csv", "params.yaml", "dsops.yaml", "build/model.txt"):
        os.utime(sqlite_cli.root / rel)
    fast_on_sqlite(sqlite_cli, SQLITE)  # same content: still cached, without the full path


def test_dataset_deps_follow_new_versions(make_project: Callable[..., Project], run_cli: Any,
                                          store_url: str) -> None:
    project = make_project(with_stages=False)
    project.write("raw.csv", "a,b\n1,2\n")
    project.write_stages("""\
        stages:
          latest:
            cmd: cp raw.csv latest.txt
            deps: [data:raw]
            outs: [latest.txt]
          pinned:
            cmd: cp raw.csv pinned.txt
            deps: ["data:raw@1"]
            outs: [pinned.txt]
        """)
    cli = Cli(run_cli, project.root, _server(store_url))
    cli.call("data", "add", "raw.csv", "--name", "raw")
    assert actions(cli.run()[0]) == {"latest": "run", "pinned": "run"}
    stages, fast = cli.run()
    assert actions(stages) == {"latest": "cached", "pinned": "cached"}
    assert fast == store_url.startswith("sqlite")
    project.write("raw.csv", "a,b\n1,2\n3,4\n")
    cli.call("data", "add", "raw.csv", "--name", "raw")
    rows, fast = cli.status()
    assert not fast and rows["latest"]["state"] == "will run"
    assert any("dep data:raw changed (raw@1 → raw@2)" in why for why in rows["latest"]["why"])
    stages, fast = cli.run()
    assert not fast and actions(stages) == {"latest": "run", "pinned": "cached"}


def test_globs_and_directories(make_project: Callable[..., Project], run_cli: Any,
                               store_url: str) -> None:
    project = make_project(with_stages=False)
    project.write("src/a.py", "a = 1\n")
    project.write("inputs/one.txt", "1\n")
    project.write_stages("""\
        stages:
          build:
            cmd: ls src inputs > listing.txt && mkdir -p out && cp inputs/* out/
            deps: [src/*.py, inputs]
            outs: [listing.txt, out]
        """)
    cli = Cli(run_cli, project.root, _server(store_url))
    expect_fast = store_url.startswith("sqlite")
    assert actions(cli.run()[0]) == {"build": "run"}
    changes = [(lambda: project.write("src/b.py", "b = 2\n"), "run"),  # a new glob match
               (lambda: project.write("inputs/two.txt", "2\n"), "run"),  # a file in a dir dep
               (lambda: project.write("out/extra.txt", "x\n"), "cached")]  # in a dir out
    for change, action in changes:
        stages, fast = cli.run()
        assert actions(stages) == {"build": "cached"} and fast == expect_fast
        change()
        stages, fast = cli.run()
        assert not fast and actions(stages) == {"build": action}
    assert not (project.root / "out/extra.txt").exists()
    assert (project.root / "out/two.txt").exists()


def test_other_options_take_the_full_path(cli: Cli, store_url: str) -> None:
    fast_on_sqlite(cli, store_url)
    for args in (["run", "--force", "--json"], ["run", "train", "--json"],
                 ["run", "--dry", "--json"], ["run", "--json", "--executor", "dask"]):
        result = cli.run_cli(*args, cwd=cli.root,
                             env={**cli.env, "PYTHONPROFILEIMPORTTIME": "1"})
        assert "import time:" in result.stderr and "sqlalchemy" in result.stderr, args


def test_stages_section_of_plain_status(sqlite_cli: Cli) -> None:
    cli = sqlite_cli
    (cli.root / "params.yaml").write_text("prepare:\n  repeat: 2\ntrain:\n  lr: 0.3\n")
    result, _ = cli.call("status")
    lines = result.stdout.splitlines()
    assert "stages:" in lines
    assert "  prepare  cached    up to date" in lines
    assert "  train    will run  param train.lr changed 0.1 → 0.3" in lines
    assert "1 of 2 stages will run" in result.stderr


def test_a_broken_pipeline_is_reported_after_the_datasets(sqlite_cli: Cli) -> None:
    cli = sqlite_cli
    (cli.root / "dsops.yaml").write_text((cli.root / "dsops.yaml").read_text().replace(
        "params: [train.lr]", "params: [train.lrr]"))
    result = cli.run_cli("status", cwd=cli.root, env=cli.env)
    assert result.returncode == 2
    assert "param 'train.lrr' not found in params.yaml" in result.stderr


@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
def test_a_server_store_in_the_environment_takes_the_full_path(sqlite_cli: Cli,
                                                               store_url: str) -> None:
    cli = sqlite_cli
    fast_on_sqlite(cli, SQLITE)
    stages, fast = cli.run(DSOPS_STORE_URL=store_url)
    assert not fast and actions(stages) == {"prepare": "run", "train": "run"}  # empty store
    rows, fast = cli.status(DSOPS_STORE_URL=store_url)
    assert not fast and {r["state"] for r in rows.values()} == {"cached"}
    stages, fast = cli.run()  # back on the project's own store: checked in full once
    assert not fast and actions(stages) == {"prepare": "cached", "train": "cached"}
    fast_on_sqlite(cli, SQLITE)


def test_a_key_with_an_input_the_fast_path_does_not_check_is_not_fingerprinted(
        make_project: Callable[..., Project], monkeypatch: pytest.MonkeyPatch) -> None:
    import dsops.pipelines.planner as planner

    project = make_project()

    def fingerprinted() -> list[str]:
        db = sqlite3.connect(project.root / ".dsops" / "state.db")
        try:
            return sorted(r[0] for r in db.execute("SELECT stage FROM stage_fingerprints"))
        finally:
            db.close()

    assert project.actions() == {"prepare": "run", "train": "run"}
    assert fingerprinted() == ["prepare", "train"]
    original = planner.key_components
    monkeypatch.setattr(planner, "key_components",
                        lambda *args: {**original(*args), "git_commit": "abc123"})
    assert project.actions() == {"prepare": "run", "train": "run"}  # a new key
    assert fingerprinted() == []
