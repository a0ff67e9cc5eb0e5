"""Turn a Kafka message value into a :class:`Tick`, or say exactly why not.

Shared by the DataFrame reader (which counts and skips bad messages) and the quality gate (which
dead-letters them with the reason), so both judge a message the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError

from .models import Tick

__all__ = ["DecodeFailure", "decode_tick"]


@dataclass(frozen=True)
class DecodeFailure:
    """A message that is not a valid tick: ``reason`` is a short code, ``detail`` says why."""

    reason: str  # "not_json" | "invalid_tick"
    detail: str


def decode_tick(value: bytes | None) -> Tick | DecodeFailure:
    if value is None:
        return DecodeFailure("not_json", "empty message (null value)")
    try:
        return Tick.from_json(value)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        if errors and errors[0]["type"] in {"json_invalid", "json_type"}:
            return DecodeFailure("not_json", f"not JSON: {errors[0]['msg']}")
        return DecodeFailure("invalid_tick", _summarize(errors))


def _summarize(errors: list) -> str:
    parts = []
    for error in errors:
        field = ".".join(str(part) for part in error["loc"]) or "tick"
        parts.append(f"{field}: {error['msg']}")
    return "; ".join(parts)
