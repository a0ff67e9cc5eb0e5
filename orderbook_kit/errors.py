"""Every error the kit raises on purpose, in one place.

Each message says what went wrong *and what to do about it*, because the reader is usually a learner
in a notebook or a terminal, not someone who wants a stack trace.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = [
    "ArchiveStorageError",
    "ArchiveWriteError",
    "BookOutOfSyncError",
    "BrokerError",
    "BrokerExitedError",
    "BrokerStartTimeoutError",
    "BrokerUnreachableError",
    "DatabaseError",
    "DatabaseLostError",
    "DatabaseUnreachableError",
    "DeliveryError",
    "JavaNotFoundError",
    "MavenNotFoundError",
    "MavenResolveError",
    "OrderbookKitError",
    "PortInUseError",
    "PostgresNotAvailableError",
    "SameTopicError",
    "SettingsError",
    "TopicNotFoundError",
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


class TopicNotFoundError(OrderbookKitError):
    """A read of a topic that does not exist (yet): nothing was ever produced to it."""


class BookOutOfSyncError(OrderbookKitError):
    """A local order book can no longer be trusted: an update is missing (``reason`` "gap"),
    the book it gives is crossed ("crossed"), or its checksum differs ("checksum"). The fix is
    always the same, as exchanges tell their clients: discard the book and start again from a
    newer snapshot."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class DatabaseError(OrderbookKitError):
    """Starting, reaching or using PostgreSQL (the hot store) failed."""


class PostgresNotAvailableError(DatabaseError):
    """No embedded PostgreSQL for this machine (no wheel of ``pgserver``), and no DATABASE_URL."""


class DatabaseUnreachableError(DatabaseError):
    """No PostgreSQL answered at DATABASE_URL, or it refused the connection (role, database)."""


class DatabaseLostError(DatabaseError):
    """PostgreSQL went away while a service was writing: the batch in flight was not stored."""


class ArchiveStorageError(OrderbookKitError):
    """The archive's folder or bucket cannot be used (missing, not writable, unreachable)."""


class ArchiveWriteError(ArchiveStorageError):
    """Writing the archive failed while the service ran: nothing past the last complete range
    counts as archived, and a restart writes the rest again."""


class SettingsError(OrderbookKitError):
    """A setting (environment variable or command-line flag) has a value the kit cannot use.

    ``str(error)`` reads ``NAME: why; fix``, where NAME is the environment variable; a command
    line that took the value from a flag renders it with the flag's name instead (:meth:`named`).
    """

    def __init__(self, field: str, name: str, problem: str) -> None:
        self.field = field  # the Settings field (or flag destination) concerned
        self.name = name  # what the user typed: a variable or a --flag
        self.problem = problem  # "why; fix"
        super().__init__(f"{name}: {problem}")

    def renamed(self, name_of: Callable[[str], str]) -> SettingsError:
        """The same error, naming each field by ``name_of(field)`` (e.g. the flag that gave it)."""
        return SettingsError(self.field, name_of(self.field), self.problem)


class SameTopicError(SettingsError):
    """Two of the pipeline's topics have the same name (``field`` and ``other``)."""

    def __init__(self, field: str, other: str, topic: str, name_of: Callable[[str], str]) -> None:
        self.other = other
        self.topic = topic
        what = other.rpartition(".")[2].replace("_", " ")  # "topics.dead_letters": dead letters
        problem = (
            f"{topic!r} is also the {what} topic ({name_of(other)}); the quality gate "
            "would read its own output, so give each topic its own name"
        )
        super().__init__(field, name_of(field), problem)

    def renamed(self, name_of: Callable[[str], str]) -> SettingsError:
        return SameTopicError(self.field, self.other, self.topic, name_of)


class DeliveryError(OrderbookKitError):
    """Kafka did not acknowledge messages the kit sent: they may not be in the topic."""

    def __init__(self, message: str, *, unacknowledged: int) -> None:
        self.unacknowledged = unacknowledged
        super().__init__(message)
