"""Tables of the metadata store. Each capability owns its tables; schema changes are
Alembic migrations under ``store/migrations/versions`` (a test checks they agree)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    """Declarative base of every dsops table."""

    type_annotation_map = {  # noqa: RUF012 (SQLAlchemy reads it from the class)
        dict[str, Any]: JSON, list[Any]: JSON, datetime: DateTime(timezone=True)}


class AuditHead(Base):
    """One row: the last sequence number and hash of the audit chain (the append lock)."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))


class AuditEvent(Base):
    """An append-only, hash-chained record of one mutation."""

    __tablename__ = "audit_events"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(320))
    action: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str] = mapped_column(String(512), index=True)
    details: Mapped[dict[str, Any]]
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class Dataset(Base):
    """A named dataset; its content lives in numbered versions."""

    __tablename__ = "datasets"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(320))


class DatasetVersion(Base):
    """One immutable version of a dataset: its content digest, metadata and reports."""

    __tablename__ = "dataset_versions"
    __table_args__ = (UniqueConstraint("dataset_id", "version"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    digest: Mapped[str] = mapped_column(String(64), index=True)
    # Directory versions: the object holding the stored manifest (content + pack
    # locations); NULL means the object named by ``digest`` (stores before 0002).
    manifest: Mapped[str | None] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))  # "file" or "directory"
    format: Mapped[str] = mapped_column(String(16))  # csv, parquet, jsonl, files
    source_name: Mapped[str] = mapped_column(String(1024))
    size: Mapped[int] = mapped_column(BigInteger)
    file_count: Mapped[int] = mapped_column(Integer)
    row_count: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(320))
    description: Mapped[str | None] = mapped_column(Text)
    owner: Mapped[str | None] = mapped_column(String(320))
    license: Mapped[str | None] = mapped_column(String(256))
    consent: Mapped[str | None] = mapped_column(String(256))
    retention_until: Mapped[date | None] = mapped_column(Date)
    sensitive: Mapped[bool] = mapped_column(Boolean, default=False)
    key_id: Mapped[str | None] = mapped_column(String(32))
    valid: Mapped[bool] = mapped_column(Boolean, default=True)
    validation: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    data_schema: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    profile: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    pii: Mapped[list[Any] | None] = mapped_column(JSON)
    revoked_at: Mapped[datetime | None]
    revoked_by: Mapped[str | None] = mapped_column(String(320))
    revoke_reason: Mapped[str | None] = mapped_column(Text)


class Run(Base):
    """One tracked execution: a pipeline stage or a ``dsops.start_run`` block."""

    __tablename__ = "runs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(256), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # "stage" or "manual"
    status: Mapped[str] = mapped_column(String(16), index=True)  # running|finished|failed|killed
    created_by: Mapped[str] = mapped_column(String(320))
    started_at: Mapped[datetime] = mapped_column(index=True)
    ended_at: Mapped[datetime | None]
    exit_code: Mapped[int | None] = mapped_column(Integer)
    command: Mapped[str | None] = mapped_column(Text)
    git_commit: Mapped[str | None] = mapped_column(String(64))
    git_dirty: Mapped[bool | None] = mapped_column(Boolean)
    environment: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # python, packages
    error: Mapped[str | None] = mapped_column(Text)


class RunParam(Base):
    """A parameter of a run: text always, number when it is one (for filters and sorts)."""

    __tablename__ = "run_params"
    # run_id last: the filter subqueries (SELECT run_id … WHERE key = ? AND value …) read
    # the index alone (migration 0008); run_id first: a filter joining a param condition
    # to another one looks each run up in the index alone (migration 0009).
    __table_args__ = (Index("ix_run_params_key_number", "key", "number", "run_id"),
                      Index("ix_run_params_key_value", "key", "value", "run_id"),
                      Index("ix_run_params_run_id_key_value", "run_id", "key", "value"))

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"), primary_key=True)
    key: Mapped[str] = mapped_column(String(256), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    number: Mapped[float | None] = mapped_column(Float)


class RunMetric(Base):
    """One logged value of a metric (every step is kept)."""

    __tablename__ = "run_metrics"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"), index=True)
    key: Mapped[str] = mapped_column(String(256))
    step: Mapped[int] = mapped_column(BigInteger)
    value: Mapped[float] = mapped_column(Float)
    at: Mapped[datetime]


class RunLatestMetric(Base):
    """The last logged value of each metric of a run: what filters and sorts read."""

    __tablename__ = "run_latest_metrics"
    __table_args__ = (Index("ix_run_latest_metrics_key_value", "key", "value", "run_id"),)

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"), primary_key=True)
    key: Mapped[str] = mapped_column(String(256), primary_key=True)
    value: Mapped[float] = mapped_column(Float)
    step: Mapped[int] = mapped_column(BigInteger)


class RunValues(Base):
    """A run's params and latest metrics in one row, rewritten by the tracking service
    whenever it writes the per-key rows above: listings read one row a run, filters and
    sorts the per-key rows and their indexes (migration 0009; format in
    ``tracking/run_values.py``)."""

    __tablename__ = "run_values"
    __table_args__ = {"sqlite_with_rowid": False}  # noqa: RUF012 (SQLAlchemy reads it)

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"), primary_key=True)
    params: Mapped[str] = mapped_column(Text)  # a JSON object
    metric_names: Mapped[str] = mapped_column(Text)  # a JSON array
    metric_values: Mapped[bytes] = mapped_column(LargeBinary)  # float64s, in that order


class RunArtifact(Base):
    """A file a run produced, stored in the object store by content hash."""

    __tablename__ = "run_artifacts"

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"), primary_key=True)
    path: Mapped[str] = mapped_column(String(1024), primary_key=True)
    digest: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)


class LineageEdge(Base):
    """``source`` was used to produce ``target`` (dataset versions, runs, files, models)."""

    __tablename__ = "lineage_edges"

    source: Mapped[str] = mapped_column(String(512), primary_key=True)  # "data:credit@3"
    target: Mapped[str] = mapped_column(String(512), primary_key=True, index=True)
    created_at: Mapped[datetime]


class StageCacheEntry(Base):
    """A pipeline stage's successful result under one cache key: what went into the key
    (so a change can be explained) and the outs' digests (so they can be restored)."""

    __tablename__ = "stage_cache"
    __table_args__ = (Index("ix_stage_cache_project_stage", "project", "stage"),)

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    project: Mapped[str] = mapped_column(String(128))
    stage: Mapped[str] = mapped_column(String(256))
    components: Mapped[dict[str, Any]] = mapped_column(JSON)
    outs: Mapped[dict[str, Any]] = mapped_column(JSON)
    run_id: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime]
    used_at: Mapped[datetime]


class Model(Base):
    """A named model; its artifacts live in numbered versions."""

    __tablename__ = "models"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(320))


class ModelVersion(Base):
    """One immutable registered artifact of a model: files by digest, flavor, signature,
    the run it came from, and whether loading it needs recorded trust (pickle)."""

    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("model_id", "version"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    model_id: Mapped[str] = mapped_column(ForeignKey("models.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    digest: Mapped[str] = mapped_column(String(64), index=True)  # of the files manifest
    flavor: Mapped[str] = mapped_column(String(32))
    files: Mapped[dict[str, Any]]  # relative path -> {"digest", "size"}
    meta: Mapped[dict[str, Any]]  # what the flavor needs to load it
    signature: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    metrics: Mapped[dict[str, Any]]  # metric name -> value, as registered
    info: Mapped[dict[str, Any]]  # description, owner, intended use, limitations
    run_id: Mapped[str | None] = mapped_column(String(36), index=True)
    needs_trust: Mapped[bool] = mapped_column(Boolean, default=False)
    trusted_by: Mapped[str | None] = mapped_column(String(320))
    trusted_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(320))


class ModelAlias(Base):
    """Where an alias (``champion``, ``challenger``, …) of a model points now."""

    __tablename__ = "model_aliases"

    model_id: Mapped[str] = mapped_column(ForeignKey("models.id"), primary_key=True)
    alias: Mapped[str] = mapped_column(String(128), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime]
    updated_by: Mapped[str] = mapped_column(String(320))


class ModelAliasChange(Base):
    """Every move of an alias: who moved it from which version to which, when and why."""

    __tablename__ = "model_alias_changes"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # time-ordered
    model_id: Mapped[str] = mapped_column(ForeignKey("models.id"), index=True)
    alias: Mapped[str] = mapped_column(String(128))
    from_version: Mapped[int | None] = mapped_column(Integer)
    to_version: Mapped[int | None] = mapped_column(Integer)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(320))
    reason: Mapped[str | None] = mapped_column(Text)
    forced: Mapped[bool] = mapped_column(Boolean, default=False)


class GateResult(Base):
    """One evaluation of a gate on a model version: every check's value, threshold and
    verdict, and the inputs used (evaluation data, champion compared against)."""

    __tablename__ = "gate_results"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # time-ordered
    model_version_id: Mapped[str] = mapped_column(ForeignKey("model_versions.id"), index=True)
    passed: Mapped[bool] = mapped_column(Boolean)
    checks: Mapped[list[Any]]
    inputs: Mapped[dict[str, Any]]
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(320))


class Deployment(Base):
    """One model version deployed to an environment with a strategy, and its rollout state."""

    __tablename__ = "deployments"
    __table_args__ = (Index("ix_deployments_env_model", "env", "model"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # time-ordered
    env: Mapped[str] = mapped_column(String(128))
    model: Mapped[str] = mapped_column(String(128))
    version: Mapped[int] = mapped_column(Integer)
    model_version_id: Mapped[str] = mapped_column(ForeignKey("model_versions.id"))
    previous_version: Mapped[int | None] = mapped_column(Integer)
    strategy: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(24), index=True)
    steps: Mapped[list[Any]]
    step_index: Mapped[int] = mapped_column(Integer)
    weight: Mapped[int] = mapped_column(Integer)
    analysis: Mapped[dict[str, Any]]  # {"checks": [...], "interval_s": float}
    options: Mapped[dict[str, Any]]  # sticky_header, sample_rate, max_batch, max_wait_us
    approvals_required: Mapped[int] = mapped_column(Integer)
    step_started_at: Mapped[datetime | None]
    next_analysis_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(320))
    updated_at: Mapped[datetime]
    promoted_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    reason: Mapped[str | None] = mapped_column(Text)


class DeploymentEventRow(Base):
    """A transition (or an analysis) of a deployment: the history DORA is computed from."""

    __tablename__ = "deployment_events"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # time-ordered
    deployment_id: Mapped[str] = mapped_column(ForeignKey("deployments.id"), index=True)
    at: Mapped[datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(320))
    kind: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[str | None] = mapped_column(String(24))
    to_status: Mapped[str | None] = mapped_column(String(24))
    details: Mapped[dict[str, Any]]


class Approval(Base):
    """An approval of a deployment by an identity other than its author (four eyes)."""

    __tablename__ = "approvals"

    deployment_id: Mapped[str] = mapped_column(ForeignKey("deployments.id"), primary_key=True)
    approver: Mapped[str] = mapped_column(String(320), primary_key=True)
    at: Mapped[datetime]
    comment: Mapped[str | None] = mapped_column(Text)


class MonitorEvaluation(Base):
    """One evaluation of a monitor over a window: every value and every rule's verdict."""

    __tablename__ = "monitor_evaluations"
    __table_args__ = (Index("ix_monitor_evaluations_monitor_at", "monitor", "at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # time-ordered
    monitor: Mapped[str] = mapped_column(String(128))
    at: Mapped[datetime]
    window_start: Mapped[datetime]
    window_end: Mapped[datetime]
    env: Mapped[str | None] = mapped_column(String(128))
    model: Mapped[str | None] = mapped_column(String(128))
    version: Mapped[int | None] = mapped_column(Integer)
    deployment_id: Mapped[str | None] = mapped_column(String(36))
    status: Mapped[str] = mapped_column(String(16))  # ok | firing | no_data
    values: Mapped[dict[str, Any]]
    rules: Mapped[list[Any]]


class Incident(Base):
    """A rule that fired: open until resolved (by a person or after staying healthy), with
    its evidence and the actions taken. Time to restore is resolved_at - opened_at."""

    __tablename__ = "incidents"
    __table_args__ = (Index("ix_incidents_monitor_rule_status", "monitor", "rule", "status"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # time-ordered
    monitor: Mapped[str] = mapped_column(String(128))
    rule: Mapped[str] = mapped_column(String(512))
    status: Mapped[str] = mapped_column(String(16), index=True)  # open | acknowledged | resolved
    severity: Mapped[str] = mapped_column(String(16))
    env: Mapped[str | None] = mapped_column(String(128))
    model: Mapped[str | None] = mapped_column(String(128))
    version: Mapped[int | None] = mapped_column(Integer)
    deployment_id: Mapped[str | None] = mapped_column(String(36), index=True)
    opened_at: Mapped[datetime] = mapped_column(index=True)
    last_fired_at: Mapped[datetime]
    healthy_since: Mapped[datetime | None]
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(String(320))
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(String(320))
    note: Mapped[str | None] = mapped_column(Text)
    evidence: Mapped[dict[str, Any]]
    actions: Mapped[list[Any]]
