"""What a firing alert rule does besides opening an incident: roll back the deployment,
retrain (run the pipeline stage that registers the model), or call a webhook."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

from dsops.config.models import WebhookConfig
from dsops.core.durations import parse_duration
from dsops.workspace import Workspace


@dataclass(frozen=True)
class ActionResult:
    """What one action did: ``ok`` and a one-line detail (never a secret)."""

    action: str
    ok: bool
    detail: str


def rollback(ws: Workspace, env: str, model: str, reason: str) -> ActionResult:
    """Back to the version that served before (through the rollout service)."""
    from dsops.core.errors import DsopsError
    from dsops.rollout.service import RolloutService

    try:
        info = RolloutService(ws).rollback(env, model, reason=reason)
    except DsopsError as exc:
        return ActionResult("rollback", False, exc.message)
    back = info.previous_version if info.status == "rolled_back" else None
    return ActionResult("rollback", True, f"{info.ref} {info.status}"
                        + (f"; {model}@{back} serves again" if back else ""))


def retrain(ws: Workspace, model: str) -> ActionResult:
    """Run the pipeline stage that registers ``model`` (and what it needs)."""
    from dsops.core.errors import DsopsError
    from dsops.pipelines.service import PipelineService

    stages = [name for name, stage in ws.config.stages.items() if stage.registers == model]
    if not stages:
        return ActionResult("retrain", False, f"no stage registers {model} (add 'registers: "
                                              f"{model}' to the stage that trains it)")
    try:
        result = PipelineService(ws).run(stages)
    except DsopsError as exc:
        return ActionResult("retrain", False, exc.message)
    if result.failed:
        return ActionResult("retrain", False, "; ".join(s.error or s.stage for s in result.failed))
    models = [s.model for s in result.stages if s.model]
    ran = [s.stage for s in result.stages if s.action == "run"]
    if not ran:
        return ActionResult("retrain", True, "pipeline up to date: nothing new to train on")
    return ActionResult("retrain", True, f"ran {', '.join(ran)}"
                        + (f"; registered {', '.join(models)}" if models else ""))


def webhook(name: str, config: WebhookConfig, payload: dict[str, Any]) -> ActionResult:
    """POST the payload (JSON, or Jira-shaped) with retries and a timeout. The URL is read
    from the environment and never appears in a message."""
    import httpx

    url = os.environ.get(config.url_env)
    action = f"webhook:{name}"
    if not url:
        return ActionResult(action, False, f"environment variable {config.url_env} is not set")
    body = jira_issue(payload, config.jira_project) if config.format == "jira" else payload
    timeout = parse_duration(config.timeout)
    last = ""
    for attempt in range(config.retries + 1):
        try:
            response = httpx.post(url, json=body, timeout=timeout)
            if response.status_code < 300:
                return ActionResult(action, True, f"delivered (HTTP {response.status_code}"
                                                  f"{f', attempt {attempt + 1}' if attempt else ''})")
            last = f"HTTP {response.status_code}"
        except httpx.TimeoutException:
            last = f"timed out after {timeout:g} s"
        except httpx.HTTPError as exc:
            last = type(exc).__name__  # the message could contain the secret URL
        if attempt < config.retries:
            time.sleep(min(0.2 * 2 ** attempt, 2.0))
    return ActionResult(action, False, f"failed after {config.retries + 1} attempts: {last}")


def jira_issue(payload: dict[str, Any], project: str | None) -> dict[str, Any]:
    """The payload as a Jira 'create issue' request body."""
    incident = payload.get("incident", {})
    summary = f"[dsops] {payload.get('monitor')}: {payload.get('rule')}"
    lines = [f"Model: {incident.get('model')}@{incident.get('version')} in {incident.get('env')}",
             f"Rule: {payload.get('rule')} ({payload.get('detail')})",
             f"Incident: {incident.get('id')}, opened {incident.get('opened_at')}"]
    return {"fields": {"project": {"key": project or "OPS"}, "summary": summary[:250],
                       "description": "\n".join(lines), "issuetype": {"name": "Incident"},
                       "labels": ["dsops", str(payload.get("monitor"))]}}
