"""The standalone HTML drift report: a summary table, the drift score of every column
against its threshold, and reference-vs-current histograms per column.

Every text that comes from the data (column names, categories, file names) is escaped:
``html.escape`` in the page, and in chart labels too, because Plotly renders a few HTML
tags in labels (and decodes entities back to plain characters). Plotly.js is embedded, so
the file opens without a network.
"""

from __future__ import annotations

import html
import math
from typing import Any

from dsops.monitoring.drift_results import ColumnDrift, DriftReport

DRIFT_COLOUR, STABLE_COLOUR, REFERENCE_COLOUR, CURRENT_COLOUR = (
    "#d62728", "#2ca02c", "#1f77b4", "#ff7f0e")
TESTS = ("ks", "chisquare", "z")


def render_html(report: DriftReport, *, reference: str, current: str) -> str:
    """The report as one HTML page."""
    e = html.escape
    parts: list[str] = []
    plotly_included = False

    def figure_html(figure: Any) -> str:
        nonlocal plotly_included
        out = figure.to_html(full_html=False, include_plotlyjs=not plotly_included,
                             config={"displaylogo": False})
        plotly_included = True
        return str(out)

    if report.status == "no_data":
        summary = f"<p class='nodata'>No data: {e(report.message or 'the current data has no rows')}.</p>"
    else:
        share = "n/a" if report.drifted_share is None else f"{report.drifted_share:.0%}"
        summary = (f"<p><b>{report.drifted_count}</b> of {report.compared_count} columns drifted "
                   f"({share}); dataset drift (share ≥ {report.drift_share:.0%}): "
                   f"<b>{'yes' if report.dataset_drift else 'no'}</b>.")
        if report.prediction is not None and report.prediction.drifted is not None:
            summary += f" Prediction: <b>{'drifted' if report.prediction.drifted else 'stable'}</b>."
        summary += "</p>"
        columns = [c for c in report.all_columns() if c.score is not None]
        if columns:
            parts.append("<h2>Drift score by column</h2><p class='note'>Tests (KS, "
                         "chi-square, z) score their p-value: drift below the mark. Distances "
                         "drift at or above it.</p>")
            parts.append(figure_html(_summary_figure(columns)))
        for c in report.all_columns():
            if c.histogram is not None:
                parts.append(f"<h2>{e(c.column)}</h2><p class='note'>{e(_caption(c))}</p>")
                parts.append(figure_html(_histogram_figure(c)))
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>dsops drift: {e(current)} vs {e(reference)}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}}
table{{border-collapse:collapse}}td,th{{padding:2px 10px;border-bottom:1px solid #ddd;text-align:left}}
.drift{{color:{DRIFT_COLOUR};font-weight:bold}}.note{{color:#555}}.nodata{{font-size:1.2em}}</style>
</head><body>
<h1>Drift report</h1>
<p>Reference: <code>{e(reference)}</code> ({report.reference_rows:,} rows) · current:
<code>{e(current)}</code> ({report.current_rows:,} rows)</p>
{summary}
{_table(report)}
{''.join(parts)}
</body></html>
"""


def _table(report: DriftReport) -> str:
    e = html.escape
    rows = []
    for c in report.all_columns():
        verdict = "–" if c.drifted is None else (
            "<span class='drift'>drifted</span>" if c.drifted else "no")
        quality = c.quality
        notes = [c.message] if c.message else []
        if quality is not None:
            if quality.null_share:
                notes.append(f"nulls {quality.null_share:.1%}")
            if quality.out_of_range_share:
                notes.append(f"out of range {quality.out_of_range_share:.2%}")
            if quality.unseen_share:
                notes.append(f"unseen {quality.unseen_share:.2%} "
                             f"({', '.join(quality.unseen_examples)})")
        name = c.column + (" (prediction)" if c is report.prediction else "")
        rows.append(
            f"<tr><td>{e(name)}</td><td>{e(c.kind)}</td><td>{e(c.method or '')}</td>"
            f"<td>{_fmt(c.statistic)}</td><td>{_fmt(c.p_value)}</td><td>{_fmt(c.threshold)}</td>"
            f"<td>{verdict}</td><td>{_fmt(c.psi)}</td><td>{e('; '.join(notes))}</td></tr>")
    return ("<table><tr><th>column</th><th>type</th><th>method</th><th>statistic</th>"
            "<th>p-value</th><th>threshold</th><th>drifted</th><th>PSI</th><th>notes</th></tr>"
            + "".join(rows) + "</table>")


def _summary_figure(columns: list[ColumnDrift]) -> Any:
    """Scores against thresholds: distances on a linear axis, p-values (tests) on a log
    axis (clipped at 1e-16), each group in its own panel when both are present."""
    from plotly.subplots import make_subplots

    groups = [(title, [c for c in columns if (c.method in TESTS) == is_test])
              for title, is_test in (("distance (drift at or above the mark)", False),
                                      ("p-value (drift below the mark)", True))]
    groups = [(title, members) for title, members in groups if members]
    figure = make_subplots(rows=1, cols=len(groups), subplot_titles=[t for t, _ in groups],
                           column_widths=[len(m) for _, m in groups], horizontal_spacing=0.08)
    for i, (title, members) in enumerate(groups, start=1):
        names = [html.escape(c.column) for c in members]
        test = title.startswith("p-value")
        scores = [max(c.score or 0.0, 1e-16) if test else c.score for c in members]
        figure.add_bar(x=names, y=scores, name="score", showlegend=i == 1,
                       marker_color=[DRIFT_COLOUR if c.drifted else STABLE_COLOUR for c in members],
                       hovertext=[html.escape(f"{c.method}: {_fmt(c.score)}") for c in members],
                       hoverinfo="text+x", row=1, col=i)
        figure.add_scatter(x=names, y=[c.threshold for c in members], mode="markers",
                           name="threshold", showlegend=i == 1, row=1, col=i,
                           marker={"symbol": "line-ew-open", "size": 24, "color": "black",
                                   "line": {"width": 3}})
        if test:
            low = min(min(scores), min(c.threshold or 1.0 for c in members))
            figure.update_yaxes(type="log", range=[math.floor(math.log10(low)) - 0.5, 0.1],
                                row=1, col=i)
    figure.update_layout(template="plotly_white", height=380, margin={"t": 60, "b": 40},
                         legend={"orientation": "h", "y": 1.15, "x": 0})
    return figure


def _histogram_figure(c: ColumnDrift) -> Any:
    import plotly.graph_objects as go

    h = c.histogram
    assert h is not None
    if h.kind == "numeric" and h.edges:
        x: list[Any] = [(a + b) / 2 for a, b in zip(h.edges[:-1], h.edges[1:], strict=True)]
        width = h.edges[1] - h.edges[0]
    else:
        x = [html.escape(label) for label in h.categories or []]
        width = None
    figure = go.Figure()
    figure.add_bar(x=x, y=h.reference, name="reference", marker_color=REFERENCE_COLOUR,
                   opacity=0.6, width=width)
    figure.add_bar(x=x, y=h.current, name="current", marker_color=CURRENT_COLOUR, opacity=0.6,
                   width=width)
    figure.update_layout(template="plotly_white", height=300, barmode="overlay",
                         margin={"t": 30, "b": 40}, yaxis_title="share", yaxis_tickformat=".0%",
                         legend={"orientation": "h", "y": 1.12, "x": 0})
    return figure


def _caption(c: ColumnDrift) -> str:
    if c.drifted is None:
        return c.message or c.status
    score = f"p = {_fmt(c.score)}" if c.method in TESTS else f"{_fmt(c.score)}"
    bound = "" if c.exact or c.error_bound is None else f" (± {_fmt(c.error_bound)})"
    return (f"{c.method}: {score}{bound}, threshold {_fmt(c.threshold)} → "
            f"{'drifted' if c.drifted else 'no drift'}; PSI {_fmt(c.psi)}")


def _fmt(value: float | None) -> str:
    if value is None:
        return ""
    if value != value:
        return "nan"
    return f"{value:.4g}"
