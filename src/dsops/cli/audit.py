"""``dsops audit``: list and verify the tamper-evident audit log."""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)


@app.command("verify")
def verify(json_output: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Recompute the hash chain; report the first broken or missing event (exit 1)."""
    from dsops.cli.output import console, print_json
    from dsops.security.audit import AuditService
    from dsops.workspace import Workspace

    result = AuditService(Workspace.open()).verify()
    if json_output:
        print_json(result)
    elif result.ok:
        console.print(f"[green]✓[/] audit chain intact: {result.events} events verified")
    else:
        console.print(f"[red]✗ audit chain broken[/] at event {result.seq}: {result.problem} "
                      f"({result.events} events verified before it)")
    raise typer.Exit(0 if result.ok else 1)


@app.command("ls")
def ls(
    limit: Annotated[int, typer.Option(help="Show the newest N events.")] = 50,
    action: Annotated[str | None, typer.Option(help="Only this action (e.g. dataset.add).")] = None,
    target: Annotated[str | None, typer.Option(help="Only events on this target.")] = None,
    json_output: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List audit events, newest first."""
    from dsops.cli.output import print_json, table, when
    from dsops.security.audit import AuditService
    from dsops.workspace import Workspace

    events = AuditService(Workspace.open()).list(limit=limit, action=action, target=target)
    if json_output:
        print_json(events)
        return
    table("audit log", ["seq", "time", "actor", "action", "target", "details"],
          [(e.seq, when(e.at), e.actor, e.action, e.target,
            ", ".join(f"{k}={v}" for k, v in e.details.items())) for e in events],
          no_wrap=["details"])
