"""The shape of ``dsops.yaml``. Unknown keys are errors: a typo must not pass silently."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from dsops.core.refs import NAME_RE

COLUMN_TYPES = ("int", "float", "str", "bool", "date", "datetime")
_PYTHON_REF_RE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class RowCount(_Strict):
    """Bounds on the number of rows."""

    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=0)


class Expectation(_Strict):
    """One declarative data check: either on a column, or on the row count."""

    column: str | None = None
    type: Literal["int", "float", "str", "bool", "date", "datetime"] | None = None
    between: tuple[float, float] | None = None
    min: float | None = None
    max: float | None = None
    not_null: bool = False
    unique: bool = False
    allowed: list[Any] | None = Field(default=None, alias="in")
    regex: str | None = None
    row_count: RowCount | None = None

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from None
        return value

    @model_validator(mode="after")
    def _one_subject(self) -> Expectation:
        column_checks = any(
            (self.type, self.between, self.min is not None, self.max is not None,
             self.not_null, self.unique, self.allowed is not None, self.regex)
        )
        if self.row_count is not None:
            if self.column is not None or column_checks:
                raise ValueError("row_count is a check on its own: do not combine it with column")
            return self
        if self.column is None:
            raise ValueError("an expectation needs 'column' (or is a 'row_count' check)")
        if not column_checks:
            raise ValueError(
                f"expectation on column {self.column!r} checks nothing: add one of type, "
                "between, min, max, not_null, unique, in, regex"
            )
        if self.between is not None and self.between[0] > self.between[1]:
            raise ValueError(f"between: lower bound {self.between[0]} > upper {self.between[1]}")
        return self


class DatasetConfig(_Strict):
    """A dataset declared in the project: where it lives and what it must satisfy."""

    path: str | None = None
    description: str | None = None
    owner: str | None = None
    license: str | None = None
    consent: str | None = None
    retention_until: date | None = None
    sensitive_columns: list[str] = Field(default_factory=list)
    expectations: list[Expectation] = Field(default_factory=list)


class StageConfig(_Strict):
    """A pipeline stage: a shell ``cmd`` or a ``python`` function, with its inputs and outputs."""

    cmd: str | None = None
    python: str | None = None
    deps: list[str] = Field(default_factory=list)
    params: list[str] = Field(default_factory=list)
    outs: list[str] = Field(default_factory=list)
    metrics: list[str] = Field(default_factory=list)
    plots: list[str] = Field(default_factory=list)
    wdir: str | None = None
    registers: str | None = None
    model: str | None = None

    @field_validator("python")
    @classmethod
    def _module_function(cls, value: str | None) -> str | None:
        if value is not None and not _PYTHON_REF_RE.match(value):
            raise ValueError("expected 'module:function', e.g. 'src.train:main'")
        return value

    @field_validator("deps", "params", "outs", "metrics", "plots")
    @classmethod
    def _no_blanks(cls, value: list[str]) -> list[str]:
        for item in value:
            if not item.strip():
                raise ValueError("entries must not be empty")
        return value

    @model_validator(mode="after")
    def _one_command(self) -> StageConfig:
        if (self.cmd is None) == (self.python is None):
            raise ValueError("a stage needs exactly one of 'cmd' (shell) or 'python' "
                             "(module:function)")
        for path in (*self.outs, *self.metrics, *self.plots):
            if path.startswith("data:") or path.startswith("/") or ".." in path.split("/"):
                raise ValueError(f"out {path!r} must be a path inside the project")
        if self.registers is not None:
            if not NAME_RE.match(self.registers):
                raise ValueError(f"registers: invalid model name {self.registers!r}")
            if self.model is None:
                raise ValueError("a stage that 'registers' a model needs 'model: PATH' (the "
                                 "artifact among its outs, e.g. a directory written by "
                                 "dsops.save_model)")
        if self.model is not None and self.model not in self.outs:
            raise ValueError(f"model {self.model!r} must be one of the stage's outs "
                             f"({', '.join(self.outs) or 'none declared'})")
        return self

    def all_outs(self) -> list[str]:
        """Declared outs plus metrics files (which are outs too), without repeats."""
        return list(dict.fromkeys([*self.outs, *self.metrics]))

    def command_text(self) -> str:
        """The command as written: the shell line, or ``python:module:function``."""
        return self.cmd if self.cmd is not None else f"python:{self.python}"


class ModelConfig(_Strict):
    """What a model is for and who answers for it: shown on its model card."""

    description: str | None = None
    owner: str | None = None
    intended_use: str | None = None
    limitations: str | None = None


def _parsed_check(text: str) -> str:
    """A gate check that parses (the loader turns the ValueError into file:line: key)."""
    from dsops.core.errors import UsageError
    from dsops.gates.expr import parse_check

    try:
        parse_check(text)
    except UsageError as exc:
        raise ValueError(exc.message) from None
    return text


class GateConfig(_Strict):
    """The checks a model version must pass, and the evaluation data they run on.

    Written either as a plain list of checks or as a mapping with ``checks:``.
    """

    checks: list[Annotated[str, AfterValidator(_parsed_check)]] = Field(default_factory=list)
    eval_data: str | None = None
    label: str | None = None
    sensitive: list[str] = Field(default_factory=list)
    positive_label: Any = None
    latency_rows: int = Field(default=200, ge=10, le=100_000)

    @model_validator(mode="before")
    @classmethod
    def _list_form(cls, value: Any) -> Any:
        return {"checks": value} if isinstance(value, list) else value

    @field_validator("eval_data")
    @classmethod
    def _data_ref(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("data:"):
            raise ValueError("expected a dataset reference: data:NAME or data:NAME@N")
        return value


class AnalysisConfig(_Strict):
    """Checks evaluated over the candidate's live window between rollout steps."""

    every: str = "5m"
    checks: list[Annotated[str, AfterValidator(_parsed_check)]] = Field(default_factory=list)

    @field_validator("every")
    @classmethod
    def _duration(cls, value: str) -> str:
        from dsops.core.durations import parse_duration

        parse_duration(value)  # raises ValueError with the expected shape
        return value


class DeploySpec(_Strict):
    """The desired deployment of an environment (used by ``dsops deploy --env`` defaults)."""

    model: str
    strategy: Literal["direct", "canary", "shadow", "blue-green"] = "direct"
    steps: list[int] = Field(default_factory=lambda: [10, 50, 100])
    analysis: AnalysisConfig = Field(default_factory=AnalysisConfig)

    @field_validator("steps")
    @classmethod
    def _steps(cls, value: list[int]) -> list[int]:
        return _valid_steps(value)


def _valid_steps(value: list[int]) -> list[int]:
    if not value or any(not 0 < v <= 100 for v in value) or value != sorted(set(value)):
        raise ValueError("steps are increasing traffic percentages in (0, 100], e.g. [10, 50, 100]")
    return value


class EnvironmentConfig(_Strict):
    """A place models are deployed to, with its policies."""

    approvals: int = Field(default=0, ge=0, le=10)
    require_gate: bool = False
    deployers: list[str] = Field(default_factory=list)  # identities allowed; empty: anyone
    deploy: DeploySpec | None = None


ACTIONS = ("incident", "rollback", "retrain")


class AlertRule(_Strict):
    """When ``when`` (a check of the gate language) holds, do the listed actions."""

    when: Annotated[str, AfterValidator(_parsed_check)]
    do: list[str] = Field(default_factory=lambda: ["incident"])
    severity: Literal["info", "warning", "critical"] = "warning"

    @field_validator("do")
    @classmethod
    def _actions(cls, value: list[str]) -> list[str]:
        for action in value:
            if action not in ACTIONS and not (action.startswith("webhook:") and action[8:]):
                raise ValueError(f"unknown action {action!r}: use {', '.join(ACTIONS)} or "
                                 "webhook:NAME")
        return value


class DriftConfig(_Strict):
    """Which input columns are compared with the reference, and how."""

    features: Literal["all"] | list[str] = "all"
    method: str = "auto"
    methods: dict[str, str] = Field(default_factory=dict)  # per column
    thresholds: dict[str, float] = Field(default_factory=dict)  # per column


class MonitorConfig(_Strict):
    """A monitor of a deployment: what it computes over which window, and its alert rules."""

    deployment: str  # ENV/MODEL
    every: str = "1h"
    window: str | None = None  # default: the same as ``every``
    reference: str | None = None  # data:NAME@N; default: the deployed version's training data
    drift: DriftConfig = Field(default_factory=DriftConfig)
    positive_label: Any = None
    resolve_after: str = "1h"  # an incident resolves itself after its rule held this long
    alerts: list[AlertRule] = Field(default_factory=list)

    @field_validator("deployment")
    @classmethod
    def _env_model(cls, value: str) -> str:
        env, sep, model = value.partition("/")
        if not sep or not NAME_RE.match(env) or not NAME_RE.match(model):
            raise ValueError("expected ENV/MODEL, e.g. prod/credit-risk")
        return value

    @field_validator("every", "window", "resolve_after")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        from dsops.core.durations import parse_duration

        if value is not None:
            parse_duration(value)
        return value


class WebhookConfig(_Strict):
    """Where a ``webhook:NAME`` action posts: the URL comes from an environment variable
    (it is a secret, never written in dsops.yaml or in logs)."""

    url_env: str
    format: Literal["json", "jira"] = "json"
    timeout: str = "5s"
    retries: int = Field(default=3, ge=0, le=10)
    jira_project: str | None = None


class PredictionsConfig(_Strict):
    """The prediction log and its feedback: how long whole days of them are kept."""

    retention: str | None = None  # e.g. 90d; dsops serve deletes older days once a day

    @field_validator("retention")
    @classmethod
    def _whole_days(cls, value: str | None) -> str | None:
        from dsops.core.durations import parse_retention

        if value is not None:
            parse_retention(value)  # raises ValueError with the expected shape
        return value


class ProjectConfig(_Strict):
    """The whole ``dsops.yaml``."""

    project: str
    store: str | None = None
    objects: str | None = None
    datasets: dict[str, DatasetConfig] = Field(default_factory=dict)
    stages: dict[str, StageConfig] = Field(default_factory=dict)
    models: dict[str, ModelConfig] = Field(default_factory=dict)
    gates: dict[str, GateConfig] = Field(default_factory=dict)
    environments: dict[str, EnvironmentConfig] = Field(default_factory=dict)
    monitors: dict[str, MonitorConfig] = Field(default_factory=dict)
    webhooks: dict[str, WebhookConfig] = Field(default_factory=dict)
    predictions: PredictionsConfig = Field(default_factory=PredictionsConfig)

    @field_validator("project")
    @classmethod
    def _valid_project(cls, value: str) -> str:
        if not NAME_RE.match(value):
            raise ValueError("use letters, digits, '.', '_' or '-'")
        return value

    @field_validator("datasets")
    @classmethod
    def _valid_names(cls, value: dict[str, DatasetConfig]) -> dict[str, DatasetConfig]:
        for name in value:
            if not NAME_RE.match(name):
                raise ValueError(f"invalid dataset name {name!r}: use letters, digits, '.', '_', '-'")
        return value

    @field_validator("stages")
    @classmethod
    def _valid_stage_names(cls, value: dict[str, StageConfig]) -> dict[str, StageConfig]:
        for name in value:
            if not NAME_RE.match(name):
                raise ValueError(f"invalid stage name {name!r}: use letters, digits, '.', '_', '-'")
        return value
