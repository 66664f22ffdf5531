"""The values a drift comparison returns: per column, per dataset, JSON-ready."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from dsops.core.errors import NotFound


@dataclass(frozen=True)
class Histogram:
    """Reference and current shares over the same bins, for charts.

    ``kind`` is ``numeric`` (``edges`` has one more entry than the shares; values outside
    are counted in the first/last bin) or ``categorical`` (``categories`` name the bars;
    the less frequent ones are summed in ``(other)``)."""

    kind: str
    reference: list[float]
    current: list[float]
    edges: list[float] | None = None
    categories: list[str] | None = None


@dataclass(frozen=True)
class ColumnQuality:
    """Data quality of the current column against the reference.

    ``null_share`` is the current data's share of null (or NaN/±inf) rows, next to the
    reference's; the other shares are of non-null values: ``out_of_range_share``
    counts values outside the reference's [min, max] (numeric columns), ``unseen_share``
    values whose category the reference never had (categorical columns)."""

    null_share: float | None
    reference_null_share: float | None
    null_share_change: float | None
    out_of_range_share: float | None = None
    unseen_share: float | None = None
    unseen_examples: list[str] = field(default_factory=list)
    reference_min: float | None = None
    reference_max: float | None = None


@dataclass(frozen=True)
class ColumnDrift:
    """The drift of one column.

    ``statistic`` is the value of ``method``: the test statistic for the tests (``ks``: the
    largest CDF difference, ``chisquare``: χ², ``z``: z) or the distance (``wasserstein``
    normalised by the reference's standard deviation, ``jensenshannon``, ``psi``).
    ``score`` is what ``threshold`` applies to: the test's ``p_value`` (drift when below;
    at or below for ``ks``) or the distance (drift when at or above). When ``exact`` is
    false, the exact statistic lies within ``statistic ± error_bound``. ``drifted`` is
    None when the column could not be compared (``status`` says why). ``psi`` (reference
    deciles, or categories) is reported for every compared column."""

    column: str
    kind: str
    reference_type: str
    current_type: str | None
    status: str  # ok | no_data | no_reference_data | missing | type_mismatch
    method: str | None = None
    statistic: float | None = None
    p_value: float | None = None
    score: float | None = None
    threshold: float | None = None
    drifted: bool | None = None
    psi: float | None = None
    exact: bool = True
    error_bound: float | None = None
    reference_count: int = 0
    current_count: int = 0
    quality: ColumnQuality | None = None
    histogram: Histogram | None = None
    message: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable values (non-finite numbers become None)."""
        return json_ready(asdict(self))


@dataclass(frozen=True)
class DriftReport:
    """The drift of a dataset: every compared column by name, the prediction column apart.

    ``drifted_share`` is the share of compared feature columns that drifted (None when
    the current data has no rows); ``dataset_drift`` is ``drifted_share >= drift_share``,
    Evidently's dataset-level rule. Columns that could not be compared (missing, type
    mismatch, no data) are listed but count in neither the share nor its denominator."""

    reference_rows: int
    current_rows: int
    status: str  # ok | no_data
    columns: dict[str, ColumnDrift]
    prediction: ColumnDrift | None
    drifted_columns: list[str]
    drifted_count: int
    compared_count: int
    drifted_share: float | None
    drift_share: float
    dataset_drift: bool | None
    message: str | None = None

    def column(self, name: str) -> ColumnDrift:
        """The result for one column (the prediction column too); unknown names raise
        `NotFound` with the known ones."""
        for result in self.all_columns():
            if result.column == name:
                return result
        raise NotFound("column", name, known=[c.column for c in self.all_columns()])

    def all_columns(self) -> list[ColumnDrift]:
        """Feature columns, then the prediction column if any."""
        return list(self.columns.values()) + ([self.prediction] if self.prediction else [])

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable values (non-finite numbers become None)."""
        return json_ready(asdict(self))


def json_ready(value: Any) -> Any:
    """Plain JSON values: NaN and infinities become None (PostgreSQL's JSON refuses them),
    NumPy scalars their Python value."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    if value is None or isinstance(value, str | int | bool):
        return value
    if hasattr(value, "item"):  # NumPy scalars
        return json_ready(value.item())
    return str(value)
