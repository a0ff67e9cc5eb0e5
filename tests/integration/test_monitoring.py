"""The services' metrics against the real broker and database: scraped and parsed as Prometheus
would, with values that match what was sent; and lag that grows while the gate is paused and
drains once it resumes."""

from __future__ import annotations

import os
import re
import signal
import socket
import uuid
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest
from kafka.errors import KafkaError

from orderbook_kit.database.client import connect
from orderbook_kit.kafka.admin import delete_pipeline
from orderbook_kit.kafka.offsets import end_offsets
from orderbook_kit.kafka.producer import TickProducer
from orderbook_kit.lab.broker import server as process
from orderbook_kit.market.faults import FaultInjector, RawMessage
from orderbook_kit.market.simulator import OrderbookSimulator
from orderbook_kit.monitoring.scrape import scrape
from orderbook_kit.quality.metrics import GateMetrics
from orderbook_kit.runtime.launcher import start_service
from orderbook_kit.settings.environment import Settings, load_settings
from orderbook_kit.store.tables import drop_schema
from tests.conftest import wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

SYMBOLS = ["TTF-GAS", "NBP-GAS", "EUA-CO2"]
CONFIG = Path(str(resources.files("orderbook_kit.monitoring") / "config"))
DASHBOARD = CONFIG / "grafana" / "dashboards" / "pipeline.json"


@pytest.fixture
def settings() -> Iterator[Settings]:
    settings = load_settings().isolated(f"metrics-{uuid.uuid4().hex[:8]}")
    yield settings
    delete_pipeline(settings)
    with connect(settings.store.database_url, timeout_s=10) as conn:
        drop_schema(conn, settings.store.schema)


def produce(settings: Settings, messages: list[RawMessage]) -> None:
    with TickProducer(settings) as producer:
        for message in messages:
            producer.send_raw(message.key, message.value)
        producer.flush()


def test_gate_and_store_export_what_they_did(settings: Settings) -> None:
    injector = FaultInjector.uniform(0.03, seed=11)
    messages = list(injector.messages(OrderbookSimulator(SYMBOLS).ticks(600)))
    produce(settings, messages)
    n = len(messages)
    gate = start_service("quality", settings, "-q", "--metrics-port", "0", "--idle", "60")
    store = start_service("store", settings, "-q", "--metrics-port", "0", "--idle", "60")
    try:
        gate_url, store_url = gate.metrics_url(), store.metrics_url()

        def gate_done() -> bool:
            return scrape(gate_url).value("orderbook_gate_messages_total") == n

        wait_for(gate_done, 60, f"the gate's metrics to count {n} messages")
        routed = scrape(gate_url)
        assert routed.value("orderbook_gate_messages_total", route="clean") == injector.clean
        by_reason = routed.by_label("orderbook_gate_messages_total", "reason", route="dead_letter")
        assert {r: v for r, v in by_reason.items() if v} == injector.injected
        # Each clean tick was timed from its publish_time; fault kinds never are.
        assert routed.value("orderbook_publish_to_process_seconds_count") == injector.clean
        assert set(routed.by_label("orderbook_last_tick_age_seconds", "symbol")) == set(SYMBOLS)

        def drained(url: str) -> bool:
            lags = scrape(url).by_label("orderbook_consumer_lag_messages", "partition")
            return len(lags) == settings.topics.partitions and sum(lags.values()) == 0

        wait_for(lambda: drained(gate_url), 30, "the gate's lag to be 0 on every partition")

        def stored() -> bool:
            return scrape(store_url).value("orderbook_store_rows_written_total") == injector.clean

        wait_for(stored, 60, f"the store's metrics to count {injector.clean} rows")
        wait_for(lambda: drained(store_url), 30, "the store's lag to be 0 on every partition")
        rows = scrape(store_url)
        assert rows.value("orderbook_store_duplicate_ticks_total") == 0
        assert rows.value("orderbook_store_skipped_messages_total") == 0
        assert rows.value("orderbook_publish_to_process_seconds_count") == injector.clean
        assert rows.value("orderbook_consumer_lag_errors_total") == 0
    finally:
        for service in (gate, store):
            service.stop()
    assert "Traceback" not in gate.output() + store.output()


def test_lag_grows_while_the_gate_is_paused_and_drains_when_it_resumes(settings: Settings) -> None:
    simulator = OrderbookSimulator(SYMBOLS)
    produce(settings, list(FaultInjector({}).messages(simulator.ticks(30))))
    gate = start_service("quality", settings, "-q", "--metrics-port", "0", "--idle", "60")
    watcher = GateMetrics()  # the lag as any scraper sees it, from the broker
    watcher.watch_lag(settings, settings.gate.group, settings.topics.raw)
    assert watcher.lag is not None
    lag = watcher.lag

    def behind() -> int | None:
        """The group's lag now; None while the broker cannot say yet (a new group's
        coordinator may still be loading: a retriable error)."""
        try:
            return sum(lag.lags().values())
        except KafkaError as exc:
            assert exc.retriable, exc
            return None

    try:
        url = gate.metrics_url()
        wait_for(lambda: behind() == 0, 60, "the gate to catch up")
        os.kill(gate.pid, signal.SIGSTOP)  # paused (well inside its 10 s session timeout)
        try:
            produce(settings, list(FaultInjector({}).messages(simulator.ticks(40))))
            assert behind() == 40  # behind by exactly what came
        finally:
            os.kill(gate.pid, signal.SIGCONT)
        wait_for(lambda: behind() == 0, 30, "the lag to drain")
        assert scrape(url).value("orderbook_gate_messages_total", route="clean") == 70
    finally:
        watcher.close()
        gate.stop()


def test_ingest_exports_what_kafka_acknowledged(settings: Settings) -> None:
    ingest = start_service(
        "ingest", settings, "-q", "--metrics-port", "0", "--interval", "0.005", "--duration", "60"
    )
    try:
        url = ingest.metrics_url()
        wait_for(
            lambda: scrape(url).value("orderbook_ingest_messages_acknowledged_total") >= 200,
            30,
            "200 acknowledged ticks",
        )
        seen = scrape(url)
    finally:
        assert ingest.stop() == 0
    acknowledged = seen.value("orderbook_ingest_messages_acknowledged_total")
    assert acknowledged <= seen.value("orderbook_ingest_messages_sent_total")
    assert seen.value("orderbook_ingest_messages_failed_total") == 0
    # Whatever the endpoint said was acknowledged is in the topic (and more came after).
    assert sum(end_offsets(settings.topics.raw, settings).values()) >= acknowledged
    ages = seen.by_label("orderbook_last_tick_age_seconds", "symbol")
    assert set(ages) == {settings.simulator.symbol} and 0 <= ages[settings.simulator.symbol] < 5


def other_local_address() -> str | None:
    """An address of this machine that is not loopback, if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 1))  # no packet is sent: this only picks a route
            address = probe.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


def test_the_broker_exports_its_jmx_metrics_on_loopback_only(
    tmp_path: Path, free_address: str
) -> None:
    state = tmp_path / "broker"
    started = process.start(free_address, state, metrics_port=0)
    try:
        assert started.metrics_url is not None
        assert started.metrics_url.startswith("http://127.0.0.1:")
        settings = load_settings({"KAFKA_BOOTSTRAP_SERVERS": free_address})
        topic = "jmx.check"
        with TickProducer(settings, topic=topic) as producer:
            producer.send_all(OrderbookSimulator(SYMBOLS).ticks(50))
            producer.flush()

        def counted() -> bool:
            seen = scrape(started.metrics_url)
            return seen.value("kafka_server_brokertopicmetrics_messagesin_total", topic=topic) == 50

        wait_for(counted, 30, "the broker's MessagesInPerSec count for the topic")
        seen = scrape(started.metrics_url)
        assert seen.value("kafka_server_brokertopicmetrics_messagesin_total") >= 50  # all topics
        assert seen.value("kafka_server_replicamanager_underreplicatedpartitions") == 0
        assert seen.value("kafka_controller_kafkacontroller_activecontrollercount") == 1
        assert any(name.startswith("jvm_memory") for name in seen.names)
        charted = set(re.findall(r"\bkafka_[a-z0-9_]+", DASHBOARD.read_text()))
        assert charted and charted <= seen.names  # every broker series the dashboard charts
        assert process.status(state).metrics_url == started.metrics_url  # type: ignore[union-attr]
        elsewhere = other_local_address()
        if elsewhere is not None:  # the same port on another interface of this machine: closed
            port = int(started.metrics_url.split(":")[2].split("/")[0])
            with pytest.raises(OSError), socket.create_connection((elsewhere, port), timeout=2):
                pass
    finally:
        process.stop(state)
