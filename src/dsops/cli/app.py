"""The root Typer app: global options and the command groups."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dsops.cli import audit, data, deploy, gate, keys, metrics, models, monitor, runs
from dsops.cli.pipeline import run as run_pipeline

app = typer.Typer(
    name="dsops",
    help="DevOps for data science: versioned data, pipelines, models, gates, delivery, "
         "monitoring.\n\nExit codes: 0 ok, 1 a check failed, 2 usage error, 3 system error.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
) -> None:
    """Global options (``--debug`` is handled by the entry point)."""


@app.command("init")
def init(
    directory: Annotated[Path, typer.Argument(help="Project directory.")] = Path("."),
    project: Annotated[str | None, typer.Option(help="Project name (default: directory name).")] = None,
) -> None:
    """Start a dsops project: a commented dsops.yaml, .dsops/ and the metadata store."""
    from dsops.cli.output import console
    from dsops.workspace import Workspace

    ws = Workspace.init(directory, project=project)
    console.print(f"initialised dsops project [bold]{ws.config.project}[/] in {ws.root}")
    console.print(f"  config:  {ws.root / 'dsops.yaml'}")
    console.print(f"  store:   {ws.store_url.replace(str(ws.root) + '/', '')}")
    console.print(f"  objects: {ws.objects.location}")
    enter = "" if ws.root == Path.cwd().resolve() else f"cd {directory}, "
    console.print(f"next: {enter}uncomment what you need in dsops.yaml (every section has an "
                  "example), then 'dsops data add PATH --name NAME' or 'dsops run'")


@app.command("status")
def status(json_output: Annotated[bool, typer.Option("--json", help="JSON output.")] = False) -> None:
    """What changed on disk: declared datasets since their latest version, and which
    pipeline stages would run (and why)."""
    from dsops.data.status import run_status_command

    raise typer.Exit(run_status_command(json_output=json_output))


app.command("run")(run_pipeline)
app.add_typer(data.app, name="data")
app.add_typer(runs.app, name="runs")
app.command("lineage")(runs.lineage)
app.add_typer(models.app, name="models")
app.command("gate")(gate.gate)
app.add_typer(gate.ci_app, name="ci")
app.command("deploy")(deploy.deploy)
app.command("approve")(deploy.approve)
app.command("rollback")(deploy.rollback)
app.add_typer(deploy.rollout_app, name="rollout")
app.add_typer(monitor.monitor_app, name="monitor")
app.add_typer(monitor.incidents_app, name="incidents")
app.add_typer(metrics.app, name="metrics")
app.add_typer(audit.app, name="audit")
app.add_typer(keys.app, name="keys")
from dsops.cli import serve as serve_cli  # noqa: E402, I001  (the gateway commands)
app.command("serve")(serve_cli.serve), app.command("feedback")(serve_cli.feedback)
app.add_typer(serve_cli.predictions_app, name="predictions")
from dsops.cli import drift as drift_cli  # noqa: E402, I001  (dsops drift)
app.command("drift")(drift_cli.drift)
