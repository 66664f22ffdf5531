"""``dsops gate`` and ``dsops ci report``: evaluate a model version's gate and render it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

ci_app = typer.Typer(help="Continuous integration: gate reports for pull requests.",
                     no_args_is_help=True)

AgainstOpt = Annotated[str | None, typer.Option(
    help="Compare with this alias or NAME@VERSION ('none' for no comparison).")]
EvalOpt = Annotated[str | None, typer.Option(
    "--eval-data", help="Evaluation dataset, e.g. data:credit@4 (default: the gate config's).")]
CheckOpt = Annotated[list[str] | None, typer.Option(
    "--check", help="A check instead of the configured ones (repeatable).")]


def _evaluate(ref: str, against: str | None, eval_data: str | None, checks: list[str] | None):  # type: ignore[no-untyped-def]
    from dsops.gates.service import GateService
    from dsops.workspace import Workspace

    ws = Workspace.open()
    target = None if against in (None, "none") else against
    return ws, GateService(ws).evaluate(ref, checks=checks or None, against=target,
                                        eval_data=eval_data)


def gate(
    ref: Annotated[str, typer.Argument(help="The candidate: NAME, NAME@VERSION or NAME@ALIAS.")],
    against: AgainstOpt = "champion",
    eval_data: EvalOpt = None,
    check: CheckOpt = None,
    json_output: Annotated[bool, typer.Option("--json", help="JSON output.")] = False,
) -> None:
    """Evaluate every check of a model version's gate; exit 1 if any fails."""
    from rich.markup import escape
    from rich.text import Text

    from dsops.cli.output import console, print_json, table

    _, report = _evaluate(ref, against, eval_data, check)
    if json_output:
        print_json(report)
    else:
        table(f"gate of {report.ref}", ["check", "value", "threshold", "verdict", "source"],
              [(c.check, _num(c.value), _num(c.threshold),
                Text("pass", style="green") if c.passed else Text("FAIL", style="bold red"),
                c.source or c.detail) for c in report.checks])
        inputs = report.inputs
        if inputs.get("eval_data"):
            console.print(f"  evaluated on {escape(inputs['eval_data'])} ({inputs['rows']} rows)"
                          + (f" against {inputs['against']}" if inputs.get("against") else ""))
        verdict = "[green]passed[/]" if report.passed else (
            f"[bold red]failed[/]: {len(report.failed)} of {len(report.checks)} checks")
        console.print(f"gate {verdict} (result {report.id})")
    if not report.passed:
        raise typer.Exit(1)


@ci_app.command("report")
def report(
    ref: Annotated[str, typer.Argument(help="The candidate: NAME, NAME@VERSION or NAME@ALIAS.")],
    against: AgainstOpt = "champion",
    eval_data: EvalOpt = None,
    check: CheckOpt = None,
    format: Annotated[str | None, typer.Option(
        "--format", help="markdown, junit or json (default: from each --output's suffix "
                         ".md/.xml/.json, else markdown).")] = None,
    output: Annotated[list[Path] | None, typer.Option(
        "--output", "-o", help="Write to this file (repeatable: -o report.md -o gate.xml).")] = None,
) -> None:
    """Evaluate the gate once and write PR-ready reports; the exit code follows the gate."""
    from dsops.cli.output import err_console, write_output
    from dsops.core.errors import UsageError
    from dsops.gates.report import FORMATS, render_report

    suffixes = {".md": "markdown", ".markdown": "markdown", ".xml": "junit", ".json": "json"}
    targets: list[tuple[Path | None, str]] = []
    for path in output or [None]:  # type: ignore[list-item]
        chosen = format or (suffixes.get(path.suffix.lower()) if path else None) or "markdown"
        if chosen not in FORMATS:
            raise UsageError(f"unknown report format {chosen!r}: use markdown, junit or json")
        targets.append((path, chosen))
    ws, result = _evaluate(ref, against, eval_data, check)
    for path, chosen in targets:
        text = render_report(ws, result, format=chosen)
        if path is None:
            typer.echo(text)
            continue
        write_output(path, text)
        err_console.print(f"{chosen} report of {result.ref} written to {path} "
                          f"(gate {'passed' if result.passed else 'FAILED'})")
    if not result.passed:
        raise typer.Exit(1)


def _num(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return f"{value:.4g}" if isinstance(value, float) else ("-" if value is None else str(value))
