"""``dsops runs``: list, show, compare and plot tracked runs."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Tracked runs: params, metrics, artifacts, lineage.", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")]


def _service():  # type: ignore[no-untyped-def]
    from dsops.tracking.service import TrackingService
    from dsops.workspace import Workspace

    return TrackingService(Workspace.open())


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if abs(value) < 1e5 else f"{value:,.0f}"


@app.command("ls")
def ls(
    filter: Annotated[str | None, typer.Option(
        "--filter", "-f", help="e.g. \"metrics.auc > 0.8 and params.model = 'lgbm'\"")] = None,
    sort: Annotated[str | None, typer.Option(help="e.g. \"metrics.auc desc\"")] = None,
    limit: Annotated[int, typer.Option(help="At most this many runs.")] = 50,
    json_output: JsonOpt = False,
) -> None:
    """List runs, newest first (or as sorted), optionally filtered: params and latest
    metrics (`runs show` has artifacts, lineage and the environment)."""
    from dsops.cli.output import print_json, table, when

    runs = _service().list(filter=filter, sort=sort, limit=limit)
    if json_output:
        print_json([dataclasses.asdict(r) for r in runs])
        return
    metric_keys = sorted({k for r in runs for k in r.metrics})[:6]
    table("runs", ["id", "name", "status", "started", *metric_keys],
          [(r.id, r.name, r.status, when(r.started_at),
            *(_fmt(r.metrics.get(k)) for k in metric_keys)) for r in runs])


@app.command("show")
def show(run_id: Annotated[str, typer.Argument(help="Run id (or a unique prefix).")],
         json_output: JsonOpt = False) -> None:
    """One run: status, params, metrics, artifacts, environment, lineage."""
    from rich.markup import escape

    from dsops.cli.output import console, print_json, table, when

    r = _service().get(run_id)
    if json_output:
        print_json(r)
        return
    console.print(f"[bold]{r.name}[/] run {r.id}  [{'green' if r.status == 'finished' else 'red'}]"
                  f"{r.status}[/]")
    for label, value in (("started", when(r.started_at)), ("ended", when(r.ended_at)),
                         ("duration", f"{r.duration_s:.1f} s" if r.duration_s is not None else None),
                         ("by", r.created_by), ("command", r.command), ("exit code", r.exit_code),
                         ("git", f"{r.git_commit[:12]}{' (dirty)' if r.git_dirty else ''}"
                          if r.git_commit else None),
                         ("python", (r.environment or {}).get("python")), ("error", r.error)):
        if value not in (None, ""):
            console.print(f"  {label:<10}{escape(str(value))}")
    if r.params:
        table("params", ["name", "value"], sorted(r.params.items()))
    if r.metrics:
        table("metrics", ["name", "latest"],
              [(k, _fmt(v)) for k, v in sorted(r.metrics.items())])
    if r.artifacts:
        table("artifacts", ["path", "size", "digest"],
              [(a.path, a.size, a.digest[:16]) for a in r.artifacts])
    for label, refs in (("inputs", r.inputs), ("outputs", r.outputs)):
        if refs:
            console.print(f"  {label}: {', '.join(refs)}")


@app.command("compare")
def compare(run_ids: Annotated[list[str], typer.Argument(help="Two or more run ids.")],
            json_output: JsonOpt = False) -> None:
    """Params and metrics side by side; rows that differ are marked ●."""
    from dsops.cli.output import print_json, table

    c = _service().compare(run_ids)
    if json_output:
        print_json(c)
        return
    headers = ["", *[f"…{i[-8:]}" for i in c.runs]]
    rows = [(("● " if k in c.differing_params else "  ") + f"params.{k}",
             *("-" if v is None else v for v in values)) for k, values in c.params.items()]
    rows += [(("● " if k in c.differing_metrics else "  ") + f"metrics.{k}",
              *(_fmt(v) for v in values)) for k, values in c.metrics.items()]
    table("compare (● differs)", headers, rows)


@app.command("plot")
def plot(
    run_ids: Annotated[list[str], typer.Argument(help="Runs to plot.")],
    metric: Annotated[str, typer.Option(help="The metric to plot by step.")],
    out: Annotated[Path, typer.Option(help="HTML file to write.")] = Path("runs.html"),
) -> None:
    """A Plotly chart of a metric by step for one or more runs (self-contained HTML)."""
    import plotly.graph_objects as go

    from dsops.cli.output import console, write_output

    service = _service()
    fig = go.Figure()
    for run_id in run_ids:
        run = service.get(run_id)
        points = service.metric_history(run.id, metric)
        fig.add_trace(go.Scatter(x=[p.step for p in points], y=[p.value for p in points],
                                 mode="lines+markers" if len(points) < 50 else "lines",
                                 name=f"{run.name} {run.id[:8]}"))
    fig.update_layout(title=f"{metric} by step", xaxis_title="step", yaxis_title=metric,
                      template="plotly_white")
    write_output(out, fig.to_html(include_plotlyjs=True, full_html=True))
    console.print(f"wrote {out}")


def lineage(
    ref: Annotated[str, typer.Argument(help="data:NAME@N, a run id, or a file path.")],
    depth: Annotated[int, typer.Option(help="How many steps to follow.")] = 20,
    json_output: JsonOpt = False,
) -> None:
    """What REF came from (upstream) and what was made from it (downstream)."""
    from dsops.cli.output import console, print_json
    from dsops.tracking.lineage import LineageService
    from dsops.workspace import Workspace

    g = LineageService(Workspace.open()).graph(ref, depth=depth)
    if json_output:
        print_json(g)
        return
    for title, edges, up in (("upstream", g.upstream, True), ("downstream", g.downstream, False)):
        console.print(_tree(g.root, title, edges, up=up) if edges else
                      f"{_short(g.root)}: nothing {title}")


def _short(ref: str) -> str:
    """``file:PATH@<64 hex>`` → ``file:PATH@<12 hex>`` for display."""
    head, sep, digest = ref.rpartition("@")
    return f"{head}@{digest[:12]}" if sep and len(digest) == 64 else ref


def _tree(root: str, title: str, edges: list[tuple[str, str]], *, up: bool):  # type: ignore[no-untyped-def]
    from rich.tree import Tree

    children: dict[str, list[str]] = {}
    for source, target in edges:
        parent, child = (target, source) if up else (source, target)
        children.setdefault(parent, []).append(child)
    tree = Tree(f"[bold]{_short(root)}[/] {title}")

    def grow(node: Tree, key: str, seen: frozenset[str]) -> None:
        for child in children.get(key, []):
            if child not in seen:
                grow(node.add(_short(child)), child, seen | {child})

    grow(tree, root, frozenset({root}))
    return tree
