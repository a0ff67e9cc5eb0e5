"""Connections to PostgreSQL (the hot store), bounded in time, with errors that name the fix.

Every connection is in autocommit mode and writes inside explicit ``with conn.transaction():``
blocks. (With psycopg's default, a lone ``SELECT`` opens an implicit transaction, a later
``transaction()`` block becomes a mere savepoint inside it, and closing the connection rolls it
all back: the classic way to lose a "committed" batch.)
"""

from __future__ import annotations

import logging
import math

import psycopg

from orderbook_kit.errors import DatabaseUnreachableError
from orderbook_kit.settings.rules import redacted_url

__all__ = ["HOW_TO_START", "connect", "database_answers", "first_line", "unreachable_database"]

log = logging.getLogger(__name__)

HOW_TO_START = (
    "start the kit's PostgreSQL (`python -m orderbook_kit.lab.postgres start`, which `make lab` "
    "runs), or Docker's (`docker compose up -d postgres`), or point DATABASE_URL at yours"
)
# A statement that runs longer than this is stuck (a lock held by a stalled client): fail it, so a
# service reports the problem instead of hanging.
STATEMENT_TIMEOUT_S = 60
# A server that vanishes without closing the connection (a cable, a suspended VM) is noticed after
# this long without an answer, instead of the operating system's 2 hours.
KEEPALIVE_IDLE_S = 5
KEEPALIVE_INTERVAL_S = 2
KEEPALIVE_COUNT = 3


def connect(
    url: str, *, timeout_s: float, schema: str | None = None, application: str = "orderbook-kit"
) -> psycopg.Connection:
    """An autocommit connection to ``url``; :class:`DatabaseUnreachableError` within about
    ``timeout_s`` if no PostgreSQL answers there or it refuses us. With ``schema``, unqualified
    table names mean that schema's tables (it need not exist yet)."""
    options = f"-c statement_timeout={STATEMENT_TIMEOUT_S * 1000}"
    if schema is not None:
        options += f" -c search_path={schema}"
    try:
        return psycopg.connect(
            url,
            autocommit=True,
            # libpq counts whole seconds, and at least 2.
            connect_timeout=max(2, math.ceil(timeout_s)),
            application_name=application,
            options=options,
            keepalives=1,
            keepalives_idle=KEEPALIVE_IDLE_S,
            keepalives_interval=KEEPALIVE_INTERVAL_S,
            keepalives_count=KEEPALIVE_COUNT,
            tcp_user_timeout=int(timeout_s * 1000),
        )
    except psycopg.OperationalError as exc:
        raise unreachable_database(url, exc) from None


def database_answers(url: str, timeout_s: float = 3.0) -> bool:
    """Does a PostgreSQL at ``url`` accept us (its role and database exist)?"""
    try:
        connect(url, timeout_s=timeout_s).close()
    except DatabaseUnreachableError:
        return False
    return True


def unreachable_database(url: str, exc: Exception) -> DatabaseUnreachableError:
    """The error for a connection to ``url`` that failed with ``exc``, naming the likely fix."""
    reason = first_line(exc)
    shown = redacted_url(url)
    if "does not exist" in reason:  # role "x" / database "y" does not exist
        fix = (
            "DATABASE_URL must name a user and database that exist there; the kit's own server "
            "creates them when it starts (`python -m orderbook_kit.lab.postgres start`)"
        )
    elif "password" in reason or "authentication" in reason:
        fix = "put the right user and password in DATABASE_URL"
    else:
        fix = HOW_TO_START
    return DatabaseUnreachableError(f"No PostgreSQL accepted us at {shown} ({reason}). Fix: {fix}.")


def first_line(exc: Exception) -> str:
    """What psycopg says went wrong, in one line (its messages run over several)."""
    text = str(exc).strip().splitlines()
    # libpq: 'connection failed: connection to server at "127.0.0.1", port 5433 failed: ...'
    return (text[0] if text else type(exc).__name__).removeprefix("connection failed: ")
