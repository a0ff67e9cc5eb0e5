"""`make bench` runs end to end against the real broker and PostgreSQL, and reports every figure.

Not a speed test (figures differ between machines and are only reported): it keeps the benchmark
from rotting, since nothing else runs it, and checks that each comparison it promises is made.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "throughput.py"


def test_the_benchmark_compares_the_kit_with_bare_kafka_python(tmp_path: Path) -> None:
    figures_file = tmp_path / "bench.json"
    result = subprocess.run(
        [
            sys.executable,
            str(BENCHMARK),
            "--count",
            "600",
            "--latency-seconds",
            "1",
            "--json",
            str(figures_file),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=os.environ,
    )
    assert result.returncode == 0, result.stderr
    figures = json.loads(figures_file.read_text())
    throughput, counts = figures["throughput"], figures["counts"]
    assert counts["PostgreSQL: new rows, 2000 a transaction"] == 600
    assert counts["produce: kit send(tick)"] == 600
    assert counts["order book: rebuilt from a snapshot and 1,200 updates, checksums"] == 1200
    assert counts["order book: level changes applied"] > 1200
    assert counts["read: kit read_ticks (validated) into a DataFrame"] == 3 * 600  # best of 3
    assert counts["store: kit, clean topic -> PostgreSQL"] > 0
    assert counts["archive: kit, clean topic -> Parquet files, exactly once"] > 0
    assert all(rate > 0 for rate in throughput.values())
    assert set(figures["ratios"]) == {
        "kit send(tick) / bare, same settings",
        "kit send_raw / bare, same settings",
        "kit send(tick) / bare doing the same",
        "kit read_ticks / bare fetch alone",
        "kit read_ticks / bare fetch + json",
        "kit gate / bare forward",
        "kit store / bare COPY",
        "kit archive / bare Parquet",
        "kit send(tick) on confluent / bare confluent",
        "kit read_ticks on confluent / bare confluent fetch",
        "kit send(tick): confluent / kafka-python",
        "kit read_ticks: confluent / kafka-python",
        "kit gate: confluent / kafka-python",
        "exactly / at least once, kafka-python, batch 5000",
        "exactly / at least once, kafka-python, batch 500",
        "exactly / at least once, confluent, batch 5000",
        "kit candles / bare librdkafka consume + produce",
        "kit candles / bare Quix Streams pass-through",
    }
    assert counts["read: kit read_ticks, ORDERBOOK_KAFKA_CLIENT=confluent"] == 3 * 600
    for label, latency in figures["latency_ms"].items():
        assert 0 <= latency["p50"] <= latency["p90"] <= latency["p99"] <= latency["max"], label
        assert latency["ticks"] > 0, label
    assert "raw -> book service -> updates" in figures["latency_ms"]
    assert "1 s window end -> candle read committed" in figures["latency_ms"]
    assert counts["candles: kit processor (Quix Streams), 3 windows, exactly once"] > 0
    assert figures["peak_rss_mib"] > 0
    assert "ratio kit send(tick) / bare, same settings" in result.stdout  # the printed table


API_LOAD = BENCHMARK.with_name("api_load.py")


def test_the_api_load_test_runs_and_reports_every_figure(tmp_path: Path) -> None:
    """A short run of `make bench`'s load test: every request of the mix (bad ones included) got
    the status it should, every client received every live tick, memory was sampled."""
    figures_file = tmp_path / "load.json"
    result = subprocess.run(
        [
            sys.executable,
            str(API_LOAD),
            *("--clients", "5", "--rate", "30", "--seconds", "3", "--feed-rate", "100"),
            *("--history", "600"),
            *("--json", str(figures_file)),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=os.environ,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    figures = json.loads(figures_file.read_text())
    assert figures["errors"] == []
    assert figures["requests_sent"] == 90
    assert figures["ticks_fed"] > 0
    assert set(figures["ticks_per_client"].values()) == {figures["ticks_fed"]}
    statuses = figures["statuses"]
    assert statuses.get("GET /quotes/latest", {}).keys() <= {"200"}
    for name, answered in statuses.items():
        if name.startswith("bad: "):
            assert set(answered) <= {"404", "422"}, (name, answered)
    assert figures["api_rss_mib"]["peak"] > 0
    assert "errors: 0" in result.stdout
