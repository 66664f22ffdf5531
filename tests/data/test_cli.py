"""The data commands as a user runs them: real subprocesses, real files."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.data.samples import people, write_csv

YAML = """\
project: demo
datasets:
  people:
    path: people.csv
    expectations:
      - column: age
        between: [18, 100]
  docs:
    path: docs
"""


def project(run_cli, tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    assert run_cli("init", cwd=root).returncode == 0
    (root / "dsops.yaml").write_text(YAML)
    return root


def test_add_show_ls_json(run_cli, tmp_path: Path) -> None:
    root = project(run_cli, tmp_path)
    write_csv(root / "people.csv", people(50))
    r = run_cli("data", "add", "people.csv", "--name", "people", cwd=root)
    assert r.returncode == 0, r.stderr
    assert "added people@1" in r.stdout
    r = run_cli("data", "add", "people.csv", "--name", "people", cwd=root)
    assert "unchanged" in r.stdout
    listing = json.loads(run_cli("data", "ls", "--json", cwd=root).stdout)
    assert listing[0]["name"] == "people" and listing[0]["latest"] == 1
    shown = json.loads(run_cli("data", "show", "people@1", "--json", cwd=root).stdout)
    assert shown["row_count"] == 50 and shown["profile"]["columns"]["age"]["max"] <= 100
    assert run_cli("data", "show", "people@1", cwd=root).returncode == 0


def test_bad_input_exit_codes(run_cli, tmp_path: Path) -> None:
    root = project(run_cli, tmp_path)
    write_csv(root / "people.csv", people(50, bad_ages=2))
    r = run_cli("data", "add", "people.csv", "--name", "people", cwd=root)
    assert r.returncode == 1
    assert "age" in r.stdout and "between" in r.stdout and "2 rows" in r.stdout
    assert "nothing was stored" in r.stderr and "Traceback" not in r.stderr

    (root / "ragged.csv").write_text("a,b\n1,2\n3,4,5\n")
    r = run_cli("data", "add", "ragged.csv", "--name", "ragged", cwd=root)
    assert r.returncode == 2 and "ragged.csv" in r.stderr and "Traceback" not in r.stderr

    r = run_cli("data", "add", "nope.csv", "--name", "x", cwd=root)
    assert r.returncode == 2 and "no such file" in r.stderr

    r = run_cli("data", "show", "peple", cwd=root)
    assert r.returncode == 2 and "unknown dataset 'peple'" in r.stderr

    (root / "dsops.yaml").write_text(YAML.replace("path: docs", "pth: docs"))
    r = run_cli("data", "ls", cwd=root)
    assert r.returncode == 2
    assert "dsops.yaml:9: datasets.docs.pth: unknown key" in r.stderr


def test_status_fast_path(run_cli, tmp_path: Path) -> None:
    root = project(run_cli, tmp_path)
    write_csv(root / "people.csv", people(50))
    (root / "docs").mkdir()
    (root / "docs" / "a.txt").write_text("hello")

    def status() -> dict[str, str]:
        r = run_cli("status", "--json", cwd=root)
        assert r.returncode == 0, r.stderr
        return {row["name"]: row["state"] for row in json.loads(r.stdout)}

    assert status() == {"people": "not added", "docs": "not added"}
    run_cli("data", "add", "people.csv", "--name", "people", cwd=root)
    run_cli("data", "add", "docs", "--name", "docs", cwd=root)
    assert status() == {"people": "unchanged", "docs": "unchanged"}
    time.sleep(0.01)
    (root / "docs" / "b.txt").write_text("more")
    assert status() == {"people": "unchanged", "docs": "modified"}
    (root / "people.csv").unlink()
    assert status()["people"] == "missing"


def test_diff_html_charts(run_cli, tmp_path: Path) -> None:
    root = project(run_cli, tmp_path)
    write_csv(root / "people.csv", people(60))
    run_cli("data", "add", "people.csv", "--name", "people", cwd=root)
    write_csv(root / "people.csv", people(80, age_shift=10))
    run_cli("data", "add", "people.csv", "--name", "people", cwd=root)
    r = run_cli("data", "diff", "people@1", "people@2", "--html", "d.html", cwd=root)
    assert r.returncode == 0, r.stderr
    html = (root / "d.html").read_text()
    assert "people@1" in html and "people@2" in html and '"age"' in html
    assert "plotly" in html.lower()
    (root / "docs").mkdir()
    (root / "docs" / "a.txt").write_text("hello")
    assert run_cli("data", "add", "docs", "--name", "docs", cwd=root).returncode == 0
    r = run_cli("data", "show", "docs", "--html", "x.html", cwd=root)
    assert r.returncode == 2 and "nothing to chart" in r.stderr
