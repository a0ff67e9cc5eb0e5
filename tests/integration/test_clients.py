"""kafka-python and confluent-kafka behind the kit's API: the same messages, the same places.

A producer on either client must put a symbol's ticks in the same partition (or one symbol's ticks
would be split, out of order, between feeds on different clients), and a read with either must
give the same records, byte for byte.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from orderbook_kit.kafka.admin import delete_pipeline
from orderbook_kit.kafka.producer import TickProducer
from orderbook_kit.kafka.reader import read_records
from orderbook_kit.market.simulator import OrderbookSimulator
from orderbook_kit.settings.environment import Settings, load_settings

pytestmark = pytest.mark.kafka

SYMBOLS = ["TTF-GAS", "NBP-GAS", "EUA-CO2", "PEG-GAS", "THE-GAS", "ZTP-GAS"]
START = datetime(2026, 1, 1, tzinfo=UTC)


def with_client(settings: Settings, client: str) -> Settings:
    return settings.replace(kafka={"client": client})


def test_both_clients_put_a_symbol_in_the_same_partition_and_read_the_same_records() -> None:
    settings = load_settings().isolated(f"clients-{uuid.uuid4().hex[:8]}")
    ticks = list(OrderbookSimulator(SYMBOLS, seed=5).ticks(60, start_time=START))
    headers = [("trace", b"\x00\xff")]
    try:
        partition_of: dict[str, dict[str, int]] = {}
        for client in ("kafka-python", "confluent"):
            with TickProducer(with_client(settings, client)) as producer:
                for tick in ticks:
                    metadata = producer.send(tick).get(timeout=10)
                    partition_of.setdefault(client, {})[tick.symbol] = metadata.partition
                producer.send_raw("ODD", b"not a tick", headers, timestamp_ms=1_767_225_600_000)
        assert partition_of["confluent"] == partition_of["kafka-python"]
        assert len(set(partition_of["kafka-python"].values())) > 1  # the check means something

        reads = {
            client: read_records(settings=with_client(settings, client), timeout_s=20)
            for client in ("kafka-python", "confluent")
        }
        assert len(reads["kafka-python"].records) == 2 * (len(ticks) + 1)
        for read in reads.values():
            assert not read.timed_out
        fields = ("topic", "partition", "offset", "timestamp", "timestamp_type", "key", "value")

        def seen(client: str) -> list[tuple[object, ...]]:
            records = reads[client].records
            ordered = sorted(records, key=lambda r: (r.partition, r.offset))
            return [(*(getattr(r, f) for f in fields), list(r.headers)) for r in ordered]

        assert seen("confluent") == seen("kafka-python")
        odd = [r for r in reads["confluent"].records if r.key == b"ODD"]
        assert [(r.timestamp, list(r.headers)) for r in odd] == [(1_767_225_600_000, headers)] * 2
    finally:
        delete_pipeline(settings)
