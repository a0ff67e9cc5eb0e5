"""The shipped Prometheus configuration and alert rules: valid for promtool, each alert firing
when it should (promtool's rule tests), and every metric they use one the services export."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from importlib import resources
from pathlib import Path

import pytest
import yaml
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from orderbook_kit.candles.metrics import CandlesMetrics
from orderbook_kit.errors import OrderbookKitError
from orderbook_kit.ingest.metrics import IngestMetrics
from orderbook_kit.lab.prometheus import server as prometheus
from orderbook_kit.monitoring.lag import GroupLagCollector
from orderbook_kit.quality.metrics import GateMetrics
from orderbook_kit.settings.environment import load_settings
from orderbook_kit.store.metrics import StoreMetrics

CONFIG = Path(str(resources.files("orderbook_kit.monitoring") / "config"))
RULE_TESTS = Path(__file__).parents[1] / "prometheus" / "rules_test.yml"
METRIC_NAME = re.compile(r"\b(orderbook_[a-z0-9_]+)\b")

needs_promtool = pytest.mark.skipif(
    shutil.which("promtool") is None,
    reason="promtool is not installed (Debian/Ubuntu: apt-get install prometheus; CI installs it)",
)


def promtool(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["promtool", *arguments], capture_output=True, text=True, timeout=120, check=False
    )


@needs_promtool
def test_the_configuration_and_rules_are_valid_for_promtool(tmp_path: Path) -> None:
    # As the kit writes them (with a targets folder, so file discovery has something to read).
    prometheus.PrometheusServer(tmp_path).prepare("127.0.0.1", 19090)
    checked = promtool("check", "config", str(tmp_path / "prometheus.yml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 1 rule files found" in checked.stdout + checked.stderr
    rules = promtool("check", "rules", str(CONFIG / "rules.yml"))
    assert rules.returncode == 0, rules.stdout + rules.stderr


@needs_promtool
def test_each_alert_fires_when_it_should_and_only_then() -> None:
    tested = promtool("test", "rules", str(RULE_TESTS))
    assert tested.returncode == 0, tested.stdout + tested.stderr
    tested_alerts = set(re.findall(r"alertname: (\w+)", RULE_TESTS.read_text()))
    assert tested_alerts == set(alert_names())  # no alert without a test


def alert_names() -> list[str]:
    groups = yaml.safe_load((CONFIG / "rules.yml").read_text())["groups"]
    return [rule["alert"] for group in groups for rule in group["rules"] if "alert" in rule]


def exported_names(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """Every series name the services expose (lag included, without asking a broker)."""
    monkeypatch.setattr(GroupLagCollector, "_lags", lambda self: {0: 5})
    gate, store = GateMetrics(), StoreMetrics()
    settings = load_settings()
    gate.watch_lag(settings, "g", "t")
    store.watch_lag(settings, "g", "t")
    names = set()
    for metrics in (IngestMetrics(), gate, store, CandlesMetrics()):
        text = generate_latest(metrics.registry).decode()
        for family in text_string_to_metric_families(text):
            names.update(sample.name for sample in family.samples)
            if family.type == "gauge":  # exported before its first sample too (e.g. symbols)
                names.add(family.name)
    gate.close()
    store.close()
    return names


def test_every_metric_an_alert_uses_is_one_the_services_export(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    exported = exported_names(monkeypatch)
    rules = yaml.safe_load((CONFIG / "rules.yml").read_text())["groups"]
    used = {
        name
        for group in rules
        for rule in group["rules"]
        for name in METRIC_NAME.findall(rule["expr"])
    }
    assert used, "no orderbook_ metric found in the rules: the pattern is wrong"
    assert used <= exported, f"used by an alert but exported by no service: {used - exported}"


def test_the_kit_writes_the_shipped_config_with_its_own_address(tmp_path: Path) -> None:
    prometheus.PrometheusServer(tmp_path).prepare("127.0.0.1", 19999)
    written = yaml.safe_load((tmp_path / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in written["scrape_configs"]}
    assert jobs["prometheus"]["static_configs"][0]["targets"] == ["127.0.0.1:19999"]
    assert jobs["orderbook"]["file_sd_configs"][0]["files"] == ["targets/*.json"]
    assert (tmp_path / "rules.yml").read_text() == (CONFIG / "rules.yml").read_text()


def test_a_target_file_names_the_service_and_its_loopback_port(tmp_path: Path) -> None:
    written = prometheus.register_target(tmp_path, "quality", "http://127.0.0.1:40123/metrics")
    assert json.loads(written.read_text()) == [
        {"targets": ["127.0.0.1:40123"], "labels": {"service": "quality"}}
    ]
    assert not list(written.parent.glob("*.tmp"))  # written whole, then renamed
    prometheus.unregister_target(written)
    assert not written.exists()
    for bad in ("http://10.0.0.5:9464/metrics", "https://127.0.0.1:1/metrics", "127.0.0.1:1"):
        with pytest.raises(OrderbookKitError, match="not a service's metrics URL"):
            prometheus.register_target(tmp_path, "quality", bad)


@pytest.mark.parametrize("url", ["http://0.0.0.0:9090", "http://prometheus.example:9090"])
def test_the_kit_runs_prometheus_on_loopback_only(url: str, tmp_path: Path) -> None:
    with pytest.raises(OrderbookKitError, match=r"on this machine only, at http://127\.0\.0\.1"):
        prometheus.start(url, tmp_path)


def dashboard_queries() -> list[str]:
    dashboard = json.loads((CONFIG / "grafana" / "dashboards" / "pipeline.json").read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def broker_metric_names() -> set[str]:
    """The names the JMX exporter's rules give the broker's metrics ($1: each alternative)."""
    names = set()
    for rule in yaml.safe_load((CONFIG / "kafka-jmx.yml").read_text())["rules"]:
        alternatives = re.search(r"\(([A-Za-z|]+)\)", rule["pattern"])
        assert alternatives is not None
        for alternative in alternatives.group(1).split("|"):
            names.add(rule["name"].replace("$1", alternative.lower()))
    return names


def test_every_metric_the_dashboard_charts_is_one_the_services_or_the_broker_export(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    exported = exported_names(monkeypatch) | broker_metric_names()
    queries = dashboard_queries()
    used = {
        name for expr in queries for name in re.findall(r"\b((?:orderbook|kafka)_[a-z0-9_]+)", expr)
    }
    assert len(used) >= 8, used  # throughput, lag, dead letters, latency, freshness, broker
    assert used <= exported, f"charted but exported by nothing: {used - exported}"


def test_the_dashboard_has_the_panels_the_lesson_names() -> None:
    dashboard = json.loads((CONFIG / "grafana" / "dashboards" / "pipeline.json").read_text())
    titles = {panel["title"] for panel in dashboard["panels"]}
    assert {"Throughput", "Consumer lag", "Dead letters by reason"} <= titles
    assert any("latency" in title.lower() for title in titles)
    assert any("freshness" in title.lower() for title in titles)
    datasource_uids = {
        target["datasource"]["uid"] for panel in dashboard["panels"] for target in panel["targets"]
    }
    assert datasource_uids == {"prometheus"}  # the provisioned data source's uid
