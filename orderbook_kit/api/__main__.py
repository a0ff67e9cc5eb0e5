"""The API service: quotes, candles and live ticks over HTTP, on 127.0.0.1.

python -m orderbook_kit.api                 # at http://127.0.0.1:8000 (ORDERBOOK_API_PORT)
python -m orderbook_kit.api --port 0        # any free port (it prints its URL)

OpenAPI docs at /docs. Ctrl-C (or SIGTERM) stops it.
"""

from __future__ import annotations

import contextlib
import socket
import sys
from collections.abc import Sequence

from orderbook_kit.api.app import create_app
from orderbook_kit.errors import OrderbookKitError
from orderbook_kit.runtime.command_line import CommandParser, flag_type
from orderbook_kit.runtime.service import run_service
from orderbook_kit.settings.environment import SETTINGS, load_settings

HOST = "127.0.0.1"  # never on the network: the API has no authentication


def bind(port: int) -> socket.socket:
    """A listening socket on 127.0.0.1:``port`` (0: any free port), or one clear error."""
    # IPPROTO_TCP, not the default 0: asyncio turns Nagle's algorithm off (TCP_NODELAY) only on
    # accepted sockets that say they are TCP, and they inherit this listener's protocol. Without
    # it every keep-alive request after a connection's first waited for the client's delayed ACK:
    # about 40 ms on Linux (found by benchmarks/api_load.py; uvicorn issue #3149).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((HOST, port))
    except OSError as exc:
        sock.close()
        raise OrderbookKitError(
            f"--port / ORDERBOOK_API_PORT: port {port} on {HOST} is in use ({exc.strerror}); "
            "stop the program that holds it, or choose another port (0 picks a free one)"
        ) from None
    sock.listen(128)
    return sock


def serve(argv: Sequence[str] | None) -> int:
    import uvicorn  # the server, only when serving

    from orderbook_kit.api.protocol import BoundedH11Protocol

    settings = load_settings()
    parser = CommandParser(prog="python -m orderbook_kit.api", description=__doc__)
    parser.add_argument(
        "--port",
        type=flag_type(SETTINGS["api.port"].rule),
        default=settings.api.port,
        help=f"port on {HOST} (0: any free port; env ORDERBOOK_API_PORT, default %(default)s)",
    )
    parser.add_argument(
        "--stream-buffer",
        type=flag_type(SETTINGS["api.stream_buffer"].rule),
        default=settings.api.stream_buffer,
        help="live ticks a WebSocket client may be behind before it is dropped (env "
        "ORDERBOOK_API_STREAM_BUFFER, default %(default)s)",
    )
    arguments = parser.parse_args(argv)
    settings = settings.replace(api={"stream_buffer": arguments.stream_buffer})
    sock = bind(arguments.port)
    port = sock.getsockname()[1]
    print(f"API at http://{HOST}:{port} (docs at /docs, dashboard at /)", flush=True)
    config = uvicorn.Config(
        create_app(settings),
        log_level="warning",
        access_log=False,
        http=BoundedH11Protocol,  # a half-sent request is answered 408 and closed, not kept
    )
    # uvicorn shuts down cleanly on Ctrl-C (or SIGTERM), then passes the signal on.
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.Server(config).run(sockets=[sock])
    print("API stopped.", flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_service(lambda: serve(argv))


if __name__ == "__main__":
    sys.exit(main())
