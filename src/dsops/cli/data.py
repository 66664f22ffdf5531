"""``dsops data``: add, list, show, diff, check out and revoke dataset versions."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from dsops.data.models import DatasetVersionInfo

app = typer.Typer(help="Versioned, validated, profiled datasets.", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")]


def _service():  # type: ignore[no-untyped-def]
    from dsops.data.service import DatasetService
    from dsops.workspace import Workspace

    return DatasetService(Workspace.open())


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return str(n)


def _parse_date(value: str | None) -> date | None:
    from dsops.core.errors import UsageError

    if value is None:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        raise UsageError(f"--retention-until: {value!r} is not a date (expected YYYY-MM-DD)") \
            from None


@app.command("add")
def add(
    path: Annotated[Path, typer.Argument(help="A CSV, Parquet or JSON-lines file, or a directory.")],
    name: Annotated[str, typer.Option("--name", "-n", help="Dataset name.")],
    description: Annotated[str | None, typer.Option(help="What the data is.")] = None,
    owner: Annotated[str | None, typer.Option(help="Who is responsible for it.")] = None,
    license: Annotated[str | None, typer.Option(help="Licence of the data.")] = None,
    consent: Annotated[str | None, typer.Option(help="Legal basis / consent for its use.")] = None,
    retention_until: Annotated[str | None, typer.Option(help="Delete after (YYYY-MM-DD).")] = None,
    allow_invalid: Annotated[bool, typer.Option(
        help="Record a version that fails its expectations, flagged invalid.")] = False,
    json_output: JsonOpt = False,
) -> None:
    """Version a file or directory: validate, profile, scan for PII, store."""
    from rich.markup import escape

    from dsops.cli.output import RichProgress, console, print_json, print_validation
    from dsops.core.errors import ValidationFailed

    service = _service()
    try:
        with RichProgress() as progress:
            result = service.add(
                path, name, description=description, owner=owner, license=license,
                consent=consent, retention_until=_parse_date(retention_until),
                allow_invalid=allow_invalid, progress=progress)
    except ValidationFailed as exc:
        if json_output:
            print_json({"error": exc.message, "report": exc.report})
        elif isinstance(exc.report, dict):
            print_validation(exc.report)
        raise
    v = result.version
    if json_output:
        print_json(result)
        return
    if not result.created:
        console.print(f"unchanged: {escape(str(path))} is identical to {v.ref} — no new version"
                      + (f" [red](revoked: {escape(v.revoke_reason or '')})[/]" if v.revoked else ""))
        return
    console.print(f"[green]added[/] {v.ref}  {v.format}, {_size(v.size)}"
                  + (f", {v.row_count:,} rows" if v.row_count is not None else "")
                  + (f", {v.file_count:,} files" if v.kind == "directory" else ""))
    if v.validation:
        print_validation(v.validation)
    for f in v.pii:
        where = f"column {f.column}: {f.count:,} rows" if f.column else \
            f"file {f.file}: {f.count:,} matches"
        console.print(f"  [yellow]PII[/] {f.kind} in {escape(where)}")
    if v.sensitive:
        console.print("  [yellow]sensitive[/]: stored encrypted (AES-256-GCM) — reading "
                      "it needs the key")


@app.command("ls")
def ls(
    name: Annotated[str | None, typer.Argument(help="List this dataset's versions.")] = None,
    json_output: JsonOpt = False,
) -> None:
    """List datasets, or the versions of one."""
    from dsops.cli.output import print_json, table, when

    service = _service()
    if name is None:
        rows = service.list()
        if json_output:
            print_json(rows)
            return
        table("datasets", ["name", "latest", "versions", "rows", "size", "created", "flags"],
              [(d.name, f"@{d.latest}", d.versions,
                "" if d.row_count is None else f"{d.row_count:,}", _size(d.size),
                when(d.latest_created_at), ", ".join(d.flags)) for d in rows])
        return
    versions = service.versions(name)
    if json_output:
        print_json([v.model_dump(mode="json", exclude={"profile", "data_schema"})
                    for v in versions])
        return
    table(f"{name} versions", ["version", "format", "rows", "size", "created", "by", "flags"],
          [(f"@{v.version}", v.format, "" if v.row_count is None else f"{v.row_count:,}",
            _size(v.size), when(v.created_at), v.created_by, ", ".join(v.flags))
           for v in versions])


HtmlOpt = Annotated[Path | None, typer.Option(
    "--html", help="Also write Plotly charts of the distributions to this HTML file.")]


def _write_html(path: Path, versions: list[DatasetVersionInfo]) -> None:
    from dsops.cli.output import err_console, write_output
    from dsops.core.errors import UsageError
    from dsops.data.charts import profile_html

    try:
        html = profile_html(versions)
    except ValueError as exc:
        raise UsageError(f"--html: {exc} ({', '.join(v.ref for v in versions)})") from None
    write_output(path, html)
    err_console.print(f"charts written to {path}")


@app.command("show")
def show(
    ref: Annotated[str, typer.Argument(help="NAME or NAME@VERSION.")],
    html: HtmlOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """One version: metadata, schema, profile, validation and PII findings."""
    from dsops.cli.output import print_json

    info = _service().show(ref)
    if html is not None:
        _write_html(html, [info])
    if json_output:
        print_json(info)
        return
    _render_version(info)


def _render_version(v: DatasetVersionInfo) -> None:
    from rich.markup import escape

    from dsops.cli.output import console, print_validation, table, when

    flags = f"  [red]{', '.join(v.flags)}[/]" if v.flags else ""
    console.print(f"[bold]{v.ref}[/]{flags}")
    fields: list[tuple[str, Any]] = [
        ("digest", v.digest), ("format", v.format), ("source", v.source_name),
        ("size", _size(v.size)), ("rows", v.row_count), ("files", v.file_count),
        ("created", f"{when(v.created_at)} by {v.created_by}"), ("description", v.description),
        ("owner", v.owner), ("license", v.license), ("consent", v.consent),
        ("retention until", v.retention_until), ("encrypted", "yes" if v.encrypted else None),
    ]
    if v.revoked:
        fields.append(("revoked", f"{when(v.revoked_at)} by {v.revoked_by}: {v.revoke_reason}"))
    for label, value in fields:
        if value not in (None, ""):
            console.print(f"  {label:<16}{escape(str(value))}")
    if v.pii:
        console.print("  PII found (values never stored):")
        for f in v.pii:
            unit = "rows" if f.column else "matches"
            console.print(f"    {f.kind:<8} {escape(str(f.column or f.file))}: {f.count:,} {unit}")
    if v.validation:
        print_validation(v.validation)
    if v.profile:
        rows = []
        for col in (v.data_schema or {}).get("columns", []):
            p = v.profile["columns"].get(col["name"], {})
            if "mean" in p and p.get("mean") is not None:
                summary = (f"min {_num(p.get('min'))}  p50 {_num(p.get('quantiles', {}).get('p50'))}"
                           f"  max {_num(p.get('max'))}  mean {_num(p.get('mean'))}"
                           f"  std {_num(p.get('std'))}")
            elif p.get("redacted"):
                summary = "(sensitive: values not profiled)"
            elif p.get("top"):
                summary = ", ".join(f"{t['value']} ({t['count']})" for t in p["top"][:3])
            else:
                summary = f"{p.get('min', '')} … {p.get('max', '')}".strip(" …")
            rows.append((col["name"], col["type"], p.get("null_count", ""),
                         p.get("distinct_count", ""), summary))
        table("profile", ["column", "type", "nulls", "distinct", "summary"], rows)


def _num(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.4g}" if abs(value) < 1 else f"{value:,.2f}".rstrip("0").rstrip(".")
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


@app.command("diff")
def diff(
    old: Annotated[str, typer.Argument(help="Older version, e.g. credit@1.")],
    new: Annotated[str, typer.Argument(help="Newer version, e.g. credit@2 or credit.")],
    html: HtmlOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Compare two versions: schema, rows, and how each column's profile moved."""
    from dsops.cli.output import console, print_json, table

    service = _service()
    d = service.diff(old, new)
    if html is not None:
        _write_html(html, [service.show(d.old), service.show(d.new)])
    if json_output:
        print_json(d)
        return
    console.print(f"[bold]{d.old} → {d.new}[/]"
                  + ("  (identical content)" if d.same_content else ""))
    if d.row_count:
        console.print(f"  rows: {d.row_count.old:,} → {d.row_count.new:,} "
                      f"({d.row_count.delta:+,})" if d.row_count.delta is not None else "")
    console.print(f"  size: {_size(int(d.size.old or 0))} → {_size(int(d.size.new or 0))}")
    for label, items in (("added columns", d.added_columns),
                         ("removed columns", d.removed_columns),
                         ("added files", d.added_files), ("removed files", d.removed_files),
                         ("changed files", d.changed_files)):
        if items:
            shown = ", ".join(items[:20]) + (f" … ({len(items)})" if len(items) > 20 else "")
            console.print(f"  {label}: {shown}")
    for t in d.type_changes:
        console.print(f"  type of {t['column']}: {t['old']} → {t['new']}")
    if d.columns:
        rows = []
        for name, c in d.columns.items():
            mean = c.get("mean") or {}
            nulls = c.get("null_count") or {}
            rows.append((
                ("● " if c.get("changed") else "  ") + name,
                f"{_num(mean.get('old'))} → {_num(mean.get('new'))}" if mean else "",
                f"{nulls.get('old', '')} → {nulls.get('new', '')}" if nulls else "",
                _num(c.get("psi")),
            ))
        table("columns (● changed)", ["column", "mean", "nulls", "psi"], rows)


@app.command("checkout")
def checkout(
    ref: Annotated[str, typer.Argument(help="NAME or NAME@VERSION.")],
    path: Annotated[Path | None, typer.Argument(
        help="Where to write it (default: the dataset's declared path).")] = None,
    force: Annotated[bool, typer.Option(help="Overwrite content no version holds.")] = False,
) -> None:
    """Write a version's content to disk (atomically, verified against its hash)."""
    from dsops.cli.output import RichProgress, console

    with RichProgress() as progress:
        dest = _service().checkout(ref, path, force=force, progress=progress)
    console.print(f"checked out {ref} to {dest}")


@app.command("revoke")
def revoke(
    ref: Annotated[str, typer.Argument(help="NAME@VERSION to revoke.")],
    reason: Annotated[str, typer.Option(help="Why (consent withdrawn, licence ended, …).")],
    json_output: JsonOpt = False,
) -> None:
    """Mark a version revoked: it stays for audit, and what was built on it is flagged."""
    from rich.markup import escape

    from dsops.cli.output import console, print_json

    info = _service().revoke(ref, reason=reason)
    if json_output:
        print_json(info)
        return
    console.print(f"[red]revoked[/] {info.ref}: {escape(info.revoke_reason or '')}")
