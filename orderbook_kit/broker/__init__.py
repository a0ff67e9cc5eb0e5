"""Run a real Apache Kafka broker on the JVM, without Docker: ``python -m orderbook_kit.broker``."""

from .process import BrokerStatus, default_home, start, status, stop, tail_log
from .runtime import KAFKA_VERSION

__all__ = ["KAFKA_VERSION", "BrokerStatus", "default_home", "start", "status", "stop", "tail_log"]
