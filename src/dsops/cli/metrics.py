"""``dsops metrics``: delivery metrics — the DORA four keys for models."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from dsops.metrics.dora_models import DoraReport

app = typer.Typer(help="Delivery metrics: the DORA four keys for models.", no_args_is_help=True)

TIER_STYLE = {"elite": "bold green", "high": "green", "medium": "yellow", "low": "red"}


@app.command("dora")
def dora(
    model: Annotated[str | None, typer.Option(help="Only this model (default: every model).")] = None,
    env: Annotated[str, typer.Option(help="The production environment.")] = "prod",
    since: Annotated[str, typer.Option(
        help="Window start: a duration back from --until (90d, 12w) or a date.")] = "90d",
    until: Annotated[str | None, typer.Option(help="Window end: a date or time (default: now).")] = None,
    by: Annotated[str, typer.Option(help="Period of the table: day, week or month.")] = "week",
    json_output: Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")] = False,
) -> None:
    """Deployment frequency, lead time for changes, change failure rate and time to restore,
    with their DORA tiers, then availability, accuracy and a table per period."""
    from dsops.cli.output import print_json
    from dsops.metrics.dora import DoraService
    from dsops.workspace import Workspace

    report = DoraService(Workspace.open()).report(model=model, env=env, since=since, until=until, by=by)
    if json_output:
        print_json(report)
        return
    render(report)


def render(report: DoraReport) -> None:
    """The four keys with their tiers, the ML extras, the failures, then the period table."""
    from rich.text import Text

    from dsops.cli.output import console, table

    f, lt = report.deployment_frequency, report.lead_time
    cfr, ttr = report.change_failure_rate, report.time_to_restore
    scope = f"{report.model} in {report.env}" if report.model else f"every model in {report.env}"
    console.print(f"DORA four keys — {scope}, {report.start:%Y-%m-%d %H:%M} to "
                  f"{report.end:%Y-%m-%d %H:%M} UTC")

    def tier(value: str | None) -> Text:
        return Text(value or "no data", style=TIER_STYLE.get(value or "", "dim"))

    sources = ", ".join(f"{n} from {source}" for source, n in lt.sources.items())
    table(None, ["key", "value", "tier", "how"], [
        ("deployment frequency",
         "no data" if f.per_week is None else f"{f.per_week:.2f} per week ({f.per_day:.2f} per day)",
         tier(f.tier), f"{f.deploys} production deploy{'s' if f.deploys != 1 else ''}"),
        ("lead time for changes", _duration(lt.median_s) + ("" if lt.p90_s is None else
                                                           f" (p90 {_duration(lt.p90_s)})"),
         tier(lt.tier), f"median of {lt.measured}" + (f": {sources}" if sources else "")),
        ("change failure rate", "no data" if cfr.rate is None else f"{cfr.rate:.0%}",
         tier(cfr.tier), f"{cfr.failed} of {cfr.deploys} deploys failed"),
        ("time to restore", _duration(ttr.median_s) + ("" if ttr.p90_s is None else
                                                       f" (p90 {_duration(ttr.p90_s)})"),
         tier(ttr.tier), f"{ttr.restored} restored, {ttr.still_open} still open"),
    ])
    av, acc = report.availability, report.accuracy
    table(None, ["ML extra", "value", "how"], [
        ("availability", "no data" if av.value is None else f"{av.value:.2%}",
         f"{av.requests - av.failed} of {av.requests} requests" if av.requests else av.note),
        ("model accuracy", "no data" if acc.value is None else f"{acc.value:.2%}",
         f"{acc.correct} of {acc.labelled} labelled, coverage {acc.coverage:.0%}"
         if acc.labelled and acc.coverage is not None else acc.note),
    ])
    if report.failures:
        console.print("failed deploys:")
        for d in report.failures:
            console.print(Text(f"  {d.ref} promoted {d.promoted_at:%Y-%m-%d %H:%M}: "
                               + "; ".join(d.failure_reasons)))
    still_open = [i for i in report.incidents if i.restore_s is None]
    if still_open:
        console.print("incidents still open:")
        for i in still_open:
            console.print(Text(f"  {i.id} ({i.monitor}: {i.rule}) open for {_duration(i.open_for_s)}"))
    table(f"per {report.by}", [report.by, "deploys", "failures", "median lead time", "incidents",
                               "restored", "median restore"],
          [(p.period, p.deploys, p.failures, _duration(p.median_lead_time_s, "—"), p.incidents,
            p.restored, _duration(p.median_restore_s, "—")) for p in report.periods])
    console.print(Text(f"tiers: {report.source} (docs/dora.md)", style="dim"))


def _duration(seconds: float | None, empty: str = "no data") -> str:
    if seconds is None:
        return empty
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 3 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"
