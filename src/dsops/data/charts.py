"""Plotly pictures of stored profiles: one version's distributions, or two side by side.

Built from the stored profile only (histograms and top categories), so charts of a
sensitive version never show its values: sensitive columns are redacted at add time.
"""

from __future__ import annotations

import itertools
from typing import Any

from dsops.data.models import DatasetVersionInfo

OLD, NEW = "#8c8c8c", "#1f77b4"


def _traces(profile: dict[str, Any], name: str, color: str) -> list[dict[str, Any]]:
    """Bar traces (as plain dicts) for one column's profile; share of rows, not counts."""
    hist = profile.get("histogram")
    if hist and hist.get("counts"):
        edges, counts = hist["edges"], hist["counts"]
        total = sum(counts) or 1
        centers = [(a + b) / 2 for a, b in itertools.pairwise(edges)]
        widths = [b - a for a, b in itertools.pairwise(edges)]
        return [dict(type="bar", x=centers, y=[c / total for c in counts], width=widths,
                     name=name, marker_color=color, opacity=0.6)]
    top = profile.get("top")
    if top:
        total = sum(t["count"] for t in top) + profile.get("other_count", 0) or 1
        return [dict(type="bar", x=[str(t["value"]) for t in top],
                     y=[t["count"] / total for t in top], name=name, marker_color=color,
                     opacity=0.7)]
    return []


def profile_html(versions: list[DatasetVersionInfo]) -> str:
    """A self-contained HTML page (works offline): per column, each version's distribution."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    columns: list[str] = []
    for v in versions:
        for col in (v.data_schema or {}).get("columns", []):
            if col["name"] not in columns:
                columns.append(col["name"])
    charted = [c for c in columns
               if any(_traces((v.profile or {}).get("columns", {}).get(c, {}), "", "")
                      for v in versions)]
    if not charted:
        raise ValueError("nothing to chart: no tabular profile")
    cols = 2
    rows = -(-len(charted) // cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=charted,
                        vertical_spacing=min(0.08, 0.5 / rows))
    colors = [OLD, NEW] if len(versions) == 2 else [NEW]
    for i, column in enumerate(charted):
        for v, color in zip(versions, colors, strict=False):
            for trace in _traces((v.profile or {}).get("columns", {}).get(column, {}),
                                 v.ref, color):
                trace["showlegend"] = i == 0
                trace["legendgroup"] = v.ref
                fig.add_trace(go.Bar(trace), row=i // cols + 1, col=i % cols + 1)
    title = " vs ".join(v.ref for v in versions)
    fig.update_layout(title=f"{title}: share of rows per value", barmode="overlay",
                      height=280 * rows, template="plotly_white")
    return fig.to_html(include_plotlyjs=True, full_html=True)
