"""Benchmark: a no-op rerun of a 2-stage pipeline, ``dsops run`` vs ``dvc repro`` (DVC 3),
and the no-op ``dsops status`` vs ``dvc status`` on the same projects.

    python bench/pipeline.py [--reps 5]

Both tools get the same project: two Python stages (prepare → train) over a 20 MB input,
a params file, outs and a metrics file. After a first full run of each, the no-op
commands (nothing changed) are timed as subprocesses, wall clock, median of ``--reps``
after one untimed warm-up, the two tools alternating. Target (issue 4): dsops ≥ 5×
faster. Results: stdout and ``bench/results/pipeline.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from data_add import ENV, machine, tool_env, which

REPO = Path(__file__).resolve().parent.parent
WORK = REPO / "bench" / ".work-pipeline"
RESULTS = REPO / "bench" / "results" / "pipeline.json"
TARGET = 5.0

PREPARE = """import pathlib, yaml
p = yaml.safe_load(open("params.yaml"))["prepare"]
data = pathlib.Path("input.bin").read_bytes()
pathlib.Path("build").mkdir(exist_ok=True)
pathlib.Path("build/features.bin").write_bytes(data[:: p["stride"]])
"""
TRAIN = """import json, pathlib, yaml
p = yaml.safe_load(open("params.yaml"))["train"]
data = pathlib.Path("build/features.bin").read_bytes()
pathlib.Path("build/model.bin").write_bytes(data[: p["size"]])
pathlib.Path("build/metrics.json").write_text(json.dumps({"auc": 0.8}))
"""
PARAMS = "prepare:\n  stride: 2\ntrain:\n  size: 1000\n"
DSOPS_YAML = """project: bench
stages:
  prepare:
    cmd: python prepare.py
    deps: [prepare.py, input.bin]
    params: [prepare]
    outs: [build/features.bin]
  train:
    cmd: python train.py
    deps: [train.py, build/features.bin]
    params: [train]
    outs: [build/model.bin]
    metrics: [build/metrics.json]
"""
DVC_YAML = """stages:
  prepare:
    cmd: python prepare.py
    deps: [prepare.py, input.bin]
    params: [prepare]
    outs: [build/features.bin]
  train:
    cmd: python train.py
    deps: [train.py, build/features.bin]
    params: [train]
    outs: [build/model.bin]
    metrics: [{build/metrics.json: {cache: false}}]
"""


def project(root: Path, data: bytes, config: tuple[str, str]) -> Path:
    root.mkdir(parents=True)
    (root / "prepare.py").write_text(PREPARE)
    (root / "train.py").write_text(TRAIN)
    (root / "params.yaml").write_text(PARAMS)
    (root / "input.bin").write_bytes(data)
    (root / config[0]).write_text(config[1])
    return root


def sh(cmd: list[str], cwd: Path, expect: str | None = None) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=ENV, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed in {cwd}:\n{done.stdout}\n{done.stderr}")
    if expect is not None and expect not in done.stdout + done.stderr:
        sys.exit(f"{' '.join(cmd)} in {cwd}: expected {expect!r} (was something rerun?):\n"
                 f"{done.stdout}\n{done.stderr}")
    return elapsed


# The no-op commands timed, and what each must print (proof that nothing ran).
CASES = {
    "run": (["run"], "0 ran, 2 cached", ["repro"], "didn't change, skipping"),
    "status": (["status"], "up to date", ["status"], "up to date"),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    ENV.update(tool_env())
    shutil.rmtree(WORK, ignore_errors=True)
    data = os.urandom(20 << 20)
    dsops_bin, dvc_bin = which("dsops"), which("dvc")
    info = machine()  # before the timings: its load figure is the machine's, not ours
    samples: dict[str, dict[str, list[float]]] = {c: {"dsops": [], "dvc": []} for c in CASES}
    try:
        d = project(WORK / "dsops", data, ("dsops.yaml.bench", DSOPS_YAML))
        sh([dsops_bin, "init", "--project", "bench"], d)
        shutil.move(d / "dsops.yaml.bench", d / "dsops.yaml")
        v = project(WORK / "dvc", data, ("dvc.yaml", DVC_YAML))
        sh(["git", "init", "-q"], v)
        sh([dvc_bin, "init", "-q"], v)
        first = {"dsops": sh([dsops_bin, "run"], d), "dvc": sh([dvc_bin, "repro"], v)}
        for case, (dsops_args, dsops_says, dvc_args, dvc_says) in CASES.items():
            sh([dsops_bin, *dsops_args], d, dsops_says)  # warm-up
            sh([dvc_bin, *dvc_args], v, dvc_says)
            for i in range(args.reps):
                order = [("dsops", dsops_bin, dsops_args, d, dsops_says),
                         ("dvc", dvc_bin, dvc_args, v, dvc_says)]
                for tool, binary, cmd, cwd, says in order if i % 2 == 0 else order[::-1]:
                    samples[case][tool].append(sh([binary, *cmd], cwd, says))
    finally:
        shutil.rmtree(WORK, ignore_errors=True)
    print(f"first full run: dsops {first['dsops']:.2f} s, dvc {first['dvc']:.2f} s")
    results: dict[str, dict[str, float | bool]] = {}
    for case, times in samples.items():
        dsops_s, dvc_s = statistics.median(times["dsops"]), statistics.median(times["dvc"])
        ratio = dvc_s / dsops_s
        results[case] = {"dsops_s": dsops_s, "dvc_s": dvc_s, "ratio": ratio,
                         "pass": ratio >= TARGET}
        dvc_cmd = "dvc repro" if case == "run" else "dvc status"
        print(f"no-op {case}, 2 stages: dsops {dsops_s:.3f} s, {dvc_cmd} {dvc_s:.3f} s, "
              f"ratio {ratio:.1f}× (target ≥ {TARGET:.0f}×) "
              f"{'PASS' if ratio >= TARGET else 'FAIL'}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "benchmark": "bench/pipeline.py", "command": f"python bench/pipeline.py --reps {args.reps}",
        "machine": info, "bytecode_cache": True, "first_run": first, "samples": samples, "results": results,
        # the headline figure: no-op `dsops run` vs `dvc repro`
        "dsops_s": results["run"]["dsops_s"], "dvc_s": results["run"]["dvc_s"],
        "ratio": results["run"]["ratio"], "target": TARGET, "pass": results["run"]["pass"]},
        indent=2))
    print(f"wrote {RESULTS.relative_to(REPO)}")


if __name__ == "__main__":
    main()
