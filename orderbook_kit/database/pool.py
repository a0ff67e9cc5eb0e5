"""Reused connections to PostgreSQL, for a service that answers many small queries (the API).

Opening a connection costs a few milliseconds on both sides (PostgreSQL starts a process for
each), more than a small query itself; at a few hundred requests a second that is most of the
work. So idle connections are kept and handed out again - at most ``keep`` of them.

A kept connection may have died meanwhile (PostgreSQL restarted). A query that fails because its
kept connection is lost is retried once on a fresh connection, so the first request after an outage
gets an answer, or the real reason PostgreSQL gives now - never a stale connection's error.
"""

from __future__ import annotations

import contextlib
import queue
from collections.abc import Callable
from typing import TypeVar

import psycopg
from psycopg.pq import TransactionStatus

from orderbook_kit.database.client import connect

__all__ = ["ReusedConnections"]

T = TypeVar("T")


class ReusedConnections:
    """Connections to ``url`` (search path ``schema``), reused across calls of :meth:`run`.

    Thread-safe: each call has a connection to itself for as long as it runs. Nothing connects
    before the first call.
    """

    def __init__(self, url: str, *, schema: str | None, timeout_s: float, keep: int = 8) -> None:
        self.url = url
        self.schema = schema
        self.timeout_s = timeout_s
        self._idle: queue.LifoQueue[psycopg.Connection] = queue.LifoQueue(maxsize=keep)
        self.opened = 0  # connections opened so far: tells reuse from reconnecting

    def run(self, work: Callable[[psycopg.Connection], T]) -> T:
        """``work(connection)``'s result. Raises what ``work`` raises, or
        :class:`~orderbook_kit.errors.DatabaseUnreachableError` when no connection can be had."""
        try:
            kept = self._idle.get_nowait()
        except queue.Empty:
            return self._run_on(self._open(), work)
        try:
            return self._run_on(kept, work)
        except psycopg.OperationalError:
            # Only a connection that died meanwhile earns a second try; a query that failed on
            # its own (cancelled by the statement timeout, say) would just fail again.
            if not kept.broken:
                raise
            return self._run_on(self._open(), work)

    def close(self) -> None:
        """Close every idle connection (the ones in use close when their call ends)."""
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return

    def _open(self) -> psycopg.Connection:
        connection = connect(self.url, timeout_s=self.timeout_s, schema=self.schema)
        self.opened += 1
        return connection

    def _run_on(self, connection: psycopg.Connection, work: Callable[[psycopg.Connection], T]) -> T:
        reusable = False
        try:
            result = work(connection)
            reusable = connection.info.transaction_status == TransactionStatus.IDLE
            return result
        finally:
            self._release(connection, reusable)

    def _release(self, connection: psycopg.Connection, reusable: bool) -> None:
        if reusable and not connection.closed and not connection.broken:
            with contextlib.suppress(queue.Full):
                self._idle.put_nowait(connection)
                return
        connection.close()
