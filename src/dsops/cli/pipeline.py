"""``dsops run``: run the pipeline's out-of-date stages (or show what would run, and why)."""

from __future__ import annotations

from typing import Annotated

import typer

ACTION_STYLE = {"run": "green", "cached": "cyan", "failed": "red", "skipped": "yellow",
                "killed": "red"}


def run(
    stages: Annotated[list[str] | None, typer.Argument(
        help="Stages to run (with their out-of-date upstreams); default: all.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Rerun even if cached.")] = False,
    dry: Annotated[bool, typer.Option("--dry", help="Show what would run and why; run nothing.")
                   ] = False,
    jobs: Annotated[int | None, typer.Option("--jobs", "-j", help="Stages run at once "
                                             "(default: number of cores).")] = None,
    executor: Annotated[str, typer.Option(help="local or dask.")] = "local",
    scheduler: Annotated[str | None, typer.Option(help="Dask scheduler address "
                                                  "(tcp://host:8786) for --executor dask.")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")
                           ] = False,
) -> None:
    """Run the pipeline declared under 'stages:' in dsops.yaml, using cached results where
    nothing changed. Exit code 1 when a stage fails."""
    from rich.markup import escape
    from rich.text import Text

    from dsops.cli.output import RichProgress, console, err_console, print_json, table
    from dsops.pipelines.service import PipelineService
    from dsops.workspace import Workspace

    service = PipelineService(Workspace.open())
    if json_output or dry:
        result = service.run(stages, force=force, dry=dry, jobs=jobs, executor=executor,
                             scheduler=scheduler)
    else:
        with RichProgress() as progress:
            result = service.run(stages, force=force, jobs=jobs, executor=executor,
                                 scheduler=scheduler, progress=progress)
    if json_output:
        print_json(result)
    else:
        title = "dsops run --dry (nothing was run)" if result.dry else "dsops run"
        table(title, ["stage", "action", "why", "duration", "run id"], [
            (s.stage, Text(s.action, style=ACTION_STYLE.get(s.action, "")), "; ".join(s.why),
             f"{s.duration_s:.1f} s" if s.duration_s is not None else "",
             s.run_id or "") for s in result.stages])
        for failed in result.failed:
            err_console.print(f"[red]{escape(failed.error or '')}[/]", soft_wrap=True)
            if failed.stderr_tail:
                err_console.print(f"  last {len(failed.stderr_tail)} lines of its stderr:")
                for line in failed.stderr_tail:
                    err_console.print(f"  | {escape(line)}", soft_wrap=True)
            if failed.run_id:
                err_console.print(f"  logs: dsops runs show {failed.run_id}")
        for s in result.stages:
            if s.model:
                console.print(f"stage {s.stage} registered model [bold]{s.model}[/]")
        if not result.dry and result.ok:
            ran = sum(s.action == "run" for s in result.stages)
            console.print(f"{ran} ran, {len(result.stages) - ran} cached")
    if result.failed:
        raise typer.Exit(1)
