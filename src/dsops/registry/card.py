"""Model cards: what a model version is for, what it was trained on, how it did and where
it went, generated from the store (never hand-written) as Markdown or a standalone HTML page."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from dsops.core.errors import NotFound, UsageError
from dsops.gates.service import GateReport
from dsops.registry.models import AliasChange, ModelVersionInfo

if TYPE_CHECKING:
    from dsops.workspace import Workspace

FORMATS = ("md", "html")
# The model's description fields, in the order the card shows them.
DESCRIPTION_FIELDS = ("description", "owner", "intended_use", "limitations")


class DatasetLineage(BaseModel):
    """One dataset version upstream of the model, with what governs its use."""

    ref: str
    found: bool = True
    rows: int | None = None
    owner: str | None = None
    license: str | None = None
    consent: str | None = None
    sensitive: bool = False
    encrypted: bool = False
    revoked: bool = False
    revoked_at: datetime | None = None
    revoke_reason: str | None = None


class TrainingRun(BaseModel):
    """The run that produced the version."""

    id: str
    name: str | None = None
    status: str | None = None
    command: str | None = None
    git_commit: str | None = None
    git_dirty: bool | None = None
    started_at: datetime | None = None
    duration_s: float | None = None
    python: str | None = None
    found: bool = True


class SignatureColumn(BaseModel):
    """One input column of the signature."""

    name: str
    type: str
    nullable: bool = False


class SignatureView(BaseModel):
    """The signature as a card shows it: named input columns or a tensor, and the outputs."""

    columns: list[SignatureColumn] = []
    tensor: str | None = None
    outputs: str | None = None


class ModelCard(BaseModel):
    """Everything a model card shows, read from the store."""

    version: ModelVersionInfo
    about: dict[str, str]
    datasets: list[DatasetLineage]
    run: TrainingRun | None
    signature: SignatureView | None
    evaluation: GateReport | None
    gates: list[GateReport]
    alias_history: list[AliasChange]
    approvals: list[str] = []
    deployments: list[str] = []
    generated_at: datetime


def build_card(ws: Workspace, ref: str) -> ModelCard:
    """Gather a model version's card from the registry, datasets, runs and gate results."""
    from dsops.gates.service import GateService
    from dsops.registry.service import RegistryService

    registry = RegistryService(ws)
    version = registry.show(ref)
    gates = GateService(ws).results(version.ref)
    evaluation = next((g for g in gates if g.inputs.get("eval_data")), None)
    history = [c for c in registry.history(version.name)
               if version.version in (c.from_version, c.to_version)]
    deployments, approvals = _deployments(ws, version.name, version.version)
    return ModelCard(
        version=version, about=_about(ws, version), datasets=_lineage(ws, version.datasets),
        run=_run(ws, version.run_id), signature=signature_view(version.signature),
        evaluation=evaluation, gates=gates, alias_history=history, generated_at=ws.now(),
        deployments=deployments, approvals=approvals)


def _deployments(ws: Workspace, model: str, version: int) -> tuple[list[str], list[str]]:
    """One line per deployment of this version (environment, strategy, outcome) and one
    per approval of those deployments, oldest first."""
    from dsops.rollout.service import RolloutService

    rows = [d for d in RolloutService(ws).list(model=model, limit=1000) if d.version == version]
    deployments, approvals = [], []
    for d in reversed(rows):
        line = (f"{d.env}: {d.strategy}, {d.status.replace('_', ' ')} — deployed "
                f"{d.created_at:%Y-%m-%d %H:%M} UTC by {d.created_by}")
        if d.promoted_at:
            line += f", serving from {d.promoted_at:%Y-%m-%d %H:%M} UTC"
        if d.reason:
            line += f" ({d.reason})"
        deployments.append(line)
        approvals += [f"{d.env} deployment {d.id} approved by {who}" for who in d.approvals]
    return deployments, approvals


def render_card(ws: Workspace, ref: str, *, format: str = "md") -> str:
    """The model card of ``ref`` as GitHub-flavoured Markdown (``md``) or a standalone,
    escaped HTML page with a fairness chart (``html``)."""
    if format not in FORMATS:
        raise UsageError(f"unknown model card format {format!r}: use md or html")
    from dsops.templates import render

    card = build_card(ws, ref)
    if format == "md":
        return render("model_card.md", card=card, labels=_LABELS)
    return render("model_card.html", card=card, labels=_LABELS, charts=_fairness_charts(card))


def signature_view(signature: dict[str, Any] | None) -> SignatureView | None:
    """A stored signature (``{"inputs": {"kind": "columns", …}, "outputs": …}``) for display."""
    if not signature:
        return None
    inputs = signature.get("inputs")
    view = SignatureView(outputs=_spec_text(signature.get("outputs")))
    if isinstance(inputs, list):  # a bare list of columns
        inputs = {"kind": "columns", "columns": inputs}
    if isinstance(inputs, dict) and inputs.get("kind") == "tensor":
        view.tensor = _spec_text(inputs)
    elif isinstance(inputs, dict):
        view.columns = [SignatureColumn(name=str(c.get("name")), type=str(c.get("type")),
                                        nullable=bool(c.get("nullable", False)))
                        for c in inputs.get("columns", []) if isinstance(c, dict)]
    return view


_LABELS = {
    "description": "Description", "owner": "Owner", "intended_use": "Intended use",
    "limitations": "Limitations", "rows": "rows", "selection_rate": "selection rate",
    "accuracy": "accuracy", "true_positive_rate": "true positive rate",
    "false_positive_rate": "false positive rate",
}


def _about(ws: Workspace, version: ModelVersionInfo) -> dict[str, str]:
    """Description fields: those recorded at registration, else today's ``models:`` config."""
    config = ws.config.models.get(version.name)
    current = {k: v for k, v in (config.model_dump() if config else {}).items() if v}
    merged = {**current, **{k: v for k, v in version.info.items() if v not in (None, "")}}
    ordered = {k: str(merged[k]) for k in DESCRIPTION_FIELDS if k in merged}
    ordered.update({k: str(v) for k, v in sorted(merged.items()) if k not in ordered})
    return ordered


def _lineage(ws: Workspace, refs: list[str]) -> list[DatasetLineage]:
    from dsops.data.service import DatasetService

    service = DatasetService(ws)
    out = []
    for ref in refs:
        try:
            d = service.show(ref)
        except NotFound:
            out.append(DatasetLineage(ref=ref, found=False))
            continue
        out.append(DatasetLineage(
            ref=f"data:{d.ref}", rows=d.row_count, owner=d.owner, license=d.license,
            consent=d.consent, sensitive=d.sensitive, encrypted=d.encrypted, revoked=d.revoked,
            revoked_at=d.revoked_at, revoke_reason=d.revoke_reason))
    return out


def _run(ws: Workspace, run_id: str | None) -> TrainingRun | None:
    from dsops.tracking.service import TrackingService

    if run_id is None:
        return None
    try:
        run = TrackingService(ws).get(run_id)
    except NotFound:
        return TrainingRun(id=run_id, found=False)
    return TrainingRun(id=run.id, name=run.name, status=run.status, command=run.command,
                       git_commit=run.git_commit, git_dirty=run.git_dirty,
                       started_at=run.started_at, duration_s=run.duration_s,
                       python=(run.environment or {}).get("python"))


def _spec_text(spec: Any) -> str | None:
    if not spec:
        return None
    if isinstance(spec, list):
        spec = {"kind": "columns", "columns": spec}
    if isinstance(spec, dict) and spec.get("kind") == "tensor":
        shape = ", ".join("any" if int(d) < 0 else str(d) for d in spec.get("shape", []))
        return f"array of {spec.get('dtype')}, shape ({shape})"
    if isinstance(spec, dict):
        return ", ".join(f"{c.get('name')} ({c.get('type')})" for c in spec.get("columns", [])
                         if isinstance(c, dict))
    return str(spec)


def _fairness_charts(card: ModelCard) -> dict[str, str]:
    """Per sensitive column, a Plotly bar chart (an HTML div) of the selection rate per group."""
    if card.evaluation is None:
        return {}
    import plotly.graph_objects as go

    charts = {}
    for by, groups in (card.evaluation.inputs.get("fairness") or {}).items():
        names = list(groups)
        fig = go.Figure(go.Bar(x=names, y=[groups[g].get("selection_rate") for g in names],
                               marker_color="#4c78a8"))
        fig.update_layout(title=f"Selection rate by {by}", yaxis_title="selection rate",
                          yaxis_range=[0, 1], height=320, margin={"l": 50, "r": 20, "t": 50, "b": 40},
                          template="plotly_white")
        # plotly.js once, from the CDN, before the first chart; JSON in the div escapes "</".
        charts[by] = fig.to_html(full_html=False, include_plotlyjs="cdn" if not charts else False)
    return charts
