"""Chart histograms of a compared column: reference and current shares over shared bins."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from dsops.monitoring.drift_results import Histogram
from dsops.monitoring.drift_sketch import NumericSketch

CHART_BINS = 30
TOP_CATEGORIES = 20
CHART_RANGE = (0.005, 0.995)  # quantiles of each side: outliers go to the end bins


def numeric_histogram(ref: NumericSketch, cur: NumericSketch, *, bins: int = CHART_BINS) -> Histogram:
    """Equal-width bins over the central 99 % of both samples (whole-number widths for
    integer columns); values beyond are counted in the end bins. From raw values when
    small, else from the sketch's bins (each bin's values placed at their mean: a chart bin
    edge may be off by one fine bin)."""
    ref_values, ref_counts = _weighted(ref)
    cur_values, cur_counts = _weighted(cur)
    lows, highs = [], []
    for values, counts in ((ref_values, ref_counts), (cur_values, cur_counts)):
        lo, hi = _weighted_range(values, counts)
        lows.append(lo)
        highs.append(hi)
    lo, hi = min(lows), max(highs)
    if ref.integer and cur.integer:  # whole numbers: bins of whole widths, centred on values
        width = max(1, int(np.ceil((np.ceil(hi) - np.floor(lo) + 1) / bins)))
        edges = np.arange(np.floor(lo) - 0.5, np.ceil(hi) + 0.5 + width, width)
        lo, hi = float(edges[0]), float(edges[-1])
    else:
        if hi <= lo:
            lo, hi = lo - 0.5, hi + 0.5
        edges = np.linspace(lo, hi, bins + 1)

    def shares(values: np.ndarray, counts: np.ndarray) -> list[float]:
        h = np.histogram(np.clip(values, lo, hi), edges, weights=counts)[0]
        total = h.sum()
        return (h / total if total else h).tolist()

    return Histogram("numeric", shares(ref_values, ref_counts), shares(cur_values, cur_counts),
                     edges=edges.tolist())


def category_histogram(ref: Mapping[Any, int], cur: Mapping[Any, int], *,
                       top: int = TOP_CATEGORIES) -> Histogram:
    """Shares of the ``top`` most frequent categories (both sides together), the rest
    summed as ``(other)``."""
    ref_total = sum(ref.values()) or 1
    cur_total = sum(cur.values()) or 1
    combined = {k: ref.get(k, 0) / ref_total + cur.get(k, 0) / cur_total
                for k in set(ref) | set(cur)}
    order = sorted(combined, key=lambda k: (-combined[k], str(k)))
    shown = order[:top]
    ref_shares = [ref.get(k, 0) / ref_total for k in shown]
    cur_shares = [cur.get(k, 0) / cur_total for k in shown]
    labels = [_label(k) for k in shown]
    if len(order) > top:
        labels.append("(other)")
        ref_shares.append(1 - sum(ref_shares))
        cur_shares.append(1 - sum(cur_shares))
    return Histogram("categorical", ref_shares, cur_shares, categories=labels)


def _label(value: Any) -> str:
    """Integer codes are counted as floats: show 3.0 as 3."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _weighted(sketch: NumericSketch) -> tuple[np.ndarray, np.ndarray]:
    """The sample as (values, counts): raw values, distinct values, or bin means."""
    raw = sketch.raw_values()
    if raw is not None:
        return raw, np.ones(len(raw))
    if sketch.values is not None:
        keys = np.array(sorted(sketch.values), dtype=float)
        return keys, np.array([sketch.values[k] for k in keys.tolist()], dtype=float)
    assert sketch.counts is not None and sketch.sums is not None
    present = sketch.counts > 0
    assert sketch.binning is not None
    means = sketch.sums[present] / sketch.counts[present] + sketch.binning.origin
    return means, sketch.counts[present].astype(float)


def _weighted_range(values: np.ndarray, counts: np.ndarray) -> tuple[float, float]:
    order = np.argsort(values, kind="stable")
    values, counts = values[order], counts[order]
    cum = np.cumsum(counts) / counts.sum()
    lo = values[min(int(np.searchsorted(cum, CHART_RANGE[0])), len(values) - 1)]
    hi = values[min(int(np.searchsorted(cum, CHART_RANGE[1])), len(values) - 1)]
    return float(lo), float(hi)
