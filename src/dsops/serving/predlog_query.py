"""Reading the prediction log: time windows as Arrow (whole or streamed), predictions joined
with their late labels, and SQL over both through DuckDB.

Segments are pruned by their folders (model, version, day) before anything is opened, and
by ``time`` statistics inside each file. The files are read by pyarrow through the object
store's filesystem (local, or S3 through fsspec) and handed to DuckDB as Arrow datasets,
so DuckDB needs no extension and no direct access to files: its external access is off,
and a query cannot read anything but the two views.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from dsops.core.errors import UsageError
from dsops.objects.store import ObjectStore
from dsops.serving.predlog_schema import (
    COVERS_KEY,
    FEEDBACK,
    FEEDBACK_SCHEMA,
    PREDICTION_SCHEMA,
    TIME,
    is_compact,
    key_partitions,
    live_keys,
    prediction_prefix,
    utc_date,
    widened,
)

log = logging.getLogger("dsops.serving.predlog")

BATCH_ROWS = 65_536
# Labels join the predictions they answer; the ones received since a window's start are
# checked against the predictions logged from this long before it.
DEFAULT_LABEL_LOOKBACK = timedelta(days=7)
SCHEMA_CACHE_SIZE = 200_000  # segments whose schema a reader remembers (~40 MB of keys)


@dataclass(frozen=True)
class LabelledWindow:
    """A window of predictions with their latest labels, and the label bookkeeping."""

    table: pa.Table  # the window's columns + label, label_value, label_time (null: no label yet)
    predictions: int
    labelled: int
    unknown_labels: int  # labels received since the window's start for no logged prediction

    @property
    def coverage(self) -> float:
        """Share of the window's predictions whose label has arrived."""
        return self.labelled / self.predictions if self.predictions else 0.0


class PredictionLog:
    """Read the prediction log and feedback kept in an object store.

    Segments never change once written, so their schemas are cached: keep one instance
    around (the rollout controller, a monitor) to avoid re-reading footers."""

    def __init__(self, objects: ObjectStore, *, threads: int = 2,
                 memory_limit: str | None = None) -> None:
        self._objects = objects
        self._fs, self._root = objects.log_filesystem()
        self._remote = not objects.backend.is_local
        self._threads = threads
        self._memory_limit = memory_limit
        self._schemas: dict[str, pa.Schema | None] = {}
        # Of each compacted file read: the names of the segments it replaces.
        self.covers: dict[str, frozenset[str]] = {}
        self._interned: dict[str, pa.Schema] = {}

    # ------------------------------------------------------------------ predictions

    def window(
        self, model: str | None = None, version: int | None = None, *,
        deployment: str | None = None, env: str | None = None,
        start: datetime | None = None, end: datetime | None = None,
        columns: Sequence[str] | None = None,
    ) -> pa.Table:
        """Predictions logged in ``[start, end)`` matching every filter given."""
        dataset, where = self._predictions(model, version, deployment, env, start, end)
        return dataset.to_table(columns=_columns(dataset, columns), filter=where)

    def batches(
        self, model: str | None = None, version: int | None = None, *,
        deployment: str | None = None, env: str | None = None,
        start: datetime | None = None, end: datetime | None = None,
        columns: Sequence[str] | None = None, batch_size: int = BATCH_ROWS,
    ) -> Iterator[pa.RecordBatch]:
        """The same rows as ``window``, streamed: memory stays bounded by a few batches
        however long the window."""
        dataset, where = self._predictions(model, version, deployment, env, start, end)
        yield from dataset.to_batches(columns=_columns(dataset, columns), filter=where,
                                      batch_size=batch_size, batch_readahead=2,
                                      fragment_readahead=2)

    def schema(self, model: str | None = None, version: int | None = None) -> pa.Schema:
        """The columns of a model's (or every model's) predictions: the fixed ones, then
        one ``in_<feature>`` per input column ever logged."""
        return self._predictions(model, version, None, None, None, None)[0].schema

    def labelled(
        self, model: str | None = None, version: int | None = None, *,
        deployment: str | None = None, env: str | None = None,
        start: datetime | None = None, end: datetime | None = None,
        columns: Sequence[str] | None = None,
        label_lookback: timedelta = DEFAULT_LABEL_LOOKBACK,
    ) -> LabelledWindow:
        """The window joined with the latest label of each (request_id, row), plus how many
        labels received since ``start`` match no prediction logged from
        ``start - label_lookback`` on (any model): reported, never an error."""
        dataset, where = self._predictions(model, version, deployment, env, start, end)
        wanted = _columns(dataset, columns)
        if wanted is not None:
            wanted = list(dict.fromkeys(["request_id", "row", "time", *wanted]))
        feedback = self._feedback(since=start)
        known_since = start - label_lookback if start is not None else None
        known, known_where = self._predictions(None, None, None, None, known_since, None)
        with self._connect() as con:
            con.register("win", dataset.scanner(columns=wanted, filter=where).to_reader())
            con.register("feedback", feedback)
            con.register("known", known.scanner(columns=["request_id", "row"],
                                                filter=known_where).to_reader())
            con.register("received", feedback.scanner(
                columns=["request_id", "row"],
                filter=None if start is None else ds.field("time") >= _ts(start)).to_reader())
            table = _utc(con.sql("""
                WITH latest AS (
                    SELECT request_id, "row",
                           max_by({'label': label, 'label_value': label_value,
                                   'label_time': "time"}, "time") AS l
                    FROM feedback GROUP BY request_id, "row")
                SELECT win.*, l.label AS label, l.label_value AS label_value,
                       l.label_time AS label_time
                FROM win LEFT JOIN latest USING (request_id, "row")
                ORDER BY "time", request_id, "row"
                """).to_arrow_table())
            unknown = con.sql(
                'SELECT count(*) FROM received ANTI JOIN known USING (request_id, "row")'
            ).fetchall()[0][0]
        labelled = table.num_rows - table.column("label").null_count
        return LabelledWindow(table, table.num_rows, labelled, int(unknown))

    # -------------------------------------------------------------------------- SQL

    def query(
        self, sql: str, *, model: str | None = None, version: int | None = None,
        start: datetime | None = None, end: datetime | None = None,
    ) -> pa.Table:
        """Run DuckDB SQL over the views ``predictions`` and ``feedback``. A view with no
        segments yet is empty, with its columns. ``model``, ``version``, ``start`` and
        ``end`` narrow ``predictions`` (and ``start`` ``feedback``) before the query runs,
        so only the segments of those folders are opened."""
        dataset, where = self._predictions(model, version, None, None, start, end)
        feedback = self._feedback(since=start)
        with self._connect() as con:
            con.register("predictions", dataset if where is None else dataset.filter(where))
            con.register("feedback", feedback if start is None else
                         feedback.filter(ds.field("time") >= _ts(start)))
            try:
                result = con.sql(sql)
                return pa.table({}) if result is None else _utc(result.to_arrow_table())
            except Exception as exc:
                if not _is_duckdb_error(exc):
                    raise
                message = str(exc).strip()
                raise UsageError(f"prediction log query failed: {message}",
                                 hint="the views are `predictions` and `feedback`; quote "
                                      "column names that are SQL keywords") from None

    # --------------------------------------------------------------------- segments

    def _predictions(
        self, model: str | None, version: int | None, deployment: str | None, env: str | None,
        start: datetime | None, end: datetime | None,
    ) -> tuple[ds.Dataset, ds.Expression | None]:
        keys = self._keys(prediction_prefix(model, version), start, end)
        dataset = self.dataset(keys, PREDICTION_SCHEMA)
        conditions = []
        for name, value in (("model", model), ("version", version),
                            ("deployment", deployment), ("env", env)):
            if value is not None:
                conditions.append(ds.field(name) == value)
        if start is not None:
            conditions.append(ds.field("time") >= _ts(start))
        if end is not None:
            conditions.append(ds.field("time") < _ts(end))
        where = None
        for condition in conditions:
            where = condition if where is None else where & condition
        return dataset, where

    def _feedback(self, since: datetime | None = None) -> ds.Dataset:
        # Labels come after their predictions: a day of margin for clocks that disagree.
        keys = self._keys(f"{FEEDBACK}/", since - timedelta(days=1) if since else None, None)
        return self.dataset(keys, FEEDBACK_SCHEMA)

    def segments(self, prefix: str, start: datetime | None = None, end: datetime | None = None
                 ) -> tuple[list[str], set[str]]:
        """``(files to read, files replaced by a compacted one)`` under the folder ``prefix``
        (of ``logs/``), limited to the days ``[start, end)`` touches."""
        keys = self._keys_by_day(prefix, start, end)
        self.footers([k for k in keys if is_compact(k)])
        return live_keys(keys, self.covers)

    def _keys(self, prefix: str, start: datetime | None, end: datetime | None) -> list[str]:
        return self.segments(prefix, start, end)[0]

    def _keys_by_day(self, prefix: str, start: datetime | None, end: datetime | None
                     ) -> list[str]:
        first = utc_date(start) if start is not None else date.min
        last = utc_date(end - timedelta(microseconds=1)) if end is not None else date.max
        keys = []
        for key in self._objects.list_logs(prefix):
            if not key.endswith(".parquet"):
                continue
            day = key_partitions(key).get("date")
            try:
                if day is not None and not first <= date.fromisoformat(day) <= last:
                    continue
            except ValueError:
                continue
            keys.append(key)
        return keys

    def dataset(self, keys: list[str], base: pa.Schema) -> ds.Dataset:
        """The files ``keys`` as one dataset, their schemas unified over ``base``."""
        schemas = self.footers(keys)
        keys = [k for k in keys if schemas.get(k) is not None]
        if not keys:
            return ds.dataset(base.empty_table())
        schema = _unify(base, [s for s in schemas.values() if s is not None])
        return ds.FileSystemDataset.from_paths(
            [f"{self._root}/{key}" for key in keys], schema=schema,
            format=ds.ParquetFileFormat(), filesystem=self._fs)

    def footers(self, keys: list[str]) -> dict[str, pa.Schema | None]:
        """The schema of each file (None: unreadable), read once per reader; the names a
        compacted file replaces are kept aside (``segments`` uses them)."""
        missing = [k for k in keys if k not in self._schemas]

        def read(key: str) -> tuple[str, pa.Schema | None]:
            try:
                schema = pq.read_schema(f"{self._root}/{key}", filesystem=self._fs)
                covers = (schema.metadata or {}).get(COVERS_KEY)
                if covers is not None:
                    self.covers[key] = frozenset(covers.decode().split("\n"))
                    schema = schema.remove_metadata()
                # Segments of a (model, version) share a schema: keep one object for all.
                return key, self._interned.setdefault(schema.to_string(), schema)
            except (OSError, pa.ArrowInvalid) as exc:
                # A segment is complete or absent; a broken one (a disk fault, a tool
                # outside dsops) must not hide the others.
                log.warning("prediction log: skipping unreadable segment %s (%s)", key,
                            type(exc).__name__)
                return key, None

        if self._remote and len(missing) > 1:
            with ThreadPoolExecutor(8) as pool:  # one GET per footer: latency-bound
                self._schemas.update(pool.map(read, missing))
        else:
            self._schemas.update(map(read, missing))
        wanted = {k: self._schemas[k] for k in keys}
        if len(self._schemas) > SCHEMA_CACHE_SIZE:  # a long-lived reader: forget old days
            self._schemas = dict(wanted)
            self.covers = {k: v for k, v in self.covers.items() if k in wanted}
        return wanted

    def _connect(self) -> Any:
        import duckdb

        config: dict[str, Any] = {"enable_external_access": False, "threads": self._threads}
        if self._memory_limit:
            config["memory_limit"] = self._memory_limit
        return duckdb.connect(config=config)


def _unify(base: pa.Schema, schemas: list[pa.Schema]) -> pa.Schema:
    """The fixed columns in their order, then every input column at the type its segments
    meet at (int64 and float64 as float64, other disagreements as string)."""
    types: dict[str, pa.DataType] = {}
    for schema in {id(s): s for s in schemas}.values():  # interned: one object per schema
        for field in schema:
            if field.name in base.names:
                continue
            known = types.get(field.name)
            types[field.name] = field.type if known is None else widened(known, field.type)
    return pa.schema([*base, *(pa.field(name, kind) for name, kind in types.items())])


def _columns(dataset: ds.Dataset, columns: Sequence[str] | None) -> list[str] | None:
    if columns is None:
        return None
    names = dataset.schema.names
    for column in columns:
        if column not in names:
            import difflib

            close = difflib.get_close_matches(column, names, n=1)
            raise UsageError(f"unknown prediction log column {column!r}"
                             + (f" — did you mean {close[0]!r}?" if close else ""))
    return list(columns)


def _utc(table: pa.Table) -> pa.Table:
    """DuckDB labels its time zone columns with the machine's zone; the log's are UTC."""
    fields = [f.with_type(pa.timestamp(f.type.unit, tz="UTC"))
              if pa.types.is_timestamp(f.type) and f.type.tz is not None else f
              for f in table.schema]
    return table.cast(pa.schema(fields, metadata=table.schema.metadata))


def _ts(when: datetime) -> pa.Scalar:
    return pa.scalar(when, TIME)


def _is_duckdb_error(exc: BaseException) -> bool:
    import duckdb

    return isinstance(exc, duckdb.Error)
