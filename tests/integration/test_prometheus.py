"""A real Prometheus, run by the kit with the project's configuration, scraping a real quality
gate: the series it stores match what the gate did, every rule evaluates without error, and an
alert fires when the gate dies."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest

from orderbook_kit.kafka.admin import delete_pipeline
from orderbook_kit.kafka.producer import TickProducer
from orderbook_kit.lab.ports import free_port
from orderbook_kit.lab.prometheus import server as prometheus
from orderbook_kit.market.faults import FaultInjector
from orderbook_kit.market.simulator import OrderbookSimulator
from orderbook_kit.runtime.launcher import start_service
from orderbook_kit.settings.environment import load_settings
from tests.conftest import wait_for

pytestmark = [
    pytest.mark.kafka,
    pytest.mark.skipif(
        shutil.which("prometheus") is None,
        reason="Prometheus is not installed (Debian/Ubuntu: apt-get install prometheus; CI "
        "installs it)",
    ),
]


def value_of(url: str, promql: str) -> float | None:
    """The single value of an instant query, or None while it has no result."""
    result = prometheus.query(url, promql)
    return float(result[0]["value"][1]) if len(result) == 1 else None


def test_a_real_prometheus_scrapes_the_gate_and_alerts_when_it_dies(tmp_path: Path) -> None:
    settings = load_settings().isolated(f"prom-{uuid.uuid4().hex[:8]}")
    injector = FaultInjector.uniform(0.03, seed=3)
    messages = list(injector.messages(OrderbookSimulator(["TTF-GAS", "NBP-GAS"]).ticks(300)))
    with TickProducer(settings) as producer:
        for message in messages:
            producer.send_raw(message.key, message.value)
        producer.flush()
    directory = tmp_path / "prometheus"
    url = prometheus.start(f"http://127.0.0.1:{free_port('127.0.0.1')}", directory)
    gate = start_service("quality", settings, "-q", "--metrics-port", "0", "--idle", "120")
    try:
        prometheus.register_target(directory, "quality", gate.metrics_url())
        total = 'sum(orderbook_gate_messages_total{service="quality"})'
        wait_for(lambda: value_of(url, total) == len(messages), 60, "Prometheus to see it all")
        by_reason = {
            r["metric"]["reason"]: int(float(r["value"][1]))
            for r in prometheus.query(url, 'orderbook_gate_messages_total{route="dead_letter"} > 0')
        }
        assert by_reason == injector.injected
        clean = 'orderbook_gate_messages_total{route="clean",service="quality"}'
        assert value_of(url, clean) == injector.clean
        assert value_of(url, 'up{job="orderbook",service="quality"}') == 1
        lag = 'sum(orderbook_consumer_lag_messages{service="quality"})'
        wait_for(lambda: value_of(url, lag) == 0, 30, "the gate's lag to reach 0 in Prometheus")

        rules = prometheus.rules(url)
        assert {r["name"] for r in rules} == {
            "OrderbookConsumerLagHigh",
            "OrderbookDeadLetterSpike",
            "OrderbookNoTicks",
            "OrderbookServiceDown",
        }
        assert all(r["health"] == "ok" for r in rules), rules  # each evaluated on real data

        assert "OrderbookServiceDown" not in prometheus.firing(url)
        gate.kill()  # as a crash would
        down = "OrderbookServiceDown"
        wait_for(lambda: down in prometheus.firing(url), 40, "the service-down alert")
    finally:
        gate.kill()
        prometheus.stop(directory)
        delete_pipeline(settings)
    assert prometheus.status(directory) is None
