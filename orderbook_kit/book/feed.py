"""The depth feed: what the exchange sends - updates, and now and then a snapshot - written to
the book's raw topic as a feed handler receives it, with faults on request.

Each record is keyed by its symbol (so a symbol's messages stay in order in one partition) and
labelled by its ``kind`` header (``update`` or ``snapshot``). The book service reads them.
"""

from __future__ import annotations

from collections.abc import Iterable

from orderbook_kit.kafka.admin import admin_client, ensure_topic
from orderbook_kit.kafka.producer import TickProducer
from orderbook_kit.market.book_faults import BookFaultInjector, raw_book_records
from orderbook_kit.market.book_messages import BookSnapshot, BookUpdate
from orderbook_kit.settings.environment import Settings

__all__ = ["publish_exchange_feed"]


def publish_exchange_feed(
    settings: Settings,
    messages: Iterable[BookUpdate | BookSnapshot],
    *,
    injector: BookFaultInjector | None = None,
) -> int:
    """Write ``messages`` (e.g. :meth:`DepthSimulator.exchange_feed`) to ``topics.book_raw``,
    with faults if ``injector`` is given; wait until Kafka has every one. Returns how many
    records were written."""
    topic = settings.topics.book_raw
    with admin_client(settings.kafka.bootstrap_servers, settings.kafka.client_timeout_s) as admin:
        ensure_topic(admin, topic, settings.topics.partitions)
    written = 0
    with TickProducer(settings, topic=topic, create_topic=False) as producer:
        for record in raw_book_records(messages, injector):
            producer.send_raw(record.key, record.value, record.headers)
            producer.raise_if_failed()
            written += 1
        producer.flush()
    return written
