"""``dsops run`` end to end, and each bad input: a clear message, the right exit code,
no traceback, nothing run."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.pipelines.conftest import STAGES, Project


@pytest.fixture
def cli_project(make_project: Any) -> Project:
    return make_project()


def test_run_then_dry_then_json(cli_project: Project, run_cli: Any) -> None:
    first = run_cli("run", cwd=cli_project.root)
    assert first.returncode == 0, first.stderr
    assert "prepare" in first.stdout and "never run" in first.stdout
    (cli_project.root / "params.yaml").write_text("prepare:\n  repeat: 2\ntrain:\n  lr: 0.5\n")
    dry = run_cli("run", "--dry", cwd=cli_project.root)
    assert dry.returncode == 0, dry.stderr
    assert "param train.lr changed 0.1 → 0.5" in dry.stdout
    assert (cli_project.root / "build/model.txt").read_text() == "lr=0.1 n=8"
    out = run_cli("run", "--json", "--jobs", "1", cwd=cli_project.root)
    assert out.returncode == 0, out.stderr
    stages = {s["stage"]: s["action"] for s in json.loads(out.stdout)["stages"]}
    assert stages == {"prepare": "cached", "train": "run"}


BAD_INPUTS = {
    "cycle": ("""\
        stages:
          prepare:
            cmd: echo
            deps: [model.txt]
            outs: [features.txt]
          train:
            cmd: echo
            deps: [features.txt]
            outs: [model.txt]
        """, "stages form a cycle: prepare → train → prepare"),
    "missing producer": (STAGES.replace("deps: [build/features.txt", "deps: [build/featurs.txt"),
                         "stage train: dep 'build/featurs.txt' is not produced by any stage and "
                         "does not exist — did you mean 'build/features.txt'?"),
    "unknown param": (STAGES.replace("params: [train.lr]", "params: [train.lrr]"),
                      "stage train: param 'train.lrr' not found in params.yaml — did you mean "
                      "'train.lr'?"),
    "unknown dataset": (STAGES.replace("deps: [prepare.py, raw.csv]",
                                       "deps: [prepare.py, data:credti]"),
                        "unknown dataset 'credti'"),
    "cmd and python": ("""\
        stages:
          train:
            cmd: echo
            python: train:main
        """, "dsops.yaml:{line of train:}: stages.train: a stage needs exactly one of 'cmd'"),
    "unknown key": (STAGES.replace("    outs: [build/model.txt]", "    out: [build/model.txt]"),
                    "stages.train.out: unknown key — did you mean 'outs'?"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_a_usage_error(case: str, cli_project: Project, run_cli: Any) -> None:
    stages, message = BAD_INPUTS[case]
    cli_project.write_stages(stages)
    result = run_cli("run", cwd=cli_project.root)
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = (cli_project.root / "dsops.yaml").read_text().splitlines()
    message = message.replace("{line of train:}", str(lines.index("  train:") + 1))
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not (cli_project.root / "build").exists()
    assert not (cli_project.root / ".dsops" / "logs").exists()


def test_unknown_stage_name_suggests_the_closest(cli_project: Project, run_cli: Any) -> None:
    result = run_cli("run", "trian", cwd=cli_project.root)
    assert result.returncode == 2
    assert "unknown stage 'trian' — did you mean 'train'?" in result.stderr


def test_a_failing_stage_exits_1_and_shows_its_stderr_tail(cli_project: Project,
                                                           run_cli: Any) -> None:
    cli_project.write("train.py", "import sys\n\ndef main():\n"
                      + "".join(f"    print('noise {i}', file=sys.stderr)\n" for i in range(30))
                      + "    raise SystemExit('KeyError: column income')\n")
    result = run_cli("run", cwd=cli_project.root)
    assert result.returncode == 1, result.stderr
    assert "stage train failed with exit code 1" in result.stderr
    assert "KeyError: column income" in result.stderr
    assert "noise 11" in result.stderr and "noise 10" not in result.stderr  # the last 20 lines
    assert "Traceback" not in result.stderr.split("last 20 lines")[0]


def test_an_out_not_produced_exits_1(cli_project: Project, run_cli: Any) -> None:
    cli_project.write("train.py", "def main():\n    pass\n")
    result = run_cli("run", cwd=cli_project.root)
    assert result.returncode == 1
    assert "stage train did not produce build/model.txt, build/metrics.json" in result.stderr
