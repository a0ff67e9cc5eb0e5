"""One bounded wait: look at something until it is as wanted, or give up saying what it was."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from orderbook_kit.errors import OrderbookKitError

__all__ = ["poll_until"]

T = TypeVar("T")

PAUSE_S = 0.25


def poll_until(
    look: Callable[[], T],
    until: Callable[[T], bool],
    *,
    what: str,
    timeout_s: float,
    show: Callable[[T], str] = str,
) -> tuple[T, float]:
    """Call ``look()`` until ``until(result)`` holds; return the result and the seconds waited.

    After ``timeout_s`` raises :class:`OrderbookKitError` naming ``what`` was waited for and
    showing the last result (``show`` turns it into text).
    """
    started = time.monotonic()
    while True:
        seen = look()
        waited = time.monotonic() - started
        if until(seen):
            return seen, waited
        if waited > timeout_s:
            raise OrderbookKitError(
                f"Waited {timeout_s:g} s for {what}, in vain. The last look:\n{show(seen)}"
            )
        time.sleep(PAUSE_S)
