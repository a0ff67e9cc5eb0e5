"""Every error the kit raises on purpose, in one place.

Each message says what went wrong *and what to do about it*, because the reader is usually a learner
in a notebook or a terminal, not someone who wants a stack trace.
"""

from __future__ import annotations

__all__ = [
    "BrokerError",
    "BrokerExitedError",
    "BrokerStartTimeoutError",
    "BrokerUnreachableError",
    "JavaNotFoundError",
    "MavenNotFoundError",
    "MavenResolveError",
    "OrderbookKitError",
    "PortInUseError",
]


class OrderbookKitError(Exception):
    """Base class: catch this to handle any error the kit raises deliberately."""


class BrokerError(OrderbookKitError):
    """Starting, stopping or reaching the Kafka broker failed."""


class JavaNotFoundError(BrokerError):
    """No Java runtime, or one older than Kafka 4.x needs."""


class MavenNotFoundError(BrokerError):
    """`mvn` is not on PATH, so the broker's jars cannot be resolved."""


class MavenResolveError(BrokerError):
    """Maven ran but could not fetch the broker's jars (often: Maven Central unreachable)."""


class PortInUseError(BrokerError):
    """The address the broker should listen on is taken by another process."""


class BrokerExitedError(BrokerError):
    """The broker process died while starting; the message carries the end of its log."""


class BrokerStartTimeoutError(BrokerError):
    """The broker did not answer a metadata request before the start timeout."""


class BrokerUnreachableError(BrokerError):
    """A client (producer, consumer, admin) could not reach any broker in time."""
