"""Drift methods: which one ``auto`` picks, their thresholds, and their values from sketches.

``auto`` follows Evidently 0.7's DataDriftPreset (``_get_default_stattest``), so both
tools flag the same columns: with at most 1,000 non-null reference values, numeric
columns get the KS test and categorical ones chi-square (the z-test for two categories);
above that, the normalised Wasserstein distance and the Jensen–Shannon distance. A numeric
column with at most 5 distinct values (reference and current together) is compared value
by value (chi-square/z small, Jensen–Shannon large), and an integer column with at most
10 distinct current values is categorical (Evidently's ``infer_column_type``).

Each statistic is computed exactly from raw values (SciPy, as Evidently calls it) when
both samples have at most ``EXACT_LIMIT`` values, exactly from value counts when both
columns have few distinct values, and otherwise from the binned sketches with an error
bound (see ``stats.ks_bounds`` and ``stats.wasserstein_bounds``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from dsops.monitoring import stats
from dsops.monitoring.drift_sketch import NumericSketch

AUTO = "auto"
SMALL_REFERENCE = 1_000  # Evidently: reference rows <= 1000 -> tests, else distances
FEW_VALUES = 5  # Evidently: a numeric column with <= 5 values is compared per value
INTEGER_CATEGORIES = 10  # Evidently's INTEGER_CARDINALITY_LIMIT
STD_FLOOR = 0.001  # Evidently's floor of the Wasserstein normaliser


@dataclass(frozen=True)
class Method:
    """A drift method: the kinds of column it applies to, its default threshold, and
    whether it is a test (threshold on the p-value) or a distance (on the value)."""

    name: str
    kinds: frozenset[str]
    default_threshold: float
    test: bool
    inclusive: bool = False  # ks: drift when p <= threshold (Evidently)

    def drifted(self, score: float | None, threshold: float) -> bool:
        """Whether ``score`` (p-value or distance) means drift at ``threshold``."""
        if score is None or math.isnan(score):
            return False
        if self.test:
            return bool(score <= threshold if self.inclusive else score < threshold)
        return bool(score >= threshold)


_BOTH = frozenset({"numeric", "categorical"})
METHODS: dict[str, Method] = {
    "ks": Method("ks", frozenset({"numeric"}), 0.05, test=True, inclusive=True),
    "wasserstein": Method("wasserstein", frozenset({"numeric"}), 0.1, test=False),
    "psi": Method("psi", _BOTH, 0.1, test=False),
    "chisquare": Method("chisquare", _BOTH, 0.05, test=True),
    "z": Method("z", _BOTH, 0.05, test=True),
    "jensenshannon": Method("jensenshannon", _BOTH, 0.1, test=False),
}
METHOD_NAMES = (AUTO, *METHODS)
COUNT_METHODS = ("chisquare", "z")  # need categories: numeric columns only with few values


def auto_method(kind: str, reference_count: int, distinct: int | None) -> str:
    """Evidently's default method for a column (``distinct``: values in reference and
    current together, None when there are many)."""
    small = reference_count <= SMALL_REFERENCE
    few = distinct is not None and distinct <= FEW_VALUES
    if kind == "categorical" or few:
        if small:
            return "chisquare" if distinct is None or distinct > 2 else "z"
        return "jensenshannon"
    return "ks" if small else "wasserstein"


@dataclass(frozen=True)
class Statistic:
    """A method's value on two samples: statistic, p-value (tests), and whether it is
    exact or within ``error_bound`` of the exact value (None: approximate, no bound)."""

    value: float
    p_value: float | None = None
    exact: bool = True
    error_bound: float | None = 0.0


def category_counts(reference: Mapping[Any, int],
                    current: Mapping[Any, int]) -> tuple[list[Any], np.ndarray, np.ndarray]:
    """The union of categories (sorted, as Evidently sorts them) and each side's counts."""
    keys = sorted(set(reference) | set(current), key=_sort_key)
    ref = np.array([reference.get(k, 0) for k in keys], dtype=float)
    cur = np.array([current.get(k, 0) for k in keys], dtype=float)
    return keys, ref, cur


def _sort_key(value: Any) -> tuple[str, Any]:
    return (type(value).__name__, value)


def count_statistic(method: str, reference: Mapping[Any, int],
                    current: Mapping[Any, int]) -> Statistic:
    """A method over category (or distinct value) counts; exact."""
    _, ref, cur = category_counts(reference, current)
    if method == "chisquare":
        value, p = stats.chisquare_from_counts(ref, cur)
        return Statistic(value, p)
    if method == "z":
        z, p = stats.z_test_from_counts(ref, cur)
        return Statistic(z, p)
    if method == "jensenshannon":
        return Statistic(stats.jensenshannon_from_counts(ref, cur))
    if method == "psi":
        return Statistic(stats.psi_from_counts(ref, cur))
    raise ValueError(f"{method} does not compare categories")


def numeric_statistic(method: str, ref: NumericSketch, cur: NumericSketch) -> Statistic:
    """A method on two numeric sketches: exact on raw values or value counts, else from
    the bins with a bound."""
    ref_raw, cur_raw = ref.raw_values(), cur.raw_values()
    if ref_raw is not None and cur_raw is not None:
        return _from_raw(method, ref_raw, cur_raw)
    if ref.values is not None and cur.values is not None:
        return _from_values(method, ref, cur)
    if method in COUNT_METHODS:
        raise ValueError(f"{method} needs categories")
    return _from_bins(method, ref, cur)


def numeric_psi(ref: NumericSketch, cur: NumericSketch) -> Statistic:
    """PSI over the reference's deciles (``stats.psi``)."""
    return numeric_statistic("psi", ref, cur)


def _from_raw(method: str, ref: np.ndarray, cur: np.ndarray) -> Statistic:
    if method == "psi":
        return Statistic(stats.psi(ref, cur))
    if method == "ks":
        from scipy.stats import ks_2samp

        result = ks_2samp(ref, cur)
        return Statistic(float(result.statistic), float(result.pvalue))
    if method == "wasserstein":
        from scipy.stats import wasserstein_distance

        norm = max(float(np.std(ref)), STD_FLOOR)
        return Statistic(float(wasserstein_distance(ref, cur)) / norm)
    if method == "jensenshannon":
        ref_values, ref_counts = np.unique(ref, return_counts=True)
        cur_values, cur_counts = np.unique(cur, return_counts=True)
        return _jensenshannon_values(ref_values, ref_counts, cur_values, cur_counts)
    values = np.concatenate([ref, cur])
    keys, inverse = np.unique(values, return_inverse=True)
    ref_counts = np.bincount(inverse[: len(ref)], minlength=len(keys))
    cur_counts = np.bincount(inverse[len(ref):], minlength=len(keys))
    return count_statistic(method, dict(zip(keys.tolist(), ref_counts.tolist(), strict=True)),
                           dict(zip(keys.tolist(), cur_counts.tolist(), strict=True)))


def _from_values(method: str, ref: NumericSketch, cur: NumericSketch) -> Statistic:
    assert ref.values is not None and cur.values is not None
    if method in COUNT_METHODS:
        return count_statistic(method, ref.values, cur.values)
    keys, ref_counts, cur_counts = category_counts(ref.values, cur.values)
    values = np.array(keys, dtype=float)
    if method == "ks":
        at_edges, _, _ = stats.cdf_difference_bounds(ref_counts, cur_counts)
        d = float(np.max(np.abs(at_edges)))
        return Statistic(d, stats.ks_p_value(d, ref.count, cur.count))
    if method == "wasserstein":
        norm = max(ref.std, STD_FLOOR)
        return Statistic(stats.wasserstein_from_values(values, ref_counts, cur_counts) / norm)
    if method == "psi":
        ref_only = ref_counts > 0
        cur_only = cur_counts > 0
        r, c = stats.decile_counts(values[ref_only], ref_counts[ref_only], values[cur_only],
                                   cur_counts[cur_only])
        return Statistic(stats.psi_from_counts(r, c))
    if method == "jensenshannon":
        return _jensenshannon_values(values, ref_counts, values, cur_counts)
    raise ValueError(f"unknown method {method}")


def _jensenshannon_values(ref_values: np.ndarray, ref_counts: np.ndarray, cur_values: np.ndarray,
                          cur_counts: np.ndarray) -> Statistic:
    """Evidently's binning for Jensen–Shannon on numbers: per value when the reference has
    at most 20 distinct values, else Sturges bins over both samples' range."""
    if np.count_nonzero(ref_counts) <= 20:
        ref_map = dict(zip(ref_values.tolist(), ref_counts.tolist(), strict=True))
        cur_map = dict(zip(cur_values.tolist(), cur_counts.tolist(), strict=True))
        _, r, c = category_counts({k: v for k, v in ref_map.items() if v},
                                  {k: v for k, v in cur_map.items() if v})
        return Statistic(stats.jensenshannon_from_counts(r, c))
    edges = _sturges_edges(min(ref_values.min(), cur_values.min()),
                           max(ref_values.max(), cur_values.max()),
                           int(ref_counts.sum() + cur_counts.sum()))
    r = np.histogram(ref_values, edges, weights=ref_counts)[0]
    c = np.histogram(cur_values, edges, weights=cur_counts)[0]
    return Statistic(stats.jensenshannon_from_counts(r, c))


def _sturges_edges(lo: float, hi: float, n: int) -> np.ndarray:
    """``np.histogram_bin_edges(data, bins="sturges")`` from the data's range and size."""
    if hi <= lo:
        return np.array([lo - 0.5, hi + 0.5])
    bins = int(np.ceil((hi - lo) / ((hi - lo) / (np.log2(n) + 1.0))))
    return np.linspace(lo, hi, bins + 1)


def _from_bins(method: str, ref: NumericSketch, cur: NumericSketch) -> Statistic:
    assert ref.binning is not None and ref.counts is not None and cur.counts is not None
    assert ref.sums is not None and cur.sums is not None
    if method == "ks":
        # The largest difference at a bin edge is attained; inside a bin it can only be
        # larger, by up to what the bin holds. Atoms (a value held by many rows, as zeros)
        # sit inside one bin: their edges are where the difference is, so the edge value
        # is the better estimate than the middle of the interval.
        lower, upper = stats.ks_bounds(ref.counts, cur.counts)
        return Statistic(lower, stats.ks_p_value(lower, ref.count, cur.count), exact=False,
                         error_bound=upper - lower)
    if method == "wasserstein":
        norm = max(ref.std, STD_FLOOR)
        lower, upper = stats.wasserstein_bounds(ref.binning.edges - ref.binning.origin,
                                                ref.counts, ref.sums, cur.counts, cur.sums)
        return Statistic((lower + upper) / 2 / norm, exact=False,
                         error_bound=(upper - lower) / 2 / norm)
    if method == "psi":
        return Statistic(_binned_psi(ref.counts, cur.counts), exact=False, error_bound=None)
    if method == "jensenshannon":
        means_ref = _bin_means(ref)
        means_cur = _bin_means(cur)
        statistic = _jensenshannon_values(means_ref, ref.counts.astype(float), means_cur,
                                          cur.counts.astype(float))
        return Statistic(statistic.value, exact=False, error_bound=None)
    raise ValueError(f"unknown method {method}")


def _bin_means(sketch: NumericSketch) -> np.ndarray:
    """A representative value per bin: the mean of its values (the edge midpoint if empty)."""
    assert sketch.binning is not None and sketch.counts is not None and sketch.sums is not None
    edges = sketch.binning.edges
    if len(edges) == 0:
        return np.array([sketch.mean])
    inner = (edges[:-1] + edges[1:]) / 2
    fallback = np.concatenate([[edges[0]], inner, [edges[-1]]])
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sketch.sums / np.maximum(sketch.counts, 1) + sketch.binning.origin
    return np.where(sketch.counts > 0, means, fallback)


def _binned_psi(ref_counts: np.ndarray, cur_counts: np.ndarray, bins: int = 10) -> float:
    """PSI over the reference's deciles, each decile edge moved down to the start of the bin
    holding it (``stats.psi`` puts values equal to an edge above it: an atom that holds
    several deciles stays in one PSI bin, as there)."""
    cum = np.cumsum(ref_counts) / ref_counts.sum()
    targets = np.linspace(0, 1, bins + 1)[1:-1]
    cuts = np.unique(np.clip(np.searchsorted(cum, targets, side="left"), 1,
                             len(ref_counts) - 1))
    starts = np.concatenate([[0], cuts])
    return stats.psi_from_counts(np.add.reduceat(ref_counts, starts),
                                 np.add.reduceat(cur_counts, starts))
