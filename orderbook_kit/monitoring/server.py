"""A service's ``/metrics`` endpoint: prometheus_client's HTTP server, on 127.0.0.1 only."""

from __future__ import annotations

import errno
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server

from orderbook_kit.errors import OrderbookKitError, SettingsError

__all__ = ["LOOPBACK", "MetricsServer", "metrics_endpoint", "serve_metrics"]

LOOPBACK = "127.0.0.1"  # metrics tell a lot about a pipeline: never on every interface


@dataclass
class MetricsServer:
    """A running endpoint; :meth:`close` stops it (the service's exit does too: daemon thread)."""

    url: str
    port: int
    _server: WSGIServer
    _thread: threading.Thread

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def serve_metrics(registry: CollectorRegistry, port: int, *, source: str) -> MetricsServer:
    """Serve ``registry`` at ``http://127.0.0.1:<port>/metrics``; port 0 picks a free one.

    ``source`` names where the port came from (``--metrics-port`` or ``ORDERBOOK_METRICS_PORT``),
    for the error a port in use gets.
    """
    try:
        server, thread = start_http_server(port, addr=LOOPBACK, registry=registry)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise SettingsError(
                "metrics_port",
                source,
                f"port {port} on {LOOPBACK} is already in use by another program; choose another "
                "port, or 0 for any free one (the service prints its URL)",
            ) from None
        raise OrderbookKitError(
            f"Could not serve metrics on {LOOPBACK}:{port}: {exc.strerror or exc}. Choose another "
            f"port with {source}, or 0 for any free one."
        ) from exc
    bound = server.server_port
    return MetricsServer(f"http://{LOOPBACK}:{bound}/metrics", bound, server, thread)


@contextmanager
def metrics_endpoint(
    registry: CollectorRegistry, port: int | None, *, source: str
) -> Iterator[MetricsServer | None]:
    """The endpoint while the block runs (its URL printed), or nothing if ``port`` is None."""
    if port is None:
        yield None
        return
    server = serve_metrics(registry, port, source=source)
    print(f"Metrics at {server.url}", flush=True)
    try:
        yield server
    finally:
        server.close()
