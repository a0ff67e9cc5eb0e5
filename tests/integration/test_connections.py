"""The API's reused PostgreSQL connections, against a real server of the test's own: reused while
it runs, and a restart of PostgreSQL costs no failed call."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from orderbook_kit.database.pool import ReusedConnections
from orderbook_kit.errors import DatabaseUnreachableError
from orderbook_kit.lab.postgres import server

pytestmark = pytest.mark.postgres


def backend_pid(connection: psycopg.Connection) -> int:
    return connection.execute("SELECT pg_backend_pid()").fetchone()[0]


def test_connections_are_reused_and_survive_a_restart(own_database: tuple[str, Path]) -> None:
    url, state = own_database
    connections = ReusedConnections(url, schema=None, timeout_s=3)
    first = {connections.run(backend_pid) for _ in range(5)}
    assert len(first) == 1 and connections.opened == 1  # one connection, five calls

    # A call that fails inside a transaction leaves its connection closed, not reused.
    def fails_mid_transaction(connection: psycopg.Connection) -> None:
        connection.execute("BEGIN")
        raise ValueError("the caller's own error")

    with pytest.raises(ValueError, match="the caller's own error"):
        connections.run(fails_mid_transaction)
    assert connections.run(backend_pid) not in first
    assert connections.opened == 2

    # The kept connection dies with the server: the next call is retried on a fresh one.
    server.stop(state)
    server.start(url, state)
    assert connections.run(backend_pid) > 0
    assert connections.opened == 3
    # While it is down: the reason, and the fix.
    server.stop(state)
    with pytest.raises(DatabaseUnreachableError, match="Fix: start the kit's PostgreSQL"):
        connections.run(backend_pid)
    connections.close()
