"""S3Proxy run by the kit: a real S3 API server on 127.0.0.1, its buckets folders on disk.

Why S3Proxy and not Adobe's S3Mock: S3Mock's plain-HTTP port always listens on every network
interface (only its HTTPS port can be bound to one address), and the kit's servers listen on
127.0.0.1 only. S3Proxy binds where it is told, starts in about a second and keeps every object
as a file (its ``filesystem`` backend), so the data outlives a restart.

It runs without authentication, like the kit's PostgreSQL: only programs on this machine reach
it. Clients may sign their requests with any key or none.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ..broker import runtime
from ..broker.process import default_home
from ..errors import OrderbookKitError
from ..paths import workbook_folder
from ..processes import command_line, is_alive, read_info, terminate

__all__ = [
    "DEFAULT_BUCKET",
    "S3PROXY_VERSION",
    "S3ServerStatus",
    "default_state_dir",
    "ensure",
    "start",
    "status",
    "stop",
    "tail_log",
]

S3PROXY = "org.gaul:s3proxy"
S3PROXY_VERSION = "4.1.0"  # needs Java 17
DEFAULT_BUCKET = "orderbook"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0
LOOPBACK_HOSTS = {"127.0.0.1", "localhost"}
HEAP = "-Xmx256m"  # objects stream to disk; the heap holds requests, not data


def default_state_dir() -> Path:
    return workbook_folder("s3", "ORDERBOOK_S3_DIR")


@dataclass(frozen=True)
class S3State:
    """The files of one S3 server the kit runs."""

    directory: Path

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"  # one folder per bucket

    @property
    def config_file(self) -> Path:
        return self.directory / "s3proxy.conf"

    @property
    def log_file(self) -> Path:
        return self.directory / "s3proxy.log"

    @property
    def info_file(self) -> Path:
        return self.directory / "s3proxy.json"


@dataclass(frozen=True)
class S3ServerStatus:
    pid: int
    url: str
    data_dir: Path
    log_file: Path


def start(
    url: str,
    state_dir: Path,
    *,
    buckets: tuple[str, ...] = (DEFAULT_BUCKET,),
    timeout_s: float = START_TIMEOUT_S,
) -> str:
    """Start the S3 server at ``url`` (``http://127.0.0.1:<port>``) unless it runs already from
    ``state_dir``, with ``buckets`` created; its URL once it answers."""
    host, port = _loopback_address(url)
    state = S3State(state_dir)
    try:
        for bucket in buckets:
            # A bucket of the filesystem backend is a folder: made before start, it is there.
            (state.data_dir / _bucket_name(bucket)).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OrderbookKitError(
            f"ORDERBOOK_S3_DIR: cannot use {state.directory} ({exc.strerror}); point it at a "
            "folder you can write to, or unset it"
        ) from None
    running = status(state_dir)
    if running is not None:
        return running.url
    java = runtime.find_java()
    jar = runtime.maven_jar(
        default_home(),
        S3PROXY,
        S3PROXY_VERSION,
        default_home() / "tools" / f"s3proxy-{S3PROXY_VERSION}",
        doing=f"S3Proxy {S3PROXY_VERSION} (about 55 MB)",
        classifier="jar-with-dependencies",
    )
    _check_port_free(host, port)
    address = f"http://{host}:{port}"
    state.config_file.write_text(
        f"s3proxy.endpoint={address}\n"
        "s3proxy.authorization=none\n"
        "jclouds.provider=filesystem\n"
        f"jclouds.filesystem.basedir={state.data_dir}\n"
    )
    command = [str(java), HEAP, "-jar", str(jar), "--properties", str(state.config_file)]
    with state.log_file.open("ab") as sink:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # outlives the notebook cell or command that started it
            cwd=state.directory,
        )
    state.info_file.write_text(json.dumps({"pid": process.pid, "url": address}))
    _wait_until_answering(process, address, state, timeout_s)
    return address


def ensure(url: str, state_dir: Path, *, buckets: tuple[str, ...] = (DEFAULT_BUCKET,)) -> bool:
    """Start the kit's S3 server at ``url`` unless one answers there; True if started now."""
    running = status(state_dir)
    if running is not None and running.url == url.rstrip("/"):
        start(url, state_dir, buckets=buckets)  # creates any bucket that is missing
        return False
    if _answers(url.rstrip("/")):
        return False  # another S3 server (Docker's): its buckets are its own business
    start(url, state_dir, buckets=buckets)
    return True


def stop(state_dir: Path, *, timeout_s: float = STOP_TIMEOUT_S) -> bool:
    """Stop the S3 server of ``state_dir``; False if none ran. Its buckets are kept."""
    state = S3State(state_dir)
    info = read_info(state.info_file)
    if info is None or not _is_ours(info["pid"], state):
        state.info_file.unlink(missing_ok=True)
        return False
    terminate(info["pid"], timeout_s, "s3proxy")
    state.info_file.unlink(missing_ok=True)
    return True


def status(state_dir: Path) -> S3ServerStatus | None:
    """The S3 server running from ``state_dir``, or None."""
    state = S3State(state_dir)
    info = read_info(state.info_file)
    if info is None or not _is_ours(info["pid"], state):
        return None
    return S3ServerStatus(info["pid"], info["url"], state.data_dir, state.log_file)


def tail_log(state_dir: Path, lines: int = 25) -> str:
    try:
        text = S3State(state_dir).log_file.read_text(errors="replace")
    except OSError:
        return "(no log yet)"
    return "\n".join(text.splitlines()[-lines:])


def _bucket_name(bucket: str) -> str:
    # S3's rules, short form: 3-63 characters, lower case, digits, dots and hyphens.
    if not (3 <= len(bucket) <= 63) or not all(
        c.islower() or c.isdigit() or c in ".-" for c in bucket
    ):
        raise OrderbookKitError(
            f"{bucket!r} is not an S3 bucket name: use 3-63 lower-case letters, digits, dots or "
            "hyphens, e.g. orderbook"
        )
    return bucket


def _loopback_address(url: str) -> tuple[str, int]:
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme != "http" or parsed.hostname not in LOOPBACK_HOSTS or parsed.port is None:
        raise OrderbookKitError(
            f"AWS_ENDPOINT_URL: the kit runs its S3 server on this machine only, at "
            f"http://127.0.0.1:<port>; {url!r} is not such an address."
        )
    return "127.0.0.1", parsed.port


def _check_port_free(host: str, port: int) -> None:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
            return
        except OSError:
            pass
    raise OrderbookKitError(
        f"Port {port} on {host} is already in use by another program. Stop it (`ss -ltnp "
        f"'sport = :{port}'` shows which), or choose another port: "
        "`export AWS_ENDPOINT_URL=http://127.0.0.1:<free port>`."
    )


def _wait_until_answering(
    process: subprocess.Popen[bytes], url: str, state: S3State, timeout_s: float
) -> None:
    deadline = time.monotonic() + timeout_s
    while not _answers(url):
        if process.poll() is not None:
            state.info_file.unlink(missing_ok=True)
            raise OrderbookKitError(
                f"S3Proxy exited during start (code {process.returncode}). The end of its log "
                f"({state.log_file}):\n{tail_log(state.directory, 20)}"
            )
        if time.monotonic() >= deadline:
            stop(state.directory, timeout_s=5)
            raise OrderbookKitError(
                f"S3Proxy did not answer at {url} within {timeout_s:g} s, so it was stopped. The "
                f"end of its log ({state.log_file}):\n{tail_log(state.directory, 20)}"
            )
        time.sleep(0.2)


def _answers(url: str) -> bool:
    """Does an S3 API answer at ``url``? (Any HTTP answer to an unsigned bucket listing: a 403
    from a real S3 says "S3" as clearly as a 200.)"""
    try:
        with urllib.request.urlopen(f"{url}/", timeout=2) as response:
            return bool(response.status < 500)
    except urllib.error.HTTPError as exc:
        return exc.code < 500
    except (urllib.error.URLError, OSError):
        return False


def _is_ours(pid: object, state: S3State) -> bool:
    """Is ``pid`` alive and this folder's S3Proxy? (Pids are reused: never signal a process that
    does not name this folder's configuration.)"""
    if not isinstance(pid, int) or pid <= 0 or not is_alive(pid):
        return False
    command = command_line(pid)
    return command is not None and str(state.config_file) in command
