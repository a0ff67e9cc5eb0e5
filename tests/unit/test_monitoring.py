"""Service metrics without a broker: names and labels by Prometheus's conventions, bounded label
sets, counts that never double, the endpoint on 127.0.0.1 only, and clear errors."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from orderbook_kit.archive.metrics import ArchiveMetrics
from orderbook_kit.archive.sink import ArchiveStats
from orderbook_kit.book.metrics import BookMetrics
from orderbook_kit.book.service import BookStats
from orderbook_kit.errors import OrderbookKitError, SettingsError
from orderbook_kit.ingest.metrics import IngestMetrics
from orderbook_kit.lessons.watch import rates
from orderbook_kit.market.reasons import BookReason, Reason
from orderbook_kit.market.tick import Tick
from orderbook_kit.monitoring.lag import LAG_TIMEOUT_S
from orderbook_kit.monitoring.metrics import MAX_SYMBOLS, ServiceMetrics
from orderbook_kit.monitoring.scrape import scrape
from orderbook_kit.monitoring.server import serve_metrics
from orderbook_kit.quality.gate import GateStats
from orderbook_kit.quality.metrics import GateMetrics
from orderbook_kit.settings.environment import load_settings
from orderbook_kit.store.metrics import StoreMetrics
from orderbook_kit.store.sink import StoreStats

UNITS = ("_seconds", "_messages", "_total", "_info")


def tick(symbol: str = "TTF-GAS", seq: int = 0, age_s: float = 0.0) -> Tick:
    event_time = datetime.now(UTC) - timedelta(seconds=age_s)
    return Tick(
        symbol=symbol,
        seq=seq,
        bid=35.0,
        ask=35.01,
        bid_size=1.0,
        ask_size=1.0,
        event_time=event_time,
    ).published(event_time)


def exposed(metrics: ServiceMetrics) -> dict[str, list]:
    """Family name -> samples, as Prometheus would parse the scrape."""
    text = generate_latest(metrics.registry).decode()
    return {f.name: f.samples for f in text_string_to_metric_families(text)}


@pytest.mark.parametrize(
    "service", [IngestMetrics, GateMetrics, StoreMetrics, ArchiveMetrics, BookMetrics]
)
def test_names_follow_prometheus_conventions(service: type[ServiceMetrics]) -> None:
    text = generate_latest(service().registry).decode()
    for family in text_string_to_metric_families(text):
        assert family.name.startswith("orderbook_"), family.name
        if family.type == "counter":
            assert all(s.name.endswith(("_total", "_created")) for s in family.samples)
        elif family.type == "gauge" and not family.name.endswith("_created"):
            assert family.name.endswith(UNITS), f"{family.name}: no unit in the name"
        elif family.type == "histogram":
            assert family.name.endswith("_seconds")


def test_every_route_and_reason_exists_at_zero_before_the_first_message() -> None:
    samples = exposed(GateMetrics())["orderbook_gate_messages"]
    totals = {
        (s.labels["route"], s.labels["reason"]): s.value for s in samples if "_total" in s.name
    }
    assert totals == {("clean", ""): 0, **{("dead_letter", r.value): 0 for r in Reason}}


def test_gate_counts_add_what_is_new_and_never_count_twice() -> None:
    metrics, stats = GateMetrics(), GateStats()
    stats.clean, stats.rejected = 10, Counter({Reason.NOT_JSON: 2})
    metrics.count(stats)
    stats.clean, stats.rejected[Reason.NOT_JSON], stats.rejected[Reason.SEQ_GAP] = 15, 3, 1
    metrics.count(stats)
    metrics.count(stats)  # nothing new
    totals = {
        (s.labels["route"], s.labels["reason"]): s.value
        for s in exposed(metrics)["orderbook_gate_messages"]
        if s.name.endswith("_total")
    }
    assert totals[("clean", "")] == 15
    assert totals[("dead_letter", "not_json")] == 3
    assert totals[("dead_letter", "seq_gap")] == 1
    assert sum(totals.values()) == 19


def test_store_counts_rows_duplicates_and_skips_once() -> None:
    metrics, stats = StoreMetrics(), StoreStats()
    stats.stored, stats.duplicates, stats.skipped = 7, 1, Counter({Reason.INVALID_SCHEMA: 2})
    metrics.count(stats)
    stats.stored = 9
    metrics.count(stats)
    samples = exposed(metrics)
    assert samples["orderbook_store_rows_written"][0].value == 9
    assert samples["orderbook_store_duplicate_ticks"][0].value == 1
    skipped = {s.labels["reason"]: s.value for s in samples["orderbook_store_skipped_messages"]}
    assert skipped["invalid_schema"] == 2


def test_archive_counts_committed_ticks_files_and_skips_once() -> None:
    metrics, stats = ArchiveMetrics(), ArchiveStats()
    stats.archived, stats.files, stats.skipped = 700, 3, Counter({Reason.NOT_JSON: 1})
    metrics.count(stats)
    stats.archived, stats.files = 1400, 5
    metrics.count(stats)
    samples = exposed(metrics)
    assert samples["orderbook_archive_ticks"][0].value == 1400
    assert samples["orderbook_archive_files"][0].value == 5
    skipped = {s.labels["reason"]: s.value for s in samples["orderbook_archive_skipped_messages"]}
    assert skipped["not_json"] == 1 and sum(skipped.values()) == 1


def test_book_counts_updates_dead_letters_and_snapshots_once() -> None:
    metrics, stats = BookMetrics(), BookStats()
    stats.accepted, stats.exchange_snapshots, stats.snapshots = 40, 2, 3
    stats.rejected = Counter({BookReason.SEQ_GAP: 1, BookReason.OUT_OF_SYNC: 5})
    metrics.count(stats)
    stats.accepted, stats.snapshots = 50, 4
    metrics.count(stats)
    samples = exposed(metrics)
    routed = {
        (s.labels["route"], s.labels["reason"]): s.value
        for s in samples["orderbook_book_messages"]
        if s.name.endswith("_total")
    }
    assert routed[("update", "")] == 50 and routed[("exchange_snapshot", "")] == 2
    assert routed[("dead_letter", "seq_gap")] == 1 and routed[("dead_letter", "out_of_sync")] == 5
    assert routed[("dead_letter", "not_json")] == 0  # every reason there from the start
    assert samples["orderbook_book_snapshots"][0].value == 4


def test_latency_and_freshness_of_handled_ticks() -> None:
    metrics = GateMetrics()
    now = time.time()
    ticks = [tick("TTF-GAS", 0, age_s=0.3), tick("TTF-GAS", 1, age_s=0.2), tick("NBP-GAS", 0, 5)]
    metrics.observe_ticks(ticks, now=now)
    samples = exposed(metrics)
    latency = {s.name: s for s in samples["orderbook_publish_to_process_seconds"]}
    assert latency["orderbook_publish_to_process_seconds_count"].value == 3
    assert latency["orderbook_publish_to_process_seconds_sum"].value == pytest.approx(5.5, abs=0.05)
    ages = {s.labels["symbol"]: s.value for s in samples["orderbook_last_tick_age_seconds"]}
    assert ages["TTF-GAS"] == pytest.approx(0.2, abs=0.1)  # the newest one counts
    assert ages["NBP-GAS"] == pytest.approx(5, abs=0.1)
    time.sleep(0.3)  # no new tick: the age grows by itself, as an alert on a silent feed needs
    later = exposed(metrics)["orderbook_last_tick_age_seconds"]
    later_ages = {s.labels["symbol"]: s.value for s in later}
    assert later_ages["TTF-GAS"] >= ages["TTF-GAS"] + 0.25


def test_a_flood_of_symbols_cannot_grow_the_series_without_bound() -> None:
    # An attacker (or a bug) sending valid ticks of thousands of symbols: each would be a new
    # series in Prometheus. Past MAX_SYMBOLS they are only counted.
    metrics = GateMetrics()
    flood = [tick(f"SYM{i}", 0) for i in range(MAX_SYMBOLS + 50)] + [tick("SYM999", 1)]
    metrics.observe_ticks(flood)
    samples = exposed(metrics)
    assert len(samples["orderbook_last_tick_age_seconds"]) == MAX_SYMBOLS
    assert samples["orderbook_untracked_symbol_ticks"][0].value == 50 + 1


def test_the_endpoint_listens_on_loopback_only_and_port_0_picks_one() -> None:
    metrics = GateMetrics()
    metrics.count(GateStats(clean=4))
    server = serve_metrics(metrics.registry, 0, source="--metrics-port")
    try:
        assert server.port > 0 and server.url == f"http://127.0.0.1:{server.port}/metrics"
        assert server._server.server_address[0] == "127.0.0.1"
        assert scrape(server.url).value("orderbook_gate_messages_total", route="clean") == 4
    finally:
        server.close()
    with pytest.raises(OrderbookKitError, match=r"No metrics at .* --metrics-port"):
        scrape(server.url, timeout_s=2)


def test_a_port_in_use_names_where_the_port_came_from() -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        with pytest.raises(SettingsError) as error:
            serve_metrics(GateMetrics().registry, port, source="ORDERBOOK_METRICS_PORT")
    assert str(error.value).startswith(f"ORDERBOOK_METRICS_PORT: port {port} on 127.0.0.1 is")
    assert "0 for any free one" in str(error.value)


@pytest.mark.parametrize(
    "service", ["orderbook_kit.ingest", "orderbook_kit.quality", "orderbook_kit.book"]
)
def test_a_service_told_a_taken_port_says_so_in_one_line_before_connecting(service: str) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        run = subprocess.run(
            [sys.executable, "-m", service, "--metrics-port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
            # Nothing answers at port 1: had the service tried Kafka first, it would say so.
            env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"},
        )
    assert run.returncode == 2
    assert run.stderr.startswith(f"error: --metrics-port: port {port} on 127.0.0.1 is already")
    assert run.stderr.count("\n") == 1 and "Traceback" not in run.stderr


@pytest.mark.parametrize("value", ["70000", "-1", "abc", "9464.5"])
def test_a_bad_metrics_port_is_refused_by_the_variable_and_the_flag(value: str) -> None:
    with pytest.raises(SettingsError, match=r"^ORDERBOOK_METRICS_PORT: .* is not a port"):
        load_settings({"ORDERBOOK_METRICS_PORT": value})
    run = subprocess.run(
        [sys.executable, "-m", "orderbook_kit.store", f"--metrics-port={value}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2
    assert run.stderr.startswith("error: --metrics-port: ") and "is not a port" in run.stderr


def test_lag_without_a_broker_never_holds_a_scrape_up_and_is_counted() -> None:
    settings = load_settings({"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"})
    metrics = GateMetrics()
    metrics.watch_lag(settings, "a-group", "a-topic")
    try:
        started = time.monotonic()
        samples = exposed(metrics)
        assert time.monotonic() - started < 1  # the broker is asked in the background
        assert samples["orderbook_consumer_lag_messages"] == []  # no series rather than a guess
        assert samples["orderbook_gate_messages"]  # the rest of the scrape is there

        def errors() -> float:
            return exposed(metrics)["orderbook_consumer_lag_errors"][0].value

        deadline = time.monotonic() + 3 * LAG_TIMEOUT_S + 5
        while errors() < 1 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert errors() >= 1
        assert exposed(metrics)["orderbook_consumer_lag_messages"] == []
    finally:
        started = time.monotonic()
        metrics.close()
        assert time.monotonic() - started < 3 * LAG_TIMEOUT_S + 5  # the thread stops


def test_rates_are_increases_per_second_between_samples_never_negative() -> None:
    # What the notebook charts, as PromQL's rate() does: a restarted service's counter falls
    # back to 0, which is a reset, not a negative rate.
    frame = rates(
        pd.DataFrame(
            {"t": [0.0, 1.0, 3.0, 4.0], "gate_clean": [0.0, 100.0, 300.0, 5.0], "lag_g": [1.0] * 4}
        )
    )
    assert frame["gate_clean_per_s"].tolist()[1:] == [100.0, 100.0, 0.0]
    assert "lag_g_per_s" not in frame  # gauges are charted as they are
