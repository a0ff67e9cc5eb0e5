"""Broker outages with the services running: a kill -9 and an immediate restart loses nothing; an
outage longer than the delivery timeout stops ingest with the count of ticks not delivered; Ctrl-C
during an outage stops within seconds; never a traceback.

These tests run a broker of their own (killing the session's broker would disturb other tests).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from orderbook_kit.kafka.offsets import end_offsets, group_lag
from orderbook_kit.kafka.producer import TickProducer
from orderbook_kit.kafka.reader import ReadResult, read_records, read_ticks
from orderbook_kit.lab import processes
from orderbook_kit.lab.broker import server as process
from orderbook_kit.market.simulator import OrderbookSimulator
from orderbook_kit.quality.gate import QualityGate
from orderbook_kit.quality.outputs import copies_by_source, read_outputs
from orderbook_kit.settings.environment import Settings, load_settings
from tests.conftest import interrupt, wait_for

pytestmark = pytest.mark.kafka

SYMBOLS = ["TTF-GAS", "NBP-GAS", "EUA-CO2"]


def kill_broker(state: Path) -> None:
    """kill -9 the broker and wait until it is gone (its sockets closed), as `kill -9` and
    `wait` would in a shell."""
    pid = json.loads((state / "broker.json").read_text())["pid"]
    os.kill(pid, signal.SIGKILL)
    assert processes.wait_for_exit(pid, 10)


def settings_for(address: str, **environment: str) -> tuple[Settings, dict[str, str]]:
    settings = load_settings({"KAFKA_BOOTSTRAP_SERVERS": address, **environment})
    settings = settings.isolated(f"outage-{uuid.uuid4().hex[:8]}")
    return settings, {**os.environ, **settings.as_environment()}


def ingest(env: dict[str, str], *arguments: str) -> subprocess.Popen[str]:
    symbols = [flag for symbol in SYMBOLS for flag in ("--symbol", symbol)]
    return subprocess.Popen(
        [sys.executable, "-m", "orderbook_kit.ingest", "-q", *symbols, *arguments],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def raw_count(settings: Settings) -> int:
    return sum(end_offsets(settings.topics.raw, settings).values())


def assert_contiguous_from_zero(settings: Settings, expected_total: int) -> None:
    frame = read_ticks(settings.topics.raw, settings=settings, timeout_s=30).frame
    assert len(frame) == expected_total
    for symbol, rows in frame.groupby("symbol"):
        seqs = sorted(rows["seq"])
        assert seqs == list(range(len(seqs))), f"{symbol}: a tick is missing or doubled"


def test_broker_killed_and_restarted_at_once_loses_nothing(
    own_broker: tuple[str, Path], tmp_path: Path
) -> None:
    address, state = own_broker
    settings, env = settings_for(address)
    feed = ingest(env, "--count", "1200", "--interval", "0.01", "--fault-rate", "0.01")
    gate_log = tmp_path / "gate.log"
    with gate_log.open("w") as log:
        gate = subprocess.Popen(
            [sys.executable, "-m", "orderbook_kit.quality", "-q"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def gate_caught_up() -> bool:
        if gate.poll() is not None:
            pytest.fail(f"the gate exited ({gate.returncode}):\n{gate_log.read_text()}")
        return int(group_lag(settings.gate.group, settings.topics.raw, settings)["lag"].sum()) == 0

    try:
        wait_for(lambda: raw_count(settings) > 100, 30, "the feed to be under way")
        kill_broker(state)
        restarted = time.monotonic()
        process.start(address, state)  # at once: the port is in TIME_WAIT, not taken
        print(f"broker restarted in {time.monotonic() - restarted:.1f} s")
        _, feed_errors = feed.communicate(timeout=120)
        assert feed.returncode == 0, feed_errors
        total = raw_count(settings)
        wait_for(gate_caught_up, 90, "the gate to check every raw message")
        gate.send_signal(signal.SIGTERM)
        gate.wait(timeout=30)
        output = gate_log.read_text()
        assert gate.returncode == 0, output
        assert output.splitlines()[-1].startswith("Checked ")
        assert "Traceback" not in output + feed_errors
    finally:
        feed.kill()
        gate.kill()
    raw = {
        (r.partition, r.offset)
        for r in read_records(settings.topics.raw, settings=settings, timeout_s=30).records
    }
    assert len(raw) == total
    written = copies_by_source(read_outputs(settings, timeout_s=30))
    assert set(written) == raw  # every raw message checked


def test_an_outage_longer_than_the_delivery_timeout_stops_ingest_with_the_count(
    own_broker: tuple[str, Path],
) -> None:
    address, state = own_broker
    settings, env = settings_for(address, KAFKA_CLIENT_TIMEOUT_S="1", KAFKA_DELIVERY_TIMEOUT_S="3")
    feed = ingest(env, "--interval", "0.02")  # until stopped
    try:
        wait_for(lambda: raw_count(settings) > 60, 30, "the feed to be under way")
        kill_broker(state)
        killed = time.monotonic()
        _, errors = feed.communicate(timeout=60)
        took = time.monotonic() - killed
    finally:
        feed.kill()
    assert feed.returncode == 1, errors
    lines = errors.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in errors, errors
    found = re.match(
        r"error: Kafka did not acknowledge (\d+) of the (\d+) message\(s\) sent", lines[0]
    )
    assert found, lines[0]
    lost, sent = int(found[1]), int(found[2])
    assert lost > 0 and took < 3 + 10, f"stopped {took:.1f} s after the broker died"
    process.start(address, state)
    # What Kafka acknowledged is there, every symbol from seq 0 with no hole: nothing silent.
    # "Not acknowledged" means "may be missing", not "missing": a message the broker wrote just
    # before it was killed, whose acknowledgement never left, is in the log too.
    frame = read_ticks(settings.topics.raw, settings=settings, timeout_s=30).frame
    assert sent - lost <= len(frame) <= sent
    for symbol, rows in frame.groupby("symbol"):
        seqs = sorted(rows["seq"])
        assert seqs == list(range(len(seqs))), f"{symbol}: a tick is missing or doubled"


def test_ctrl_c_during_an_outage_stops_within_seconds(own_broker: tuple[str, Path]) -> None:
    address, state = own_broker
    settings, env = settings_for(address)  # the default 120 s delivery timeout
    feed = ingest(env, "--interval", "0.02")
    try:
        wait_for(lambda: raw_count(settings) > 60, 30, "the feed to be under way")
        kill_broker(state)
        time.sleep(1.0)
        errors, took = interrupt(feed)
    finally:
        feed.kill()
    assert took < 6, f"took {took:.1f} s to stop after Ctrl-C"
    lines = errors.strip().splitlines()
    assert feed.returncode == 1 and len(lines) == 1 and "Traceback" not in errors, errors
    assert lines[0].startswith("error: Kafka did not acknowledge ")
    assert "within 3 s of closing, so they may be missing from it." in lines[0]


@pytest.mark.parametrize("client", ["kafka-python", "confluent"])
def test_a_read_the_broker_dies_under_returns_at_its_time_limit_with_what_it_had(
    own_broker: tuple[str, Path], client: str
) -> None:
    address, state = own_broker
    settings, _ = settings_for(address, KAFKA_CLIENT_TIMEOUT_S="2", ORDERBOOK_KAFKA_CLIENT=client)
    ticks = OrderbookSimulator(SYMBOLS, seed=3).ticks(30)
    with TickProducer(settings) as producer:
        producer.send_all(ticks)
    outcome: dict[str, object] = {}

    def read() -> None:
        try:
            outcome["result"] = read_ticks(settings=settings, until_end=False, timeout_s=10)
        except BaseException as exc:  # the test fails below, naming it
            outcome["error"] = exc

    reader = threading.Thread(target=read)
    started = time.monotonic()
    reader.start()
    wait_for(lambda: time.monotonic() - started > 3, 5, "the read to be under way")
    kill_broker(state)
    reader.join(30)
    took = time.monotonic() - started
    assert not reader.is_alive(), "the read outlived its time limit by 20 s"
    assert "error" not in outcome, f"the read raised {outcome.get('error')!r}"
    result = outcome["result"]
    assert isinstance(result, ReadResult)
    assert len(result.frame) == 30, "the ticks read before the outage were lost"
    assert result.timed_out and "stopped at the time limit" in result.report()
    assert took < 10 + 5


def test_a_broker_lost_while_the_gate_connects_is_waited_for(
    own_broker: tuple[str, Path],
) -> None:
    # The CI failure this guards against: the broker died while the gate was still creating its
    # topics (after connect() had found it answering), and the gate crashed with a traceback.
    # The connecting steps run here with the broker down, as they did then.
    address, state = own_broker
    settings, _ = settings_for(address, KAFKA_CLIENT_TIMEOUT_S="2")
    with TickProducer(settings) as producer:
        producer.send_all(OrderbookSimulator(SYMBOLS, seed=4).ticks(30))
    process.stop(state)
    gate = QualityGate(settings)
    outcome: dict[str, object] = {}

    def connect() -> None:
        try:
            outcome["consumer"] = gate.loop.join()
        except BaseException as exc:  # the test fails below, naming it
            outcome["error"] = exc

    connecting = threading.Thread(target=connect)
    connecting.start()
    time.sleep(4)  # longer than KAFKA_CLIENT_TIMEOUT_S: every first attempt has failed by now
    assert connecting.is_alive(), f"the gate gave up on a restarting broker: {outcome}"
    process.start(address, state)
    connecting.join(120)
    assert "error" not in outcome, outcome.get("error")
    gate.loop.consumer = outcome["consumer"]  # type: ignore[assignment]
    with gate:
        assert gate.run(count=30, duration_s=60).processed == 30
    # Offsets committed in a transaction show in the group once the broker has written the
    # transaction's markers, just after the commit returns (the gate's next consumer waits for
    # them: it reads committed offsets as "stable" ones, KIP-447).
    lag = lambda: int(group_lag(settings.gate.group, settings.topics.raw, settings)["lag"].sum())  # noqa: E731
    wait_for(lambda: lag() == 0, 30, "the gate's offsets at the end of the raw topic")
