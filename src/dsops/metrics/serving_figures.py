"""The two ML extras of a DORA report, read from the prediction log: availability (share of
served requests that succeeded) and accuracy (share of labelled predictions equal to their
label). No log, or an empty window, is "no data", never an error."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from dsops.metrics.dora_models import Accuracy, Availability
from dsops.workspace import Workspace

# Shadow answers are never sent to a client: they are neither served nor failed requests.
SERVED_ROLES = ("stable", "candidate")


def open_prediction_log(ws: Workspace) -> Any | None:
    """The workspace's prediction log reader, or None when this dsops has none."""
    try:
        from dsops.serving.predlog_query import PredictionLog
    except ImportError:
        return None
    return PredictionLog(ws.objects)


def serving_figures(ws: Workspace, *, env: str, model: str | None, start: datetime,
                    end: datetime) -> tuple[Availability, Accuracy]:
    """Availability and accuracy of ``env`` (and ``model``) over ``[start, end)``."""
    log = open_prediction_log(ws)
    if log is None:
        note = "no data: this dsops has no prediction log"
        return Availability(note=note), Accuracy(note=note)
    return _availability(log, env, model, start, end), _accuracy(log, env, model, start, end)


def _availability(log: Any, env: str, model: str | None, start: datetime,
                  end: datetime) -> Availability:
    import pyarrow.compute as pc

    table = log.window(model, env=env, start=start, end=end,
                       columns=["request_id", "role", "status"])
    table = table.filter(pc.is_in(table["role"], value_set=_roles()))
    if table.num_rows == 0:
        return Availability(note="no data: no request logged in the window")
    # A request with several rows failed if any of its rows did.
    failed_ids = pc.unique(table.filter(pc.equal(table["status"], "error"))["request_id"])
    requests = len(pc.unique(table["request_id"]))
    failed = len(failed_ids)
    return Availability(requests=requests, failed=failed, value=(requests - failed) / requests,
                        note="served requests (stable and candidate) answered without error")


def _accuracy(log: Any, env: str, model: str | None, start: datetime, end: datetime) -> Accuracy:
    import pyarrow.compute as pc

    window = log.labelled(model, env=env, start=start, end=end,
                          columns=["role", "status", "prediction", "prediction_label"])
    table = window.table
    table = table.filter(pc.and_(pc.is_in(table["role"], value_set=_roles()),
                                 pc.equal(table["status"], "ok")))
    predictions = table.num_rows
    if predictions == 0:
        return Accuracy(note="no data: no prediction logged in the window")
    rows = table.filter(pc.is_valid(table["label"])).select(
        ["prediction", "prediction_label", "label", "label_value"]).to_pylist()
    if not rows:
        return Accuracy(predictions=predictions, coverage=0.0,
                        note="no data: no label has arrived for the window's predictions")
    correct = sum(1 for row in rows if _matches(row))
    return Accuracy(predictions=predictions, labelled=len(rows), correct=correct,
                    value=correct / len(rows), coverage=len(rows) / predictions,
                    note="over the predictions whose label has arrived")


def _matches(row: dict[str, Any]) -> bool:
    """A class label is compared as text; a numeric class (0/1) by value."""
    if row["prediction_label"] is not None:
        return bool(row["prediction_label"] == row["label"])
    if row["prediction"] is not None and row["label_value"] is not None:
        return bool(row["prediction"] == row["label_value"])
    return False


def _roles() -> Any:
    import pyarrow as pa

    return pa.array(SERVED_ROLES, pa.string())
