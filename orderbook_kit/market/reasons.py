"""Why a message is not a clean tick: the reason codes, in one place.

The DataFrame reader counts skipped messages by these codes, the quality gate writes them into the
dead-letter header, and the fault injector labels what it injected with them - so a test (or a
learner) can check that every injected fault came out of the gate with the right name.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["HISTORY_REASONS", "MESSAGE_REASONS", "CandleReason", "Reason"]


class Reason(StrEnum):
    # The message itself: it cannot be read as a tick of the symbol it is keyed by.
    TOO_LARGE = "too_large"  # far bigger than any tick: not even parsed
    NOT_JSON = "not_json"  # not JSON, or nested deeper than a tick ever is
    INVALID_SCHEMA = "invalid_schema"  # missing or unknown field, wrong type, bad symbol...
    CROSSED_BOOK = "crossed_book"  # bid above ask
    LOCKED_BOOK = "locked_book"  # bid equals ask
    NON_POSITIVE_PRICE = "non_positive_price"
    NON_POSITIVE_SIZE = "non_positive_size"
    KEY_MISMATCH = "key_mismatch"  # the Kafka key is not the tick's symbol
    TIME_AHEAD = "time_ahead"  # event_time later than when the tick was published
    # The kit itself failed to judge the message (a bug): it is set aside with the exception's
    # name, so one message can never stop a service; the ticks after it are judged as usual.
    INTERNAL_ERROR = "internal_error"
    # The message against the ticks of its symbol before it (needs the gate's memory).
    DUPLICATE = "duplicate"  # same seq as the last accepted one
    OUT_OF_ORDER = "out_of_order"  # a seq older than the last accepted one
    SEQ_GAP = "seq_gap"  # seq numbers missing before this one
    TIME_BACKWARDS = "time_backwards"  # event_time before the last accepted tick's
    PRICE_JUMP = "price_jump"  # mid moved more than the limit since the last accepted tick


MESSAGE_REASONS = frozenset(
    {
        Reason.TOO_LARGE,
        Reason.NOT_JSON,
        Reason.INVALID_SCHEMA,
        Reason.CROSSED_BOOK,
        Reason.LOCKED_BOOK,
        Reason.NON_POSITIVE_PRICE,
        Reason.NON_POSITIVE_SIZE,
        Reason.KEY_MISMATCH,
        Reason.TIME_AHEAD,
        Reason.INTERNAL_ERROR,
    }
)
HISTORY_REASONS = frozenset(Reason) - MESSAGE_REASONS


class BookReason(StrEnum):
    """Why the book service set a message of the book's raw topic aside (its dead-letter header).

    The first group is the message alone; the second, the message against the book it should
    continue."""

    TOO_LARGE = "too_large"  # far bigger than any book message: not even parsed
    NOT_JSON = "not_json"
    INVALID_SCHEMA = "invalid_schema"  # missing or unknown field, wrong type, bad symbol...
    UNKNOWN_KIND = "unknown_kind"  # no "kind" header saying update or snapshot
    OFF_GRID = "off_grid"  # a price not on the instrument's grid
    UNSORTED_LEVELS = "unsorted_levels"
    DUPLICATE_LEVEL = "duplicate_level"
    CROSSED_BOOK = "crossed_book"  # a snapshot whose best bid is not below its best ask
    KEY_MISMATCH = "key_mismatch"  # the Kafka key is not the message's symbol
    INTERNAL_ERROR = "internal_error"
    # Against the book.
    DUPLICATE = "duplicate"  # an update the book already has (seq at or below the book's)
    SEQ_GAP = "seq_gap"  # updates missing before this one: the book is lost until a snapshot
    CHECKSUM_MISMATCH = "checksum_mismatch"  # the book after it is not the one it describes
    CROSSES_BOOK = "crosses_book"  # it would leave the best bid at or above the best ask
    OUT_OF_SYNC = "out_of_sync"  # it came while the book waited for a snapshot, which covers it


class CandleReason(StrEnum):
    """Why the candles service put a tick of the clean topic in no window (the ``reason`` header
    of its copy on the skipped topic), besides the message reasons of :class:`Reason` (a message
    on the clean topic that is not a tick: someone wrote there without the gate)."""

    LATE = "late"  # its window had closed: its partition's clock had passed the end by the grace
    TIME_AHEAD = "time_ahead"  # later than the service's own clock by more than the skew allowed
    BEFORE_1970 = "before_1970"  # the engine keeps window bounds as milliseconds since 1970, >= 0
    WRONG_PARTITION = "wrong_partition"  # not in its symbol's partition: another would candle it
