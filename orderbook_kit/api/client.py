"""Reading the API's live ticks from Python: the WebSocket ``/ws/ticks``, with every wait bounded.

A bare client is a few lines (notebook 12 shows them); this adds what a real reader needs: a
deadline, ticks decoded into :class:`~orderbook_kit.market.tick.Tick`, and a clear error when
the API cannot be reached or closes the stream (a reader too slow, a bad symbol, Kafka down).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from urllib.parse import urlencode, urlsplit, urlunsplit

from pydantic import TypeAdapter, ValidationError
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.sync.client import connect

from orderbook_kit.errors import OrderbookKitError
from orderbook_kit.market.tick import Tick

__all__ = ["ApiStreamError", "live_ticks", "websocket_url"]

OPEN_TIMEOUT_S = 10.0
RECEIVE_SLICE_S = 0.2  # how soon a stop request or the deadline is noticed
CLOSE_TIMEOUT_S = 2.0
NORMAL_CLOSURE = 1000
# Each WebSocket message is a JSON array of ticks, validated as the Tick model's own JSON (strict).
TICK_BATCH = TypeAdapter(list[Tick])


class ApiStreamError(OrderbookKitError):
    """The API's live stream could not be opened, or the API closed it early."""


def websocket_url(api_url: str, symbols: Iterable[str] | None = None) -> str:
    """The live-tick WebSocket of the API at ``api_url`` (``http://127.0.0.1:8000``), filtered
    to ``symbols`` if given."""
    parts = urlsplit(api_url)
    if parts.scheme not in ("http", "https"):
        raise ApiStreamError(f"{api_url!r} is not an API URL; give one like http://127.0.0.1:8000")
    scheme = "wss" if parts.scheme == "https" else "ws"
    query = urlencode([("symbol", symbol) for symbol in symbols or ()])
    path = parts.path.rstrip("/") + "/ws/ticks"
    return urlunsplit((scheme, parts.netloc, path, query, ""))


def live_ticks(
    api_url: str,
    *,
    duration_s: float,
    symbols: Iterable[str] | None = None,
    stop: threading.Event | None = None,
) -> Iterator[Tick]:
    """The clean ticks the API streams from now on, for ``duration_s`` seconds (or until
    ``stop`` is set, or the API ends the stream normally).

    Raises :class:`ApiStreamError` if the API does not answer, or closes the stream with an
    error - for instance 1013 when this reader fell more than the API's buffer behind.
    """
    url = websocket_url(api_url, symbols)
    deadline = time.monotonic() + duration_s
    try:
        websocket = connect(url, open_timeout=OPEN_TIMEOUT_S, close_timeout=CLOSE_TIMEOUT_S)
    except (OSError, InvalidHandshake, TimeoutError) as exc:
        raise ApiStreamError(
            f"the API's live stream at {url} could not be opened ({exc}); is the API running? "
            "Start it with `python -m orderbook_kit.api`"
        ) from None
    with websocket:
        while not (stop is not None and stop.is_set()):
            left = deadline - time.monotonic()
            if left <= 0:
                return
            try:
                text = websocket.recv(timeout=min(RECEIVE_SLICE_S, left))
            except TimeoutError:
                continue
            except ConnectionClosed as exc:
                if exc.rcvd is not None and exc.rcvd.code == NORMAL_CLOSURE:
                    return
                said = f"code {exc.rcvd.code}: {exc.rcvd.reason}" if exc.rcvd else "no reason given"
                raise ApiStreamError(f"the API closed the live stream at {url} ({said})") from None
            try:
                batch = TICK_BATCH.validate_json(text)
            except ValidationError as exc:
                raise ApiStreamError(
                    f"{url} sent something that is not a batch of ticks ({exc.error_count()} "
                    f"problems, the first: {exc.errors()[0]['msg']}); is it the kit's API?"
                ) from None
            yield from batch
