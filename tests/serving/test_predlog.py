"""The prediction log and feedback: writers, segments in the object store (a local directory
and a real S3 server), windows, label joins and SQL."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from dsops.core.clock import ManualClock
from dsops.core.errors import StoreError, UsageError
from dsops.objects import ObjectStore, open_object_store
from dsops.objects.backends import Backend
from dsops.serving.predlog import FeedbackWriter, PredictionLogWriter
from dsops.serving.predlog_query import PredictionLog

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def count(objects: ObjectStore, view: str = "predictions") -> int:
    return int(PredictionLog(objects).query(f"SELECT count(*) AS n FROM {view}")["n"][0].as_py())


# ----------------------------------------------------------------------- writing


def test_appends_from_many_threads_are_all_stored(objects: ObjectStore, writers) -> None:
    log = writers(max_rows=300)  # the background thread writes as they come, too
    per_thread, threads = 500, 4

    def serve(t: int) -> None:
        for i in range(per_thread):
            log.append(f"req-{t}-{i}", "credit", 1 + i % 2, i % 2,
                       inputs={"age": i, "income": i * 1.5}, latency_ms=0.5)

    workers = [threading.Thread(target=serve, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    log.flush()

    assert log.queue_depth == 0
    assert log.rows_written == per_thread * threads
    stored = PredictionLog(objects).window(columns=["request_id"])
    assert stored.num_rows == per_thread * threads
    assert len(set(stored["request_id"].to_pylist())) == per_thread * threads
    keys = objects.list_logs("predictions/")
    assert {k.split("/")[2] for k in keys} == {"version=1", "version=2"}
    assert all(k.startswith("predictions/model=credit/") and "/date=2026-01-01/" in k
               for k in keys)


def test_close_stores_what_is_buffered_and_refuses_more(objects: ObjectStore, writers) -> None:
    log = writers()
    for i in range(25):
        log.append(f"r{i}", "credit", 1, 0.5)
    assert log.queue_depth == 25
    assert count(objects) == 0
    log.close()
    log.close()  # idempotent
    assert count(objects) == 25
    with pytest.raises(RuntimeError, match="closed"):
        log.append("late", "credit", 1, 0.5)


def test_background_thread_writes_on_its_own(tmp_path: Path) -> None:
    objects = open_object_store(None, tmp_path / "objects")
    by_size = PredictionLogWriter(objects, env="prod", flush_interval_s=3600, max_rows=10)
    by_time = PredictionLogWriter(objects, env="prod", flush_interval_s=0.05)
    try:
        for i in range(10):
            by_size.append(f"s{i}", "a", 1, 1.0)
        by_time.append("t0", "b", 1, 1.0)
        deadline = time.monotonic() + 10
        while (by_size.rows_written, by_time.rows_written) != (10, 1):
            assert time.monotonic() < deadline, "the writer thread did not store the rows"
            time.sleep(0.01)
        assert by_size.queue_depth == by_time.queue_depth == 0
    finally:
        by_size.close()
        by_time.close()
    assert count(objects) == 11


def test_sampling_keeps_inputs_of_some_requests_and_every_prediction(
    objects: ObjectStore, writers,
) -> None:
    log = writers(sample_rate=0.5)
    for i in range(200):
        inputs = {"age": 20 + i, "city": "Lyon"}
        log.append(f"req-{i}", "credit", 1, i % 2, inputs=inputs, score=0.25)
        # A mirrored copy of the same request is sampled alike.
        log.append(f"req-{i}", "credit", 2, 1, inputs=inputs, role="shadow")
    log.append("forced", "credit", 1, 0, inputs={"age": 1, "city": "Nice"}, score=0.25,
               sampled=True)
    log.flush()

    table = PredictionLog(objects).window("credit", 1).to_pylist()
    sampled = [r for r in table if r["sampled"]]
    assert 60 <= len(sampled) <= 140
    assert all(r["in_age"] is not None and r["in_city"] is not None for r in sampled)
    assert all(r["in_age"] is None and r["in_city"] is None for r in table if not r["sampled"])
    assert all(r["prediction"] is not None and r["score"] == 0.25 for r in table)
    shadow = {r["request_id"]: r["sampled"] for r in PredictionLog(objects).window("credit", 2)
              .to_pylist()}
    assert all(shadow[r["request_id"]] == r["sampled"] for r in table if r["request_id"] != "forced")


def test_no_inputs_kept_at_rate_zero(objects: ObjectStore, writers) -> None:
    log = writers(sample_rate=0.0)
    log.append("r1", "credit", 1, "approve", inputs={"email": "ann@example.com"})
    log.flush()
    row = PredictionLog(objects).window().to_pylist()[0]
    assert row["sampled"] is False
    assert (row["prediction"], row["prediction_label"]) == (None, "approve")
    assert not any(name.startswith("in_") for name in row)


def test_columns_and_types(objects: ObjectStore, writers) -> None:
    log = writers()
    log.append("r1", "credit", 3, 1, inputs={"age": 41, "income": 1200.5, "city": "Lyon",
                                             "member": True}, latency_ms=2.5, score=0.8,
               deployment="prod/credit", role="candidate", row=2)
    log.append("r2", "credit", 3, None, status="error", error="ValueError: bad input")
    log.flush()
    table = PredictionLog(objects).window()
    assert table.schema.names == [
        "request_id", "row", "time", "env", "deployment", "model", "version", "role",
        "status", "error", "latency_ms", "prediction", "prediction_label", "score", "sampled",
        "in_age", "in_income", "in_city", "in_member",
    ]
    types = {f.name: f.type for f in table.schema}
    assert types["time"] == pa.timestamp("us", tz="UTC")
    assert (types["in_age"], types["in_income"], types["in_city"], types["in_member"]) == (
        pa.int64(), pa.float64(), pa.string(), pa.bool_())
    ok, error = table.to_pylist()
    assert ok | {"time": None} == {
        "request_id": "r1", "row": 2, "time": None, "env": "prod", "deployment": "prod/credit",
        "model": "credit", "version": 3, "role": "candidate", "status": "ok", "error": None,
        "latency_ms": 2.5, "prediction": 1.0, "prediction_label": None, "score": 0.8,
        "sampled": True, "in_age": 41, "in_income": 1200.5, "in_city": "Lyon",
        "in_member": True,
    }
    assert ok["time"] == T0
    assert (error["status"], error["error"], error["prediction"]) == (
        "error", "ValueError: bad input", None)
    assert error["in_age"] is None  # a row without inputs: nulls, not a narrower schema


def test_schemas_that_differ_are_read_together(objects: ObjectStore, writers) -> None:
    log = writers()
    log.append("a1", "credit", 1, 0, inputs={"age": 30, "zip": 69001})
    log.flush()
    log.append("a2", "credit", 1, 1, inputs={"age": 31.5, "zip": "69002"})  # widened
    log.append("b1", "credit", 2, 1, inputs={"age": 40, "city": "Lyon"})  # new column
    log.append("c1", "other", 1, 1, inputs={"text": ["a", "b"]})  # no column type: JSON
    log.flush()
    predictions = PredictionLog(objects)
    table = predictions.window("credit", 1)
    assert table.schema.field("in_age").type == pa.float64()
    assert table.schema.field("in_zip").type == pa.string()
    assert table.column("in_zip").to_pylist() == ["69001", "69002"]
    every = {r["request_id"]: r for r in predictions.window().to_pylist()}
    assert every["b1"]["in_city"] == "Lyon" and every["a1"]["in_city"] is None
    assert every["c1"]["in_text"] == '["a","b"]'
    assert count(objects) == 4


def test_windows_filter_by_model_version_time_deployment_and_env(
    objects: ObjectStore, writers, manual_clock: ManualClock,
) -> None:
    prod = writers(env="prod")
    staging = writers(env="staging")
    for hour in range(48):  # two days, one request an hour per model version
        for model, version in (("credit", 1), ("credit", 2), ("churn", 1)):
            prod.append(f"{model}-{version}-{hour}", model, version, 0.1,
                        deployment=f"prod/{model}", latency_ms=hour)
        manual_clock.advance(timedelta(hours=1))
    staging.append("s", "credit", 2, 0.2, time=T0 + timedelta(hours=5))
    prod.flush()
    staging.flush()
    log = PredictionLog(objects)

    assert log.window().num_rows == 48 * 3 + 1
    assert log.window("credit").num_rows == 48 * 2 + 1
    assert log.window("credit", 2, env="prod").num_rows == 48
    assert log.window(version=1).num_rows == 48 * 2
    assert log.window(deployment="prod/churn").num_rows == 48
    day2 = log.window("credit", 1, start=T0 + timedelta(days=1))
    assert day2.num_rows == 24
    hours = log.window("credit", 2, start=T0 + timedelta(hours=5), end=T0 + timedelta(hours=8))
    assert sorted(hours["latency_ms"].to_pylist()) == [0.0, 5.0, 6.0, 7.0]  # end excluded
    assert hours.column("env").to_pylist().count("staging") == 1
    across = log.window(start=T0 + timedelta(hours=23), end=T0 + timedelta(hours=25),
                        columns=["model", "time"])
    assert across.schema.names == ["model", "time"] and across.num_rows == 6
    assert log.window("nope").num_rows == 0
    with pytest.raises(UsageError, match="unknown prediction log column 'latency' — did you "
                                         "mean 'latency_ms'"):
        log.window(columns=["latency"])


def test_batches_stream_a_window_in_bounded_memory(tmp_path: Path) -> None:
    objects = open_object_store(None, tmp_path / "objects")
    log = PredictionLogWriter(objects, env="prod", flush_interval_s=3600, max_rows=3_000)
    features = [f"f{i}" for i in range(20)]
    rows = 60_000
    for i in range(rows):
        log.append(f"r{i}", "big", 1, i * 0.5, inputs=dict.fromkeys(features, i * 1.0))
        if i % 3_000 == 2_999:
            log.flush()
    log.close()

    reader = PredictionLog(objects)
    whole = reader.window("big").nbytes
    pool = pa.default_memory_pool()
    base = pool.bytes_allocated()
    seen, peak, total = 0, 0, 0.0
    for batch in reader.batches("big", columns=["prediction", *(f"in_{f}" for f in features)],
                                batch_size=4096):
        seen += batch.num_rows
        total += pa.compute.sum(batch.column("in_f3")).as_py()
        peak = max(peak, pool.bytes_allocated() - base)
    assert seen == rows
    assert total == sum(range(rows))
    # A few segments in flight, whatever the window's length (20 segments here).
    assert peak < whole / 4, (peak, whole)


def test_labels_join_predictions_and_unknown_ids_are_counted(
    objects: ObjectStore, writers, manual_clock: ManualClock,
) -> None:
    log = writers()
    for i in range(10):
        log.append(f"r{i}", "credit", 1, "yes" if i % 2 else "no")
    log.append("batch", "credit", 1, "no", row=0)
    log.append("batch", "credit", 1, "yes", row=1)
    log.append("other-model", "churn", 1, 1.0)
    log.flush()
    manual_clock.advance(timedelta(hours=2))
    feedback = writers(FeedbackWriter)
    feedback.append("r1", "no")
    feedback.append("r2", "no")
    feedback.append("batch", "yes", row=1)
    feedback.append("other-model", 1)
    feedback.append("ghost", "yes")
    feedback.append("r2", "yes", row=7)  # a row the request never had
    feedback.flush()
    manual_clock.advance(timedelta(minutes=5))
    feedback.append("r1", "yes")  # a correction: the latest label wins
    feedback.flush()

    result = PredictionLog(objects).labelled("credit", 1, start=T0, end=T0 + timedelta(hours=1))
    assert (result.predictions, result.labelled, result.unknown_labels) == (12, 3, 2)
    assert result.coverage == pytest.approx(3 / 12)
    labels = {(r["request_id"], r["row"]): (r["prediction_label"], r["label"])
              for r in result.table.to_pylist()}
    assert labels[("r1", 0)] == ("yes", "yes")
    assert labels[("r2", 0)] == ("no", "no")
    assert labels[("batch", 1)] == ("yes", "yes")
    assert labels[("batch", 0)] == ("no", None)
    numeric = PredictionLog(objects).labelled("churn").table.to_pylist()[0]
    assert (numeric["prediction"], numeric["label"], numeric["label_value"]) == (1.0, "1", 1.0)


def test_feedback_rejects_what_cannot_be_joined(objects: ObjectStore, writers) -> None:
    feedback = writers(FeedbackWriter)
    with pytest.raises(UsageError, match="request_id"):
        feedback.append("", "yes")
    with pytest.raises(UsageError, match="no label"):
        feedback.append("r1", None)
    with pytest.raises(UsageError, match="feedback row 2 needs a non-empty request_id"):
        feedback.append_many(["a", "", "c"], [1, 1, 1])
    assert feedback.queue_depth == 0  # all or nothing
    assert feedback.append_many(["a", "b"], [1, 0.5], rows=[0, 1]) == 2
    feedback.flush()
    assert count(objects, "feedback") == 2


def test_a_big_feedback_file_goes_through_in_bounded_memory(objects: ObjectStore,
                                                           writers) -> None:
    feedback = writers(FeedbackWriter, max_rows=1000, max_pending_rows=1000)
    assert feedback.append_many([f"r{i}" for i in range(3500)], ["yes"] * 3500) == 3500
    feedback.close()
    assert (feedback.dropped_rows, count(objects, "feedback")) == (0, 3500)


# --------------------------------------------------------------------------- SQL


def test_query_over_an_empty_store_answers_zero(objects: ObjectStore) -> None:
    log = PredictionLog(objects)
    assert count(objects) == 0 and count(objects, "feedback") == 0
    columns = log.query("SELECT * FROM predictions").schema.names
    assert columns[:3] == ["request_id", "row", "time"] and "sampled" in columns
    assert log.query("SELECT * FROM feedback").schema.names == [
        "request_id", "row", "time", "label", "label_value"]
    empty = log.labelled("credit", start=T0)
    assert (empty.predictions, empty.labelled, empty.unknown_labels, empty.coverage) == (0, 0, 0, 0)
    assert log.window("credit").num_rows == 0


def test_query_can_be_narrowed_before_it_runs(objects: ObjectStore, writers,
                                             manual_clock: ManualClock) -> None:
    log = writers()
    for day in range(3):
        for model in ("credit", "churn"):
            log.append(f"{model}-{day}", model, 1, 0.5)
        manual_clock.advance(timedelta(days=1))
    log.flush()
    predictions = PredictionLog(objects)
    sql = "SELECT count(*) AS n FROM predictions a JOIN predictions b USING (request_id)"
    assert predictions.query(sql)["n"].to_pylist() == [6]
    assert predictions.query(sql, model="credit")["n"].to_pylist() == [3]
    assert predictions.query(sql, model="credit", start=T0 + timedelta(days=1),
                             end=T0 + timedelta(days=2))["n"].to_pylist() == [1]


def test_query_runs_sql_over_both_views(objects: ObjectStore, writers,
                                        manual_clock: ManualClock) -> None:
    log = writers()
    for i in range(100):
        log.append(f"r{i}", "credit", 1 + i % 2, i % 2, latency_ms=float(i),
                   status="error" if i % 10 == 0 else "ok")
        manual_clock.advance(60)
    log.flush()
    feedback = writers(FeedbackWriter)
    feedback.append_many([f"r{i}" for i in range(0, 100, 4)], [0] * 25)
    feedback.flush()
    result = PredictionLog(objects).query("""
        SELECT version, count(*) AS n,
               avg(CASE WHEN status = 'error' THEN 1 ELSE 0 END) AS error_rate,
               quantile_cont(latency_ms, 0.99) AS p99,
               count(f.label) AS labelled,
               max(p.time) AS last
        FROM predictions p LEFT JOIN feedback f USING (request_id, "row")
        WHERE p.time >= TIMESTAMPTZ '2026-01-01 00:00:00+00'
        GROUP BY version ORDER BY version""").to_pylist()
    assert [(r["version"], r["n"], r["error_rate"], r["labelled"]) for r in result] == [
        (1, 50, 0.2, 25), (2, 50, 0.0, 0)]
    assert result[0]["p99"] == pytest.approx(97.02)  # 0,2…98: 96 + 0.51 × 2
    assert result[1]["last"] == T0 + timedelta(minutes=99)


def test_bad_sql_is_a_usage_error_with_duckdbs_message(objects: ObjectStore) -> None:
    log = PredictionLog(objects)
    with pytest.raises(UsageError, match='syntax error at or near "SELEC"'):
        log.query("SELEC 1")
    with pytest.raises(UsageError, match="predictoins does not exist"):
        log.query("SELECT * FROM predictoins")
    with pytest.raises(UsageError, match="disabled by configuration"):  # only the two views
        log.query("SELECT * FROM read_csv('/etc/passwd')")


# -------------------------------------------------------------------- durability


class FlakyBackend:
    """The real backend, except that the next ``failures`` log writes fail — before the
    segment is stored, or after (the PUT landed but its answer was lost)."""

    def __init__(self, backend: Backend, failures: int, *, after_storing: bool = False) -> None:
        self._backend = backend
        self.failures = failures
        self.after_storing = after_storing

    def put_log(self, key: str, data: bytes) -> None:
        if self.failures and not self.after_storing:
            self.failures -= 1
            raise StoreError("object store s3://x: upload failed: connection refused")
        self._backend.put_log(key, data)
        if self.failures:
            self.failures -= 1
            raise StoreError("object store s3://x: upload failed: read timeout")

    def __getattr__(self, name: str) -> object:
        return getattr(self._backend, name)


def test_a_failed_write_keeps_the_rows_for_the_next_flush(
    objects: ObjectStore, manual_clock: ManualClock, caplog: pytest.LogCaptureFixture,
) -> None:
    flaky = ObjectStore(FlakyBackend(objects.backend, failures=1))  # type: ignore[arg-type]
    log = PredictionLogWriter(flaky, env="prod", clock=manual_clock, flush_interval_s=3600)
    for i in range(30):
        log.append(f"r{i}", "credit", 1, 0.5, inputs={"email": f"person{i}@example.com"})
    with caplog.at_level(logging.WARNING, logger="dsops.serving.predlog"):
        with pytest.raises(StoreError, match="30 rows could not be stored"):
            log.flush()
        assert (log.queue_depth, log.write_failures, count(objects)) == (30, 1, 0)
        log.append("r30", "credit", 1, 0.5, inputs={"email": "late@example.com"})
        assert log.queue_depth == 31
        assert log.flush() == 31
    log.close()
    assert (log.queue_depth, log.rows_written, count(objects)) == (0, 31, 31)
    assert len(objects.list_logs()) == 2  # the failed segment, then the new row's
    assert "connection refused" in caplog.text and "30 rows" in caplog.text
    assert "example.com" not in caplog.text  # input values are never logged


def test_a_write_retried_after_a_lost_answer_stores_no_duplicates(
    objects: ObjectStore, manual_clock: ManualClock,
) -> None:
    flaky = ObjectStore(FlakyBackend(objects.backend, failures=1,  # type: ignore[arg-type]
                                     after_storing=True))
    log = PredictionLogWriter(flaky, env="prod", clock=manual_clock, flush_interval_s=3600)
    for i in range(30):
        log.append(f"r{i}", "credit", 1, 0.5)
    with pytest.raises(StoreError, match="read timeout"):
        log.flush()
    assert log.flush() == 30
    log.close()
    assert count(objects) == 30 and len(objects.list_logs()) == 1


def test_close_retries_a_store_that_blinks(objects: ObjectStore, manual_clock: ManualClock,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("dsops.serving.predlog.FINAL_RETRY_PAUSE_S", 0.01)
    flaky = ObjectStore(FlakyBackend(objects.backend, failures=2))  # type: ignore[arg-type]
    log = FeedbackWriter(flaky, clock=manual_clock, flush_interval_s=3600)
    log.append("r1", "yes")
    log.close()
    assert count(objects, "feedback") == 1


WRITER_SCRIPT = textwrap.dedent("""
    import signal, sys, time
    from pathlib import Path
    from dsops.objects import open_object_store
    from dsops.serving.predlog import PredictionLogWriter

    url, root, rows = sys.argv[1] or None, Path(sys.argv[2]), int(sys.argv[3])
    log = PredictionLogWriter(open_object_store(url, root), env="prod", max_rows=1500)

    def stop(signum, frame):
        log.close()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    for i in range(rows):
        log.append(f"req-{i}", "credit", 1, i % 2, inputs={"age": i, "city": "Lyon"},
                   latency_ms=0.3)
    print("ready", flush=True)
    while True:
        time.sleep(1)
""")


def test_sigterm_after_appends_loses_nothing(objects: ObjectStore, tmp_path: Path) -> None:
    rows = 5000
    url = "" if objects.backend.is_local else objects.location
    root = tmp_path / "objects" if objects.backend.is_local else tmp_path / "state"
    script = tmp_path / "writer.py"
    script.write_text(WRITER_SCRIPT)
    process = subprocess.Popen([sys.executable, str(script), url, str(root), str(rows)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=os.environ.copy())
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready", process.stderr.read()
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0, process.stderr.read() if process.stderr else ""
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    table = PredictionLog(objects).window("credit", 1, columns=["request_id"])
    assert table.num_rows == rows
    assert len(set(table["request_id"].to_pylist())) == rows


# ----------------------------------------------------------------- object store


def test_log_segments_live_under_logs_and_never_show_half_written(objects: ObjectStore) -> None:
    objects.put_log("predictions/model=a/version=1/date=2026-01-01/x.parquet", b"one")
    objects.put_log("predictions/model=b/version=1/date=2026-01-01/y.parquet", b"two")
    objects.put_log("feedback/date=2026-01-01/z.parquet", b"three")
    assert objects.list_logs("predictions/model=a/") == [
        "predictions/model=a/version=1/date=2026-01-01/x.parquet"]
    assert len(objects.list_logs("predictions")) == 2
    assert len(objects.list_logs()) == 3
    assert objects.list_logs("predictions/model=zzz/") == []
    fs, root = objects.log_filesystem()
    with fs.open_input_file(f"{root}/feedback/date=2026-01-01/z.parquet") as f:
        assert f.read() == b"three"
    if objects.backend.is_local:
        assert list(objects.backend.staging_dir().iterdir()) == []
    for bad in ("../escape", "/abs", "a//b", "a/./b"):
        with pytest.raises(ValueError, match="invalid log key"):
            objects.put_log(bad, b"x")
