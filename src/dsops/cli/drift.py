"""``dsops drift REF CURRENT``: drift and data quality of one dataset against another."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from dsops.monitoring.drift_results import ColumnDrift, DriftReport

DATA_PREFIX = "data:"


def drift(
    ref_data: Annotated[str, typer.Argument(
        help="Reference data: a CSV/Parquet/JSONL file, a directory of Parquet files, or "
             "data:NAME[@VERSION].", metavar="REF_DATA")],
    current_data: Annotated[str, typer.Argument(
        help="Current data, in the same forms.", metavar="CURRENT_DATA")],
    columns: Annotated[str | None, typer.Option(
        help="Compare only these columns (comma-separated; default: every numeric and "
             "categorical column).")] = None,
    method: Annotated[str, typer.Option(
        help="auto (as Evidently's DataDriftPreset: KS / chi-square up to 1,000 reference "
             "rows, else Wasserstein / Jensen-Shannon), ks, wasserstein, psi, chisquare, z "
             "or jensenshannon; a method applies to the columns of a kind it supports.")] = "auto",
    threshold: Annotated[float | None, typer.Option(
        help="Drift threshold for every column (default: the method's: p < 0.05 for tests, "
             "0.1 for distances).")] = None,
    prediction: Annotated[str | None, typer.Option(
        help="The prediction column, reported apart (default: 'prediction' if present).")] = None,
    html: Annotated[Path | None, typer.Option(
        "--html", help="Also write a standalone HTML report with charts.")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="JSON output.")] = False,
    fail_on_drift: Annotated[bool, typer.Option(
        "--fail-on-drift", help="Exit 1 when any column (or the prediction) drifted.")] = False,
) -> None:
    """Compare CURRENT_DATA with REF_DATA column by column: drift, PSI and data quality.

    The report is information: the exit code is 0 whatever drifted, unless
    --fail-on-drift is given (then 1 when any column drifted)."""
    from dsops.cli.output import err_console, print_json, write_output
    from dsops.core.errors import UsageError
    from dsops.monitoring.drift import compute_drift

    selected = [c.strip() for c in columns.split(",") if c.strip()] if columns else None
    (reference, ref_sensitive), (current, cur_sensitive) = _load(ref_data), _load(current_data)
    sensitive = ref_sensitive | cur_sensitive
    if sensitive and selected is not None and sensitive & set(selected):
        raise UsageError(f"column(s) {', '.join(sorted(sensitive & set(selected)))} hold personal "
                         "data: a drift report would show their values",
                         hint="compare the other columns; drift of personal data is not reported")
    if sensitive and selected is None:
        table = reference if not isinstance(reference, Path) else current
        selected = [c for c in table.column_names if c not in sensitive]
        err_console.print(f"not compared (personal data): {', '.join(sorted(sensitive))}")
    report = compute_drift(reference, current, columns=selected,
                           methods=method, thresholds=threshold, prediction=prediction)
    if html is not None:
        from dsops.monitoring.drift_report import render_html

        write_output(html, render_html(report, reference=ref_data, current=current_data))
    if json_output:
        print_json(report.to_dict())
    else:
        _render(report, html)
    drifted = report.drifted_count or (report.prediction is not None and report.prediction.drifted)
    if fail_on_drift and drifted:
        raise typer.Exit(1)


def _load(data: str) -> tuple[Any, set[str]]:
    """A path stays a path (read in chunks); a ``data:`` reference is read through the
    project's dataset service (only then is a workspace opened), with the names of its
    columns that hold personal data (found by the PII scan or declared sensitive)."""
    if not data.startswith(DATA_PREFIX):
        return Path(data), set()
    from dsops.core.refs import Ref
    from dsops.data.service import DatasetService
    from dsops.workspace import Workspace

    ws = Workspace.open()
    try:
        service = DatasetService(ws)
        ref = data.removeprefix(DATA_PREFIX)
        info = service.show(ref)
        declared = ws.config.datasets.get(Ref.parse(ref).name)
        sensitive = {f.column for f in info.pii if f.column} | set(
            declared.sensitive_columns if declared else [])
        return service.read_table(ref), sensitive
    finally:
        ws.close()


def _render(report: DriftReport, html: Path | None) -> None:
    from rich.markup import escape

    from dsops.cli.output import console, table

    if report.status == "no_data":
        console.print(f"no data: the current data has no rows ({report.reference_rows:,} "
                      "reference rows); nothing to compare")
        return
    rows = [_row(c, c is report.prediction) for c in report.all_columns()]
    table(f"drift: {report.current_rows:,} current rows vs {report.reference_rows:,} reference rows",
          ["column", "type", "method", "statistic", "threshold", "drifted", "PSI", "note"], rows)
    share = "n/a" if report.drifted_share is None else f"{report.drifted_share:.0%}"
    line = (f"drifted: {report.drifted_count} of {report.compared_count} columns ({share})")
    if report.prediction is not None and report.prediction.drifted is not None:
        line += "; prediction " + ("drifted" if report.prediction.drifted else "stable")
    console.print(escape(line))
    if html is not None:
        console.print(f"report: {escape(str(html))}")


def _row(c: ColumnDrift, prediction: bool) -> list[Any]:
    from rich.text import Text

    name = c.column + (" (prediction)" if prediction else "")
    if c.drifted is None:
        verdict = Text("–", style="dim")
    else:
        verdict = Text("✓ drifted", style="bold red") if c.drifted else Text("✗", style="green")
    statistic = "" if c.score is None else _num(c.score)
    if c.method in ("ks", "chisquare", "z") and c.score is not None:
        statistic = f"p={_num(c.score)}"
    note = c.message or ""
    quality = c.quality
    if quality is not None and not note:
        parts = []
        if quality.null_share_change and abs(quality.null_share_change) >= 0.01:
            parts.append(f"nulls {quality.null_share_change:+.1%}")
        if quality.out_of_range_share:
            parts.append(f"out of range {quality.out_of_range_share:.1%}")
        if quality.unseen_share:
            parts.append(f"unseen {quality.unseen_share:.1%}")
        note = ", ".join(parts)
    return [name, c.kind, c.method or "", statistic,
            "" if c.threshold is None else _num(c.threshold), verdict,
            "" if c.psi is None else _num(c.psi), note]


def _num(value: float) -> str:
    if value != value:  # NaN
        return "nan"
    if value == 0 or 1e-3 <= abs(value) < 1e5:
        return f"{value:.4g}"
    return f"{value:.3g}"
