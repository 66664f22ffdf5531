"""The ``dsops`` command itself, run as a real subprocess: help, init, errors, keys."""

from __future__ import annotations

import stat
import time
from pathlib import Path

from dsops.core.crypto import parse_key

from ..conftest import RunCli


def test_help_is_fast(run_cli: RunCli, tmp_path: Path) -> None:
    timings = []
    for _ in range(5):
        started = time.perf_counter()
        result = run_cli("--help", cwd=tmp_path)
        timings.append(time.perf_counter() - started)
        assert result.returncode == 0, result.stderr
    assert "Usage: dsops" in result.stdout
    for command in ("init", "data", "audit", "keys"):
        assert command in result.stdout
    assert min(timings) < 0.3, f"dsops --help took {min(timings):.3f} s at best"


def test_no_arguments_shows_help(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli(cwd=tmp_path)
    assert "Usage: dsops" in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_init_creates_a_project(run_cli: RunCli, tmp_path: Path) -> None:
    project = tmp_path / "credit-model"
    project.mkdir()
    (project / ".gitignore").write_text("__pycache__/")  # no trailing newline
    result = run_cli("init", cwd=project)
    assert result.returncode == 0, result.stderr
    assert "initialised dsops project credit-model" in result.stdout
    assert "next: uncomment what you need in dsops.yaml" in result.stdout
    config = (project / "dsops.yaml").read_text()
    assert "project: credit-model" in config
    assert (project / ".dsops").is_dir()
    assert (project / ".dsops" / "dsops.db").is_file()
    lines = (project / ".gitignore").read_text().splitlines()
    assert lines[0] == "__pycache__/" and ".dsops/" in lines


def test_init_in_a_named_directory(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli("init", "new-project", "--project", "demo", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "next: cd new-project, uncomment" in result.stdout
    assert "project: demo" in (tmp_path / "new-project" / "dsops.yaml").read_text()
    assert (tmp_path / "new-project" / ".gitignore").read_text().count(".dsops/") == 1


def test_second_init_is_refused(run_cli: RunCli, tmp_path: Path) -> None:
    assert run_cli("init", cwd=tmp_path).returncode == 0
    config_before = (tmp_path / "dsops.yaml").read_text()
    gitignore_before = (tmp_path / ".gitignore").read_text()
    result = run_cli("init", cwd=tmp_path)
    assert result.returncode == 2
    assert "dsops.yaml already exists: this is already a dsops project" in result.stderr
    assert result.stderr.startswith("error: ")
    assert "Traceback" not in result.stderr
    assert (tmp_path / "dsops.yaml").read_text() == config_before
    assert (tmp_path / ".gitignore").read_text() == gitignore_before


def test_invalid_project_name_is_a_usage_error(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli("init", "--project", "my project", cwd=tmp_path)
    assert result.returncode == 2
    assert "invalid project name 'my project'" in result.stderr
    assert not (tmp_path / "dsops.yaml").exists()


def test_command_outside_a_project(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli("audit", "verify", cwd=tmp_path)
    assert result.returncode == 2
    assert f"error: no dsops.yaml in {tmp_path} or any parent directory" in result.stderr
    assert "run 'dsops init'" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / ".dsops").exists()


def test_debug_shows_the_traceback(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli("--debug", "audit", "verify", cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" in result.stderr and "no dsops.yaml" in result.stderr


def test_malformed_config_is_reported_with_file_and_line(run_cli: RunCli, tmp_path: Path) -> None:
    (tmp_path / "dsops.yaml").write_text("project: demo\ndatasetz: {}\n")
    result = run_cli("audit", "verify", cwd=tmp_path)
    assert result.returncode == 2
    assert f"error: {tmp_path / 'dsops.yaml'}:2: datasetz: unknown key" in result.stderr
    assert "Traceback" not in result.stderr


def test_audit_verify_after_init(run_cli: RunCli, tmp_path: Path) -> None:
    assert run_cli("init", cwd=tmp_path).returncode == 0
    result = run_cli("audit", "verify", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "audit chain intact: 1 events verified" in result.stdout
    sub = tmp_path / "src" / "deep"  # the project is found from a subdirectory
    sub.mkdir(parents=True)
    listing = run_cli("audit", "ls", "--json", cwd=sub)
    assert '"action": "project.init"' in listing.stdout
    assert '"actor": "alice@example.com"' in listing.stdout


def test_keys_generate_prints_a_usable_key(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli("keys", "generate", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    key = parse_key(result.stdout.strip())
    assert len(key.raw) == 32
    again = run_cli("keys", "generate", cwd=tmp_path).stdout.strip()
    assert again != result.stdout.strip()


def test_keys_generate_to_a_file(run_cli: RunCli, tmp_path: Path) -> None:
    out = tmp_path / "dsops.key"
    result = run_cli("keys", "generate", "--out", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    parse_key(out.read_text())
    before = out.read_text()
    refused = run_cli("keys", "generate", "--out", str(out), cwd=tmp_path)
    assert refused.returncode == 2 and "refusing to overwrite" in refused.stderr
    assert out.read_text() == before


def test_an_error_after_a_progress_bar_is_the_first_line_of_a_log(
        run_cli: RunCli, tmp_path: Path) -> None:
    """Commands with a progress bar show none when stderr is not a terminal, and print no
    blank line ahead of what they say (Rich's stop() would)."""
    assert run_cli("init", cwd=tmp_path).returncode == 0
    for args in (["run"], ["data", "add", "missing.csv", "--name", "x"]):
        result = run_cli(*args, cwd=tmp_path)
        assert result.returncode == 2, result.stderr
        assert result.stderr.startswith("error: "), repr(result.stderr)
