"""Promises of the reader and the background producer that need no broker to check."""

from __future__ import annotations

import gc
import re
import time
from datetime import UTC, datetime

import pytest

from orderbook_kit.errors import BrokerUnreachableError, OrderbookKitError
from orderbook_kit.kafka.producer import produce_in_background
from orderbook_kit.kafka.reader import read_records, read_ticks
from orderbook_kit.market.simulator import OrderbookSimulator
from orderbook_kit.settings.environment import load_settings

NOBODY = "127.0.0.1:9"  # the discard port: no Kafka broker answers there
NOON = datetime(2026, 1, 1, 12, tzinfo=UTC)


@pytest.mark.parametrize("start", [{"offsets": {0: 5}}, {"from_time": NOON}])
def test_a_group_read_refuses_a_start_position_it_would_ignore(start: dict) -> None:
    # The group's committed offsets decide where a group read starts; silently ignoring the
    # offsets a learner asked for would show them the wrong messages.
    (chosen,) = start
    with pytest.raises(OrderbookKitError, match=f"Drop group_id to replay from {chosen}"):
        read_records("orderbook.raw", group_id="dashboard", **start)
    with pytest.raises(OrderbookKitError, match=f"Drop group_id to replay from {chosen}"):
        read_ticks("orderbook.raw", group_id="dashboard", **start)


def test_offsets_and_from_time_together_are_refused() -> None:
    with pytest.raises(OrderbookKitError, match="offsets or from_time, not both"):
        read_records("orderbook.raw", offsets={0: 0}, from_time=NOON)


def test_an_error_in_the_background_producer_is_raised_by_join() -> None:
    settings = load_settings({"KAFKA_BOOTSTRAP_SERVERS": NOBODY, "KAFKA_CLIENT_TIMEOUT_S": "1"})
    ticks = OrderbookSimulator("TTF-GAS").ticks(5)
    writer = produce_in_background(ticks, settings)
    deadline = time.monotonic() + 30
    while not writer.finished() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert writer.finished()
    assert isinstance(writer.error, BrokerUnreachableError)
    unreachable = re.escape(f"No Kafka broker answered at {NOBODY}")
    with pytest.raises(BrokerUnreachableError, match=unreachable):
        writer.join(timeout_s=1)


@pytest.mark.parametrize("client", ["kafka-python", "confluent"])
def test_a_failed_read_leaves_the_garbage_collector_as_it_found_it(client: str) -> None:
    # read_ticks pauses the cyclic collector while it reads: an error must not leave it off
    # (a process would then grow without bound), nor turn it on for a caller who had it off.
    settings = load_settings(
        {
            "KAFKA_BOOTSTRAP_SERVERS": NOBODY,
            "KAFKA_CLIENT_TIMEOUT_S": "1",
            "ORDERBOOK_KAFKA_CLIENT": client,
        }
    )
    try:
        for enabled in (True, False):
            (gc.enable if enabled else gc.disable)()
            with pytest.raises(BrokerUnreachableError):
                read_ticks("orderbook.raw", settings=settings, timeout_s=3)
            assert gc.isenabled() is enabled
    finally:
        gc.enable()
