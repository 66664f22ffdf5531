"""Gates: evaluate a model version's checks (metrics, regression against the champion,
fairness, data expectations, latency) and record the verdict as a GateResult."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select

from dsops.config.models import GateConfig
from dsops.core.errors import NotFound, UsageError
from dsops.core.ids import new_id
from dsops.core.refs import Ref
from dsops.gates.evaluation import (
    CLASSIFICATION_METRICS,
    FAIRNESS_FUNCTIONS,
    LATENCY_METRICS,
    REGRESSION_METRICS,
    EvalData,
    ModelEvaluation,
)
from dsops.gates.expr import Check, evaluate, parse_check
from dsops.store.models import GateResult
from dsops.workspace import Workspace

CHAMPION_SCOPE = "champion"
DATA_FUNCTIONS = ("expectations",)


class CheckVerdict(BaseModel):
    """One check of a gate: its value, threshold and verdict, and where the value came from."""

    check: str
    passed: bool
    value: Any = None
    op: str | None = None
    threshold: Any = None
    detail: str = ""
    source: str = ""


class GateReport(BaseModel):
    """A stored gate evaluation of one model version."""

    id: str
    model: str
    version: int
    ref: str
    passed: bool
    checks: list[CheckVerdict]
    inputs: dict[str, Any]
    at: datetime
    actor: str

    @property
    def failed(self) -> list[CheckVerdict]:
        return [c for c in self.checks if not c.passed]


class _Subject:
    """A model version's values: logged metrics, and (with evaluation data) measured ones."""

    def __init__(self, ref: str, metrics: Mapping[str, float], evaluation: ModelEvaluation | None,
                 eval_ref: str | None) -> None:
        self.ref, self.metrics, self.evaluation, self.eval_ref = ref, metrics, evaluation, eval_ref
        self.sources: dict[str, str] = {}

    def value(self, name: str) -> float | None:
        ev = self.evaluation
        if ev is not None and name in (*CLASSIFICATION_METRICS, *REGRESSION_METRICS):
            self.sources[name] = f"{self.ref} on {self.eval_ref}"
            return ev.metric(name)
        if name in self.metrics:
            self.sources[name] = f"logged by {self.ref}'s run"
            return float(self.metrics[name])
        if ev is not None and name in LATENCY_METRICS:
            self.sources[name] = f"{self.ref}, {ev.data.latency_rows} rows of {self.eval_ref}"
            return ev.latency(name)
        if ev is not None and name == "row_count":
            self.sources[name] = f"{self.eval_ref}"
            return float(ev.data.rows)
        return None


class _GateSource:
    """The value source of offline gates (see gates/expr.py's ValueSource)."""

    def __init__(self, service: GateService, candidate: _Subject, champion: _Subject | None) -> None:
        self.service, self.candidate, self.champion = service, candidate, champion

    def _subject(self, scope: str | None) -> _Subject:
        if scope == CHAMPION_SCOPE and self.champion is not None:
            return self.champion
        return self.candidate

    def value(self, name: str, scope: str | None) -> float | None:
        return self._subject(scope).value(name)

    def call(self, name: str, args: tuple[Any, ...], kwargs: Mapping[str, Any],
             scope: str | None) -> float | bool | None:
        if name in FAIRNESS_FUNCTIONS:
            subject = self._subject(scope)
            assert subject.evaluation is not None  # checked before evaluating
            by = _by(name, args, kwargs)
            subject.sources[f"{name}({by})"] = f"{subject.ref} on {subject.eval_ref} by {by}"
            return subject.evaluation.fairness(name, by)
        if name == "expectations":
            return self.service.expectations_pass(str(args[0]) if args else "")
        return None

    def known_names(self) -> list[str]:
        return sorted({*self.candidate.metrics, *CLASSIFICATION_METRICS, *REGRESSION_METRICS,
                       *LATENCY_METRICS, "row_count"})

    def known_functions(self) -> list[str]:
        return [*FAIRNESS_FUNCTIONS, *DATA_FUNCTIONS]


class GateService:
    """Evaluate gates and read their results."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self._expectation_results: dict[str, bool] = {}

    def evaluate(self, ref: str, *, checks: list[str] | None = None,
                 against: str | None = CHAMPION_SCOPE, eval_data: str | None = None) -> GateReport:
        """Run every check on ``ref`` and store the verdict (it also fails when a check
        fails: the report says which; the caller decides the exit code)."""
        from dsops.registry.service import RegistryService

        registry = RegistryService(self.ws)
        candidate_info = registry.show(ref)
        config = self.ws.config.gates.get(candidate_info.name, GateConfig())
        texts = checks if checks else config.checks
        if not texts:
            raise UsageError(f"no gate checks for {candidate_info.name}",
                             hint=f"declare gates.{candidate_info.name} in dsops.yaml, or pass "
                                  "--check 'auc >= 0.8'")
        parsed = [parse_check(text) for text in texts]
        champion_info = None
        if against:
            target = against if "@" in against else f"{candidate_info.name}@{against}"
            try:
                champion_info = registry.show(target)
            except NotFound:
                if "@" in against:
                    raise
        data_ref = eval_data or config.eval_data
        needs_data = _needs_eval_data(parsed, candidate_info.metrics)
        if needs_data and data_ref is None:
            raise UsageError(
                f"missing evaluation data: {needs_data[0]!r} needs it",
                hint=f"pass --eval-data data:NAME[@N] or set gates.{candidate_info.name}."
                     "eval_data in dsops.yaml")
        data = self._eval_data(data_ref, config) if data_ref and needs_data else None
        candidate = self._subject(candidate_info, data)
        champion = None
        if champion_info is not None and champion_info.version != candidate_info.version:
            champion = self._subject(champion_info, data)
        elif champion_info is not None:
            champion = candidate  # the champion itself re-gated: compare with itself
        source = _GateSource(self, candidate, champion)
        for check in parsed:
            _validate(check, source, data)
        verdicts = [self._verdict(check, source) for check in parsed]
        if champion is not None and champion is not candidate and champion.evaluation is not None:
            _measure_like(champion.evaluation, candidate.evaluation)  # every delta has two sides
        inputs: dict[str, Any] = {
            "checks": [str(c) for c in parsed], "eval_data": data.ref if data else None,
            "label": data.label if data else None, "rows": data.rows if data else None,
            "against": champion_info.ref if champion_info else None,
            "candidate_metrics": _finite(candidate.evaluation.measured()
                                         if candidate.evaluation else {}),
            "champion_metrics": _finite(champion.evaluation.measured()
                                        if champion and champion.evaluation else {}),
        }
        if data is not None and candidate.evaluation is not None and data.label:
            inputs["fairness"] = {by: candidate.evaluation.fairness_table(by)
                                  for by in config.sensitive if by in data.frame.columns}
        return self._store(candidate_info.name, candidate_info.version, verdicts, inputs)

    def results(self, ref: str) -> list[GateReport]:
        """Every stored gate evaluation of a version, newest first."""
        from dsops.registry.service import RegistryService

        registry = RegistryService(self.ws)
        info = registry.show(ref)
        row = registry.resolve(info.ref)
        with self.ws.store.read() as session:
            rows = session.execute(select(GateResult).where(GateResult.model_version_id == row.id)
                                   .order_by(GateResult.id.desc())).scalars().all()
            return [_report(info.name, info.version, r) for r in rows]

    def expectations_pass(self, data_ref: str) -> bool:
        """Whether a dataset version passes the expectations declared for it now."""
        if data_ref not in self._expectation_results:
            from dsops.data.expectations import check_expectations
            from dsops.data.service import DatasetService

            ref = Ref.parse(data_ref, "dataset reference")
            declared = self.ws.config.datasets.get(ref.name)
            if declared is None or not declared.expectations:
                raise UsageError(f"expectations({data_ref}): no expectations are declared for "
                                 f"dataset {ref.name!r} in dsops.yaml")
            table = DatasetService(self.ws).read_table(ref)
            report = check_expectations(table, declared.expectations)
            self._expectation_results[data_ref] = bool(report["passed"])
        return self._expectation_results[data_ref]

    def _verdict(self, check: Check, source: _GateSource) -> CheckVerdict:
        if source.champion is None and any(scope == CHAMPION_SCOPE for scope, _ in check.names()):
            return CheckVerdict(check=str(check), passed=True, detail="skipped: no champion yet",
                                source="no champion to compare with")
        subjects = [source.candidate, *([source.champion] if source.champion else [])]
        for subject in subjects:
            subject.sources = {}
        outcome = evaluate(check, source)
        used = [text for subject in subjects for text in subject.sources.values()]
        return CheckVerdict(check=outcome.check, passed=bool(outcome.passed),
                            value=_plain(outcome.value), op=outcome.op,
                            threshold=_plain(outcome.threshold), detail=outcome.detail,
                            source="; ".join(dict.fromkeys(used)))

    def _subject(self, info: Any, data: EvalData | None) -> _Subject:
        """A version's values: its logged metrics, and its predictions on ``data`` if any."""
        from dsops.registry.loading import load_registered

        evaluation = ModelEvaluation(load_registered(self.ws, info.ref), data) if data else None
        return _Subject(info.ref, info.metrics, evaluation, data.ref if data else None)

    def _eval_data(self, data_ref: str, config: GateConfig) -> EvalData:
        from dsops.data.service import DatasetService

        ref = Ref.parse(data_ref, "evaluation data reference")
        frame = DatasetService(self.ws).read_table(ref).to_pandas()
        version = DatasetService(self.ws).show(ref)
        return EvalData(ref=f"data:{version.ref}", frame=frame, label=config.label,
                        positive_label=config.positive_label, latency_rows=config.latency_rows)

    def _store(self, name: str, version: int, verdicts: list[CheckVerdict],
               inputs: dict[str, Any]) -> GateReport:
        from dsops.registry.service import RegistryService, model_node

        row = RegistryService(self.ws).resolve(f"{name}@{version}")
        passed = all(v.passed for v in verdicts)
        with self.ws.store.transaction() as session:
            result = GateResult(id=new_id(), model_version_id=row.id, passed=passed,
                                checks=[v.model_dump() for v in verdicts], inputs=inputs,
                                at=self.ws.now(), actor=self.ws.identity)
            session.add(result)
            self.ws.audit(session, "gate.evaluate", model_node(name, version),
                          {"passed": passed, "failed": [v.check for v in verdicts if not v.passed],
                           "eval_data": inputs.get("eval_data"), "against": inputs.get("against")})
            session.flush()
            return _report(name, version, result)


def _report(name: str, version: int, row: GateResult) -> GateReport:
    return GateReport(id=row.id, model=name, version=version, ref=f"{name}@{version}",
                      passed=row.passed, checks=[CheckVerdict(**c) for c in row.checks],
                      inputs=row.inputs, at=row.at, actor=row.actor)


def _by(function: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> str:
    by = kwargs.get("by", args[0] if args else None)
    if not by:
        raise UsageError(f"{function}() needs the sensitive column: {function}(by=COLUMN)")
    return str(by)


def _needs_eval_data(checks: list[Check], logged: Mapping[str, float]) -> list[str]:
    """The checks that need evaluation data (measured metrics, fairness, latency)."""
    needing = []
    measured = {*CLASSIFICATION_METRICS, *REGRESSION_METRICS, *LATENCY_METRICS, "row_count"}
    for check in checks:
        names = {name for _, name in check.names()}
        if any(c.name in FAIRNESS_FUNCTIONS for c in check.calls()) or any(
                name in measured and name not in logged for name in names):
            needing.append(str(check))
    return needing


def _validate(check: Check, source: _GateSource, data: EvalData | None) -> None:
    """Unknown names and functions, scopes and sensitive columns: usage errors raised
    before anything is computed."""
    known = set(source.known_names())
    if source.champion is not None:
        known |= set(source.champion.metrics)
    for scope, name in check.names():
        if scope not in (None, CHAMPION_SCOPE):
            raise UsageError(f"unknown scope {scope!r} in check {str(check)!r}: only "
                             f"'{CHAMPION_SCOPE}.' is known offline")
        if name not in known:
            raise UsageError(_unknown("metric", name, check, sorted(known)))
    for call in check.calls():
        if call.name not in source.known_functions():
            raise UsageError(_unknown("function", call.name, check, source.known_functions()))
        if call.name in FAIRNESS_FUNCTIONS:
            assert data is not None  # _needs_eval_data made sure
            data.column(_by(call.name, call.args, dict(call.kwargs)), f"{call.name}()")
            if data.label is None:
                raise UsageError(f"{call.name}() needs the label column of the evaluation data",
                                 hint="declare 'label:' under the model's gate in dsops.yaml")
        if call.name == "expectations" and (not call.args
                                            or not str(call.args[0]).startswith("data:")):
            raise UsageError("expectations() takes a dataset reference: expectations(data:NAME) "
                             f"in {str(check)!r}")


def _unknown(kind: str, name: str, check: Check, known: list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    hint = f" — did you mean {close[0]!r}?" if close else f" (known: {', '.join(known)})"
    return f"unknown {kind} {name!r} in check {str(check)!r}{hint}"


def _measure_like(target: ModelEvaluation, reference: ModelEvaluation | None) -> None:
    """Measure on ``target`` every value already measured on ``reference``."""
    for key in reference.measured() if reference else ():
        if key in LATENCY_METRICS:
            target.latency(key)
        elif "(" in key:
            function, by = key.rstrip(")").split("(", 1)
            target.fairness(function, by)
        else:
            target.metric(key)


def _finite(values: Mapping[str, float]) -> dict[str, float]:
    return {k: float(v) for k, v in values.items()
            if isinstance(v, (int, float)) and math.isfinite(v)}


def _plain(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
