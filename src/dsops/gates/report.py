"""CI reports of a gate result: PR-ready Markdown (verdict, checks, metric deltas against the
champion, fairness, data changes), JUnit XML (one testcase per check) and JSON."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from dsops.core.errors import NotFound, UsageError
from dsops.gates.service import CheckVerdict, GateReport

if TYPE_CHECKING:
    from dsops.registry.models import ModelVersionInfo
    from dsops.workspace import Workspace

FORMATS = ("markdown", "junit", "json")
HIGHER_IS_BETTER = ("accuracy", "precision", "recall", "f1", "auc", "r2", "disparate_impact_ratio")
LOWER_IS_BETTER = ("log_loss", "mae", "rmse", "p50_latency_ms", "p99_latency_ms", "batch_latency_ms",
                   "demographic_parity_difference", "equalized_odds_difference")


class MetricDelta(BaseModel):
    """One metric of the candidate and the champion, and how it moved."""

    metric: str
    candidate: float | None
    champion: float | None
    delta: float | None
    arrow: str  # ▲ up, ▼ down, = unchanged, empty when either side is missing
    better: bool | None  # None: the metric has no known good direction, or did not move


class DataChange(BaseModel):
    """How a dataset the candidate was trained on differs from the champion's version of it."""

    dataset: str
    old: str | None  # the champion's version (None: the champion did not use this dataset)
    new: str | None  # the candidate's version (None: the candidate no longer uses it)
    same_content: bool = False
    rows_old: int | None = None
    rows_new: int | None = None
    rows_delta: int | None = None
    added_columns: list[str] = []
    removed_columns: list[str] = []
    type_changes: list[str] = []  # "age: int → float"


class ReportDetails(BaseModel):
    """What a CI report adds to a gate result: deltas against the champion and data changes."""

    champion: str | None
    metrics_source: str | None  # "data:eval@1" (measured on evaluation data) or "logged"
    deltas: list[MetricDelta]
    logged_deltas: list[MetricDelta]  # logged metrics, when the main deltas are measured ones
    data_changes: list[DataChange] | None  # None: no champion to compare the data with
    flags: list[str]


def report_details(ws: Workspace, report: GateReport) -> ReportDetails:
    """Deltas against the champion (measured on the evaluation data when the gate had some,
    else the versions' logged metrics) and the data changes since the champion's data."""
    from dsops.registry.service import RegistryService

    registry = RegistryService(ws)
    candidate = registry.show(report.ref)
    against = report.inputs.get("against")
    if against == report.ref:  # the champion gated again: nothing to compare with
        against = None
    champion = None
    if against:
        try:
            champion = registry.show(against)
        except NotFound:  # deleted since: the report still renders from the stored inputs
            champion = None
    measured = report.inputs.get("candidate_metrics") or {}
    logged = _deltas(candidate.metrics, champion.metrics if champion else {})
    if measured:
        deltas = _deltas(measured, (report.inputs.get("champion_metrics") or {}) if against else {})
        source = report.inputs.get("eval_data")
    else:
        deltas, logged, source = logged, [], "logged" if candidate.metrics else None
    return ReportDetails(
        champion=against, metrics_source=source, deltas=deltas,
        logged_deltas=logged, data_changes=_data_changes(ws, candidate, champion)
        if champion else None, flags=candidate.flags)


def render_report(ws: Workspace, report: GateReport, *, format: str) -> str:
    """A gate result as ``markdown`` (for a pull request), ``junit`` (XML, one testcase per
    check) or ``json`` (the result plus deltas and data changes)."""
    if format not in FORMATS:
        raise UsageError(f"unknown report format {format!r}: use markdown, junit or json")
    if format == "junit":
        return junit_xml(report)
    details = report_details(ws, report)
    if format == "json":
        return json.dumps({**report.model_dump(mode="json"), "failed": [c.check for c in report.failed],
                           **details.model_dump(mode="json")}, indent=2, ensure_ascii=False)
    from dsops.templates import render

    skipped = sum(1 for c in report.checks if check_verdict(c) == "skipped")
    return render("gate_report.md", report=report, details=details, verdict=check_verdict,
                  skipped=skipped)


def junit_xml(report: GateReport) -> str:
    """JUnit XML: one testsuite for the gate, one testcase per check, a failure per failed
    check, a skip for checks that could not apply (no champion yet)."""
    import xml.etree.ElementTree as ET

    failures = len(report.failed)
    skipped = sum(1 for c in report.checks if check_verdict(c) == "skipped")
    root = ET.Element("testsuites", name="dsops gate", tests=str(len(report.checks)),
                      failures=str(failures), errors="0")
    suite = ET.SubElement(root, "testsuite", name=f"dsops gate {report.ref}",
                          tests=str(len(report.checks)), failures=str(failures), errors="0",
                          skipped=str(skipped), timestamp=_utc(report.at),
                          time="0")
    properties = ET.SubElement(suite, "properties")
    for key in ("against", "eval_data", "rows", "label"):
        if report.inputs.get(key) is not None:
            ET.SubElement(properties, "property", name=key, value=str(report.inputs[key]))
    ET.SubElement(properties, "property", name="gate_result", value=report.id)
    for check in report.checks:
        case = ET.SubElement(suite, "testcase", name=check.check,
                             classname=f"dsops.gate.{report.model}", time="0")
        verdict = check_verdict(check)
        if verdict == "fail":
            failure = ET.SubElement(case, "failure", message=_failure_message(check), type="GateCheckFailed")
            failure.text = "\n".join(x for x in (check.detail, f"source: {check.source}"
                                                 if check.source else "") if x) or None
        elif verdict == "skipped":
            ET.SubElement(case, "skipped", message=check.detail or "skipped")
        elif check.source:
            ET.SubElement(case, "system-out").text = f"value {_num(check.value)} ({check.source})"
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def check_verdict(check: CheckVerdict) -> str:
    """``pass``, ``fail`` or ``skipped`` (a champion comparison with no champion yet)."""
    if not check.passed:
        return "fail"
    return "skipped" if check.detail.startswith("skipped") else "pass"


def _failure_message(check: CheckVerdict) -> str:
    if check.value is None:
        return f"{check.check}: {check.detail or 'failed'}"
    relation = f" {check.op} {_num(check.threshold)}" if check.op else ""
    return f"{check.check}: value {_num(check.value)}, needs{relation}"


def _utc(at: datetime) -> str:
    if at.tzinfo is not None:
        at = at.astimezone(UTC).replace(tzinfo=None)
    return at.isoformat(timespec="seconds")


def _num(value: Any) -> str:
    from dsops.templates import num

    return num(value)


def _deltas(candidate: dict[str, float], champion: dict[str, float]) -> list[MetricDelta]:
    out = []
    for metric in sorted({*candidate, *champion}):
        new, old = _finite(candidate.get(metric)), _finite(champion.get(metric))
        delta = new - old if new is not None and old is not None else None
        arrow = "" if delta is None else "▲" if delta > 0 else "▼" if delta < 0 else "="
        base = metric.partition("(")[0]
        better = None
        if delta:
            if base in HIGHER_IS_BETTER:
                better = delta > 0
            elif base in LOWER_IS_BETTER:
                better = delta < 0
        out.append(MetricDelta(metric=metric, candidate=new, champion=old, delta=delta, arrow=arrow,
                               better=better))
    return out


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _data_changes(ws: Workspace, candidate: ModelVersionInfo,
                  champion: ModelVersionInfo) -> list[DataChange]:
    """Per dataset name: the champion's version against the candidate's (schema and row
    counts only: never values, which may be sensitive)."""
    from dsops.core.refs import Ref
    from dsops.data.service import DatasetService

    def latest(refs: list[str]) -> dict[str, int]:
        out: dict[str, int] = {}
        for text in refs:
            ref = Ref.parse(text)
            out[ref.name] = max(out.get(ref.name, 0), ref.version or 0)
        return out

    new, old = latest(candidate.datasets), latest(champion.datasets)
    service = DatasetService(ws)
    changes = []
    for name in sorted({*new, *old}):
        before = f"data:{name}@{old[name]}" if name in old else None
        after = f"data:{name}@{new[name]}" if name in new else None
        if before == after:
            continue
        change = DataChange(dataset=f"data:{name}", old=before, new=after)
        if before and after:
            try:
                diff = service.diff(before, after)
            except NotFound:
                changes.append(change)
                continue
            change.same_content = diff.same_content
            if diff.row_count is not None:
                change.rows_old = _int(diff.row_count.old)
                change.rows_new = _int(diff.row_count.new)
                change.rows_delta = _int(diff.row_count.delta)
            change.added_columns, change.removed_columns = diff.added_columns, diff.removed_columns
            change.type_changes = [f"{t['column']}: {t['old']} → {t['new']}" for t in diff.type_changes]
        changes.append(change)
    return changes


def _int(value: float | int | None) -> int | None:
    return None if value is None else int(value)
