"""Find the PostgreSQL binaries (initdb, pg_ctl, postgres) that the ``pgserver`` wheel ships.

The kit only uses pgserver as a way to get PostgreSQL 16 from PyPI: it never imports it (its
import sets up lock files and exit hooks) and runs the binaries itself, like the Kafka jars.
pgserver has wheels for Linux x86_64, macOS (Intel and Apple silicon) and Windows, for Python
3.9-3.12; elsewhere (Linux aarch64, Python 3.13+) the error names the alternatives.
"""

from __future__ import annotations

import importlib.util
import platform
import sys
from pathlib import Path

from orderbook_kit.database.client import HOW_TO_START
from orderbook_kit.errors import PostgresNotAvailableError

__all__ = ["PGSERVER_VERSION", "postgres_bin"]

PGSERVER_VERSION = "0.1.4"  # PostgreSQL 16.2; pinned in requirements.in


def postgres_bin() -> Path:
    """The folder with ``initdb``, ``pg_ctl`` and ``postgres``, or a clear error."""
    spec = importlib.util.find_spec("pgserver")  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise PostgresNotAvailableError(_no_wheel_message())
    folder = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (folder / "pg_ctl").exists() and not (folder / "pg_ctl.exe").exists():
        raise PostgresNotAvailableError(
            f"The pgserver package has no PostgreSQL binaries in {folder}; reinstall it "
            f"(`.venv/bin/pip install --force-reinstall pgserver=={PGSERVER_VERSION}`), or "
            f"{HOW_TO_START}."
        )
    return folder


def _no_wheel_message() -> str:
    machine = f"{platform.system()} {platform.machine()}, Python {sys.version.split()[0]}"
    return (
        f"No embedded PostgreSQL for this machine ({machine}): the pgserver package that ships "
        "it has wheels for Linux x86_64, macOS and Windows with Python 3.9-3.12 only, so `make "
        "install` left it out. Use Docker (`docker compose up -d postgres`; DATABASE_URL's "
        "default already points at it) or your system's PostgreSQL 14+ (`sudo apt install "
        "postgresql`, then create a user and database and set DATABASE_URL to them)."
    )
