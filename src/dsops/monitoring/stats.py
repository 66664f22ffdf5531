"""Distribution comparisons shared by canary analysis and drift monitoring."""

from __future__ import annotations

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
    expected = np.maximum(ref_counts / ref_counts.sum(), EPSILON)
    actual = np.maximum(cur_counts / cur_counts.sum(), EPSILON)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def _clean(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values)
    if values.dtype.kind == "f":
        return values[~np.isnan(values)]
    if values.dtype.kind == "O":
        return np.asarray([v for v in values if v is not None and v == v])
    return values


def _numeric(values: np.ndarray) -> bool:
    return values.dtype.kind in "iufb"
