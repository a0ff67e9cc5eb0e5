"""``--idle`` means caught up: a run ends on idle only once it has read up to the end offsets of
the partitions it was assigned, however short the idle time and however slow the first fetch.

Under load a store run with ``idle_s=2`` once stopped having read 0 of 600 waiting ticks: the idle
clock ran while its first fetch was slow. An idle time far shorter than any fetch makes that case
certain here, on a quiet machine too.
"""

from __future__ import annotations

import pytest

from orderbook_kit.archive.sink import ArchiveSink
from orderbook_kit.kafka.producer import TickProducer
from orderbook_kit.market.simulator import OrderbookSimulator
from orderbook_kit.quality.gate import QualityGate
from orderbook_kit.settings.environment import Settings
from orderbook_kit.store.sink import StoreSink
from tests.conftest import produce_clean

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

WAITING = 6_000  # more than one batch of any service
IDLE_S = 0.01  # far shorter than a fetch takes


@pytest.fixture
def settings(pipeline_settings: Settings) -> Settings:
    return pipeline_settings


def ticks() -> list:
    return list(OrderbookSimulator(["TTF-GAS", "NBP-GAS", "EUA-CO2"], seed=5).ticks(WAITING))


def test_an_idle_gate_reads_everything_waiting_first(settings: Settings) -> None:
    with TickProducer(settings) as producer:
        producer.send_all(ticks())
    stats = QualityGate(settings).run(idle_s=IDLE_S, duration_s=120)
    assert stats.processed == WAITING, stats.summary()
    assert stats.clean == WAITING


@pytest.mark.parametrize("service", [StoreSink, ArchiveSink], ids=["store", "archive"])
def test_an_idle_sink_reads_everything_waiting_first(settings: Settings, service: type) -> None:
    produce_clean(settings, ticks())
    stats = service(settings).run(idle_s=IDLE_S, duration_s=120)
    assert stats.read == WAITING, stats.summary()
    # And once caught up, an idle run ends by itself, having read nothing new.
    assert service(settings).run(idle_s=IDLE_S, duration_s=120).read == 0
