"""``dsops monitor report NAME --html``: a standalone page of Plotly charts built from the
stored evaluations — drift per feature over time, reference vs current distributions,
accuracy and label coverage over time, incidents marked on the timeline."""

from __future__ import annotations

import html
from typing import Any

from dsops.core.clock import as_utc
from dsops.workspace import Workspace


def render_monitor_report(ws: Workspace, name: str) -> str:
    """The HTML report of a monitor (every user-provided text escaped)."""
    import plotly.graph_objects as go

    from dsops.monitoring.incidents import IncidentService
    from dsops.monitoring.service import MonitorService

    history = MonitorService(ws).history(name)
    incidents = [i for i in IncidentService(ws).list(monitor=name, limit=500)]
    evaluated = [r for r in history if r.status != "no_data"]
    figures: list[tuple[str, Any]] = []

    times = [r.at for r in evaluated]
    columns = sorted({c for r in evaluated for c in r.columns})
    if evaluated and columns:
        drift = go.Figure()
        for column in columns:
            drift.add_trace(go.Scatter(x=times, y=[(r.columns.get(column) or {}).get("psi")
                                                   for r in evaluated],
                                       mode="lines+markers", name=column))
        drift.update_layout(yaxis_title="PSI", xaxis_title="evaluation")
        _mark_incidents(drift, incidents)
        figures.append(("Drift per feature over time (PSI against the reference)", drift))

        share = go.Figure(go.Scatter(x=times, y=[r.values.get("drifted_share") for r in evaluated],
                                     mode="lines+markers", name="drifted share"))
        share.update_layout(yaxis_title="share of drifted features", yaxis_range=[0, 1])
        _mark_incidents(share, incidents)
        figures.append(("Share of drifted features", share))

        latest = evaluated[-1]
        for column in columns:
            histogram = (latest.columns.get(column) or {}).get("histogram")
            figure = _histogram_figure(column, histogram)
            if figure is not None:
                figures.append((f"{column}: reference vs current (latest window)", figure))

    if any("label_coverage" in r.values for r in evaluated):
        quality = go.Figure()
        for key in ("accuracy", "auc", "label_coverage", "error_rate"):
            if any(key in r.values for r in evaluated):
                quality.add_trace(go.Scatter(x=times, y=[r.values.get(key) for r in evaluated],
                                             mode="lines+markers", name=key.replace("_", " ")))
        quality.update_layout(yaxis_range=[0, 1.05])
        _mark_incidents(quality, incidents)
        figures.append(("Accuracy (requests with labels) and label coverage over time", quality))

    rows = "".join(
        f"<tr><td>{html.escape(i.id)}</td><td>{html.escape(i.status)}</td>"
        f"<td>{html.escape(i.rule)}</td><td>{as_utc(i.opened_at):%Y-%m-%d %H:%M:%S}</td>"
        f"<td>{'' if i.resolved_at is None else f'{as_utc(i.resolved_at):%Y-%m-%d %H:%M:%S}'}</td>"
        f"<td>{html.escape('; '.join(str(a.get('action')) + ': ' + str(a.get('detail')) for a in i.actions))}"
        "</td></tr>" for i in incidents)
    body = "".join(f"<h2>{html.escape(title)}</h2>"
                   + figure.to_html(full_html=False, include_plotlyjs="cdn" if n == 0 else False)
                   for n, (title, figure) in enumerate(figures))
    config = ws.config.monitors.get(name)
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>dsops monitor {html.escape(name)}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}}</style>
</head><body>
<h1>Monitor {html.escape(name)}</h1>
<p>{html.escape(config.deployment if config else '')} · {len(history)} evaluations
({len(evaluated)} with data) · {len(incidents)} incidents</p>
{body or '<p>No evaluation with data yet: run <code>dsops monitor run</code>.</p>'}
<h2>Incidents</h2>
<table><tr><th>id</th><th>status</th><th>rule</th><th>opened (UTC)</th><th>resolved (UTC)</th>
<th>actions</th></tr>{rows or '<tr><td colspan="6">none</td></tr>'}</table>
</body></html>
"""


def _mark_incidents(figure: Any, incidents: list[Any]) -> None:
    """Shade each incident from its opening to its resolution (or the right edge)."""
    for incident in incidents:
        end = incident.resolved_at or incident.last_fired_at
        figure.add_vrect(x0=as_utc(incident.opened_at), x1=as_utc(end), fillcolor="red",
                         opacity=0.12, line_width=0, annotation_text="incident",
                         annotation_position="top left")


def _histogram_figure(column: str, histogram: Any) -> Any:
    """Reference and current distributions of a column on the same bins, if stored."""
    import plotly.graph_objects as go

    if not isinstance(histogram, dict):
        return None
    reference, current = histogram.get("reference"), histogram.get("current")
    labels = histogram.get("categories") or histogram.get("labels")
    edges = histogram.get("edges")
    if reference is None or current is None:
        return None
    if labels is None and edges is not None:
        labels = [f"{edges[i]:.4g}–{edges[i + 1]:.4g}" for i in range(len(edges) - 1)]
    if labels is None or len(labels) != len(reference):
        labels = [str(i) for i in range(len(reference))]
    figure = go.Figure([go.Bar(x=labels, y=_shares(reference), name="reference"),
                        go.Bar(x=labels, y=_shares(current), name="current")])
    figure.update_layout(barmode="group", yaxis_title="share of rows", xaxis_title=column)
    return figure


def _shares(counts: list[float]) -> list[float]:
    total = float(sum(counts)) or 1.0
    return [c / total for c in counts]
