"""Start, stop and inspect the kit's own PostgreSQL server, the way ``broker`` runs Kafka.

A server lives in a *state directory* (default ``./.postgres``): its data (``data/``) and its log
(``postgres.log``). It listens on 127.0.0.1 only, at the port of DATABASE_URL, and trusts local
connections (no password: nothing but this machine can reach it). Stopping keeps the data.

PostgreSQL refuses to run as root. Run as root (a container, CI), the kit therefore runs it as a
system user ``orderbook-pg`` that it creates once (``useradd --system``), makes that user the
owner of the state directory, and lets it traverse (o+x, never read) the folders above the state
directory and the binaries. Each change is printed when it is made.
"""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from orderbook_kit.database.client import connect, database_answers
from orderbook_kit.errors import DatabaseError, PortInUseError
from orderbook_kit.lab.postgres.runtime import postgres_bin
from orderbook_kit.paths import workbook_folder
from orderbook_kit.settings.rules import redacted_url

__all__ = [
    "SYSTEM_USER",
    "Address",
    "ServerStatus",
    "default_state_dir",
    "embedded_address",
    "ensure",
    "start",
    "status",
    "stop",
    "tail_log",
]

SYSTEM_USER = "orderbook-pg"  # who runs PostgreSQL when the kit runs as root
DEFAULT_START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
TOOL_TIMEOUT_S = 120.0  # initdb writes a few MB; on a slow disk it can take a while
LOG_TAIL_LINES = 25
LOOPBACK_HOSTS = {"127.0.0.1", "localhost"}
# pg_ctl's exit codes for `status`
_PG_CTL_NOT_RUNNING = 3
_PG_CTL_NO_DATA_DIR = 4
HOW_TO_USE_DOCKER = "use Docker's PostgreSQL (`docker compose up -d postgres`)"


def default_state_dir() -> Path:
    """``$ORDERBOOK_DB_DIR``, else ``<repository>/.postgres``."""
    return workbook_folder("postgres", "ORDERBOOK_DB_DIR")


@dataclass(frozen=True)
class Address:
    """Where the embedded server listens and who it serves, from DATABASE_URL."""

    port: int
    user: str
    database: str


def embedded_address(database_url: str) -> Address:
    """The port, user and database of ``database_url``, which must name this machine."""
    try:
        parts = conninfo_to_dict(database_url)
    except psycopg.ProgrammingError as exc:
        raise DatabaseError(
            f"DATABASE_URL={redacted_url(database_url)!r} cannot be read ({exc}); use e.g. "
            "postgresql://orderbook@127.0.0.1:5433/orderbook"
        ) from None
    host = str(parts.get("host") or "")
    if host not in LOOPBACK_HOSTS:
        raise DatabaseError(
            f"DATABASE_URL names host {host!r}, but the kit starts PostgreSQL on 127.0.0.1 only. "
            "Start the server at that address yourself, or use postgresql://<user>@127.0.0.1:"
            "<port>/<database> for the kit's own."
        )
    user = str(parts.get("user") or "orderbook")
    return Address(int(parts.get("port") or 5432), user, str(parts.get("dbname") or user))


@dataclass(frozen=True)
class ServerState:
    """The files of one server instance."""

    directory: Path

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    @property
    def log_file(self) -> Path:
        return self.directory / "postgres.log"


@dataclass(frozen=True)
class ServerStatus:
    pid: int
    port: int
    log_file: Path


def status(state_dir: Path) -> ServerStatus | None:
    """The server running from ``state_dir``, or None if none is."""
    state = ServerState(state_dir)
    if not (state.data_dir / "PG_VERSION").exists():
        return None
    result = _pg_ctl(["status", "-D", str(state.data_dir)], check=False)
    if result.returncode in (_PG_CTL_NOT_RUNNING, _PG_CTL_NO_DATA_DIR):
        return None
    if result.returncode != 0:
        raise DatabaseError(f"`pg_ctl status` failed: {result.stdout.strip()}")
    # postmaster.pid: line 1 the pid, line 4 the port.
    lines = (state.data_dir / "postmaster.pid").read_text().splitlines()
    return ServerStatus(int(lines[0]), int(lines[3]), state.log_file)


def ensure(
    database_url: str, state_dir: Path, *, timeout_s: float = DEFAULT_START_TIMEOUT_S
) -> bool:
    """Use the PostgreSQL that accepts us at ``database_url`` (Docker's, yours, ours); else start
    the kit's there. True if it was started."""
    if database_answers(database_url):
        return False
    start(database_url, state_dir, timeout_s=timeout_s)
    return True


def start(
    database_url: str, state_dir: Path, *, timeout_s: float = DEFAULT_START_TIMEOUT_S
) -> ServerStatus:
    """Start the server of ``state_dir`` at DATABASE_URL's port, creating its data, user and
    database the first time; return once it accepts connections. Idempotent."""
    address = embedded_address(database_url)
    state = ServerState(state_dir)
    running = status(state_dir)
    if running is not None:
        if running.port != address.port:
            raise DatabaseError(
                f"The PostgreSQL of {state_dir} already runs on port {running.port}, not "
                f"{address.port}. Stop it first: `python -m orderbook_kit.lab.postgres stop`."
            )
    else:
        _check_port_free(address.port, database_url)
        _prepare_state_dir(state)
        if not (state.data_dir / "PG_VERSION").exists():
            _initdb(state, address)
        _start_server(state, address, timeout_s)
    _create_database(database_url, address, timeout_s)
    started = status(state_dir)
    if started is None:
        raise DatabaseError(f"PostgreSQL stopped right after starting. {_log_end(state)}")
    return started


def stop(state_dir: Path, *, timeout_s: float = STOP_TIMEOUT_S) -> bool:
    """Stop the server cleanly (open transactions roll back); False if none ran. Data is kept."""
    state = ServerState(state_dir)
    if status(state_dir) is None:
        return False
    result = _pg_ctl(
        ["stop", "-D", str(state.data_dir), "-m", "fast", "-w", "-t", str(int(timeout_s))],
        check=False,
        timeout_s=timeout_s + 10,
    )
    if result.returncode != 0:
        raise DatabaseError(f"PostgreSQL did not stop: {result.stdout.strip()} {_log_end(state)}")
    return True


def tail_log(state_dir: Path, lines: int = LOG_TAIL_LINES) -> str:
    state = ServerState(state_dir)
    if not state.log_file.exists():
        return f"(no log yet: {state.log_file})"
    text = state.log_file.read_text(errors="replace").splitlines()[-lines:]
    return f"--- {state.log_file} (last {len(text)} lines) ---\n" + "\n".join(text)


# --- helpers ------------------------------------------------------------------------------------


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _run_as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _as_system_user() -> dict[str, Any]:
    """subprocess arguments that run a program as SYSTEM_USER when the kit runs as root.

    Its own group too, and only that: a process with the user's uid but root's group would be
    judged by the *group* bits of root's folders (often none) instead of the "others" bits that
    the kit opens for it.
    """
    if not _run_as_root():
        return {}
    import pwd  # Unix only, like running as root

    user = pwd.getpwnam(SYSTEM_USER)
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


def _pg_ctl(
    arguments: list[str], *, check: bool = True, timeout_s: float = TOOL_TIMEOUT_S
) -> subprocess.CompletedProcess[str]:
    return _run_tool("pg_ctl", arguments, check=check, timeout_s=timeout_s)


def _run_tool(
    name: str, arguments: list[str], *, check: bool = True, timeout_s: float = TOOL_TIMEOUT_S
) -> subprocess.CompletedProcess[str]:
    command = [str(postgres_bin() / name), *arguments]
    try:
        result = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout_s,
            check=False,
            # PostgreSQL's own rule: never as root.
            **_as_system_user(),
            # The server outlives this process and must not receive its Ctrl-C.
            start_new_session=True,
            # Messages in English whatever the machine's locale, so errors can be recognised.
            env={**os.environ, "LC_ALL": "C", "LANG": "C"},
        )
    except subprocess.TimeoutExpired:
        raise DatabaseError(
            f"`{name} {' '.join(arguments[:1])}` did not finish in {timeout_s:g} s"
        ) from None
    if check and result.returncode != 0:
        raise DatabaseError(
            f"`{name}` failed (exit code {result.returncode}): {result.stdout.strip()}"
        )
    return result


def _check_port_free(port: int, database_url: str) -> None:
    with socket.socket() as probe:
        # As PostgreSQL does: connections of a server stopped a moment ago may linger in
        # TIME_WAIT, and must not count as "in use".
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
            probe.listen()
            return
        except OSError:
            pass
    if database_answers(database_url):
        raise PortInUseError(
            f"A PostgreSQL already accepts us at {redacted_url(database_url)}: use it as it is "
            "(`python -m orderbook_kit.lab.postgres ensure` does), or stop it first."
        )
    raise PortInUseError(
        f"Port {port} on 127.0.0.1 is already in use by another program (or a PostgreSQL that "
        f"does not know DATABASE_URL's user). Stop it (`ss -ltnp 'sport = :{port}'` shows which), "
        "or choose another port: `export DATABASE_URL=postgresql://orderbook@127.0.0.1:"
        "<free port>/orderbook`."
    )


def _prepare_state_dir(state: ServerState) -> None:
    fix = "point ORDERBOOK_DB_DIR at a folder you can write to, or unset it"
    if state.directory.exists() and not state.directory.is_dir():
        raise DatabaseError(f"ORDERBOOK_DB_DIR: {state.directory} is a file, not a folder; {fix}")
    try:
        state.directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatabaseError(
            f"ORDERBOOK_DB_DIR: cannot create {state.directory} ({exc.strerror}); {fix}"
        ) from None
    if _run_as_root():
        _let_the_system_user_in(state)


def _let_the_system_user_in(state: ServerState) -> None:
    import pwd  # Unix only, like running as root

    try:
        user = pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        _say(f"PostgreSQL refuses to run as root: creating the system user {SYSTEM_USER!r} for it.")
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        nologin = shutil.which("nologin") or "/usr/sbin/nologin"
        try:
            subprocess.run(
                [useradd, "--system", "--no-create-home", "--shell", nologin, SYSTEM_USER],
                check=True,
                capture_output=True,
                text=True,
                timeout=60,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise DatabaseError(
                f"PostgreSQL refuses to run as root, and the user {SYSTEM_USER!r} could not be "
                f"created ({exc}). Run the kit as a normal user, or {HOW_TO_USE_DOCKER}."
            ) from None
        user = pwd.getpwnam(SYSTEM_USER)
    for path in (state.directory, state.data_dir, state.log_file):
        if path.exists():
            os.chown(path, user.pw_uid, user.pw_gid)
    os.chown(state.directory, user.pw_uid, user.pw_gid)
    for folder in [*state.directory.parents, *postgres_bin().parents]:
        mode = folder.stat().st_mode
        if not mode & stat.S_IXOTH:
            folder.chmod(mode | stat.S_IXOTH)
            _say(
                f"Let {SYSTEM_USER!r} pass through {folder} (chmod o+x) to reach PostgreSQL's "
                "files."
            )


def _initdb(state: ServerState, address: Address) -> None:
    _say(f"Creating a new PostgreSQL database cluster in {state.data_dir} ...")
    _run_tool(
        "initdb",
        [
            "-D",
            str(state.data_dir),
            f"--username={address.user}",  # the superuser: DATABASE_URL's user
            "--auth=trust",  # no password; the server listens on 127.0.0.1 only
            "--encoding=UTF8",
            "--locale=C",  # the same on every machine, whatever its LANG
            "--no-instructions",
        ],
    )


def _start_server(state: ServerState, address: Address, timeout_s: float) -> None:
    options = (
        f"-c listen_addresses=127.0.0.1 -p {address.port} "
        "-c unix_socket_directories='' "  # TCP only: no socket files, no path-length limits
    )
    result = _pg_ctl(
        [
            "start",
            "-D",
            str(state.data_dir),
            "-l",
            str(state.log_file),
            "-w",
            "-t",
            str(int(timeout_s)),
            "-o",
            options,
        ],
        check=False,
        timeout_s=timeout_s + 10,
    )
    if result.returncode != 0:
        raise DatabaseError(f"PostgreSQL did not start: {result.stdout.strip()}\n{_log_end(state)}")


def _create_database(database_url: str, address: Address, timeout_s: float) -> None:
    """Create DATABASE_URL's database if it does not exist yet (a new cluster has 'postgres')."""
    maintenance = f"postgresql://{address.user}@127.0.0.1:{address.port}/postgres"
    with connect(maintenance, timeout_s=timeout_s) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (address.database,)
        ).fetchone()
        if exists is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(address.database)))


def _log_end(state: ServerState) -> str:
    return f"The end of its log:\n{tail_log(state.directory, 10)}"
