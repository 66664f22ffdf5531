"""``dsops models``: list, show, alias, history, diff, trust and card of registered models."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="The model registry: versions, aliases, model cards.", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")]
RefArg = Annotated[str, typer.Argument(help="NAME, NAME@VERSION or NAME@ALIAS.")]


def _registry():  # type: ignore[no-untyped-def]
    from dsops.registry.service import RegistryService
    from dsops.workspace import Workspace

    return RegistryService(Workspace.open())


def _num(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else ("-" if value is None else str(value))


def _flags(flags: list[str]) -> str:
    return f"[red]⚠ {', '.join(flags)}[/]" if flags else ""


@app.command("ls")
def ls(json_output: JsonOpt = False) -> None:
    """Every model: latest version, aliases, flags (e.g. trained on revoked data)."""
    from rich.text import Text

    from dsops.cli.output import print_json, table, when

    models = _registry().list()
    if json_output:
        print_json(models)
        return
    if not models:
        from dsops.cli.output import console

        console.print("no models yet: register one with dsops.log_model(model, name=…) or a "
                      "stage's 'registers:'")
        return
    table("models", ["name", "latest", "versions", "aliases", "flavor", "updated", "flags"],
          [(m.name, m.latest, m.versions,
            ", ".join(f"{a}→{v}" for a, v in m.aliases.items()), m.flavor, when(m.updated_at),
            Text.from_markup(_flags(m.flags))) for m in models])


@app.command("show")
def show(ref: RefArg, json_output: JsonOpt = False) -> None:
    """One version: files, signature, metrics, run, datasets, aliases, gate, flags."""
    from rich.markup import escape

    from dsops.cli.output import console, print_json, table, when
    from dsops.registry.service import input_columns

    v = _registry().show(ref)
    if json_output:
        print_json(v)
        return
    console.print(f"[bold]{v.ref}[/]  {v.flavor}  {v.size:,} bytes  {_flags(v.flags)}")
    gate = None if v.gate is None else (
        "[green]passed[/]" if v.gate.passed else f"[red]failed[/] ({', '.join(v.gate.failed)})")
    for label, value in (("aliases", ", ".join(v.aliases)), ("created", when(v.created_at)),
                         ("by", v.created_by), ("run", v.run_id),
                         ("commit", v.git_commit[:12] if v.git_commit else None),
                         ("datasets", ", ".join(v.datasets)), ("digest", v.digest[:16]),
                         ("trust", None if not v.needs_trust else
                          f"trusted by {v.trusted_by}" if v.trusted_by
                          else f"NOT trusted ({v.trust_reason})"),
                         *((k.replace("_", " "), val) for k, val in v.info.items())):
        if value:
            console.print(f"  {label:<13}{escape(str(value))}")
    if gate:
        console.print(f"  {'gate':<13}{gate}")
    if v.metrics:
        table("metrics", ["name", "value"], [(k, _num(x)) for k, x in sorted(v.metrics.items())])
    columns = input_columns(v.signature)
    if columns:
        table("signature: inputs", ["column", "type"], [(c["name"], c.get("type")) for c in columns])


@app.command("alias")
def alias(
    ref: RefArg,
    name: Annotated[str, typer.Argument(help="The alias: champion, challenger, any name.")],
    reason: Annotated[str | None, typer.Option(help="Why (kept in the alias history).")] = None,
    force: Annotated[bool, typer.Option(
        "--force", help="Move champion without a passing gate (needs --reason; audited).")] = False,
) -> None:
    """Point an alias at a version (champion needs a passing gate)."""
    from dsops.cli.output import console

    change = _registry().set_alias(ref, name, reason=reason, force=force)
    moved = f"from version {change.from_version} " if change.from_version else ""
    console.print(f"{change.model}@{change.alias} moved {moved}to version {change.to_version}"
                  + (" [yellow](forced)[/]" if change.forced else ""))


@app.command("history")
def history(name: Annotated[str, typer.Argument(help="Model name.")],
            json_output: JsonOpt = False) -> None:
    """Every alias move: who moved which alias from which version to which, when, why."""
    from dsops.cli.output import print_json, table, when

    changes = _registry().history(name)
    if json_output:
        print_json(changes)
        return
    table(f"alias history of {name}", ["when", "alias", "from", "to", "by", "reason"],
          [(when(c.at), c.alias, _num(c.from_version), _num(c.to_version), c.actor,
            (c.reason or "") + (" (forced)" if c.forced else "")) for c in changes])


@app.command("diff")
def diff(old: RefArg, new: RefArg, json_output: JsonOpt = False) -> None:
    """What differs between two versions: metrics, params, inputs, datasets, flavor."""
    from rich.text import Text

    from dsops.cli.output import console, print_json, table

    d = _registry().diff(old, new)
    if json_output:
        print_json(d)
        return

    def rows(deltas):  # type: ignore[no-untyped-def]
        out = []
        for key, delta in deltas.items():
            style = "yellow" if delta.changed else ""
            change = ""
            if delta.changed and isinstance(delta.old, float) and isinstance(delta.new, float):
                change = f"{delta.new - delta.old:+.4g}"
            out.append((key, _num(delta.old), Text(_num(delta.new), style=style), change))
        return out

    console.print(f"[bold]{d.old}[/] → [bold]{d.new}[/]")
    if d.flavor.changed:
        console.print(f"  flavor: {d.flavor.old} → {d.flavor.new}")
    if d.datasets.changed:
        console.print(f"  datasets: {', '.join(d.datasets.old)} → {', '.join(d.datasets.new)}")
    for title, deltas in (("metrics", d.metrics), ("params", d.params), ("inputs", d.inputs)):
        if deltas:
            table(title, ["name", d.old, d.new, "change"], rows(deltas))


@app.command("trust")
def trust(ref: RefArg,
          reason: Annotated[str, typer.Option(help="Where the model came from, who checked it.")]
          ) -> None:
    """Vouch for a version stored in an unsafe format (pickle) so it may be loaded."""
    from dsops.cli.output import console

    v = _registry().trust(ref, reason=reason)
    console.print(f"{v.ref} trusted by {v.trusted_by}")


@app.command("card")
def card(
    ref: RefArg,
    format: Annotated[str, typer.Option("--format", help="md or html.")] = "md",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to this file.")] = None,
) -> None:
    """The model card, generated from the store: use, data, run, metrics, fairness, gates."""
    from dsops.cli.output import console, write_output
    from dsops.registry.card import render_card
    from dsops.workspace import Workspace

    text = render_card(Workspace.open(), ref, format=format)
    if output is None:
        typer.echo(text)
        return
    write_output(output, text)
    console.print(f"model card of {ref} written to {output}")
