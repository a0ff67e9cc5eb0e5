"""The hot store: clean ticks (and the streamed candles) from Kafka into PostgreSQL, effectively
once.

``python -m orderbook_kit.store`` runs it; ``python -m orderbook_kit.lab.postgres start`` starts the
kit's own PostgreSQL.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from orderbook_kit.exports import lazy_exports

if TYPE_CHECKING:
    from orderbook_kit.store import queries as queries
    from orderbook_kit.store.sink import CANDLE_SOURCE as CANDLE_SOURCE
    from orderbook_kit.store.sink import StoreSink as StoreSink
    from orderbook_kit.store.tables import SCHEMA_FILE as SCHEMA_FILE
    from orderbook_kit.store.tables import apply_schema as apply_schema
    from orderbook_kit.store.tables import drop_schema as drop_schema
    from orderbook_kit.store.tables import stored_offsets as stored_offsets

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "orderbook_kit.store.sink": ["CANDLE_SOURCE", "StoreSink"],
        "orderbook_kit.store.tables": [
            "SCHEMA_FILE",
            "apply_schema",
            "drop_schema",
            "stored_offsets",
        ],
        "orderbook_kit.store": ["queries"],
    },
)
