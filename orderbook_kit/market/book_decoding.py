"""Turn a record of the book's raw topic into a :class:`BookUpdate` or :class:`BookSnapshot`, or
say exactly why not (the book service's dead-letter reason and detail).

A raw record says what it is in its ``kind`` header (``update`` or ``snapshot``), as a feed
handler that receives both from an exchange labels them. Every path is bounded like the tick's
(:mod:`.decoding`): a message larger than any book message is refused unread, the JSON parser has
a nesting limit, and the detail is cut to a fixed size. Total: whatever the bytes, the answer is
a message or a :class:`BookRejection`, never an exception.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError

from orderbook_kit.market.book_messages import BookSnapshot, BookUpdate
from orderbook_kit.market.decoding import clip, internal_failure, summarize_errors
from orderbook_kit.market.reasons import BookReason

__all__ = [
    "HEADER_KIND",
    "KIND_SNAPSHOT",
    "KIND_UPDATE",
    "MAX_BOOK_MESSAGE_BYTES",
    "BookRejection",
    "decode_book_message",
    "kind_headers",
]

HEADER_KIND = "kind"
KIND_UPDATE = b"update"
KIND_SNAPSHOT = b"snapshot"
# A snapshot of MAX_DEPTH levels a side is about 50 KB of JSON; anything much larger is no book
# message and is refused before parsing.
MAX_BOOK_MESSAGE_BYTES = 256 * 1024

# Pydantic's error types the book's models raise by name (book_messages.py), as reasons.
_NAMED = {reason.value: reason for reason in BookReason}
_NAMED["checksum_mismatch"] = BookReason.CHECKSUM_MISMATCH


@dataclass(frozen=True)
class BookRejection:
    """A raw record that is not a valid book message: ``reason`` is a code, ``detail`` says why."""

    reason: BookReason
    detail: str


def kind_headers(message: BookUpdate | BookSnapshot) -> list[tuple[str, bytes]]:
    """The headers that label ``message`` in the raw topic."""
    return [(HEADER_KIND, KIND_SNAPSHOT if isinstance(message, BookSnapshot) else KIND_UPDATE)]


def decode_book_message(
    headers: list[tuple[str, bytes | None]] | None, key: bytes | None, value: bytes | None
) -> BookUpdate | BookSnapshot | BookRejection:
    """The update or snapshot in a raw record, judged alone: its kind, size, JSON, schema, the
    book rules of :mod:`.book_messages`, and its key (which must be its symbol)."""
    try:
        return _decode(headers, key, value)
    except Exception as exc:
        failure = internal_failure(exc, "decoding a book message")
        return BookRejection(BookReason.INTERNAL_ERROR, failure.detail)


def _decode(
    headers: list[tuple[str, bytes | None]] | None, key: bytes | None, value: bytes | None
) -> BookUpdate | BookSnapshot | BookRejection:
    kinds = [v for k, v in headers or () if k == HEADER_KIND]
    if kinds not in ([KIND_UPDATE], [KIND_SNAPSHOT]):
        shown = clip(repr(kinds), 80) if kinds else "none"
        return BookRejection(
            BookReason.UNKNOWN_KIND,
            f"header {HEADER_KIND!r} must be once {KIND_UPDATE.decode()!r} or "
            f"{KIND_SNAPSHOT.decode()!r}; it was {shown}",
        )
    model = BookSnapshot if kinds[0] == KIND_SNAPSHOT else BookUpdate
    if value is None:
        return BookRejection(BookReason.NOT_JSON, "empty message (null value)")
    if len(value) > MAX_BOOK_MESSAGE_BYTES:
        return BookRejection(
            BookReason.TOO_LARGE,
            f"{len(value):,} bytes; a book message is at most {MAX_BOOK_MESSAGE_BYTES:,} bytes, "
            "so it was not parsed",
        )
    try:
        message = model.model_validate_json(value)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        kind = errors[0]["type"]
        if kind in {"json_invalid", "json_type"}:
            reason = BookReason.NOT_JSON
        else:
            reason = _NAMED.get(kind, BookReason.INVALID_SCHEMA)
        return BookRejection(reason, summarize_errors(errors, exc.error_count()))
    if key != message.symbol.encode():
        shown = "no key" if key is None else f"key {clip(repr(key), 40)}"
        return BookRejection(
            BookReason.KEY_MISMATCH,
            f"{shown}, but the message is for {message.symbol}; the key must be the symbol (it "
            "decides the partition, and so the order of the symbol's updates)",
        )
    return message
