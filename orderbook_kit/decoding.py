"""Turn a Kafka message value into a :class:`Tick`, or say exactly why not.

Shared by the DataFrame reader (which counts and skips bad messages) and the quality gate (which
dead-letters them with the reason), so both judge a message the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from .models import Tick
from .reasons import Reason

__all__ = ["DecodeFailure", "decode_tick"]

_PRICE_FIELDS = {"bid", "ask"}
_SIZE_FIELDS = {"bid_size", "ask_size"}


@dataclass(frozen=True)
class DecodeFailure:
    """A message that is not a valid tick: ``reason`` is a code, ``detail`` says why."""

    reason: Reason
    detail: str


def decode_tick(value: bytes | None) -> Tick | DecodeFailure:
    if value is None:
        return DecodeFailure(Reason.NOT_JSON, "empty message (null value)")
    try:
        return Tick.from_json(value)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        reason = _reason(errors[0])
        if reason is Reason.NOT_JSON:  # pydantic says "Invalid JSON: <where and why>"
            return DecodeFailure(reason, errors[0]["msg"])
        return DecodeFailure(reason, _summarize(errors))


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


def _summarize(errors: list[ErrorDetails]) -> str:
    parts = []
    for error in errors:
        field = ".".join(str(part) for part in error["loc"])
        # A rule on the whole tick (crossed or locked book) has no field to name.
        parts.append(f"{field}: {error['msg']}" if field else error["msg"])
    return "; ".join(parts)
