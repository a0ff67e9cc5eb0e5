"""Import confluent-kafka only when it is asked for, with an error that names the fix."""

from __future__ import annotations

import importlib
import logging
from types import ModuleType
from typing import Any

from orderbook_kit.errors import OrderbookKitError

__all__ = ["LIBRDKAFKA_LOG", "confluent_kafka"]


class _DebugLog:
    """Where librdkafka's own log lines go: Python's logging, at DEBUG.

    Unless given a logger, librdkafka writes to stderr, and it logs every refused connection as
    an error while it retries (dozens a second during an outage). The kit reports what matters
    itself, once: an unreachable broker, a delivery that failed, an outage a read waited out.
    """

    def __init__(self, name: str) -> None:
        self._logger = logging.getLogger(name)

    def log(self, level: int, message: str, *args: Any) -> None:  # librdkafka's call
        self._logger.debug(message, *args)


LIBRDKAFKA_LOG = _DebugLog("orderbook_kit.kafka.confluent.librdkafka")


def confluent_kafka() -> ModuleType:
    """The ``confluent_kafka`` module, or :class:`OrderbookKitError` saying how to install it."""
    try:
        return importlib.import_module("confluent_kafka")
    except ImportError as exc:
        raise OrderbookKitError(
            "ORDERBOOK_KAFKA_CLIENT=confluent needs the confluent-kafka package, which is not "
            f"installed ({exc}). Install it with `pip install -e .[fast]`, or unset "
            "ORDERBOOK_KAFKA_CLIENT to use kafka-python."
        ) from exc
