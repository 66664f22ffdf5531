"""The run filter and sort language: parsing, error carets, and the SQL it compiles to,
run against SQLite and PostgreSQL (and 100,000 runs on SQLite)."""

from __future__ import annotations

import random
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select

from dsops.core.errors import UsageError
from dsops.store import Store
from dsops.store.models import Run, RunLatestMetric, RunParam
from dsops.tracking.filter import (
    And,
    Comparison,
    Field,
    Not,
    Or,
    SortKey,
    parse_filter,
    parse_sort,
)
from dsops.tracking.filter_sql import compile_filter, compile_sort


def cmp(target: str, op: str, value: object) -> Comparison:
    scope, _, name = target.partition(".")
    return Comparison(Field(scope, name) if name else Field("attribute", target), op, value)  # type: ignore[arg-type]


A, B, C = cmp("metrics.a", ">", 1), cmp("params.b", "=", "x"), cmp("status", "=", "failed")

# ------------------------------------------------------------------------------ parser


@pytest.mark.parametrize(("text", "expected"), [
    ("metrics.a > 1 or params.b = 'x' and status = 'failed'", Or((A, And((B, C))))),
    ("metrics.a > 1 and params.b = 'x' or status = 'failed'", Or((And((A, B)), C))),
    ("(metrics.a > 1 or params.b = 'x') and status = 'failed'", And((Or((A, B)), C))),
    ("not metrics.a > 1 and params.b = 'x'", And((Not(A), B))),
    ("not (metrics.a > 1 and params.b = 'x')", Not(And((A, B)))),
    ("NOT not metrics.a > 1", Not(Not(A))),
    ("metrics.a > 1 AND params.b = 'x' Or status = 'failed'", Or((And((A, B)), C))),
    ("((metrics.a > 1))", A),
    ("metrics.a>1 and(params.b='x')", And((A, B))),
])
def test_precedence_and_grouping(text: str, expected: object) -> None:
    assert parse_filter(text) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("metrics.auc = 0.5", cmp("metrics.auc", "=", 0.5)),
    ("metrics.auc == 0.5", cmp("metrics.auc", "=", 0.5)),
    ("metrics.auc != 1", cmp("metrics.auc", "!=", 1)),
    ("metrics.auc < -2", cmp("metrics.auc", "<", -2)),
    ("metrics.auc <= 1e-3", cmp("metrics.auc", "<=", 0.001)),
    ("metrics.auc > .5", cmp("metrics.auc", ">", 0.5)),
    ("metrics.auc >= +2.5E+2", cmp("metrics.auc", ">=", 250.0)),
    ("params.model like 'lg%'", cmp("params.model", "like", "lg%")),
    ("params.model LIKE 'lg%'", cmp("params.model", "like", "lg%")),
    ("params.model not like 'lg%'", cmp("params.model", "not like", "lg%")),
    ("params.model in ('a', \"b\", 3)", cmp("params.model", "in", ("a", "b", 3))),
    ("params.model Not In ('a')", cmp("params.model", "not in", ("a",))),
    ("params.early_stop = TRUE", cmp("params.early_stop", "=", True)),
    ("params.early_stop != false", cmp("params.early_stop", "!=", False)),
    ("status = 'failed'", cmp("status", "=", "failed")),
    ("Created_By = 'a@b'", cmp("created_by", "=", "a@b")),
])
def test_every_operator_and_literal(text: str, expected: Comparison) -> None:
    assert parse_filter(text) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("metrics.val/loss < 1", Field("metrics", "val/loss")),
    ("metrics.val.auc < 1", Field("metrics", "val.auc")),
    ("params.optimizer-name = 'x'", Field("params", "optimizer-name")),
    ("metrics.`my metric` < 1", Field("metrics", "my metric")),
    ("metrics.`and or (not)` < 1", Field("metrics", "and or (not)")),
    ("params.`a``b` = 'x'", Field("params", "a`b")),
    ("METRICS.Auc < 1", Field("metrics", "Auc")),
    ("metrics.précision < 1", Field("metrics", "précision")),
])
def test_field_names(text: str, expected: Field) -> None:
    parsed = parse_filter(text)
    assert isinstance(parsed, Comparison) and parsed.field == expected


@pytest.mark.parametrize(("text", "value"), [
    (r"params.x = 'it\'s'", "it's"),
    (r'params.x = "say \"hi\""', 'say "hi"'),
    ('params.x = "it\'s"', "it's"),
    (r"params.x = 'a\\b'", "a\\b"),
    (r"params.x = 'tab\there'", "tab\there"),
    (r"params.x like '100\%'", "100\\%"),  # unknown escapes keep the backslash (for LIKE)
    ("params.x = 'and or not ( ) = >'", "and or not ( ) = >"),
    ("params.x = ''", ""),
])
def test_quoting(text: str, value: str) -> None:
    parsed = parse_filter(text)
    assert isinstance(parsed, Comparison) and parsed.value == value


def caret_error(text: str) -> tuple[str, int]:
    """The first line of the error and the column the caret points at (1-based)."""
    with pytest.raises(UsageError) as info:
        parse_filter(text)
    first, shown, caret = str(info.value).splitlines()
    assert shown == "  " + text
    assert caret.strip() == "^"
    return first, len(caret) - 2


@pytest.mark.parametrize(("text", "column", "message"), [
    ("metrics.auc > and params.model = 'lgbm'", 15, "expected a value after '>'"),
    ("metrics.auc > ", 15, "expected a value after '>'"),
    ("metrics.auc 0.8", 13, "expected an operator (=, !=, <, <=, >, >=, like, in) after 'metrics.auc'"),
    ("(metrics.auc > 1", 17, "expected ')' to close the '(' at column 1"),
    ("metrics.auc > 1)", 16, "expected 'and', 'or' or the end of the filter, got ')'"),
    ("metrics.auc > 1 and", 20,
     "expected a field (metrics.NAME, params.NAME or a run attribute) after 'and'"),
    ("metrics.auc > 1 params.x = 'a'", 17, "expected 'and', 'or' or the end of the filter"),
    ("params.model = 'lgbm", 16, "unterminated string: expected a closing '"),
    ("metrics.`my metric > 1", 9, "unterminated backquoted name"),
    ("metrics. > 1", 9, "expected a metric name after 'metrics.'"),
    ("status = running", 10, "expected a value after '=' (quote text: 'running')"),
    ("params.x in 'a'", 13, "expected '(' and a list of values after 'in'"),
    ("params.x in ('a' 'b')", 18, "expected ',' or ')' in the list of values"),
    ("params.x in ()", 14, "expected a value after 'in'"),
    ("metrics.auc > 'high'", 15, "expected a number: metrics.auc is a number"),
    ("metrics.auc like '0.%'", 1, "metrics.auc is a number: 'like' applies to text"),
    ("params.x like 3", 15, "expected a quoted pattern after 'like'"),
    ("status = 3", 10, "expected quoted text: status is text"),
    ("started_at > 'last week'", 14, "expected an ISO date or date-time"),
    ("started_at in ('2026-01-01')", 1, "started_at takes =, !=, <, <=, >, >="),
    ("metrics.auc ! 1", 13, "expected '!='"),
    ("metrics.auc > 1.2.3", 15, "expected a number, got '1.2.3'"),
    ("metrics.auc > 1 & params.x = 'a'", 17, "unexpected character '&'"),
    ("", 1, "empty filter"),
    ("metrics.auc > params.x", 15, "a field can only be compared with a literal"),
    ("metrics.auc > -x", 15, "unexpected character '-'"),
    ("params.x = 'a' or `b` = 1", 19, "expected 'metrics.' or 'params.' before a backquoted name"),
    ("params.flag < true", 15, "true/false take = and !="),
])
def test_malformed_filters_point_at_the_problem(text: str, column: int, message: str) -> None:
    first, caret_column = caret_error(text)
    assert first.startswith(f"invalid filter at column {column}: ")
    assert message in first
    assert caret_column == column


def test_unknown_attribute_suggests_and_lists_the_known_ones() -> None:
    first, column = caret_error("metrics.auc > 1 and stauts = 'failed'")
    assert column == 21
    assert "unknown run attribute 'stauts' — did you mean 'status'?" in first
    assert "known: id, name, status, kind, created_by, started_at, git_commit" in first
    first, _ = caret_error("metric.auc > 1")
    assert "did you mean 'metrics.auc'?" in first


def test_error_display_stays_on_one_line() -> None:
    with pytest.raises(UsageError) as info:
        parse_filter("metrics.auc >\n1 and")
    assert str(info.value).splitlines()[1:] == ["  metrics.auc > 1 and", " " * 21 + "^"]


@pytest.mark.parametrize("text", [
    "params.x = 'a'; DROP TABLE runs; --'",
    "params.x = 'a' ; DELETE FROM runs",
    "params.x = 'a'' OR 1=1 --'",
    "params.x = 'a' or 1 = 1",
    "name = 'x' union select * from runs",
    "__import__('os').system('true')",
])
def test_injection_attempts_are_rejected(text: str) -> None:
    with pytest.raises(UsageError, match="invalid filter at column"):
        parse_filter(text)


@pytest.mark.parametrize(("text", "message"), [
    ("metrics.auc sideways", "invalid sort at column 13: expected 'asc', 'desc', ',' or the end"),
    ("metrics.auc desc,", "invalid sort at column 18: expected a field to sort by"),
    ("statsu desc", "unknown run attribute 'statsu' — did you mean 'status'?"),
    ("metrics.auc > 1", "invalid sort at column 13"),
])
def test_malformed_sorts(text: str, message: str) -> None:
    with pytest.raises(UsageError, match="invalid sort") as info:
        parse_sort(text)
    assert message in str(info.value)


def test_blank_sort_is_no_sort() -> None:
    assert parse_sort("  ") == []


def test_sort_keys() -> None:
    assert parse_sort("metrics.auc desc, params.lr, started_at asc") == [
        SortKey(Field("metrics", "auc"), descending=True), SortKey(Field("params", "lr")),
        SortKey(Field("attribute", "started_at"))]


def test_parsing_imports_no_sqlalchemy() -> None:
    """A malformed filter is reported before SQLAlchemy (≈0.4 s) is imported."""
    code = ("import sys; from dsops.tracking.filter import parse_filter; "
            "parse_filter(\"metrics.auc > 0.8\"); print('sqlalchemy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    assert out.strip() == "False"


def test_compile_rejects_a_hand_built_nonsense_comparison() -> None:
    with pytest.raises(UsageError, match=r"metrics\.auc is a number"):
        compile_filter(cmp("metrics.auc", "=", "high"))
    with pytest.raises(UsageError, match="unknown run attribute 'owner'"):
        compile_filter(cmp("owner", "=", "x"))
    with pytest.raises(UsageError, match="unknown operator '<>'"):
        compile_filter(cmp("status", "<>", "x"))


# ------------------------------------------------------------- against real databases

T0 = datetime(2026, 1, 1, tzinfo=UTC)
MODELS = ("lgbm", "xgb", "rf")
NAMES = ("train-lgbm", "Train-xgb", "evaluate")
LRS = (("0.1", 0.1), ("0.01", 0.01), ("1e-3", 0.001))


@dataclass(frozen=True)
class FakeRun:
    """What the test inserts for run i: the oracle the expected ids are computed from."""

    i: int

    @property
    def id(self) -> str:
        return f"run-{self.i:02d}"

    @property
    def name(self) -> str:
        return NAMES[self.i % 3]

    @property
    def status(self) -> str:
        return {7: "failed", 9: "running"}.get(self.i % 10, "finished")

    @property
    def kind(self) -> str:
        return "stage" if self.i < 25 else "manual"

    @property
    def created_by(self) -> str:
        return "alice@example.com" if self.i % 2 == 0 else "bob@example.com"

    @property
    def started_at(self) -> datetime:
        return T0 + timedelta(hours=12 * self.i)  # 2026-01-01 00:00 … 2026-01-25 12:00

    @property
    def git_commit(self) -> str | None:
        return None if self.i % 5 == 0 else f"c{self.i}"

    @property
    def params(self) -> dict[str, tuple[str, float | None]]:
        i = self.i
        out: dict[str, tuple[str, float | None]] = {
            "model": (MODELS[i % 3], None), "lr": LRS[i % 3],
            "early_stop": ("true" if i % 2 else "false", None),
        }
        if i % 4:
            out["depth"] = (str(i % 8), float(i % 8))  # runs 0, 4, 8 … have no depth
        if i % 11:
            out["layers"] = ("auto", None) if i % 5 == 0 else (str(i % 5), float(i % 5))
        return out

    @property
    def metrics(self) -> dict[str, float]:
        i = self.i
        out = {"loss": round(1 - i / 50, 4), "val/loss": round(i / 100, 4),
               "my metric": float(i)}
        if i % 7 != 3:
            out["auc"] = i / 50  # runs 3, 10, 17 … have no auc
        return out


RUNS = [FakeRun(i) for i in range(50)]


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """A store holding the 50 runs of RUNS."""
    opened = Store(store_url)
    with opened.transaction() as session:
        session.execute(insert(Run), [
            {"id": r.id, "name": r.name, "kind": r.kind, "status": r.status,
             "created_by": r.created_by, "started_at": r.started_at, "git_commit": r.git_commit}
            for r in RUNS])
        session.execute(insert(RunParam), [
            {"run_id": r.id, "key": k, "value": v, "number": n}
            for r in RUNS for k, (v, n) in r.params.items()])
        session.execute(insert(RunLatestMetric), [
            {"run_id": r.id, "key": k, "value": v, "step": 10} for r in RUNS for k, v in r.metrics.items()])
    yield opened
    opened.close()


def ids(store: Store, filter_text: str | None = None, sort_text: str = "id") -> list[str]:
    query = select(Run.id)
    if filter_text is not None:
        query = query.where(compile_filter(parse_filter(filter_text)))
    with store.read() as session:
        return list(session.execute(query.order_by(*compile_sort(parse_sort(sort_text)))).scalars())


def where(predicate: Callable[[FakeRun], bool]) -> list[str]:
    return [r.id for r in RUNS if predicate(r)]


def param_number(r: FakeRun, key: str) -> float | None:
    return r.params.get(key, ("", None))[1]


def test_numbers_and_text_params(store: Store) -> None:
    assert ids(store, "metrics.auc > 0.8 and params.model = 'lgbm'") == \
        where(lambda r: r.metrics.get("auc", 0) > 0.8 and r.i % 3 == 0) == \
        ["run-42", "run-48"]
    # A number compares run_params.number, a string the text as logged.
    assert ids(store, "params.depth >= 6") == where(lambda r: (param_number(r, "depth") or 0) >= 6)
    assert ids(store, "params.depth = '6'") == where(lambda r: r.params.get("depth", ("",))[0] == "6")
    assert ids(store, "params.lr = 0.001") == where(lambda r: r.i % 3 == 2)  # logged as '1e-3'
    assert ids(store, "params.lr = '0.001'") == []
    assert ids(store, "params.layers > 2") == where(lambda r: (param_number(r, "layers") or 0) > 2)
    assert ids(store, "params.layers != 3") == \
        where(lambda r: "layers" in r.params and param_number(r, "layers") != 3)  # 'auto' differs
    assert ids(store, "params.layers = 'auto'") == ["run-05", "run-10", "run-15", "run-20",
                                                    "run-25", "run-30", "run-35", "run-40", "run-45"]
    assert ids(store, "params.early_stop = true") == where(lambda r: r.i % 2 == 1)
    assert ids(store, "params.early_stop != TRUE") == where(lambda r: r.i % 2 == 0)


def test_missing_keys_and_not_equal(store: Store) -> None:
    without_auc = where(lambda r: "auc" not in r.metrics)
    assert without_auc == ["run-03", "run-10", "run-17", "run-24", "run-31", "run-38", "run-45"]
    # `!=` means "has it and differs"; `not … =` also takes the runs lacking it.
    assert ids(store, "metrics.auc != 0.5") == where(lambda r: r.metrics.get("auc", 0.5) != 0.5)
    assert ids(store, "not metrics.auc = 0.5") == where(lambda r: r.metrics.get("auc") != 0.5)
    assert set(ids(store, "not metrics.auc = 0.5")) - set(ids(store, "metrics.auc != 0.5")) == \
        set(without_auc)
    assert ids(store, "params.depth != 3") == \
        where(lambda r: param_number(r, "depth") is not None and param_number(r, "depth") != 3)
    assert ids(store, "not params.depth >= -100") == where(lambda r: "depth" not in r.params)
    assert ids(store, "metrics.nonexistent > 0 or metrics.nonexistent <= 0") == []
    assert ids(store, "git_commit != 'c1'") == where(lambda r: r.git_commit not in (None, "c1"))


def test_like_and_in(store: Store) -> None:
    # LIKE is case-sensitive on both backends ('Train-xgb' does not match 'train%').
    assert ids(store, "name like 'train%'") == where(lambda r: r.name == "train-lgbm")
    assert ids(store, "name like '%ain-%'") == where(lambda r: r.name != "evaluate")
    assert ids(store, "name like '_rain-xgb'") == where(lambda r: r.name == "Train-xgb")
    assert ids(store, "name not like '%-%'") == where(lambda r: r.name == "evaluate")
    assert ids(store, "params.model like 'x%' or params.model like '%f'") == where(lambda r: r.i % 3 > 0)
    assert ids(store, "created_by like 'alice_%'") == where(lambda r: r.i % 2 == 0)
    assert ids(store, r"created_by like 'alice\_%'") == []  # an escaped _ is a literal one
    assert ids(store, r"created_by like '%example.com\\'") == []  # a trailing backslash
    assert ids(store, "status in ('failed', 'running')") == where(lambda r: r.i % 10 in (7, 9))
    assert ids(store, "status not in ('finished')") == where(lambda r: r.i % 10 in (7, 9))
    assert ids(store, "params.layers in (1, 'auto')") == \
        where(lambda r: r.params.get("layers", ("",))[0] in ("1", "auto"))
    assert ids(store, "params.layers not in (1, 2, 3, 4)") == \
        where(lambda r: r.params.get("layers", ("",))[0] == "auto")
    assert ids(store, "metrics.`my metric` in (1, 2.0, 49)") == ["run-01", "run-02", "run-49"]
    assert ids(store, "id in ('run-01', 'run-77')") == ["run-01"]


def test_attributes_and_time(store: Store) -> None:
    assert ids(store, "kind = 'manual' or created_by = 'bob@example.com' and metrics.loss < 0.6") == \
        where(lambda r: r.kind == "manual" or (r.created_by == "bob@example.com" and r.metrics["loss"] < 0.6))
    assert ids(store, "(params.model = 'rf' or params.model = 'xgb') and not status = 'failed'") == \
        where(lambda r: r.i % 3 > 0 and r.status != "failed")
    assert ids(store, "metrics.val/loss < 0.05 and metrics.`my metric` >= 2") == \
        ["run-02", "run-03", "run-04"]
    # A date is the whole UTC day; a date-time an instant (naive means UTC).
    assert ids(store, "started_at = '2026-01-03'") == ["run-04", "run-05"]
    assert ids(store, "started_at >= '2026-01-05' and started_at < '2026-01-06T12:00:00Z'") == \
        ["run-08", "run-09", "run-10"]
    assert ids(store, "started_at <= '2026-01-02'") == ["run-00", "run-01", "run-02", "run-03"]
    assert ids(store, "started_at > '2026-01-24'") == ["run-48", "run-49"]
    assert ids(store, "started_at < '2026-01-01T14:00:00+02:00'") == ["run-00"]
    assert ids(store, "started_at <= '2026-01-01T14:00:00+02:00'") == ["run-00", "run-01"]
    assert len(ids(store, "started_at != '2026-01-03'")) == 48


def test_sorts(store: Store) -> None:
    def none_last(value: float | None, descending: bool = False) -> tuple[bool, float]:
        return (value is None, 0.0 if value is None else (-value if descending else value))

    with_auc = sorted(RUNS, key=lambda r: (none_last(r.metrics.get("auc"), True), r.id))
    assert ids(store, sort_text="metrics.auc desc, id") == [r.id for r in with_auc]
    assert ids(store, sort_text="metrics.auc, id")[-7:] == where(lambda r: "auc" not in r.metrics)
    assert ids(store, sort_text="metrics.auc ASC, id")[:3] == ["run-00", "run-01", "run-02"]
    # Params: numbers numerically, then text, then runs without it; each way round.
    layers = ids(store, sort_text="params.layers desc, id")
    numeric = sorted((r for r in RUNS if param_number(r, "layers") is not None),
                     key=lambda r: (-(param_number(r, "layers") or 0), r.id))
    assert layers[:len(numeric)] == [r.id for r in numeric]
    assert layers[len(numeric):] == where(lambda r: r.params.get("layers", ("",))[0] == "auto") + \
        where(lambda r: "layers" not in r.params)
    assert ids(store, sort_text="params.lr, id")[:3] == ["run-02", "run-05", "run-08"]  # 1e-3 < 0.01
    assert ids(store, sort_text="started_at desc")[:2] == ["run-49", "run-48"]
    assert ids(store, "kind = 'stage'", "name desc, started_at DESC")[:3] == ["run-24", "run-21", "run-18"]
    assert ids(store, sort_text="git_commit desc, id")[-10:] == where(lambda r: r.git_commit is None)


def test_injection_is_only_ever_a_string(store: Store) -> None:
    assert ids(store, "params.model = \"lgbm'; DROP TABLE runs; --\"") == []
    assert ids(store, "name = 'x\\' OR 1=1 --'") == []
    assert ids(store, "params.`model'; DROP TABLE run_params; --` = 'x'") == []
    with store.read() as session:
        assert session.scalar(select(func.count()).select_from(Run)) == 50
        assert session.scalar(select(func.count()).select_from(RunParam)) == \
            sum(len(r.params) for r in RUNS)


# ------------------------------------------------------------------------ performance

PERF_RUNS = 100_000
MODEL_CHOICES = ("lgbm", "xgb", "rf", "svm", "knn")


def build_many_runs(store: Store, count: int) -> tuple[list[tuple[str, str, str, float | None]],
                                                     list[tuple[str, str, float, int]]]:
    """``count`` runs, each with params model, p1…p4 and metrics m0…m4 (random, seeded)."""
    rng = random.Random(7)
    runs = [{"id": f"{i:032x}", "name": f"run-{i}", "kind": "stage", "status": "finished",
             "created_by": "alice@example.com", "started_at": T0 + timedelta(seconds=i)}
            for i in range(count)]
    params: list[tuple[str, str, str, float | None]] = []
    metrics: list[tuple[str, str, float, int]] = []
    for i in range(count):
        run_id = f"{i:032x}"
        params.append((run_id, "model", rng.choice(MODEL_CHOICES), None))
        params.extend((run_id, key, str(n), float(n))
                      for key, n in zip(("p1", "p2", "p3", "p4"), rng.choices(range(100), k=4),
                                        strict=True))
        metrics.extend((run_id, key, rng.random(), 1) for key in ("m0", "m1", "m2", "m3", "m4"))
    with store.transaction() as session:
        session.execute(insert(Run.__table__), runs)  # SQLAlchemy formats the datetimes
        # The million param and metric rows go straight to the driver's executemany: about
        # half the time of ``session.execute(insert(...), rows)``, which spends ~10 µs a row
        # building parameters (17–26 s in all on a busy 2-core machine, against 10–15 s).
        connection = session.connection()
        connection.exec_driver_sql(
            "INSERT INTO run_params (run_id, key, value, number) VALUES (?, ?, ?, ?)", params)
        connection.exec_driver_sql(
            "INSERT INTO run_latest_metrics (run_id, key, value, step) VALUES (?, ?, ?, ?)", metrics)
    return params, metrics


@pytest.mark.timeout(120)
def test_filter_stays_fast_at_100k_runs(tmp_path: Path) -> None:
    """100,000 runs × 5 params × 5 metrics on SQLite: a filter on one metric and one param
    answers in well under a second."""
    store = Store(f"sqlite:///{tmp_path}/perf.db")
    try:
        started = time.perf_counter()
        params, metrics = build_many_runs(store, PERF_RUNS)
        built = time.perf_counter() - started
        lgbm = {run_id for run_id, key, value, _ in params if key == "model" and value == "lgbm"}
        expected = sorted(run_id for run_id, key, value, _ in metrics
                          if key == "m0" and value > 0.99 and run_id in lgbm)
        timings: dict[str, float] = {}
        queries = {
            "metric and text param": (select(Run).where(compile_filter(parse_filter(
                "metrics.m0 > 0.99 and params.model = 'lgbm'")))),
            "metric and number param": (select(Run).where(compile_filter(parse_filter(
                "metrics.m0 > 0.99 and params.p1 < 20")))),
            "param filter, metric sort, limit 100": (select(Run).where(compile_filter(parse_filter(
                "params.p2 >= 50"))).order_by(*compile_sort(parse_sort("metrics.m1 desc"))).limit(100)),
        }
        found: dict[str, list[str]] = {}
        for label, query in queries.items():
            with store.read() as session:
                started = time.perf_counter()
                found[label] = [run.id for run in session.execute(query).scalars()]
                timings[label] = time.perf_counter() - started
        print(f"\nbuilt {PERF_RUNS:,} runs in {built:.1f} s; "
              + "; ".join(f"{k}: {v * 1000:.0f} ms" for k, v in timings.items()))
        assert sorted(found["metric and text param"]) == expected and len(expected) > 100
        assert len(found["param filter, metric sort, limit 100"]) == 100
        assert max(timings.values()) < 1.0, timings
    finally:
        store.close()
