"""``dsops deploy``, ``approve``, ``rollback`` and ``dsops rollout``: progressive delivery."""

from __future__ import annotations

from typing import Annotated

import typer

rollout_app = typer.Typer(help="Rollouts in progress and their history.", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")]
IdArg = Annotated[str, typer.Argument(help="Deployment id (or a unique prefix/suffix).")]
STATUS_STYLE = {"promoted": "green", "progressing": "cyan", "paused": "yellow",
                "pending_approval": "yellow", "aborted": "red", "rolled_back": "red"}


def _service():  # type: ignore[no-untyped-def]
    from dsops.rollout.service import RolloutService
    from dsops.workspace import Workspace

    return RolloutService(Workspace.open())


def _summary(d) -> str:  # type: ignore[no-untyped-def]
    status = f"[{STATUS_STYLE.get(d.status, '')}]{d.status}[/]"
    traffic = f", candidate at {d.weight}%" if d.status in ("progressing", "paused") else ""
    if d.strategy in ("shadow", "blue-green") and d.status in ("progressing", "paused"):
        traffic = ", mirrored traffic"
    return f"deployment {d.id}: {d.ref} → {d.env} ({d.strategy}) {status}{traffic}"


def deploy(
    ref: Annotated[str | None, typer.Argument(
        help="NAME@VERSION or NAME@ALIAS to deploy (default: the environment's deploy: model).")] = None,
    env: Annotated[str, typer.Option("--env", help="Environment (declared in dsops.yaml).")] = "prod",
    strategy: Annotated[str | None, typer.Option(
        help="direct, canary, shadow or blue-green (default: the environment's, else direct).")] = None,
    steps: Annotated[str | None, typer.Option(help="Canary traffic steps in %, e.g. 10,50,100.")] = None,
    analysis: Annotated[str | None, typer.Option(
        help="Checks between steps, e.g. \"error_rate < 0.01, p99_latency_ms < 50\".")] = None,
    interval: Annotated[str | None, typer.Option(help="Time between analyses, e.g. 5m.")] = None,
    sticky_header: Annotated[str | None, typer.Option(
        help="Requests with the same value of this header go to the same version.")] = None,
    sample_rate: Annotated[float | None, typer.Option(
        help="Share of requests whose inputs are logged (0-1).")] = None,
    max_batch: Annotated[int | None, typer.Option(help="Micro-batching: most rows per batch.")] = None,
    max_wait_us: Annotated[int | None, typer.Option(
        help="Micro-batching: longest wait for more requests (µs).")] = None,
    reason: Annotated[str | None, typer.Option(help="Why (kept with the deployment).")] = None,
    json_output: JsonOpt = False,
) -> None:
    """Deploy a model version to an environment (approvals and gates as the environment
    requires); a canary moves traffic step by step while its analysis holds."""
    from dsops.cli.output import console, print_json
    from dsops.core.errors import UsageError
    from dsops.gates.expr import parse_checks

    step_list = None
    if steps is not None:
        try:
            step_list = [int(s) for s in steps.split(",") if s.strip()]
        except ValueError:
            raise UsageError(f"invalid --steps {steps!r}: expected percentages like 10,50,100") from None
    checks = [c.text for c in parse_checks(analysis)] if analysis else None
    if sample_rate is not None and not 0 <= sample_rate <= 1:
        raise UsageError(f"--sample-rate {sample_rate} is not between 0 and 1")
    d = _service().deploy(ref, env, strategy=strategy, steps=step_list, checks=checks,
                          interval=interval, reason=reason,
                          options={"sticky_header": sticky_header, "sample_rate": sample_rate,
                                   "max_batch": max_batch, "max_wait_us": max_wait_us})
    if json_output:
        print_json(d)
        return
    console.print(_summary(d))
    if d.status == "pending_approval":
        console.print(f"  waiting for {d.approvals_required} approval(s) by someone other than "
                      f"{d.created_by}: dsops approve {d.id}")
    elif d.status == "progressing":
        console.print(f"  next analysis at {d.next_analysis_at:%H:%M:%S}: "
                      f"{', '.join(d.checks) or 'no checks (steps advance on time)'}")


def approve(deployment: IdArg,
            comment: Annotated[str | None, typer.Option(help="A note kept with the approval.")] = None,
            ) -> None:
    """Approve a deployment (four eyes: not its author)."""
    from dsops.cli.output import console

    d = _service().approve(deployment, comment=comment)
    console.print(f"approved by {d.approvals[-1]} ({len(d.approvals)}/{d.approvals_required})")
    console.print(_summary(d))


def rollback(
    target: Annotated[str, typer.Argument(help="ENV/MODEL, e.g. prod/credit-risk.")],
    reason: Annotated[str, typer.Option(help="Why (kept in the history and the audit log).")],
) -> None:
    """Go back to the version that served before (or abort the rollout in flight)."""
    from dsops.cli.output import console
    from dsops.core.errors import UsageError

    env, sep, model = target.partition("/")
    if not sep or not env or not model:
        raise UsageError(f"invalid target {target!r}: expected ENV/MODEL, e.g. prod/credit-risk")
    d = _service().rollback(env, model, reason=reason)
    console.print(_summary(d))


@rollout_app.command("status")
def status(
    deployment: Annotated[str | None, typer.Argument(help="A deployment id for its details.")] = None,
    env: Annotated[str | None, typer.Option(help="Only this environment.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Also finished deployments.")] = False,
    json_output: JsonOpt = False,
) -> None:
    """What is deployed and rolling out now (or one deployment with its history)."""
    from rich.markup import escape
    from rich.text import Text

    from dsops.cli.output import console, print_json, table, when

    service = _service()
    if deployment:
        d = service.get(deployment)
        if json_output:
            print_json(d)
            return
        console.print(_summary(d))
        if d.checks:
            console.print(f"  analysis every {d.interval_s:g} s: {escape(', '.join(d.checks))}")
        table("history", ["when", "event", "status", "by", "details"],
              [(when(e.at), e.kind, e.to_status or "", e.actor, _details(e.details))
               for e in d.events])
        return
    rows = service.list(env=env, active=not all_)
    if json_output:
        print_json(rows)
        return
    if not rows:
        console.print("nothing deployed" + (f" in {env}" if env else "")
                      + ": dsops deploy NAME@VERSION --env ENV")
        return
    table("deployments" if all_ else "deployments serving or in flight",
          ["id", "env", "model", "strategy", "status", "traffic", "since", "by"],
          [(d.id, d.env, d.ref, d.strategy,
            Text(d.status, style=STATUS_STYLE.get(d.status, "")),
            f"{d.weight}%", when(d.updated_at), d.created_by) for d in rows])


@rollout_app.command("history")
def history(deployment: IdArg, json_output: JsonOpt = False) -> None:
    """Every event of a deployment: steps, analyses, approvals, transitions."""
    status(deployment=deployment, env=None, all_=True, json_output=json_output)


@rollout_app.command("promote")
def promote(deployment: IdArg,
            reason: Annotated[str | None, typer.Option(help="Why skip the remaining steps.")] = None,
            ) -> None:
    """Send all traffic to the candidate now."""
    from dsops.cli.output import console

    console.print(_summary(_service().promote(deployment, reason=reason)))


@rollout_app.command("abort")
def abort(deployment: IdArg,
          reason: Annotated[str, typer.Option(help="Why (kept in the history).")]) -> None:
    """Stop a rollout and send all traffic back to the stable version."""
    from dsops.cli.output import console

    console.print(_summary(_service().abort(deployment, reason=reason)))


@rollout_app.command("reconcile")
def reconcile() -> None:
    """Advance every rollout whose analysis is due (dsops serve does this on a timer)."""
    from dsops.cli.output import console

    changed = _service().reconcile()
    for d in changed:
        console.print(_summary(d))
    if not changed:
        console.print("no rollout was due")


def _details(details: dict[str, object]) -> str:
    checks = details.get("checks")
    if isinstance(checks, list) and checks and isinstance(checks[0], dict):
        return "; ".join(f"{c.get('check')}: {c.get('detail')}" for c in checks)
    return ", ".join(f"{k}={v}" for k, v in details.items() if v not in (None, [], {}))
