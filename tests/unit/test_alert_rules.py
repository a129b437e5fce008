"""The alert rules in docker/monitoring: promtool accepts them and their unit tests pass,
and every secinf series they name is one the code or the exporter's queries define."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import REGISTRY

import workers.metrics  # noqa: F401  (registers the series)

MONITORING = Path(__file__).resolve().parents[2] / "docker" / "monitoring"
ALERTS = MONITORING / "alerts.yml"


def _promtool() -> str:
    tool = shutil.which("promtool")
    if tool is None:
        pytest.skip("promtool is absent: it comes with Debian's prometheus package "
                    "(scripts/install-system.sh installs it; apt-get install prometheus)")
    return tool


def test_promtool_checks_the_rules() -> None:
    done = subprocess.run([_promtool(), "check", "rules", str(ALERTS)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_unit_tests_of_the_rules_pass() -> None:
    done = subprocess.run([_promtool(), "test", "rules", "alerts_test.yml"], cwd=MONITORING,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def _known_series() -> set[str]:
    names: set[str] = set()
    for metric in REGISTRY.collect():
        if metric.name.startswith("secinf_"):
            names.update(s.name for s in metric.samples)
            names.add(f"{metric.name}_total" if metric.type == "counter" else metric.name)
    queries = yaml.safe_load((MONITORING / "postgres_exporter_queries.yaml").read_text())
    for namespace, spec in queries.items():
        for column in spec["metrics"]:
            (name, meta), = column.items()
            if meta["usage"] != "LABEL":
                names.add(f"{namespace}_{name}")
    return names


def test_every_alert_names_series_that_exist_and_is_tested() -> None:
    rules = [r for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]]
    known = _known_series()
    for rule in rules:
        used = set(re.findall(r"\bsecinf_[a-z_]+", rule["expr"]))
        assert used <= known, f"{rule['alert']} names unknown series {used - known}"
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert {"summary", "description"} <= set(rule["annotations"]), rule["alert"]
    tests = yaml.safe_load((MONITORING / "alerts_test.yml").read_text())["tests"]
    tested = {t["alertname"] for case in tests for t in case["alert_rule_test"]
              if t.get("exp_alerts")}
    assert tested == {r["alert"] for r in rules}, "every alert has a test where it fires"
