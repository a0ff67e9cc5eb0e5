"""``with`` for the kit's clients: connect on enter, close on exit - without hiding an error.

When the ``with`` body raised, closing must neither wait (the broker may be what failed) nor
replace that error with one of its own: the error the user needs to see is the first one.
"""

from __future__ import annotations

import logging
from typing import Self

from orderbook_kit.errors import OrderbookKitError

__all__ = ["Connectable"]

log = logging.getLogger(__name__)


class Connectable:
    """Base for clients with ``connect()`` and ``close(timeout_s=None)``."""

    def connect(self) -> Self:
        raise NotImplementedError

    def close(self, timeout_s: float | None = None) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.connect()

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if exc_type is None:
            self.close()
            return
        try:
            self.close(timeout_s=0)
        except OrderbookKitError as exc:
            log.warning("while stopping after an error: %s", exc)
