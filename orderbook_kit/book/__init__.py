"""The book service: the exchange's depth updates checked into a book any reader can rebuild.

``python -m orderbook_kit.book`` runs it (see :mod:`.service`); :mod:`.feed` writes what the
exchange sends to the raw topic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from orderbook_kit.exports import lazy_exports

if TYPE_CHECKING:
    from orderbook_kit.book.feed import publish_exchange_feed as publish_exchange_feed
    from orderbook_kit.book.service import BookService as BookService
    from orderbook_kit.book.service import BookStats as BookStats

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "orderbook_kit.book.feed": ["publish_exchange_feed"],
        "orderbook_kit.book.service": ["BookService", "BookStats"],
    },
)
