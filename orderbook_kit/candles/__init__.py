"""The candles service: OHLC candles and spread statistics computed as ticks arrive, by event
time, exactly once, on Quix Streams.

``python -m orderbook_kit.candles`` runs it (see :mod:`.service`); :mod:`.application` builds the
Quix Streams application itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from orderbook_kit.exports import lazy_exports

if TYPE_CHECKING:
    from orderbook_kit.candles.application import CandleCounts as CandleCounts
    from orderbook_kit.candles.application import build_candles_app as build_candles_app
    from orderbook_kit.candles.service import CandlesService as CandlesService

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "orderbook_kit.candles.application": ["CandleCounts", "build_candles_app"],
        "orderbook_kit.candles.service": ["CandlesService"],
    },
)
