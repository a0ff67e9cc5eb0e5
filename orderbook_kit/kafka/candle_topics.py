"""Reading the candles service's topics back: candles and spread statistics as DataFrames."""

from __future__ import annotations

import json
from datetime import datetime

import pandas as pd

from orderbook_kit.kafka.reader import read_records
from orderbook_kit.settings.environment import Settings, load_settings

__all__ = ["read_candles"]


def read_candles(
    topic: str, *, settings: Settings | None = None, timeout_s: float = 30.0
) -> pd.DataFrame:
    """Every record of a candle or spread topic (read committed), one row each, sorted by
    symbol and window: ``symbol, bucket`` (the window's start), ``end`` and the record's fields -
    the columns :func:`~orderbook_kit.lessons.candles_figure` draws."""
    settings = settings or load_settings()
    read = read_records(topic, settings=settings, timeout_s=timeout_s)
    rows = []
    for record in read.records:
        if record.value is None:
            continue
        fields = json.loads(record.value)
        fields["bucket"] = datetime.fromisoformat(fields.pop("start"))
        fields["end"] = datetime.fromisoformat(fields["end"])
        rows.append(fields)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    first = ["symbol", "bucket", "end"]
    frame = frame[first + [c for c in frame.columns if c not in first]]
    return frame.sort_values(["symbol", "bucket"], ignore_index=True)
