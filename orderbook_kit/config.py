"""Settings read from environment variables, with defaults that work on a learner's laptop.

Notebooks, services and tests all call :func:`load_settings`, so one environment variable changes
the whole pipeline (CI points ``KAFKA_BOOTSTRAP_SERVERS`` at its own throwaway broker this way).
Nothing is read at import time: call the function when you need the values.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass

from .errors import OrderbookKitError

__all__ = ["DEFAULT_BOOTSTRAP_SERVERS", "Settings", "load_settings"]

DEFAULT_BOOTSTRAP_SERVERS = "127.0.0.1:9092"


@dataclass(frozen=True)
class Settings:
    """One place for every tunable of the workbook. Field comments name the variable."""

    bootstrap_servers: str = DEFAULT_BOOTSTRAP_SERVERS  # KAFKA_BOOTSTRAP_SERVERS
    raw_topic: str = "orderbook.raw"  # ORDERBOOK_TOPIC
    clean_topic: str = "orderbook.clean"  # ORDERBOOK_CLEAN_TOPIC
    dlq_topic: str = "orderbook.dlq"  # ORDERBOOK_DLQ_TOPIC
    partitions: int = 3  # ORDERBOOK_PARTITIONS: used when the kit creates a topic
    symbol: str = "TTF-GAS"  # ORDERBOOK_SYMBOL
    tick_interval_s: float = 0.05  # TICK_INTERVAL_S: seconds between ticks of a live stream
    volatility: float = 0.002  # TICK_VOLATILITY: relative price move per sqrt(second)
    seed: int = 42  # TICK_SEED
    tick_count: int = 200  # TICK_COUNT: how many ticks the notebooks' long cells produce
    stream_seconds: float = 5.0  # STREAM_SECONDS: how long the notebooks' live cells run
    client_timeout_s: float = 10.0  # KAFKA_CLIENT_TIMEOUT_S: bound on reaching the broker
    quality_group: str = "orderbook-quality"  # ORDERBOOK_QUALITY_GROUP: the gate's consumer group
    price_jump_limit: float = 0.05  # PRICE_JUMP_LIMIT: largest accepted move of the mid per tick

    def isolated(self, label: str) -> Settings:
        """These settings with raw, clean and dead-letter topics and a quality group of their own
        (``orderbook.raw.<label>``...), so a lesson, test or benchmark run counts only its own
        messages."""
        return dataclasses.replace(
            self,
            raw_topic=f"{self.raw_topic}.{label}",
            clean_topic=f"{self.clean_topic}.{label}",
            dlq_topic=f"{self.dlq_topic}.{label}",
            quality_group=f"{self.quality_group}.{label}",
        )


_ENV: dict[str, tuple[str, type]] = {
    "bootstrap_servers": ("KAFKA_BOOTSTRAP_SERVERS", str),
    "raw_topic": ("ORDERBOOK_TOPIC", str),
    "clean_topic": ("ORDERBOOK_CLEAN_TOPIC", str),
    "dlq_topic": ("ORDERBOOK_DLQ_TOPIC", str),
    "partitions": ("ORDERBOOK_PARTITIONS", int),
    "symbol": ("ORDERBOOK_SYMBOL", str),
    "tick_interval_s": ("TICK_INTERVAL_S", float),
    "volatility": ("TICK_VOLATILITY", float),
    "seed": ("TICK_SEED", int),
    "tick_count": ("TICK_COUNT", int),
    "stream_seconds": ("STREAM_SECONDS", float),
    "client_timeout_s": ("KAFKA_CLIENT_TIMEOUT_S", float),
    "quality_group": ("ORDERBOOK_QUALITY_GROUP", str),
    "price_jump_limit": ("PRICE_JUMP_LIMIT", float),
}


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build :class:`Settings` from ``environ`` (default: ``os.environ``); unset means default."""
    env = os.environ if environ is None else environ
    values: dict[str, object] = {}
    for field, (variable, kind) in _ENV.items():
        raw = env.get(variable, "").strip()
        if not raw:
            continue
        try:
            values[field] = kind(raw)
        except ValueError:
            raise OrderbookKitError(
                f"{variable}={raw!r} is not a valid {kind.__name__}: "
                f"fix or unset it (unset means {getattr(Settings, field)!r})"
            ) from None
    return Settings(**values)  # type: ignore[arg-type]


def environment_variables() -> dict[str, str]:
    """Variable name -> setting name, for the README and ``--help`` texts."""
    return {variable: field for field, (variable, _) in _ENV.items()}
