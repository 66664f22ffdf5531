"""Execution: parallel stages, failures and what they leave behind, interruption."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

from dsops.tracking.service import TrackingService
from tests.pipelines.conftest import Project

BROKEN = """\
import sys
print("working")
print("boom: bad column", file=sys.stderr)
sys.exit(3)
"""

FAILING = """\
stages:
  broken:
    cmd: python broken.py
    outs: [broken.txt]
  after:
    cmd: cp broken.txt after.txt
    deps: [broken.txt]
    outs: [after.txt]
  sibling:
    cmd: echo fine > sibling.txt
    outs: [sibling.txt]
"""


def test_independent_stages_run_in_parallel(make_project: Any) -> None:
    project: Project = make_project(with_stages=False)
    project.write_stages("""\
        stages:
          one:
            cmd: sleep 2 && echo 1 > one.txt
            outs: [one.txt]
          two:
            cmd: sleep 2 && echo 2 > two.txt
            outs: [two.txt]
        """)
    service = project.service()
    started = time.monotonic()
    result = service.run(jobs=2)
    elapsed = time.monotonic() - started
    assert [s.action for s in result.stages] == ["run", "run"]
    assert elapsed < 3.5, f"two 2 s stages took {elapsed:.1f} s with --jobs 2"


def test_a_failing_stage_skips_its_dependants_and_keeps_the_others(project: Project) -> None:
    project.write("broken.py", BROKEN)
    project.write_stages(FAILING)
    result = project.service().run()
    by_stage = {s.stage: s for s in result.stages}
    assert by_stage["broken"].action == "failed"
    assert by_stage["broken"].exit_code == 3
    assert by_stage["broken"].stderr_tail == ["boom: bad column"]
    assert (by_stage["after"].action, by_stage["after"].why) == ("skipped", ["upstream broken failed"])
    assert by_stage["sibling"].action == "run"
    assert (project.root / "sibling.txt").read_text() == "fine\n"
    run = TrackingService(project.ws).get(by_stage["broken"].run_id or "")
    assert (run.status, run.exit_code) == ("failed", 3)
    assert {a.path for a in run.artifacts} == {"stdout.log", "stderr.log"}
    stderr = next(a for a in run.artifacts if a.path == "stderr.log")
    assert project.ws.objects.read_bytes(stderr.digest) == b"boom: bad column\n"
    # the failure is not cached: the next run tries again, the sibling is cached
    actions = {s.stage: s.action for s in project.service().run().stages}
    assert actions == {"broken": "failed", "after": "skipped", "sibling": "cached"}


def test_a_stage_that_does_not_produce_its_out_fails(project: Project) -> None:
    project.write_stages("""\
        stages:
          train:
            cmd: echo nothing
            outs: [build/model.skops]
        """)
    result = project.service().run()
    stage = result.stages[0]
    assert (stage.action, stage.error) == ("failed", "stage train did not produce build/model.skops")
    run = TrackingService(project.ws).get(stage.run_id or "")
    assert run.status == "failed"
    assert run.error == "stage train did not produce build/model.skops"


def test_sigterm_stops_running_stages_and_marks_their_runs_killed(make_project: Any) -> None:
    project: Project = make_project(with_stages=False)
    project.write_stages("""\
        stages:
          slow:
            cmd: touch started && sleep 30 && echo done > slow.txt
            outs: [slow.txt]
        """)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DSOPS_")}
    proc = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "dsops"), "run"],
                            cwd=project.root, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not (project.root / "started").exists():
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=20)
    assert proc.returncode == 130, stderr
    assert time.monotonic() - started < 10
    assert "interrupted" in stderr and "Traceback" not in stderr
    runs = TrackingService(project.ws).list()
    assert [(r.name, r.status) for r in runs] == [("slow", "killed")]
    assert not (project.root / "slow.txt").exists()
