"""``dsops monitor`` (run, history, report) and ``dsops incidents`` (ls, show, ack, resolve)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

monitor_app = typer.Typer(help="Monitors: drift, data quality, accuracy, alert rules.",
                          no_args_is_help=True)
incidents_app = typer.Typer(help="Incidents opened by alert rules.", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")]
IdArg = Annotated[str, typer.Argument(help="Incident id (or a unique prefix/suffix).")]
STATUS_STYLE = {"ok": "green", "firing": "bold red", "no_data": "yellow", "open": "red",
                "acknowledged": "yellow", "resolved": "green"}


def _ws():  # type: ignore[no-untyped-def]
    from dsops.workspace import Workspace

    return Workspace.open()


def _num(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else ("-" if value is None else str(value))


@monitor_app.command("run")
def run(name: Annotated[str | None, typer.Argument(help="A monitor (default: all).")] = None,
        json_output: JsonOpt = False) -> None:
    """Evaluate monitors once (for cron or CI); exit 1 if a rule fired."""
    from rich.markup import escape
    from rich.text import Text

    from dsops.cli.output import console, print_json, table
    from dsops.monitoring.service import MonitorService

    results = MonitorService(_ws()).run(name)
    if json_output:
        print_json(results)
    elif not results:
        console.print("no monitors: declare them under 'monitors:' in dsops.yaml (docs/monitoring.md)")
    for r in [] if json_output else results:
        style = STATUS_STYLE.get(r.status, "")
        console.print(f"[bold]{r.monitor}[/]: {r.model}@{r.version or '-'} in {r.env}, window "
                      f"{r.window_start:%H:%M}–{r.window_end:%H:%M} UTC  [{style}]{r.status}[/]"
                      + (f" ({escape(r.detail)})" if r.detail else ""))
        if r.values:
            shown = {k: v for k, v in r.values.items() if isinstance(v, int | float)}
            console.print("  " + "  ".join(f"{k}={_num(v)}" for k, v in sorted(shown.items())))
        if r.rules:
            table(None, ["rule", "value", "firing", "incident", "actions"],
                  [(x.rule, _num(x.value), Text("FIRING", style="bold red") if x.firing
                    else Text("no", style="green"), x.incident or "",
                    "; ".join(f"{a['action']}: {a['detail']}" for a in x.actions)) for x in r.rules])
    if any(r.status == "firing" for r in results):
        raise typer.Exit(1)


@monitor_app.command("history")
def history(name: Annotated[str, typer.Argument(help="Monitor name.")],
            json_output: JsonOpt = False) -> None:
    """Every stored evaluation of a monitor."""
    from rich.text import Text

    from dsops.cli.output import print_json, table, when
    from dsops.monitoring.service import MonitorService

    results = MonitorService(_ws()).history(name)
    if json_output:
        print_json(results)
        return
    keys = ["request_count", "drifted_share", "accuracy", "label_coverage", "error_rate"]
    table(f"evaluations of {name}", ["at", "version", "status", *keys],
          [(when(r.at), r.version, Text(r.status, style=STATUS_STYLE.get(r.status, "")),
            *(_num(r.values.get(k)) for k in keys)) for r in results])


@monitor_app.command("report")
def report(name: Annotated[str, typer.Argument(help="Monitor name.")],
           html: Annotated[Path, typer.Option("--html", help="Write the HTML report here.")]) -> None:
    """Charts: drift per feature over time, reference vs current, accuracy and label
    coverage over time, incidents on the timeline."""
    from dsops.cli.output import console, write_output
    from dsops.monitoring.report import render_monitor_report

    write_output(html, render_monitor_report(_ws(), name))
    console.print(f"monitor report of {name} written to {html}")


@incidents_app.command("ls")
def ls(status: Annotated[str, typer.Option(help="open, acknowledged, resolved or all.")] = "all",
       json_output: JsonOpt = False) -> None:
    """Incidents, newest first."""
    from rich.text import Text

    from dsops.cli.output import print_json, table, when
    from dsops.monitoring.incidents import IncidentService

    rows = IncidentService(_ws()).list(status=None if status == "all" else status)
    if json_output:
        print_json(rows)
        return
    if not rows:
        from dsops.cli.output import console

        console.print("no incidents" + ("" if status == "all" else f" ({status})"))
        return
    table("incidents", ["id", "status", "monitor", "rule", "model", "opened", "restored in"],
          [(i.id, Text(i.status, style=STATUS_STYLE.get(i.status, "")), i.monitor, i.rule,
            f"{i.model}@{i.version}" if i.model else "", when(i.opened_at),
            _duration(i.time_to_restore_s)) for i in rows])


@incidents_app.command("show")
def show(incident: IdArg, json_output: JsonOpt = False) -> None:
    """One incident: evidence, actions taken, who acknowledged and resolved it."""
    from rich.markup import escape

    from dsops.cli.output import console, print_json, when
    from dsops.monitoring.incidents import IncidentService

    i = IncidentService(_ws()).get(incident)
    if json_output:
        print_json(i)
        return
    console.print(f"incident {i.id} [{STATUS_STYLE.get(i.status, '')}]{i.status}[/] ({i.severity})")
    for label, value in (("monitor", i.monitor), ("rule", i.rule),
                         ("model", f"{i.model}@{i.version} in {i.env}" if i.model else None),
                         ("deployment", i.deployment_id), ("opened", when(i.opened_at)),
                         ("last fired", when(i.last_fired_at)),
                         ("acknowledged", f"{when(i.acknowledged_at)} by {i.acknowledged_by}"
                          if i.acknowledged_at else None),
                         ("resolved", f"{when(i.resolved_at)} by {i.resolved_by}"
                          if i.resolved_at else None),
                         ("restored in", _duration(i.time_to_restore_s) or None),
                         ("note", i.note), ("evidence", i.evidence.get("detail"))):
        if value:
            console.print(f"  {label:<13}{escape(str(value))}")
    for action in i.actions:
        mark = "[green]✓[/]" if action.get("ok") else "[red]✗[/]"
        console.print(f"  action {mark} {escape(str(action.get('action')))}: "
                      f"{escape(str(action.get('detail')))}")


@incidents_app.command("ack")
def ack(incident: IdArg,
        note: Annotated[str | None, typer.Option(help="What you are doing about it.")] = None) -> None:
    """Acknowledge an open incident."""
    from dsops.cli.output import console
    from dsops.monitoring.incidents import IncidentService

    i = IncidentService(_ws()).acknowledge(incident, note=note)
    console.print(f"incident {i.id} acknowledged by {i.acknowledged_by}")


@incidents_app.command("resolve")
def resolve(incident: IdArg,
            note: Annotated[str | None, typer.Option(help="What fixed it.")] = None) -> None:
    """Resolve an incident (its time to restore ends now)."""
    from dsops.cli.output import console
    from dsops.monitoring.incidents import IncidentService

    i = IncidentService(_ws()).resolve(incident, note=note)
    console.print(f"incident {i.id} resolved by {i.resolved_by} after "
                  f"{_duration(i.time_to_restore_s)}")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
