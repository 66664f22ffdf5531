"""Distribution comparisons shared by canary analysis and drift monitoring.

``psi`` works on raw samples. The ``*_from_counts`` / ``*_bounds`` functions work on
counts in the same ordered bins (or categories) of two samples, so the drift engine can
stream data through fixed bins once and compute every statistic from the counts. Each
follows the formulation of the SciPy function (or Evidently's test) named in its
docstring, so results are comparable with those tools.
"""

from __future__ import annotations

import math

import numpy as np

EPSILON = 1e-4  # empty bins: PSI takes logs of proportions


def psi(reference: np.ndarray, current: np.ndarray, *, bins: int = 10) -> float:
    """Population stability index of ``current`` against ``reference``.

    Numbers are binned at the reference's quantiles (``bins`` bins, open-ended at both
    sides); anything else is compared category by category. NaN/None are left out.
    """
    reference, current = _clean(reference), _clean(current)
    if len(reference) == 0 or len(current) == 0:
        return float("nan")
    if _numeric(reference) and _numeric(current):
        edges = np.unique(np.quantile(reference.astype(float), np.linspace(0, 1, bins + 1)[1:-1]))
        ref_counts = np.bincount(np.searchsorted(edges, reference.astype(float), side="right"),
                                 minlength=len(edges) + 1)
        cur_counts = np.bincount(np.searchsorted(edges, current.astype(float), side="right"),
                                 minlength=len(edges) + 1)
    else:
        categories, codes = np.unique(np.concatenate([reference.astype(str), current.astype(str)]),
                                      return_inverse=True)
        ref_counts = np.bincount(codes[: len(reference)], minlength=len(categories))
        cur_counts = np.bincount(codes[len(reference):], minlength=len(categories))
    return psi_from_counts(ref_counts, cur_counts)


def psi_from_counts(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """PSI of two count vectors over the same bins (shares floored at ``EPSILON``)."""
    ref = np.asarray(reference_counts, dtype=float)
    cur = np.asarray(current_counts, dtype=float)
    if ref.sum() <= 0 or cur.sum() <= 0:
        return float("nan")
    expected = np.maximum(ref / ref.sum(), EPSILON)
    actual = np.maximum(cur / cur.sum(), EPSILON)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def decile_counts(values: np.ndarray, counts: np.ndarray, other_values: np.ndarray,
                  other_counts: np.ndarray, *, bins: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Counts of two weighted samples in the reference's quantile bins, as ``psi`` bins them.

    ``values``/``counts`` is the reference as sorted distinct values with their counts
    (``other_*`` the current one); quantiles use NumPy's default (linear) method.
    """
    edges = np.unique(weighted_quantiles(values, counts, np.linspace(0, 1, bins + 1)[1:-1]))

    def binned(v: np.ndarray, c: np.ndarray) -> np.ndarray:
        return np.bincount(np.searchsorted(edges, v, side="right"), weights=c,
                           minlength=len(edges) + 1)

    return binned(values, counts), binned(other_values, other_counts)


def weighted_quantiles(values: np.ndarray, counts: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``np.quantile`` (linear method) of the sample that repeats ``values[i]`` ``counts[i]``
    times; ``values`` sorted ascending."""
    cum = np.cumsum(counts)
    n = int(cum[-1])
    position = np.asarray(q, dtype=float) * (n - 1)
    below = np.floor(position).astype(np.int64)
    above = np.minimum(below + 1, n - 1)
    lo = values[np.searchsorted(cum, below, side="right")]
    hi = values[np.searchsorted(cum, above, side="right")]
    return np.asarray(lo + (hi - lo) * (position - below), dtype=float)


def cdf_difference_bounds(reference_counts: np.ndarray,
                          current_counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For ordered bins: the CDF difference F_ref − F_cur at each inner bin edge, and its
    lowest and highest possible values inside each bin."""
    ref = np.asarray(reference_counts, dtype=float)
    cur = np.asarray(current_counts, dtype=float)
    f_ref = np.concatenate([[0.0], np.cumsum(ref) / ref.sum()])  # at bin edges, from -inf
    f_cur = np.concatenate([[0.0], np.cumsum(cur) / cur.sum()])
    at_edges = f_ref - f_cur
    low = f_ref[:-1] - f_cur[1:]  # inside bin i: F_ref >= F_ref(left), F_cur <= F_cur(right)
    high = f_ref[1:] - f_cur[:-1]
    return at_edges, low, high


def ks_bounds(reference_counts: np.ndarray, current_counts: np.ndarray) -> tuple[float, float]:
    """Bounds on the two-sample Kolmogorov–Smirnov statistic from counts in the same
    ordered bins: the largest CDF difference seen at a bin edge (attained), and the largest
    possible inside a bin. Exact when every bin holds a single distinct value."""
    at_edges, low, high = cdf_difference_bounds(reference_counts, current_counts)
    lower = float(np.max(np.abs(at_edges)))
    upper = float(max(lower, np.max(np.abs(low)), np.max(np.abs(high))))
    return lower, upper


def ks_p_value(statistic: float, n_reference: int, n_current: int) -> float:
    """Two-sided KS p-value as ``scipy.stats.ks_2samp`` computes it for large samples
    (its ``asymp`` mode: Kolmogorov's distribution at the effective sample size)."""
    from scipy.stats import kstwo

    m, n = sorted((float(n_reference), float(n_current)), reverse=True)
    en = m * n / (m + n)
    return float(np.clip(kstwo.sf(statistic, np.round(en)), 0.0, 1.0))


def wasserstein_bounds(edges: np.ndarray, reference_counts: np.ndarray, reference_sums: np.ndarray,
                       current_counts: np.ndarray, current_sums: np.ndarray) -> tuple[float, float]:
    """Bounds on the Wasserstein-1 distance between two samples binned the same way.

    ``edges`` are the K-1 inner edges of K ordered bins (the first and last bin are open
    towards -inf/+inf); each sample gives, per bin, the count and the sum of its values.
    Over a bin [a, b) the integral of F_ref - F_cur is exact from counts and sums
    (∫F = (b-a)·F(a) + Σ(b - x)/n); where the difference cannot change sign inside the bin
    its absolute integral is exact too, elsewhere it lies between |∫| and a width bound.
    """
    edges = np.asarray(edges, dtype=float)
    ref_c = np.asarray(reference_counts, dtype=float)
    cur_c = np.asarray(current_counts, dtype=float)
    n_ref, n_cur = ref_c.sum(), cur_c.sum()
    ref_s = np.asarray(reference_sums, dtype=float)
    cur_s = np.asarray(current_sums, dtype=float)
    at_edges, low, high = cdf_difference_bounds(ref_c, cur_c)
    if len(edges) == 0:  # one bin: only the means are known
        diff = abs(ref_s[0] / n_ref - cur_s[0] / n_cur)
        return float(diff), float("inf")
    # Inner bins [edges[i-1], edges[i]): ∫(F_ref - F_cur) = w·D(a) + Σ(b-x)/n_ref - Σ(b-x)/n_cur.
    a, b = edges[:-1], edges[1:]
    width = b - a
    inner = slice(1, len(ref_c) - 1)
    integral = (width * at_edges[1:-2]
                + (ref_c[inner] * b - ref_s[inner]) / n_ref
                - (cur_c[inner] * b - cur_s[inner]) / n_cur)
    # First bin (-inf, e0): ∫F = Σ(e0 - x)/n. Last bin [eK, inf): ∫(1 - F) = Σ(x - eK)/n.
    first_ref = (ref_c[0] * edges[0] - ref_s[0]) / n_ref
    first_cur = (cur_c[0] * edges[0] - cur_s[0]) / n_cur
    last_ref = (ref_s[-1] - ref_c[-1] * edges[-1]) / n_ref
    last_cur = (cur_s[-1] - cur_c[-1] * edges[-1]) / n_cur
    signed = np.concatenate([[first_ref - first_cur], integral, [last_cur - last_ref]])
    lower_parts = np.abs(signed)
    constant_sign = (low >= 0) | (high <= 0)
    reach = np.maximum(np.abs(low), np.abs(high))
    upper_parts = np.concatenate([
        [first_ref + first_cur], width * reach[inner], [last_ref + last_cur]])
    upper_parts = np.where(constant_sign, lower_parts, np.maximum(upper_parts, lower_parts))
    return float(lower_parts.sum()), float(upper_parts.sum())


def wasserstein_from_values(values: np.ndarray, reference_counts: np.ndarray,
                            current_counts: np.ndarray) -> float:
    """Exact Wasserstein-1 distance of two samples given as counts over the same sorted
    distinct ``values`` (``scipy.stats.wasserstein_distance`` on the expanded samples)."""
    if len(values) < 2:
        return 0.0
    at_edges, _, _ = cdf_difference_bounds(reference_counts, current_counts)
    return float(np.sum(np.abs(at_edges[1:-1]) * np.diff(np.asarray(values, dtype=float))))


def chisquare_from_counts(reference_counts: np.ndarray,
                          current_counts: np.ndarray) -> tuple[float, float]:
    """Chi-square goodness of fit of the current counts to the reference proportions, as
    Evidently's ``chisquare`` test: expected = reference counts × n_current / n_reference
    over the union of categories; a category the reference never saw gives p = 0.
    Returns (statistic, p_value), as ``scipy.stats.chisquare(f_obs, f_exp)``."""
    from scipy.special import chdtrc

    ref = np.asarray(reference_counts, dtype=float)
    obs = np.asarray(current_counts, dtype=float)
    expected = ref * obs.sum() / ref.sum()
    if len(obs) < 2:
        return 0.0, 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(expected > 0, (obs - expected) ** 2 / expected,
                         np.where(obs > 0, np.inf, 0.0))
    statistic = float(terms.sum())
    return statistic, float(chdtrc(len(obs) - 1, statistic))


def jensenshannon_from_counts(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """Jensen–Shannon distance (natural log, so at most √ln 2 ≈ 0.833) between two count
    vectors over the same categories: ``scipy.spatial.distance.jensenshannon(p, q)``."""
    p = np.asarray(reference_counts, dtype=float)
    q = np.asarray(current_counts, dtype=float)
    p, q = p / p.sum(), q / q.sum()
    m = (p + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        left = np.where(p > 0, p * np.log(p / m), 0.0)
        right = np.where(q > 0, q * np.log(q / m), 0.0)
    return float(math.sqrt(max(float(left.sum() + right.sum()), 0.0) / 2))


def z_test_from_counts(reference_counts: np.ndarray,
                       current_counts: np.ndarray) -> tuple[float, float]:
    """Evidently's proportion-difference z-test for a binary column: the share of values
    other than the first (sorted) category, reference vs current. Returns (z, two-sided
    p-value)."""
    ref = np.asarray(reference_counts, dtype=float)
    cur = np.asarray(current_counts, dtype=float)
    n1, n2 = ref.sum(), cur.sum()
    if np.count_nonzero(ref) == 1 and np.count_nonzero(cur) == 1 and \
            int(np.argmax(ref)) == int(np.argmax(cur)):
        return 0.0, 1.0
    p1, p2 = (n1 - ref[0]) / n1, (n2 - cur[0]) / n2
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    denominator = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if denominator == 0:
        return 0.0, 1.0
    z = (p1 - p2) / denominator
    return float(z), float(math.erfc(abs(z) / math.sqrt(2)))


def _clean(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values)
    if values.dtype.kind == "f":
        return values[~np.isnan(values)]
    if values.dtype.kind == "O":
        return np.asarray([v for v in values if v is not None and v == v])
    return values


def _numeric(values: np.ndarray) -> bool:
    return values.dtype.kind in "iufb"
