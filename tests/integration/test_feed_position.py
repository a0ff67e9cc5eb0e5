"""Where a feed stopped, read back from its topic: through several windows of a partition, past
other symbols' ticks, and for a symbol that never ticked there (nothing, not an endless read)."""

from __future__ import annotations

import uuid

import pytest

from orderbook_kit.ingest import feed_position
from orderbook_kit.ingest.feed_position import last_ticks
from orderbook_kit.kafka.partitioning import partition_of
from orderbook_kit.kafka.producer import TickProducer
from orderbook_kit.market.simulator import OrderbookSimulator
from orderbook_kit.settings.environment import load_settings

pytestmark = pytest.mark.kafka


def test_the_last_tick_is_found_windows_back_past_other_symbols(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = load_settings().isolated(f"position-{uuid.uuid4().hex[:8]}")
    # TTF-GAS and EUA-CO2 share a partition of three: TTF-GAS's last tick ends up far behind.
    assert partition_of("TTF-GAS", 3) == partition_of("EUA-CO2", 3) != partition_of("NBP-GAS", 3)
    with TickProducer(settings) as producer:
        producer.send_all(OrderbookSimulator("TTF-GAS", seed=1).ticks(10))
        producer.send_all(OrderbookSimulator("EUA-CO2", seed=2).ticks(60))
    monkeypatch.setattr(feed_position, "FIRST_WINDOW", 5)  # windows of 5, 20, 80 records

    found = last_ticks(settings, settings.topics.raw, ["TTF-GAS", "NBP-GAS"], timeout_s=60)

    assert {symbol: tick.seq for symbol, tick in found.items()} == {"TTF-GAS": 9}
    assert (
        last_ticks(settings, "no-such-topic-" + uuid.uuid4().hex, ["TTF-GAS"], timeout_s=30) == {}
    )
