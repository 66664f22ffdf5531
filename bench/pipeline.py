"""Benchmark: a no-op rerun of a 2-stage pipeline, ``dsops run`` vs ``dvc repro`` (DVC 3).

    python bench/pipeline.py [--reps 5]

Both tools get the same project: two Python stages (prepare → train) over a 20 MB input,
a params file, outs and a metrics file. After a first full run of each, the no-op rerun
(nothing changed) is timed as a subprocess, wall clock, median of ``--reps`` after one
untimed warm-up. Target (issue 4): dsops ≥ 5× faster. Results: stdout and
``bench/results/pipeline.json``.
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


def sh(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=tool_env(), capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed in {cwd}:\n{done.stdout}\n{done.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    ENV.update(tool_env())
    shutil.rmtree(WORK, ignore_errors=True)
    data = os.urandom(20 << 20)
    dsops_bin, dvc_bin = which("dsops"), which("dvc")
    try:
        d = project(WORK / "dsops", data, ("dsops.yaml.bench", DSOPS_YAML))
        sh([dsops_bin, "init", "--project", "bench"], d)
        shutil.move(d / "dsops.yaml.bench", d / "dsops.yaml")
        v = project(WORK / "dvc", data, ("dvc.yaml", DVC_YAML))
        sh(["git", "init", "-q"], v)
        sh([dvc_bin, "init", "-q"], v)
        first = {"dsops": sh([dsops_bin, "run"], d), "dvc": sh([dvc_bin, "repro"], v)}
        sh([dsops_bin, "run"], d)
        sh([dvc_bin, "repro"], v)  # warm-up
        samples: dict[str, list[float]] = {"dsops": [], "dvc": []}
        for _ in range(args.reps):
            samples["dsops"].append(sh([dsops_bin, "run"], d))
            samples["dvc"].append(sh([dvc_bin, "repro"], v))
    finally:
        shutil.rmtree(WORK, ignore_errors=True)
    dsops_s, dvc_s = statistics.median(samples["dsops"]), statistics.median(samples["dvc"])
    ratio = dvc_s / dsops_s
    print(f"first full run: dsops {first['dsops']:.2f} s, dvc {first['dvc']:.2f} s")
    print(f"no-op rerun, 2 stages: dsops {dsops_s:.3f} s, dvc repro {dvc_s:.3f} s, "
          f"ratio {ratio:.1f}× (target ≥ {TARGET:.0f}×) {'PASS' if ratio >= TARGET else 'FAIL'}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "benchmark": "bench/pipeline.py", "command": "make bench", "machine": machine(),
        "first_run": first, "samples": samples, "dsops_s": dsops_s, "dvc_s": dvc_s,
        "ratio": ratio, "target": TARGET, "pass": ratio >= TARGET}, indent=2))
    print(f"wrote {RESULTS.relative_to(REPO)}")


if __name__ == "__main__":
    main()
