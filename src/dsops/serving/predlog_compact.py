"""Keeping the prediction log small: compaction of its segments, and retention by day.

The gateway stores a segment per model version about every second: some 86,400 files a
day under constant traffic, each opened by every reader of that day. `compact` merges,
per folder (model, version, day; or a day of feedback), the segments no compacted file
replaces yet into one ``compact-<time>-<id>.parquet`` (at most `MAX_SEGMENTS` at a time),
whose footer names the segments it replaces (`predlog_schema.COVERS_KEY`). Readers read
the compacted file instead of those segments from the moment it exists
(`predlog_schema.live_keys`); the segments are deleted `GRACE` later, once no reader that
listed the folder before can still be reading them. Run every 10 minutes (``dsops serve``
does), a day ends as about 150 files.

Two compactions of one folder at once (two servers) may each write a file replacing some
of the same segments: readers choose among them so that every row is read once
(`predlog_schema.chosen_compacts`), and the one not chosen is deleted after `GRACE` too.
A compaction that took longer than half of `GRACE` between listing a folder and storing
its file drops that file: the segments it read may have been deleted meanwhile by a
compaction that saw them replaced.

`prune` deletes whole days before a cutoff, predictions and feedback alike, and is
audited; compaction changes no row and is not. `retention_cutoff` turns a retention
(``predictions.retention`` in dsops.yaml, or ``--older-than``) into that cutoff; ``dsops
serve`` prunes to it once a day.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from itertools import groupby
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from dsops.core.clock import as_utc
from dsops.core.durations import parse_retention
from dsops.core.ids import new_id
from dsops.objects.store import ObjectStore
from dsops.serving.predlog_query import PredictionLog
from dsops.serving.predlog_schema import (
    COMPACT_PREFIX,
    COVERS_KEY,
    FEEDBACK,
    FEEDBACK_SCHEMA,
    PREDICTION_SCHEMA,
    chosen_compacts,
    is_compact,
    key_partitions,
    prediction_prefix,
    utc_date,
)

GRACE = timedelta(minutes=10)
MAX_SEGMENTS = 5_000  # per compacted file: bounds a compaction's memory after a backlog
ROW_GROUP_ROWS = 65_536
COMPACT_EVERY = timedelta(minutes=10)  # how often ``dsops serve`` compacts
_STAMP = "%Y%m%dT%H%M%S"

_LOGS = ((prediction_prefix(), PREDICTION_SCHEMA), (f"{FEEDBACK}/", FEEDBACK_SCHEMA))


@dataclass(frozen=True)
class CompactionResult:
    """What one compaction did."""

    files: int  # compacted files written
    segments: int  # segments they replace
    rows: int
    deleted: int  # files removed: replaced more than GRACE ago


@dataclass(frozen=True)
class PruneResult:
    """What one prune did (or would do, for a dry run)."""

    before: date
    days: int  # (folder, day) pairs removed
    files: int


def compact(objects: ObjectStore, now: datetime, *, grace: timedelta = GRACE,
            max_segments: int = MAX_SEGMENTS) -> CompactionResult:
    """Compact every folder of the prediction log and feedback (see the module's text)."""
    reader = PredictionLog(objects)
    files = segments = rows = deleted = 0
    for prefix, base in _LOGS:
        listed_at = time.monotonic()
        keys = objects.list_logs(prefix)
        reader.footers([k for k in keys if is_compact(k)])
        for folder, in_folder in groupby(keys, key=lambda k: k.rpartition("/")[0]):
            todo, doomed = _plan(list(in_folder), reader.covers, now, grace)
            objects.delete_logs(doomed)
            deleted += len(doomed)
            for start in range(0, len(todo), max_segments):
                batch = todo[start:start + max_segments]
                data, count = _merge(reader, batch, base)
                if time.monotonic() - listed_at > grace.total_seconds() / 2:
                    return CompactionResult(files, segments, rows, deleted)  # see module text
                stamp = as_utc(now).strftime(_STAMP)
                objects.put_log(f"{folder}/{COMPACT_PREFIX}{stamp}-{new_id()}.parquet", data)
                files, segments, rows = files + 1, segments + len(batch), rows + count
    return CompactionResult(files, segments, rows, deleted)


def retention_cutoff(now: datetime, retention: str) -> date:
    """The first day kept under ``retention`` (e.g. ``90d``, at least a day): ``prune``
    deletes the days before it."""
    return utc_date(now - timedelta(seconds=parse_retention(retention)))


def prune(ws: Any, before: date, *, dry_run: bool = False) -> PruneResult:
    """Delete every file of the days before ``before`` (predictions and feedback). The
    deletion is audited first, so a delete that fails halfway is on record and a second
    run finishes it."""
    doomed: list[str] = []
    days: set[tuple[str, str]] = set()
    for prefix, _ in _LOGS:
        for key in ws.objects.list_logs(prefix):
            day = key_partitions(key).get("date")
            try:
                if day is None or date.fromisoformat(day) >= before:
                    continue
            except ValueError:
                continue
            doomed.append(key)
            days.add((key.rpartition("/")[0], day))
    result = PruneResult(before, len(days), len(doomed))
    if doomed and not dry_run:
        with ws.store.transaction() as session:
            ws.audit(session, "predictions.prune", f"logs before {before.isoformat()}",
                     {"days": result.days, "files": result.files})
        ws.objects.delete_logs(doomed)
    return result


def _plan(keys: list[str], covers: dict[str, frozenset[str]], now: datetime,
          grace: timedelta) -> tuple[list[str], list[str]]:
    """``(segments to compact, files to delete)`` of one folder's ``keys``."""
    folder = keys[0].rpartition("/")[0]
    compacts = {k: covers[k] for k in keys if is_compact(k) and k in covers}
    chosen = chosen_compacts(compacts)
    replaced_by = {f"{folder}/{name}": key for key in chosen for name in compacts[key]}

    def settled(compacted: str) -> bool:
        return as_utc(now) - _written_at(compacted) >= grace

    doomed = [k for k in keys if k in replaced_by and settled(replaced_by[k])]
    doomed += [k for k in compacts if k not in chosen and settled(k)]
    todo = [k for k in keys if not is_compact(k) and k not in replaced_by]
    return (todo if len(todo) > 1 else []), doomed


def _merge(reader: PredictionLog, keys: list[str], base: pa.Schema) -> tuple[bytes, int]:
    """The segments ``keys`` as one zstd Parquet file naming them in its footer."""
    dataset = reader.dataset(keys, base)
    names = "\n".join(k.rpartition("/")[2] for k in keys).encode()
    schema = dataset.schema.with_metadata({COVERS_KEY: names})
    sink = pa.BufferOutputStream()
    count = 0
    with pq.ParquetWriter(sink, schema, compression="zstd") as writer:
        pending: list[pa.RecordBatch] = []
        size = 0
        for batch in dataset.to_batches(batch_size=ROW_GROUP_ROWS):
            pending.append(batch)
            size += batch.num_rows
            if size >= ROW_GROUP_ROWS:
                writer.write_table(pa.Table.from_batches(pending, schema))
                count, pending, size = count + size, [], 0
        if pending:
            writer.write_table(pa.Table.from_batches(pending, schema))
            count += size
    return bytes(sink.getvalue()), count


def _written_at(key: str) -> datetime:
    """When a compacted file was written (UTC), from its name (``compact-YYYYmmddTHHMMSS-…``)."""
    stamp = key.rpartition("/")[2][len(COMPACT_PREFIX):].split("-", 1)[0]
    return datetime.strptime(stamp, _STAMP).replace(tzinfo=UTC)
