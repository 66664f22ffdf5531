"""``dsops.yaml``: a valid file loads; every malformed one names file, line and key."""

from __future__ import annotations

import re
import textwrap
from datetime import date
from pathlib import Path

import pytest

from dsops.config import ProjectConfig, load_config
from dsops.config.template import render_template
from dsops.core.errors import ConfigError

FULL_EXAMPLE = """\
project: credit
store: postgresql://dsops@db.example.com/dsops
objects: s3://bucket/dsops
datasets:
  credit:
    path: data/credit.csv
    description: loan applications
    owner: risk-team@example.com
    license: internal
    consent: contract
    retention_until: 2030-12-31
    sensitive_columns: [email]
    expectations:
      - row_count: {min: 100, max: 1000000}
      - column: age
        type: int
        between: [18, 100]
      - column: income
        not_null: true
        min: 0
      - column: id
        unique: true
      - column: status
        in: [approved, rejected]
      - column: email
        regex: '^[^@]+@[^@]+$'
  census:
    path: data/census/
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "dsops.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def config_error(path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.exit_code == 2
    assert str(info.value).startswith(f"{path}:{info.value.line}: ")
    return info.value


def test_full_example_loads(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, FULL_EXAMPLE))
    assert config.project == "credit"
    assert config.store == "postgresql://dsops@db.example.com/dsops"
    credit = config.datasets["credit"]
    assert credit.retention_until == date(2030, 12, 31)
    assert credit.sensitive_columns == ["email"]
    checks = credit.expectations
    assert checks[0].row_count is not None and checks[0].row_count.min == 100
    assert checks[1].between == (18.0, 100.0) and checks[1].type == "int"
    assert checks[4].allowed == ["approved", "rejected"]
    assert checks[5].regex == "^[^@]+@[^@]+$"
    assert config.datasets["census"].expectations == []


def test_init_template_loads(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, render_template("demo")))
    assert config.project == "demo" and config.datasets == {}


def test_template_examples_are_valid_once_uncommented(tmp_path: Path) -> None:
    """Every commented example of the template loads once uncommented: "# SECTION:" and
    the lines under it ("#" and two spaces or more) are YAML, "# " and text is prose.
    Sections are commented out whole: appending one to the file as written is no
    duplicate key."""
    sections = "|".join(ProjectConfig.model_fields)
    lines = []
    for line in render_template("demo").splitlines():
        if line == "datasets: {}":
            line = "datasets:"
        elif re.match(rf"# ({sections}):|#  +([\w.-]+:|- )", line):
            line = line[2:]
        lines.append(line)
    config = load_config(write(tmp_path, "\n".join(lines) + "\n"))
    assert len(config.datasets["credit"].expectations) == 6
    assert list(config.stages) == ["prepare", "train"]
    assert config.stages["train"].registers == "credit-risk"
    assert config.models["credit-risk"].owner == "risk-team@example.com"
    assert len(config.gates["credit-risk"].checks) == 4
    assert config.environments["prod"].deploy is not None
    assert config.environments["prod"].deploy.strategy == "canary"
    assert [rule.do for rule in config.monitors["credit-risk-prod"].alerts] == [
        ["incident", "rollback"], ["incident", "webhook:oncall"]]
    assert config.webhooks["oncall"].url_env == "ONCALL_WEBHOOK_URL"
    assert config.predictions.retention == "90d"


def test_yaml_syntax_error_reports_the_line(tmp_path: Path) -> None:
    error = config_error(write(tmp_path, """\
        project: demo
        datasets:
          credit:
            path: data/credit.csv
             owner: someone
        """))
    assert error.line == 5
    assert "invalid YAML" in str(error)


def test_unclosed_list_reports_a_line(tmp_path: Path) -> None:
    error = config_error(write(tmp_path, """\
        project: demo
        datasets:
          credit:
            sensitive_columns: [email
            owner: x
        """))
    assert error.line in (4, 5)
    assert "invalid YAML" in str(error)


def test_unknown_key_names_file_line_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        project: demo
        datasets:
          credit:
            path: data/credit.csv
            ownr: risk-team
        """)
    error = config_error(path)
    assert str(error) == f"{path}:5: datasets.credit.ownr: unknown key — did you mean 'owner'?"


def test_unknown_top_level_key(tmp_path: Path) -> None:
    path = write(tmp_path, "project: demo\n\nstagez: {}\n")
    assert str(config_error(path)) == f"{path}:3: stagez: unknown key — did you mean 'stages'?"


def test_wrong_type_names_the_item(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        project: demo
        datasets:
          credit:
            expectations:
              - column: age
                not_null: true
              - column: age
                between: [a, b]
        """)
    error = config_error(path)
    assert (error.line, error.key) == (8, "datasets.credit.expectations[1].between[0]")
    assert "valid number" in str(error) and "'a'" in str(error)
    assert "(and 1 more problem)" in str(error)


def test_reversed_bounds(tmp_path: Path) -> None:
    error = config_error(write(tmp_path, """\
        project: demo
        datasets:
          credit:
            expectations:
              - column: age
                between: [100, 18]
        """))
    assert (error.line, error.key) == (5, "datasets.credit.expectations[0]")
    assert "lower bound 100.0 > upper 18.0" in str(error)


def test_bad_regex(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        project: demo
        datasets:
          credit:
            expectations:
              - column: email
                regex: '(['
        """)
    error = config_error(path)
    assert str(error).startswith(
        f"{path}:6: datasets.credit.expectations[0].regex: not a valid regular expression"
    )


def test_expectation_that_checks_nothing(tmp_path: Path) -> None:
    error = config_error(write(tmp_path, """\
        project: demo
        datasets:
          credit:
            expectations:
              - column: age
        """))
    assert (error.line, error.key) == (5, "datasets.credit.expectations[0]")
    assert "checks nothing" in str(error)


@pytest.mark.parametrize("text", ["", "# only a comment\n"], ids=["empty", "comment-only"])
def test_empty_file_needs_a_project(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    assert str(config_error(path)) == f"{path}:1: project: required key is missing"


@pytest.mark.parametrize("text", ["- project\n- demo\n", "demo\n"], ids=["list", "scalar"])
def test_top_level_must_be_a_mapping(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    error = config_error(path)
    assert error.line == 1
    assert "expected a mapping of keys (project:, datasets:, …) at the top" in str(error)


def test_datasets_must_be_a_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, "project: demo\ndatasets: [credit]\n")
    assert str(config_error(path)).startswith(
        f"{path}:2: datasets: Input should be a valid dictionary"
    )


def test_invalid_project_and_dataset_names(tmp_path: Path) -> None:
    error = config_error(write(tmp_path, "project: my project\n"))
    assert (error.line, error.key) == (1, "project")
    error = config_error(write(tmp_path, "project: demo\ndatasets:\n  bad name: {}\n"))
    assert (error.line, error.key) == (2, "datasets")
    assert "invalid dataset name 'bad name'" in str(error)


def test_duplicate_key(tmp_path: Path) -> None:
    error = config_error(write(tmp_path, "project: demo\nproject: other\n"))
    assert error.line == 2 and "duplicate key" in str(error)


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing" / "dsops.yaml")
