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
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from orderbook_kit.errors import OrderbookKitError
from orderbook_kit.lab import jvm as runtime
from orderbook_kit.lab.broker.server import default_home
from orderbook_kit.lab.ports import loopback_port, port_is_free
from orderbook_kit.lab.processes import (
    log_end,
    running_info,
    stop_server,
    wait_until_serving,
)
from orderbook_kit.paths import workbook_folder

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
    host = "127.0.0.1"
    port = loopback_port(url, variable="AWS_ENDPOINT_URL", server="its S3 server")
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
        if running.url != f"http://{host}:{port}":
            # As the broker and the database do: "started" at the wrong address would send the
            # archive to a port where nothing listens.
            raise OrderbookKitError(
                f"AWS_ENDPOINT_URL: the kit's S3 server of {state_dir} already runs at "
                f"{running.url}, not at {url}. Point AWS_ENDPOINT_URL at {running.url}, or stop "
                "it first: `python -m orderbook_kit.lab.s3 stop`."
            )
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
    wait_until_serving(
        process,
        lambda: _answers(address),
        name="S3Proxy",
        url=address,
        timeout_s=timeout_s,
        log_file=state.log_file,
        give_up=lambda: stop(state.directory, timeout_s=5),
    )
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
    return stop_server(state.info_file, str(state.config_file), timeout_s=timeout_s, name="s3proxy")


def status(state_dir: Path) -> S3ServerStatus | None:
    """The S3 server running from ``state_dir``, or None."""
    state = S3State(state_dir)
    info = running_info(state.info_file, str(state.config_file))
    if info is None:
        return None
    return S3ServerStatus(info["pid"], info["url"], state.data_dir, state.log_file)


def tail_log(state_dir: Path, lines: int = 25) -> str:
    return log_end(S3State(state_dir).log_file, lines)


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


def _check_port_free(host: str, port: int) -> None:
    if port_is_free(host, port):
        return
    raise OrderbookKitError(
        f"Port {port} on {host} is already in use by another program. Stop it (`ss -ltnp "
        f"'sport = :{port}'` shows which), or choose another port: "
        "`export AWS_ENDPOINT_URL=http://127.0.0.1:<free port>`."
    )


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
