"""Run a real Apache Kafka broker (or a cluster of three) on the JVM, without Docker:
``python -m orderbook_kit.lab.broker``."""

from orderbook_kit.lab.broker.server import (
    BrokerStatus,
    start,
    status,
    stop,
    tail_log,
)
from orderbook_kit.lab.jvm import KAFKA_VERSION

__all__ = ["KAFKA_VERSION", "BrokerStatus", "start", "status", "stop", "tail_log"]
