"""Per-column summaries (sketches) built in one streaming pass over a sample.

A numeric column is counted into fixed bins taken from the reference: a uniform grid of
``GRID_CELLS`` cells over the reference's 0.1 %–99.9 % range (bin index by arithmetic,
about 8× faster than a binary search per value, measured), plus bins at the reference's
own tail values beyond it, found by binary search. Per bin the sketch keeps the count and
the sum of the values (less the binning's ``origin``), which makes the Wasserstein
integral exact in every bin where the two CDFs do not cross (see
``stats.wasserstein_bounds``). It also keeps the exact count, range and moments, the raw
values while there are at most ``EXACT_LIMIT`` (so small samples get SciPy's exact
tests), and value counts while there are at most ``VALUE_LIMIT`` distinct values
(integer codes, flags, ratings: exact tests over values). A categorical column keeps its
category counts.

The bins come from the first ``EDGE_SAMPLE`` values of the reference stream, so a stream
cut into chunks of any size gives the same counts. A reference ordered by value or time
makes its later values fall in the coarser tail bins: the statistics stay within their
reported error bounds, which then widen.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

GRID_CELLS = 16_384
TAIL_EDGES = 256
TAIL_SHARE = 0.001
EDGE_SAMPLE = 131_072
DISCRETE_EDGES = 32  # a sample with at most this many distinct values is binned per value
EXACT_LIMIT = 10_000  # SciPy's ks_2samp uses its exact method up to this size
VALUE_LIMIT = 1_000
INT_RANGE_LIMIT = 1 << 16  # value counts of integers by bincount over their range
CATEGORY_LIMIT = 100_000
OTHER = "(other)"


@dataclass(frozen=True)
class Binning:
    """Fixed, ordered bins for a numeric column; bin ``i`` is ``[edges[i-1], edges[i])``,
    the first and the last bin open towards -inf and +inf."""

    edges: np.ndarray
    lo: float = 0.0
    scale: float = 0.0
    cells: int = 0  # 0: no grid, the edges are searched directly
    lower: np.ndarray = field(default_factory=lambda: np.empty(0))
    upper: np.ndarray = field(default_factory=lambda: np.empty(0))

    @property
    def size(self) -> int:
        """The number of bins."""
        return len(self.edges) + 1

    @property
    def origin(self) -> float:
        """Sums are of ``x - origin``: values far from zero (timestamps, ids around 1e9)
        would otherwise lose the digits that the Wasserstein integral subtracts."""
        return self.lo if self.cells else float(self.edges[0]) if len(self.edges) else 0.0

    @classmethod
    def from_sample(cls, sample: np.ndarray) -> Binning:
        """Bins for values like ``sample`` (finite floats): per distinct value when there
        are few, else the grid over the central range with the tail values as edges."""
        n = len(sample)
        if len(np.unique(sample[:4096])) <= DISCRETE_EDGES:
            distinct = np.unique(sample)
            if len(distinct) <= DISCRETE_EDGES:
                return cls(edges=distinct)
        k = int(TAIL_SHARE * n)
        # Only the tails need sorting: a partition finds the central range in O(n).
        part = np.partition(sample, [k, n - 1 - k])
        lo, hi = float(part[k]), float(part[n - 1 - k])
        if hi <= lo:
            lo, hi = float(part.min()), float(part.max())
        lower = _thin(np.unique(part[:k + 1][part[:k + 1] < lo]))
        upper = _thin(np.unique(part[n - 1 - k:][part[n - 1 - k:] > hi]))
        grid = np.linspace(lo, hi, GRID_CELLS + 1)
        return cls(edges=np.concatenate([lower, grid, upper]), lo=lo,
                   scale=GRID_CELLS / (hi - lo), cells=GRID_CELLS, lower=lower, upper=upper)

    def count(self, x: np.ndarray, counts: np.ndarray, sums: np.ndarray, *,
              low: float, high: float) -> None:
        """Add the count and the sum of ``x - origin`` of ``x``'s values (finite floats,
        ``low``/``high`` their extremes) to each bin."""
        d = x - self.origin
        if not self.cells:
            index = np.searchsorted(self.edges, x, side="right")
            counts += np.bincount(index, minlength=self.size)
            sums += np.bincount(index, weights=d, minlength=self.size)
            return
        # cell = trunc(clip((x - lo)·scale + 1, 0, G + 1)): 1..G the grid, 0 and G+1 the
        # tails (no floor needed: everything below 1 is a tail).
        t = d * self.scale
        t += 1.0
        np.clip(t, 0, self.cells + 1, out=t)
        cell = t.astype(np.intp)
        grid = slice(len(self.lower) + 1, len(self.lower) + 1 + self.cells)
        counts[grid] += np.bincount(cell, minlength=self.cells + 2)[1:-1]
        sums[grid] += np.bincount(cell, weights=d, minlength=self.cells + 2)[1:-1]
        if low < self.lo + 1 / self.scale:
            tail = cell == 0
            index = np.searchsorted(self.lower, x[tail], side="right")
            counts[:grid.start] += np.bincount(index, minlength=grid.start)
            sums[:grid.start] += np.bincount(index, weights=d[tail], minlength=grid.start)
        if high >= self.lo + self.cells / self.scale - 1 / self.scale:
            tail = cell == self.cells + 1
            index = np.searchsorted(self.upper, x[tail], side="right")
            counts[grid.stop:] += np.bincount(index, minlength=len(self.upper) + 1)
            sums[grid.stop:] += np.bincount(index, weights=d[tail], minlength=len(self.upper) + 1)


def _thin(values: np.ndarray) -> np.ndarray:
    if len(values) <= TAIL_EDGES:
        return values
    return values[np.linspace(0, len(values) - 1, TAIL_EDGES).astype(np.intp)]


class NumericSketch:
    """Counts, sums, moments, range and (while small) raw values and value counts of the
    finite values of a numeric column; nulls, NaN and ±inf are counted as missing."""

    def __init__(self, binning: Binning | None = None, *, integer: bool = False,
                 reference_range: tuple[float, float] | None = None) -> None:
        self.binning = binning
        self.integer = integer
        self.reference_range = reference_range
        self.rows = 0
        self.missing = 0
        self.count = 0
        self.mean = 0.0
        self.m2 = 0.0
        self.min = float("inf")
        self.max = float("-inf")
        self.below = 0  # values under / over reference_range
        self.above = 0
        self.counts: np.ndarray | None = None
        self.sums: np.ndarray | None = None
        self.raw: list[np.ndarray] | None = []
        self.values: dict[float, int] | None = {}
        self._pending: list[np.ndarray] = []
        self._pending_count = 0
        if binning is not None:
            self._allocate(binning)

    def _allocate(self, binning: Binning) -> None:
        self.binning = binning
        self.counts = np.zeros(binning.size, dtype=np.int64)
        self.sums = np.zeros(binning.size, dtype=np.float64)

    def add(self, column: pa.ChunkedArray | pa.Array) -> None:
        """Add a chunk of the column."""
        self.rows += len(column)
        x = _finite_floats(column)
        self.missing += len(column) - len(x)
        if len(x) == 0:
            return
        low, high = float(np.min(x)), float(np.max(x))
        self._moments(x, low, high)
        if self.raw is not None:
            if self.count <= EXACT_LIMIT:
                self.raw.append(x.copy())
            else:
                self.raw = None
        if self.values is not None:
            self._count_values(x, low, high)
        if self.reference_range is not None:
            if low < self.reference_range[0]:
                self.below += int(np.count_nonzero(x < self.reference_range[0]))
            if high > self.reference_range[1]:
                self.above += int(np.count_nonzero(x > self.reference_range[1]))
        if self.binning is None:
            self._pending.append(x)
            self._pending_count += len(x)
            if self._pending_count >= EDGE_SAMPLE:
                self._bin_pending()
            return
        assert self.counts is not None and self.sums is not None
        self.binning.count(x, self.counts, self.sums, low=low, high=high)

    def finish(self) -> NumericSketch:
        """Bin what is still waiting for the bins (a sample smaller than ``EDGE_SAMPLE``)."""
        if self.binning is None and self._pending_count:
            self._bin_pending()
        return self

    def _bin_pending(self) -> None:
        sample = np.concatenate(self._pending)[:EDGE_SAMPLE]
        binning = Binning.from_sample(sample)
        self._allocate(binning)
        assert self.counts is not None and self.sums is not None
        for x in self._pending:
            binning.count(x, self.counts, self.sums, low=float(np.min(x)), high=float(np.max(x)))
        self._pending, self._pending_count = [], 0

    def _moments(self, x: np.ndarray, low: float, high: float) -> None:
        # Chan et al.'s pairwise update: stable for large means and many chunks.
        n, mean = len(x), float(np.mean(x))
        m2 = float(np.var(x)) * n
        total = self.count + n
        delta = mean - self.mean
        self.mean += delta * n / total
        self.m2 += m2 + delta * delta * self.count * n / total
        self.count = total
        self.min = min(self.min, low)
        self.max = max(self.max, high)

    def _count_values(self, x: np.ndarray, low: float, high: float) -> None:
        assert self.values is not None
        if self.integer:
            if high - low >= INT_RANGE_LIMIT:
                self.values = None
                return
            shifted = x - low
            counts = np.bincount(shifted.astype(np.intp))
            present = np.flatnonzero(counts)
            keys, found = (present + low).tolist(), counts[present].tolist()
        else:
            # Hashing a million distinct floats costs ~0.3 s: a prefix shows most
            # continuous columns for what they are first.
            if len(np.unique(x[:4 * VALUE_LIMIT])) > VALUE_LIMIT:
                self.values = None
                return
            result = pc.value_counts(_arrow_view(x))
            keys = result.field("values").to_pylist()
            found = result.field("counts").to_pylist()
        values = self.values
        for key, n in zip(keys, found, strict=True):
            values[key] = values.get(key, 0) + n
        if len(values) > VALUE_LIMIT:
            self.values = None

    @property
    def std(self) -> float:
        """Population standard deviation (``np.std``, ddof 0) of the finite values."""
        return float(np.sqrt(self.m2 / self.count)) if self.count else float("nan")

    def raw_values(self) -> np.ndarray | None:
        """All finite values, when there are at most ``EXACT_LIMIT`` of them."""
        if self.raw is None:
            return None
        return np.concatenate(self.raw) if self.raw else np.empty(0)

    def distinct(self) -> int | None:
        """The number of distinct finite values, when tracked."""
        return None if self.values is None else len(self.values)


class CategorySketch:
    """Counts of the values of a categorical column (strings, booleans, dictionaries);
    past ``CATEGORY_LIMIT`` distinct values, new ones are counted together as ``(other)``."""

    def __init__(self) -> None:
        self.rows = 0
        self.missing = 0
        self.counts: dict[Any, int] = {}

    @property
    def count(self) -> int:
        """Non-null values seen."""
        return self.rows - self.missing

    def add(self, column: pa.ChunkedArray | pa.Array) -> None:
        """Add a chunk of the column."""
        self.rows += len(column)
        self.missing += column.null_count
        chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
        for chunk in chunks:
            if pa.types.is_dictionary(chunk.type):
                indices = _int_view(chunk.indices.drop_null())
                counts = np.bincount(indices, minlength=len(chunk.dictionary))
                present = np.flatnonzero(counts)
                self._merge(chunk.dictionary.take(_arrow_view(present)).to_pylist(),
                            counts[present].tolist())
            else:
                result = pc.value_counts(chunk.drop_null())
                self._merge(result.field("values").to_pylist(), result.field("counts").to_pylist())

    def _merge(self, keys: list[Any], counts: list[int]) -> None:
        table = self.counts
        for key, n in zip(keys, counts, strict=True):
            if key in table or len(table) < CATEGORY_LIMIT:
                table[key] = table.get(key, 0) + n
            else:
                table[OTHER] = table.get(OTHER, 0) + n


def _arrow_view(x: np.ndarray) -> pa.Array:
    """An Arrow view of a contiguous NumPy array (``pa.array`` would import pandas)."""
    x = np.ascontiguousarray(x)
    return pa.Array.from_buffers(pa.from_numpy_dtype(x.dtype), len(x), [None, pa.py_buffer(x)])


def _int_view(array: pa.Array) -> np.ndarray:
    """A NumPy view of an integer array without nulls (no pandas import, no copy)."""
    dtype = np.dtype(str(array.type))
    return np.frombuffer(array.buffers()[1], dtype=dtype,
                         count=array.offset + len(array))[array.offset:]


def _finite_floats(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """The column's finite values as float64 (nulls, NaN and ±inf dropped)."""
    if column.null_count:
        column = column.drop_null()
    if isinstance(column, pa.ChunkedArray):
        if column.num_chunks == 1:
            column = column.chunk(0)
        else:
            column = column.combine_chunks() if column.num_chunks else pa.array([], pa.float64())
    if len(column) == 0:
        return np.empty(0)
    if column.type != pa.float64():
        column = pc.cast(column, pa.float64())
    # No nulls left: a view of the data buffer (pyarrow's to_numpy imports pandas, 0.7 s).
    x = np.frombuffer(column.buffers()[1], dtype=np.float64,
                      count=column.offset + len(column))[column.offset:]
    finite = np.isfinite(x)
    if not finite.all():
        x = x[finite]
    return x
