"""CI reports of gate results (Markdown, JUnit XML, JSON), the `dsops ci report` command and
the example CI configurations that run it."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from dsops.core.errors import UsageError
from dsops.gates.report import junit_xml, render_report
from dsops.gates.service import GateService
from tests.registry.test_card import MODEL, Scenario, build_scenario

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "ci"


@pytest.fixture
def scenario(make_workspace, store_url: str, manual_clock, tmp_path: Path) -> Scenario:
    return build_scenario(make_workspace(store_url=store_url, clock=manual_clock), tmp_path)


def test_markdown_report_of_failing_candidate(scenario: Scenario) -> None:
    text = render_report(scenario.ws, scenario.candidate_gate, format="markdown")
    lines = text.splitlines()
    assert lines[0] == f"## ❌ Gate failed: `{MODEL}@2` vs `{MODEL}@1`"
    assert "**1 of 3 checks failed** · evaluated on `data:credit-eval@1` (300 rows)" in text
    assert re.search(r"\| `auc >= 0\.7` \| 0\.\d+ \| >= 0\.7 \| ✅ pass \|", text)
    assert re.search(r"\| `demographic_parity_difference\(by=sex\) <= 0\.15` \| 0\.\d+ \| <= 0\.15 \| "
                     r"❌ \*\*fail\*\* \|", text)
    # measured on the evaluation data: v2 uses sex_code and scores a higher AUC than v1
    auc = next(line for line in lines if line.startswith("| auc |"))
    cand, champ = scenario.candidate_gate.inputs["candidate_metrics"]["auc"], \
        scenario.candidate_gate.inputs["champion_metrics"]["auc"]
    assert cand > champ and f"▲ {cand - champ:+.4g} (better)" in auc
    assert "(measured on `data:credit-eval@1`)" in text
    # logged metrics of the two training runs, with their deltas
    assert "| train_rows | 400 | 300 | ▲ +100 |" in text
    # the fairness table per group, and the data changes since the champion's data
    assert "### Fairness by `sex`" in text
    assert re.search(r"\| F \| \d+ \| 0\.\d+ \|", text) and re.search(r"\| M \| \d+ \| 0\.\d+ \|", text)
    assert "- `data:credit@1` → `data:credit@2`: +100 rows (300 → 400); columns added: `sex_code`" in text


def test_markdown_report_without_champion(scenario: Scenario) -> None:
    text = render_report(scenario.ws, scenario.champion_gate, format="markdown")
    assert text.startswith(f"## ✅ Gate passed: `{MODEL}@1`\n")
    assert "**All 3 checks passed** (1 skipped: no champion yet)" in text
    assert "no champion to compare with" in text
    assert "| `auc >= champion.auc - 0.05` | — | — | ➖ skipped |" in text
    assert "▲" not in text and "▼" not in text
    assert "Data changes" not in text


def test_logged_metric_deltas_and_flags(scenario: Scenario) -> None:
    """Without evaluation data the deltas come from the versions' logged metrics; a
    regression shows ▼, and a version trained on revoked data is flagged."""
    from dsops.data.service import DatasetService

    ws = scenario.ws
    DatasetService(ws).revoke("credit@2", reason="licence ended")
    report = GateService(ws).evaluate(f"{MODEL}@1", checks=["train_rows >= 350"],
                                      against=f"{MODEL}@2")
    text = render_report(ws, report, format="markdown")
    assert f"## ❌ Gate failed: `{MODEL}@1` vs `{MODEL}@2`" in text
    assert "### Metrics vs champion (logged by the training runs)" in text
    assert "| train_rows | 300 | 400 | ▼ -100 |" in text
    assert "- `data:credit@2` → `data:credit@1`: -100 rows (400 → 300); columns removed: `sex_code`" in text
    flagged = GateService(ws).evaluate(f"{MODEL}@2", checks=["train_rows >= 350"], against=None)
    assert "> ⚠️ **Flagged: trained on revoked credit@2**" in render_report(ws, flagged, format="markdown")


def test_junit_has_one_testcase_per_check(scenario: Scenario) -> None:
    report = scenario.candidate_gate
    root = ET.fromstring(render_report(scenario.ws, report, format="junit"))
    suites = root.findall("testsuite")
    assert root.tag == "testsuites" and len(suites) == 1
    suite = suites[0]
    assert suite.get("name") == f"dsops gate {MODEL}@2"
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("3", "1", "0")
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == [c.check for c in report.checks]
    failed = {c.get("name"): c.find("failure") for c in cases}
    assert [name for name, f in failed.items() if f is not None] == \
        ["demographic_parity_difference(by=sex) <= 0.15"]
    message = failed["demographic_parity_difference(by=sex) <= 0.15"].get("message")
    assert re.fullmatch(r"demographic_parity_difference\(by=sex\) <= 0\.15: value 0\.\d+, needs <= 0\.15",
                        message)
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["against"] == f"{MODEL}@1" and props["eval_data"] == "data:credit-eval@1"
    # the champion comparison without a champion: skipped, not failed
    first = ET.fromstring(junit_xml(scenario.champion_gate)).find("testsuite")
    assert first.get("skipped") == "1" and first.get("failures") == "0"
    assert len(first.findall("testcase/skipped")) == 1


def test_json_report(scenario: Scenario) -> None:
    data = json.loads(render_report(scenario.ws, scenario.candidate_gate, format="json"))
    assert data["ref"] == f"{MODEL}@2" and data["passed"] is False
    assert data["failed"] == ["demographic_parity_difference(by=sex) <= 0.15"]
    assert len(data["checks"]) == 3 and data["champion"] == f"{MODEL}@1"
    auc = next(d for d in data["deltas"] if d["metric"] == "auc")
    assert auc["arrow"] == "▲" and auc["better"] is True
    assert auc["delta"] == pytest.approx(auc["candidate"] - auc["champion"])
    assert data["data_changes"][0]["rows_delta"] == 100
    assert data["data_changes"][0]["added_columns"] == ["sex_code"]


def test_unknown_format(scenario: Scenario) -> None:
    with pytest.raises(UsageError, match="unknown report format 'html'"):
        render_report(scenario.ws, scenario.candidate_gate, format="html")


def test_cli_ci_report(scenario: Scenario, run_cli, tmp_path: Path) -> None:
    out = tmp_path / "gate.xml"
    result = run_cli("ci", "report", f"{MODEL}@2", "--format", "junit", "-o", str(out),
                     cwd=scenario.ws.root, env={"DSOPS_STORE_URL": scenario.ws.store_url})
    assert result.returncode == 1, result.stderr  # the exit code follows the gate
    assert "FAILED" in result.stderr
    assert ET.parse(out).getroot().find("testsuite").get("failures") == "1"


def test_example_ci_configs() -> None:
    """Every example parses, runs the pipeline, then writes the CI report."""
    for name in ("github-actions.yml", "gitlab-ci.yml"):
        text = (EXAMPLES / name).read_text()
        assert isinstance(yaml.safe_load(text), dict), name
        assert "dsops run" in text and "dsops ci report" in text, name
        assert text.index("dsops run") < text.index("dsops ci report"), name
    workflow = yaml.safe_load((EXAMPLES / "github-actions.yml").read_text())
    steps = [s for job in workflow["jobs"].values() for s in job["steps"]]
    assert any(s.get("uses", "").startswith("actions/setup-python") for s in steps)
    assert any("GITHUB_STEP_SUMMARY" in s.get("run", "") for s in steps)
    gitlab = yaml.safe_load((EXAMPLES / "gitlab-ci.yml").read_text())
    assert any(job.get("artifacts", {}).get("reports", {}).get("junit")
               for job in gitlab.values() if isinstance(job, dict))
    jenkins = (EXAMPLES / "Jenkinsfile").read_text()
    assert "dsops run" in jenkins and "dsops ci report" in jenkins and "junit " in jenkins
    assert (EXAMPLES / "README.md").is_file()
