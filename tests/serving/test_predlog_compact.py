"""Compaction and retention of the prediction log, on a local directory and a real S3 server:
every row read exactly once before, during and after compaction (two compactions at once
included), replaced segments deleted only after the grace period, whole days pruned."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa

from dsops.config.models import PredictionsConfig
from dsops.core.clock import ManualClock
from dsops.objects import ObjectStore
from dsops.security.audit import AuditService
from dsops.serving.predlog import FeedbackWriter, PredictionLogWriter
from dsops.serving.predlog_compact import GRACE, _merge, compact
from dsops.serving.predlog_query import PredictionLog
from dsops.serving.predlog_schema import PREDICTION_SCHEMA, is_compact
from dsops.serving.server import _reconcile_forever
from tests.conftest import MakeWorkspace, RunCli

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _rows(objects: ObjectStore) -> list[tuple[str, int, float]]:
    """Every logged prediction, read from scratch, as (request id, version, latency)."""
    table = PredictionLog(objects).window()
    return sorted(zip(*(table.column(c).to_pylist() for c in ("request_id", "version", "latency_ms")),
                      strict=True))


def _labels(objects: ObjectStore) -> int:
    return PredictionLog(objects).query("SELECT count(*) AS n FROM feedback")["n"][0].as_py()


def _log_segments(writers, segments: int, prefix: str = "r", version: int = 1) -> None:
    log = writers()
    for s in range(segments):
        for i in range(10):
            log.append(f"{prefix}{s}-{i}", "credit", version, 0.5, inputs={"age": i}, latency_ms=float(i))
        log.flush()


def test_compaction_reads_every_row_once_and_deletes_after_the_grace_period(
        objects: ObjectStore, writers, manual_clock: ManualClock) -> None:
    _log_segments(writers, 5)
    feedback = writers(FeedbackWriter)
    for s in range(3):
        feedback.append(f"r{s}-0", "yes")
        feedback.flush()
    before, labels = _rows(objects), _labels(objects)
    assert len(before) == 50 and labels == 3

    now = manual_clock.now()
    done = compact(objects, now)
    assert (done.files, done.segments, done.rows, done.deleted) == (2, 8, 53, 0)
    keys = objects.list_logs()
    assert sum(map(is_compact, keys)) == 2 and len(keys) == 10  # the segments stay for a while
    assert _rows(objects) == before and _labels(objects) == labels

    assert compact(objects, now + GRACE / 2).files == 0  # nothing left to compact, nothing settled
    assert len(objects.list_logs()) == 10
    done = compact(objects, now + GRACE)
    assert (done.files, done.deleted) == (0, 8)
    assert all(map(is_compact, objects.list_logs()))
    assert _rows(objects) == before and _labels(objects) == labels

    _log_segments(writers, 1, prefix="late")  # one new segment: not worth a file of its own
    assert compact(objects, now + GRACE).files == 0
    _log_segments(writers, 1, prefix="later")
    assert compact(objects, now + GRACE).files == 1
    assert len(_rows(objects)) == 70


def test_two_compactions_at_once_still_read_each_row_once(objects: ObjectStore, writers,
                                                          manual_clock: ManualClock) -> None:
    _log_segments(writers, 3)
    before = _rows(objects)
    s1, s2, s3 = objects.list_logs()
    folder = s1.rpartition("/")[0]
    reader = PredictionLog(objects)
    # Two servers compacted the same folder at the same moment, from listings a segment apart.
    for name, keys in (("a", [s1, s2]), ("b", [s2, s3])):
        data, rows = _merge(reader, keys, PREDICTION_SCHEMA)
        assert rows == 20
        objects.put_log(f"{folder}/compact-20260101T000000-{name}.parquet", data)
    assert _rows(objects) == before  # a's rows and s3's, never s2's twice

    done = compact(objects, manual_clock.now() + GRACE)  # s1, s2 (replaced by a) and b go
    assert done.deleted == 3
    assert sorted(k.rpartition("/")[2] for k in objects.list_logs()) == \
        sorted(["compact-20260101T000000-a.parquet", s3.rpartition("/")[2]])
    assert _rows(objects) == before


def test_versions_with_different_inputs_are_compacted_per_folder(objects: ObjectStore, writers,
                                                                 manual_clock: ManualClock) -> None:
    log = writers()
    for s in range(2):
        for version in (1, 2):
            inputs = {"age": s} if version == 1 else {"city": "paris", "income": 1.5}
            log.append(f"v{version}-{s}", "credit", version, 1.0, inputs=inputs)
        log.flush()
    done = compact(objects, manual_clock.now())
    assert (done.files, done.segments) == (2, 4)
    window = PredictionLog(objects).window("credit", 2)
    assert window.column("in_city").to_pylist() == ["paris", "paris"]
    assert pa.types.is_floating(window.schema.field("in_income").type)


def test_cli_compacts_and_prunes_with_an_audit_event(make_workspace: MakeWorkspace, run_cli: RunCli,
                                                     tmp_path: Path) -> None:
    ws = make_workspace()
    clock = ManualClock(T0)
    log = PredictionLogWriter(ws.objects, env="prod", clock=clock, flush_interval_s=3600)
    for day in range(3):
        for s in range(2):
            log.append(f"d{day}-{s}", "credit", 1, 1.0)
            log.flush()
        clock.advance(timedelta(days=1))
    log.close()

    done = run_cli("predictions", "compact", "--json", cwd=ws.root)
    assert done.returncode == 0, done.stderr
    assert '"files": 3' in done.stdout and '"segments": 6' in done.stdout

    dry = run_cli("predictions", "prune", "--before", "2026-01-03", "--dry-run", cwd=ws.root)
    assert dry.returncode == 0 and "would delete 6 files (2 day folders" in dry.stdout, dry.stderr
    assert len(ws.objects.list_logs()) == 9
    pruned = run_cli("predictions", "prune", "--before", "2026-01-03", cwd=ws.root)
    assert pruned.returncode == 0 and "deleted 6 files" in pruned.stdout, pruned.stderr
    assert {k.split("date=")[1][:10] for k in ws.objects.list_logs()} == {"2026-01-03"}
    audit = run_cli("audit", "ls", "--json", cwd=ws.root)
    assert '"predictions.prune"' in audit.stdout and "logs before 2026-01-03" in audit.stdout

    for args, message in ((["--before", "yesterday"], "is not a date"),
                          ([], "no retention: give --before DATE or --older-than"),
                          (["--before", "2026-01-04", "--older-than", "9d"], "not both"),
                          (["--older-than", "soon"], "invalid duration"),
                          (["--older-than", "6h"], "'6h' is under a day")):
        bad = run_cli("predictions", "prune", *args, cwd=ws.root)
        assert bad.returncode == 2 and message in bad.stderr, bad.stderr
    assert len(ws.objects.list_logs()) == 3  # the last day is still there


def test_prune_defaults_to_the_retention_declared_in_dsops_yaml(
        make_workspace: MakeWorkspace, run_cli: RunCli) -> None:
    ws = make_workspace()
    clock = ManualClock(T0)
    log = PredictionLogWriter(ws.objects, env="prod", clock=clock, flush_interval_s=3600)
    for day in range(3):
        log.append(f"d{day}", "credit", 1, 1.0)
        log.flush()
        clock.advance(timedelta(days=1))
    log.close()
    # Kept: the days from 2026-01-02 on, whatever today's date is.
    days = (datetime.now(UTC).date() - T0.date()).days - 1
    config = ws.root / "dsops.yaml"
    config.write_text(config.read_text() + f"predictions:\n  retention: {days}d\n")

    pruned = run_cli("predictions", "prune", "--json", cwd=ws.root)
    assert pruned.returncode == 0, pruned.stderr
    assert '"before": "2026-01-02"' in pruned.stdout and '"files": 1' in pruned.stdout
    assert {k.split("date=")[1][:10] for k in ws.objects.list_logs()} == {"2026-01-02", "2026-01-03"}

    config.write_text(config.read_text().replace(f"retention: {days}d", "retention: 6h"))
    bad = run_cli("predictions", "prune", cwd=ws.root)
    assert bad.returncode == 2 and "predictions.retention" in bad.stderr, bad.stderr
    assert "under a day" in bad.stderr


def test_serve_applies_the_retention_once_a_day(make_workspace: MakeWorkspace) -> None:
    """The gateway's timer loop deletes the days past ``predictions.retention`` (audited),
    once a day: a late segment of an old day waits until the cutoff moves on."""
    clock = ManualClock(T0)
    ws = make_workspace(clock=clock)
    log = PredictionLogWriter(ws.objects, env="prod", clock=clock, flush_interval_s=3600)
    for day in range(4):
        log.append(f"d{day}", "credit", 1, 1.0)
        log.flush()
        clock.advance(timedelta(days=1))
    log.close()  # the clock is at 2026-01-05: a retention of 2 days keeps the 3rd and on
    ws.config = ws.config.model_copy(update={"predictions": PredictionsConfig(retention="2d")})

    def days() -> set[str]:
        return {k.split("date=")[1][:10] for k in ws.objects.list_logs()}

    stop = threading.Event()
    loop = threading.Thread(target=_reconcile_forever, args=(ws, stop, 0.02, lambda _: None))
    loop.start()
    try:
        _wait_for(lambda: days() == {"2026-01-03", "2026-01-04"})
        late = PredictionLogWriter(ws.objects, env="prod", clock=ManualClock(T0),
                                   flush_interval_s=3600)
        late.append("late", "credit", 1, 1.0)
        late.close()
        time.sleep(0.5)  # some 25 ticks of the loop, all on the same day
        assert days() == {"2026-01-01", "2026-01-03", "2026-01-04"}
        clock.advance(timedelta(days=1))
        _wait_for(lambda: days() == {"2026-01-04"})
    finally:
        stop.set()
        loop.join(10)
    events = AuditService(ws).list(action="predictions.prune")
    assert [e.target for e in events] == ["logs before 2026-01-04", "logs before 2026-01-03"]


def _wait_for(condition: Callable[[], bool], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)
