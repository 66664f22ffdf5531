"""Read ``dsops.yaml`` with line numbers (ruamel.yaml) and validate it (pydantic)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from dsops.config.models import ProjectConfig
from dsops.core.errors import ConfigError


def load_config(path: Path) -> ProjectConfig:
    """Parse and validate ``path``; any problem is a ConfigError naming file:line: key."""
    from pydantic import ValidationError
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", file=str(path)) from None
    try:
        data = YAML(typ="rt").load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(f"invalid YAML: {problem}", file=str(path), line=line) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError("expected a mapping of keys (project:, datasets:, …) at the top",
                          file=str(path), line=1)
    try:
        return ProjectConfig.model_validate(_plain(data))
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = tuple(error["loc"])
        key = _dotted(loc)
        message = _describe(error)
        more = len(exc.errors()) - 1
        if more:
            message += f" (and {more} more problem{'s' if more > 1 else ''})"
        # A key missing at the top has no line of its own: point at the start of the file.
        line = _line_of(data, loc) or 1
        raise ConfigError(message, file=str(path), line=line, key=key) from None


def _plain(node: Any) -> Any:
    """ruamel's commented containers → plain dicts and lists (pydantic wants those)."""
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node


def _dotted(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _describe(error: dict[str, Any]) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        import difflib

        from dsops.config import models

        known = {alias or name for model in (models.ProjectConfig, models.DatasetConfig,
                                              models.Expectation, models.RowCount,
                                              models.StageConfig, models.ModelConfig,
                                              models.GateConfig, models.EnvironmentConfig,
                                              models.DeploySpec, models.AnalysisConfig,
                                              models.MonitorConfig, models.AlertRule,
                                              models.DriftConfig, models.WebhookConfig)
                 for name, f in model.model_fields.items() for alias in (f.alias,)}
        close = difflib.get_close_matches(str(error["loc"][-1]), sorted(known), n=1)
        return "unknown key" + (f" — did you mean {close[0]!r}?" if close else "")
    if kind == "missing":
        return "required key is missing"
    message = str(error["msg"]).removeprefix("Value error, ")
    if "input" in error and kind not in ("value_error",) and not isinstance(error["input"], dict):
        message += f" (got {error['input']!r})"
    return message


def _line_of(data: Any, loc: tuple[Any, ...]) -> int | None:
    """The 1-based line of the deepest key of ``loc`` that exists in the parsed YAML."""
    line = None
    node = data
    for part in loc:
        lc = getattr(node, "lc", None)
        if isinstance(node, dict) and part in node:
            if lc is not None:
                with contextlib.suppress(KeyError, TypeError):
                    line = lc.key(part)[0] + 1
            node = node[part]
        elif isinstance(node, list) and isinstance(part, str):
            continue  # a short form (``gates: m: [...]`` for ``checks:``): no key of its own
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            if lc is not None:
                with contextlib.suppress(KeyError, TypeError, IndexError):
                    line = lc.item(part)[0] + 1
            node = node[part]
        else:
            break
    return line
