"""Monitors: over a window of a deployment's prediction log, compute drift against the
training data, data quality, service figures and accuracy once labels arrive; evaluate the
alert rules; open (or update) incidents and run their actions; store every evaluation."""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select

from dsops.config.models import MonitorConfig
from dsops.core.clock import as_utc
from dsops.core.durations import parse_duration
from dsops.core.errors import NotFound
from dsops.core.ids import new_id
from dsops.monitoring.drift_results import json_ready
from dsops.monitoring.values import MonitorSource, accuracy_values, service_values
from dsops.store.models import MonitorEvaluation
from dsops.workspace import Workspace

REFERENCE_ROWS = 50_000  # rows of the reference the model predicts for prediction drift
REFERENCES_KEPT = 8  # references a long-lived MonitorService keeps in memory


class RuleResult(BaseModel):
    """One alert rule in one evaluation."""

    rule: str
    firing: bool
    detail: str
    value: Any = None
    threshold: Any = None
    incident: str | None = None
    actions: list[dict[str, Any]] = []


class MonitorResult(BaseModel):
    """One evaluation of a monitor."""

    id: str
    monitor: str
    at: datetime
    window_start: datetime
    window_end: datetime
    env: str
    model: str
    version: int | None
    deployment_id: str | None = None
    status: str  # ok | firing | no_data
    detail: str = ""
    values: dict[str, Any] = {}
    columns: dict[str, dict[str, Any]] = {}
    rules: list[RuleResult] = []


class MonitorService:
    """Evaluate monitors (once, or those due) and read their history."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        # (dataset version, model version, features) -> what `_reference` returns: a
        # long-lived service (dsops serve's timer) reads the reference and predicts on it
        # once, not at every evaluation. Both versions are immutable.
        self._references: OrderedDict[tuple[str, str, str], tuple[str, Any, list[str], Any]] = \
            OrderedDict()

    def run(self, name: str | None = None, *, now: datetime | None = None) -> list[MonitorResult]:
        """Evaluate one monitor, or every monitor declared in dsops.yaml."""
        names = [name] if name else sorted(self.ws.config.monitors)
        for monitor in names:
            self._config(monitor)
        return [self._evaluate(monitor, now or self.ws.now()) for monitor in names]

    def run_due(self, now: datetime | None = None, *, env: str | None = None) -> list[MonitorResult]:
        """Evaluate the monitors (of ``env``, if given) whose last evaluation is older than
        their ``every``."""
        now = now or self.ws.now()
        due = []
        with self.ws.store.read() as session:
            for name, config in sorted(self.ws.config.monitors.items()):
                if env and config.deployment.split("/")[0] != env:
                    continue
                last = session.execute(select(MonitorEvaluation.at)
                                       .where(MonitorEvaluation.monitor == name)
                                       .order_by(MonitorEvaluation.at.desc()).limit(1)).scalar()
                if last is None or now - as_utc(last) >= timedelta(seconds=parse_duration(config.every)):
                    due.append(name)
        return [self._evaluate(name, now) for name in due]

    def history(self, name: str, *, limit: int = 200) -> list[MonitorResult]:
        """Stored evaluations of a monitor, oldest first."""
        self._config(name)
        with self.ws.store.read() as session:
            rows = session.execute(select(MonitorEvaluation).where(MonitorEvaluation.monitor == name)
                                   .order_by(MonitorEvaluation.at.desc()).limit(limit)).scalars().all()
            return [_result(row) for row in reversed(rows)]

    # --- one evaluation ----------------------------------------------------------------

    def _evaluate(self, name: str, now: datetime) -> MonitorResult:
        from dsops.gates.expr import parse_check, validate
        from dsops.rollout.service import RolloutService

        config = self._config(name)
        env, model = config.deployment.split("/")
        rules = [parse_check(rule.when) for rule in config.alerts]
        for check in rules:  # unknown names: a usage error before anything is computed
            validate(check, MonitorSource(name, {}, {}))
        start = now - timedelta(seconds=parse_duration(config.window or config.every))
        route = next((r for r in RolloutService(self.ws).routes(env) if r.model == model), None)
        result = MonitorResult(id=new_id(), monitor=name, at=now, window_start=start,
                               window_end=now, env=env, model=model,
                               version=route.stable if route else None,
                               deployment_id=route.stable_deployment if route else None,
                               status="no_data")
        if route is None or route.stable is None:
            result.detail = f"{model} is not deployed in {env}"
            return self._store(result)
        from dsops.serving.predlog_query import PredictionLog

        window = PredictionLog(self.ws.objects).labelled(model, route.stable, env=env, start=start,
                                                         end=now)
        if window.predictions == 0:
            result.detail = "no predictions in the window"
            return self._store(result)
        columns = {c: window.table[c].to_numpy(zero_copy_only=False) for c in window.table.column_names}
        values: dict[str, Any] = {**service_values(columns),
                                  **accuracy_values(columns, positive_label=config.positive_label),
                                  "unknown_labels": float(window.unknown_labels)}
        drift_values, per_column = self._drift(config, model, route.stable, window.table)
        values.update(drift_values)
        result.values, result.columns = values, per_column
        source = MonitorSource(name, values, per_column)
        result.rules = [self._rule(name, config, rule, check, source, result, now)
                        for rule, check in zip(config.alerts, rules, strict=True)]
        result.status = "firing" if any(r.firing for r in result.rules) else "ok"
        return self._store(result)

    def _rule(self, name: str, config: MonitorConfig, rule: Any, check: Any, source: MonitorSource,
              result: MonitorResult, now: datetime) -> RuleResult:
        from dsops.gates.expr import evaluate
        from dsops.monitoring import actions
        from dsops.monitoring.incidents import IncidentService

        outcome = evaluate(check, source)
        out = RuleResult(rule=rule.when, firing=outcome.passed is True, detail=outcome.detail,
                         value=outcome.value, threshold=outcome.threshold)
        incidents = IncidentService(self.ws)
        if not out.firing:
            if outcome.passed is False:
                incidents.healthy(monitor=name, rule=rule.when, now=now,
                                  resolve_after_s=parse_duration(config.resolve_after))
            return out
        evidence = {"detail": outcome.detail, "values": _summary(result.values),
                    "window": [result.window_start.isoformat(), result.window_end.isoformat()]}
        opened = True
        if "incident" in rule.do:
            incident, opened = incidents.fire(
                monitor=name, rule=rule.when, severity=rule.severity, evidence=evidence,
                env=result.env, model=result.model, version=result.version,
                deployment_id=result.deployment_id, now=now)
            out.incident = incident.id
        elif self._was_firing(name, rule.when):
            opened = False
        if not opened:
            return out  # actions ran when the rule started firing
        reason = f"monitor {name}: {rule.when} ({outcome.detail})"
        for action in rule.do:
            if action == "incident":
                continue
            if action == "rollback":
                done = actions.rollback(self.ws, result.env, result.model, reason)
            elif action == "retrain":
                done = actions.retrain(self.ws, result.model)
            else:
                hook = action.removeprefix("webhook:")
                hook_config = self.ws.config.webhooks.get(hook)
                if hook_config is None:
                    done = actions.ActionResult(action, False, f"webhook {hook!r} is not declared "
                                                               "under 'webhooks:' in dsops.yaml")
                else:
                    done = actions.webhook(hook, hook_config, {
                        "monitor": name, "rule": rule.when, "detail": outcome.detail,
                        "severity": rule.severity, "values": _summary(result.values),
                        "incident": {"id": out.incident, "env": result.env, "model": result.model,
                                     "version": result.version, "opened_at": now.isoformat()}})
            out.actions.append({"action": done.action, "ok": done.ok, "detail": done.detail})
            if out.incident:
                incidents.record_action(out.incident, done.action, ok=done.ok, detail=done.detail,
                                        now=now)
        return out

    def _drift(self, config: MonitorConfig, model: str, version: int,
               table: Any) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        """Drift of the window's inputs (``in_*``) and predictions against the reference."""
        from dsops.monitoring.drift import compute_drift

        ref, reference, features, predictions = self._reference(config, model, version)
        if reference is None:
            return {}, {}
        features = [f for f in features if f"in_{f}" in table.column_names]
        if not features:
            return {}, {}
        report = compute_drift(reference, table, columns=features, current_prefix="in_",
                               methods={"*": config.drift.method, **config.drift.methods},
                               thresholds=config.drift.thresholds or None).to_dict()
        per_column = {name: _column_values(col) for name, col in report["columns"].items()}
        values: dict[str, Any] = {"drifted_count": float(report.get("drifted_count") or 0)}
        if report.get("drifted_share") is not None:
            values["drifted_share"] = float(report["drifted_share"])
        failed = self._expectations_failed(ref, table, features)
        if failed is not None:
            values["expectations_failed"] = float(failed)
        if predictions is not None and "prediction" in table.column_names:
            live = table["prediction"].to_numpy(zero_copy_only=False)
            if "prediction_label" in table.column_names and table["prediction"].null_count == len(table):
                live = table["prediction_label"].to_numpy(zero_copy_only=False)
            from dsops.monitoring.stats import psi

            values["prediction_drift"] = psi(predictions, live)
            per_column["prediction"] = {"psi": values["prediction_drift"]}
        return values, per_column

    def _expectations_failed(self, ref: str, table: Any, features: list[str]) -> int | None:
        """How many of the reference dataset's column expectations the live inputs fail."""
        from dsops.core.refs import Ref
        from dsops.data.expectations import check_expectations

        declared = self.ws.config.datasets.get(Ref.parse(ref).name)
        checks = [e for e in (declared.expectations if declared else [])
                  if e.column in features]
        if not checks:
            return None
        inputs = table.select([f"in_{f}" for f in features]).rename_columns(features)
        report = check_expectations(inputs, checks)
        return sum(1 for check in report["checks"] if not check["passed"])

    def _reference(self, config: MonitorConfig, model: str,
                   version: int) -> tuple[str, Any, list[str], Any]:
        """The reference (declared, else the version's training data): its reference and
        table, the model's input columns, and its predictions on a sample of it."""
        from dsops.data.service import DatasetService
        from dsops.registry.loading import load_registered
        from dsops.registry.service import RegistryService, input_columns

        info = RegistryService(self.ws).show(f"{model}@{version}")
        ref = config.reference or (info.datasets[0] if info.datasets else None)
        if ref is None:
            return "", None, [], None
        datasets = DatasetService(self.ws)
        resolved = datasets.show(ref.removeprefix("data:")).ref  # `credit` moves; `credit@3` not
        key = (resolved, info.ref, repr(config.drift.features))
        if key in self._references:
            self._references.move_to_end(key)
            return self._references[key]
        table = datasets.read_table(resolved)
        features = [c["name"] for c in input_columns(info.signature)] or list(table.column_names)
        if config.drift.features != "all":
            features = [f for f in features if f in config.drift.features]
        features = [f for f in features if f in table.column_names]
        sample = table.slice(0, REFERENCE_ROWS)
        try:
            predictions = load_registered(self.ws, info.ref).predict(sample.to_pandas())
        except Exception:  # prediction drift is optional: inputs' drift still counts
            predictions = None
        self._references[key] = (ref, table, features, predictions)
        while len(self._references) > REFERENCES_KEPT:
            self._references.popitem(last=False)
        return self._references[key]

    def _was_firing(self, name: str, rule: str) -> bool:
        with self.ws.store.read() as session:
            last = session.execute(select(MonitorEvaluation.rules)
                                   .where(MonitorEvaluation.monitor == name)
                                   .order_by(MonitorEvaluation.at.desc()).limit(1)).scalar()
        return any(r.get("rule") == rule and r.get("firing") for r in (last or []))

    def _store(self, result: MonitorResult) -> MonitorResult:
        with self.ws.store.transaction() as session:
            session.add(MonitorEvaluation(
                id=result.id, monitor=result.monitor, at=result.at,
                window_start=result.window_start, window_end=result.window_end, env=result.env,
                model=result.model, version=result.version, deployment_id=result.deployment_id,
                status=result.status,
                values=json_ready({**result.values, "detail": result.detail,
                                  "columns": result.columns}),
                rules=json_ready([r.model_dump(mode="json") for r in result.rules])))
        return result

    def _config(self, name: str) -> MonitorConfig:
        config = self.ws.config.monitors.get(name)
        if config is None:
            raise NotFound("monitor", name, known=self.ws.config.monitors,
                           hint="declare it under 'monitors:' in dsops.yaml")
        return config


def _column_values(column: dict[str, Any]) -> dict[str, Any]:
    """The per-column figures alert rules can name: psi, drift (the method's statistic),
    drifted, and the data-quality shares."""
    quality = column.get("quality") or {}
    return {"psi": column.get("psi"), "drift": column.get("statistic"),
            "drifted": 1.0 if column.get("drifted") else 0.0, "method": column.get("method"),
            "threshold": column.get("threshold"),
            "null_share": quality.get("null_share", column.get("null_share")),
            "out_of_range_share": quality.get("out_of_range_share", column.get("out_of_range_share")),
            "unseen_share": quality.get("unseen_share", column.get("unseen_share")),
            "histogram": column.get("histogram")}


def _summary(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if isinstance(v, int | float)}


def _result(row: MonitorEvaluation) -> MonitorResult:
    values = dict(row.values)
    detail = str(values.pop("detail", ""))
    columns = values.pop("columns", {})
    return MonitorResult(id=row.id, monitor=row.monitor, at=as_utc(row.at),
                         window_start=as_utc(row.window_start), window_end=as_utc(row.window_end),
                         env=row.env or "", model=row.model or "", version=row.version,
                         deployment_id=row.deployment_id,
                         status=row.status, detail=detail, values=values, columns=columns,
                         rules=[RuleResult(**r) for r in row.rules])
