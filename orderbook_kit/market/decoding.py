"""Turn a Kafka message (key and value bytes) into a :class:`Tick`, or say exactly why not.

Shared by the DataFrame reader (which counts and skips bad messages) and the quality gate (which
dead-letters them with the reason), so both judge a message the same way. Every path is bounded:
a message larger than any tick is refused unread, the JSON parser has a nesting limit, and the
reason's detail is cut to a fixed size - so no input, however hostile, raises out of here or
produces a dead letter much larger than itself.

Times are compared by their difference, never by adding a tolerance to one of them: a tick stamped
in the last second of year 9999 is valid, and ``publish_time + MAX_CLOCK_SKEW`` would overflow.
Should a rule raise anyway (a bug of the kit), :func:`decode_message` still answers: the message is
an ``internal_error`` naming the exception, so one message can never stop the services that call it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

import pydantic_core
from kafka.consumer.fetcher import ConsumerRecord
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from orderbook_kit.market.reasons import Reason
from orderbook_kit.market.tick import MAX_SEQ, Tick
from orderbook_kit.settings.rules import symbol as symbol_rule

__all__ = [
    "MAX_CLOCK_SKEW",
    "MAX_DETAIL_CHARS",
    "MAX_MESSAGE_BYTES",
    "DecodeFailure",
    "Skipped",
    "clip",
    "decode_message",
    "decode_tick",
    "internal_failure",
    "readable_identity",
    "summarize_errors",
]

# A tick is about 250 bytes of JSON. Anything this much larger is not a tick, and is refused
# before parsing, so a 1 MB message costs no more than a small one.
MAX_MESSAGE_BYTES = 16 * 1024
# The detail that goes with a reason (into a dead-letter header) is at most this long: the first
# few errors and a count of the rest, never one line per error of a hostile message.
MAX_DETAIL_CHARS = 600
MAX_ERRORS_LISTED = 3
_MAX_PART_CHARS = 120
# Clocks of the exchange, the feed handler and the gate differ a little; a tick stamped later than
# its own publication by more than this is from the future, not from a slow clock.
MAX_CLOCK_SKEW = timedelta(seconds=1)

log = logging.getLogger(__name__)

_PRICE_FIELDS = {"bid", "ask"}
_SIZE_FIELDS = {"bid_size", "ask_size"}


@dataclass(frozen=True)
class DecodeFailure:
    """A message that is not a valid tick: ``reason`` is a code, ``detail`` says why.

    ``symbol`` and ``seq`` are set when they can still be read from a rejected message keyed by
    its own symbol: the quality gate uses them to tell a lost tick from a rejected one.
    """

    reason: Reason
    detail: str
    symbol: str | None = None
    seq: int | None = None


def decode_tick(value: bytes | None) -> Tick | DecodeFailure:
    """The tick in ``value`` (the message alone: size, JSON, schema, book rules)."""
    if value is None:
        return DecodeFailure(Reason.NOT_JSON, "empty message (null value)")
    if len(value) > MAX_MESSAGE_BYTES:
        return DecodeFailure(
            Reason.TOO_LARGE,
            f"{len(value):,} bytes; a tick is at most {MAX_MESSAGE_BYTES:,} bytes, so it was "
            "not parsed",
        )
    try:
        return Tick.from_json(value)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        reason = _reason(errors[0])
        symbol, seq = _identity(value) if reason is not Reason.NOT_JSON else (None, None)
        return DecodeFailure(reason, summarize_errors(errors, exc.error_count()), symbol, seq)


@dataclass(frozen=True)
class Skipped:
    """A message a consuming service passed over because it is not a valid tick (the store and
    the archive on the clean topic): never written, but counted and reported."""

    record: ConsumerRecord
    failure: DecodeFailure

    def __str__(self) -> str:
        record, failure = self.record, self.failure
        return (
            f"skipped   {record.topic}/{record.partition}@{record.offset} {failure.reason}: "
            f"{failure.detail}"
        )


def decode_message(key: bytes | str | None, value: bytes | None) -> Tick | DecodeFailure:
    """The tick in a Kafka message: :func:`decode_tick`, plus the rules that relate the value to
    its key and to itself - the key must be the symbol, the event must not be after publication.

    Total: whatever the bytes, the answer is a tick or a failure with a reason, never an exception.
    """
    try:
        return _decode_message(key, value)
    except Exception as exc:
        return internal_failure(exc, "decoding")


def internal_failure(exc: Exception, doing: str) -> DecodeFailure:
    """A message on which the kit's own rule raised ``exc`` while ``doing`` it: rejected as
    ``internal_error`` with the exception named, so the service goes on with the next message.

    The traceback is logged the first time each kind of exception is seen (an attacker repeating
    the message cannot flood the log); every such message is still counted by its reason.
    """
    kind = type(exc).__name__
    if kind not in _LOGGED_INTERNAL_ERRORS:
        _LOGGED_INTERNAL_ERRORS.add(kind)
        log.error(
            "a rule raised %s while %s a message; it was set aside", kind, doing, exc_info=exc
        )
    return DecodeFailure(
        Reason.INTERNAL_ERROR,
        clip(
            f"{kind} while {doing}: {exc}. This is a bug of orderbook_kit, not of the message's "
            "sender: please report it with this message's offset"
        ),
    )


_LOGGED_INTERNAL_ERRORS: set[str] = set()


def _decode_message(key: bytes | str | None, value: bytes | None) -> Tick | DecodeFailure:
    decoded = decode_tick(value)
    key_text = _key_text(key)
    if isinstance(decoded, DecodeFailure):
        if decoded.symbol is not None and decoded.symbol != key_text:
            # Keyed as another symbol, it may sit in another partition: its seq says nothing
            # about the order of its symbol's ticks.
            return DecodeFailure(decoded.reason, decoded.detail)
        return decoded
    tick = decoded
    if key_text != tick.symbol:
        shown = "no key" if key is None else f"key {clip(repr(key_text or key), 40)}"
        return DecodeFailure(
            Reason.KEY_MISMATCH,
            f"{shown}, but the tick is for {tick.symbol}; the key must be the symbol (it "
            "decides the partition, and so the order of the symbol's ticks)",
        )
    # A difference, not publish_time + MAX_CLOCK_SKEW: that sum overflows in the year 9999.
    if tick.publish_time is not None and tick.event_time - tick.publish_time > MAX_CLOCK_SKEW:
        ahead = (tick.event_time - tick.publish_time).total_seconds()
        return DecodeFailure(
            Reason.TIME_AHEAD,
            f"event_time {tick.event_time.isoformat()} is {ahead:,.3f} s after its own "
            f"publish_time; a tick cannot be published before it happened",
            tick.symbol,
            tick.seq,
        )
    return tick


def clip(text: str, limit: int = MAX_DETAIL_CHARS) -> str:
    """``text`` cut to ``limit`` characters, marked with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _key_text(key: bytes | str | None) -> str | None:
    if key is None or isinstance(key, str):
        return key
    try:
        return key.decode()
    except UnicodeDecodeError:
        return None


def readable_identity(
    key: bytes | str | None, value: bytes | None
) -> tuple[str | None, int | None]:
    """Symbol and seq of any message, if it carries valid ones and is keyed by that symbol;
    (None, None) otherwise. Never raises: it is used after a rule failed on the message."""
    try:
        if value is None or len(value) > MAX_MESSAGE_BYTES:
            return None, None
        symbol, seq = _identity(value)
        return (symbol, seq) if symbol is not None and symbol == _key_text(key) else (None, None)
    except Exception:
        return None, None


def _identity(value: bytes) -> tuple[str | None, int | None]:
    """Symbol and seq of a message that failed validation, if it still carries valid ones."""
    try:
        body = pydantic_core.from_json(value)  # bounded nesting, like the validator's parser
    except ValueError:
        return None, None
    if not isinstance(body, dict):
        return None, None
    symbol, seq = body.get("symbol"), body.get("seq")
    if not isinstance(symbol, str) or type(seq) is not int or not 0 <= seq <= MAX_SEQ:
        return None, None
    try:
        return symbol_rule(symbol), seq
    except ValueError:
        return None, None


def _reason(error: ErrorDetails) -> Reason:
    """The reason code of pydantic's first error (a message with several is named by its first)."""
    kind = error["type"]
    field = error["loc"][0] if error["loc"] else None
    if kind in {"json_invalid", "json_type"}:
        return Reason.NOT_JSON
    if kind in {"crossed_book", "locked_book"}:
        return Reason(kind)
    if kind == "greater_than" and field in _PRICE_FIELDS:
        return Reason.NON_POSITIVE_PRICE
    if kind == "greater_than" and field in _SIZE_FIELDS:
        return Reason.NON_POSITIVE_SIZE
    return Reason.INVALID_SCHEMA


def summarize_errors(errors: list[ErrorDetails], total: int) -> str:
    """The first few of pydantic's ``errors`` (of ``total``), each with its field, cut short."""
    parts = []
    for error in errors[:MAX_ERRORS_LISTED]:
        # A field name comes from the message itself, so it can be as long as the message.
        field = clip(".".join(str(part) for part in error["loc"]), 40)
        # A rule on the whole tick (crossed or locked book) has no field to name.
        parts.append(clip(f"{field}: {error['msg']}" if field else error["msg"], _MAX_PART_CHARS))
    if total > MAX_ERRORS_LISTED:
        parts.append(f"and {total - MAX_ERRORS_LISTED:,} more error(s)")
    return clip("; ".join(parts))
