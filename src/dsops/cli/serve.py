"""``dsops serve``, ``dsops feedback FILE`` and ``dsops predictions query|compact|prune``: the gateway
and its logs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

predictions_app = typer.Typer(help="The prediction log: every answer the gateway gave.", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")]


def serve(
    env: Annotated[str, typer.Option("--env", help="Environment whose deployments to serve.")] = "prod",
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    workers: Annotated[int, typer.Option(help="Worker processes (uvicorn).")] = 1,
    log_predictions: Annotated[bool, typer.Option(
        "--log-predictions/--no-log-predictions", help="Write the prediction log.")] = True,
) -> None:
    """Serve every model deployed in an environment: OIP v2, MLflow /invocations, /metrics.

    Stops gracefully on SIGTERM or Ctrl-C, storing every logged prediction first.
    """
    from dsops.cli.output import console
    from dsops.core.project import find_root
    from dsops.serving.server import serve as run_gateway

    root = find_root(Path.cwd())
    if root is None:
        from dsops.workspace import Workspace

        Workspace.open()  # raises the usual "no dsops.yaml" error
        return
    run_gateway(root, env, host=host, port=port, workers=workers, log_predictions=log_predictions,
                say=lambda line: console.print(line, markup=False, highlight=False))


def feedback(
    file: Annotated[Path, typer.Argument(help="CSV or Parquet file with request_id and label columns "
                                               "(and optionally row).", exists=True, dir_okay=False)],
    json_output: JsonOpt = False,
) -> None:
    """Attach ground-truth labels to logged predictions, by request id."""
    from dsops.cli.output import console, print_json
    from dsops.serving.predlog import FeedbackWriter
    from dsops.workspace import Workspace

    request_ids, labels, rows = _read_feedback(file)
    ws = Workspace.open()
    writer = FeedbackWriter(ws.objects, clock=ws.clock)
    try:
        queued = writer.append_many(request_ids, labels, rows=rows)
    finally:
        writer.close()
    if json_output:
        print_json({"file": str(file), "labels": queued})
    else:
        console.print(f"attached {queued} label{'s' if queued != 1 else ''} from {file}")


@predictions_app.command("query")
def query(
    sql: Annotated[str, typer.Argument(help="DuckDB SQL over the views `predictions` and `feedback`.")],
    json_output: JsonOpt = False,
    limit: Annotated[int, typer.Option(help="Rows shown in the table (all with --json).")] = 100,
) -> None:
    """Run SQL over the prediction log, e.g. "SELECT version, count(*) FROM predictions GROUP BY 1"."""
    from dsops.cli.output import console, print_json, table
    from dsops.serving.predlog_query import PredictionLog
    from dsops.workspace import Workspace

    result = PredictionLog(Workspace.open().objects).query(sql)
    records = result.to_pylist()
    if json_output:
        print_json(records)
        return
    if not result.column_names:
        console.print("(no result)")
        return
    table(None, result.column_names, [[record[name] for name in result.column_names]
                                      for record in records[:limit]])
    shown = min(limit, len(records))
    console.print(f"{len(records)} row{'s' if len(records) != 1 else ''}"
                  + (f" ({shown} shown; --limit or --json for more)" if shown < len(records) else ""))


@predictions_app.command("compact")
def compact(json_output: JsonOpt = False) -> None:
    """Merge the log's small segments into one file per folder (dsops serve does it every 10 minutes)."""
    from dsops.cli.output import console, print_json
    from dsops.serving.predlog_compact import compact as compact_logs
    from dsops.workspace import Workspace

    ws = Workspace.open()
    result = compact_logs(ws.objects, ws.now())
    if json_output:
        print_json(vars(result))
        return
    console.print(f"compacted {result.segments:,} segments ({result.rows:,} rows) into {result.files:,} "
                  f"file{'s' if result.files != 1 else ''}"
                  + (f"; removed {result.deleted:,} files replaced more than 10 minutes ago"
                     if result.deleted else ""))


@predictions_app.command("prune")
def prune(
    before: Annotated[str | None, typer.Option(
        help="Delete the days before this date (YYYY-MM-DD, UTC).")] = None,
    older_than: Annotated[str | None, typer.Option(
        help="Delete the days older than this, e.g. 90d. Default: predictions.retention "
             "in dsops.yaml.")] = None,
    dry_run: Annotated[bool, typer.Option(help="Count what would be deleted; delete nothing.")] = False,
    json_output: JsonOpt = False,
) -> None:
    """Delete whole days of predictions and feedback (audited): the log's retention."""
    from datetime import date

    from dsops.cli.output import console, print_json
    from dsops.core.errors import UsageError
    from dsops.serving.predlog_compact import prune as prune_logs
    from dsops.serving.predlog_compact import retention_cutoff
    from dsops.workspace import Workspace

    if before is not None and older_than is not None:
        raise UsageError("give --before DATE or --older-than DURATION, not both")
    ws = Workspace.open()
    if before is not None:
        try:
            cutoff = date.fromisoformat(before)
        except ValueError:
            raise UsageError(f"--before: {before!r} is not a date (expected YYYY-MM-DD)") from None
    else:
        retention = older_than or ws.config.predictions.retention
        if retention is None:
            raise UsageError("no retention: give --before DATE or --older-than DURATION",
                             hint="or declare it in dsops.yaml: predictions: {retention: 90d}")
        cutoff = retention_cutoff(ws.now(), retention)
    result = prune_logs(ws, cutoff, dry_run=dry_run)
    if json_output:
        print_json({"before": cutoff.isoformat(), "days": result.days, "files": result.files,
                    "dry_run": dry_run})
        return
    verb = "would delete" if dry_run else "deleted"
    console.print(f"{verb} {result.files:,} files ({result.days:,} day folders of predictions and feedback) "
                  f"before {cutoff.isoformat()}")


def _read_feedback(file: Path) -> tuple[list[str], list[object], list[int] | None]:
    """request ids, labels and rows of a feedback file; `UsageError` names what is missing."""
    import pyarrow as pa

    from dsops.core.errors import UsageError

    suffix = file.suffix.lower()
    try:
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            data = pq.read_table(file)
        elif suffix in (".csv", ".txt"):
            import pyarrow.csv as pcsv

            # request ids stay text even when they look like numbers
            data = pcsv.read_csv(file, convert_options=pcsv.ConvertOptions(
                column_types={"request_id": pa.string()}))
        else:
            raise UsageError(f"{file}: feedback files are CSV or Parquet, not {suffix or 'no extension'}")
    except (pa.ArrowInvalid, OSError) as exc:
        raise UsageError(f"{file}: cannot read it: {exc}") from None
    missing = [c for c in ("request_id", "label") if c not in data.column_names]
    if missing:
        raise UsageError(f"{file}: missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
                         f"(columns: {', '.join(data.column_names)})")
    request_ids = [None if v is None else str(v) for v in data.column("request_id").to_pylist()]
    labels = data.column("label").to_pylist()
    for i, (rid, label) in enumerate(zip(request_ids, labels, strict=True)):
        if not rid or label is None:
            raise UsageError(f"{file}: row {i + 1} has no {'request_id' if not rid else 'label'}")
    rows = data.column("row").to_pylist() if "row" in data.column_names else None
    return request_ids, labels, rows  # type: ignore[return-value]
