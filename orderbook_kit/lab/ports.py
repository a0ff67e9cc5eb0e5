"""Ports for the lab's servers, in one place: picking free ones, checking one is free (as the JVM
will bind it), and refusing an address that is not this machine's loopback.

Everything the kit starts listens on 127.0.0.1 only.
"""

from __future__ import annotations

import random
import socket
import urllib.parse

from orderbook_kit.errors import OrderbookKitError
from orderbook_kit.settings.environment import read_setting

__all__ = [
    "LOOPBACK_HOSTS",
    "can_listen_like_the_jvm",
    "free_port",
    "free_ports",
    "listen_ports",
    "loopback_port",
    "port_is_free",
]


def listen_ports() -> range:
    """Where :func:`free_ports` looks: ``ORDERBOOK_FREE_PORTS`` (``LOW-HIGH``), else 20000-31999,
    below the kernel's ephemeral ports (why: ``settings.defaults.FREE_PORTS``).

    Processes that pick ports at the same time - two test workers - each get a range of their
    own this way, so a port one picked and will bind later is never picked by the other.
    """
    return read_setting("lab.free_ports")  # type: ignore[return-value]


def free_ports(host: str, count: int = 1) -> list[int]:
    """``count`` different ports that are free on ``host`` now, outside the ephemeral range."""
    chosen: list[int] = []
    ports = listen_ports()
    for port in random.sample(ports, len(ports)):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
        chosen.append(port)
        if len(chosen) == count:
            return chosen
    raise OrderbookKitError(
        f"No {count} free port(s) on {host} between {ports.start} and {ports.stop - 1}."
    )


def free_port(host: str) -> int:
    return free_ports(host)[0]


def can_listen_like_the_jvm(host: str, port: int) -> bool:
    """Could a JVM server (the broker, S3Proxy) listen at host:port? Answered by binding exactly
    as the JVM will.

    Java listens on a dual-stack IPv6 socket (127.0.0.1 as ::ffff:127.0.0.1) where the machine
    has IPv6, with SO_REUSEADDR. So the port's last connections lingering in TIME_WAIT - right
    after a broker was killed, or stopped with clients connected - do not stop it, and only a
    program really listening there does. A plain IPv4 bind would be refused by those IPv6
    TIME_WAIT sockets, and blame "another program" for a minute.
    """
    attempts = [(socket.AF_INET, host)]
    if socket.has_ipv6:
        attempts.insert(0, (socket.AF_INET6, f"::ffff:{host}"))
    for family, address in attempts:
        try:
            probe = socket.socket(family, socket.SOCK_STREAM)
        except OSError:  # no IPv6 on this machine: the JVM uses IPv4 too
            continue
        with probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((address, port))
                probe.listen()
            except OSError:
                return False
            return True
    return False


LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost"})


def loopback_port(url: str, *, variable: str, server: str) -> int:
    """The port of ``url`` if it is ``http://127.0.0.1:<port>`` (or localhost), else one error
    naming ``variable``: the kit runs ``server`` on this machine only."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme != "http" or parsed.hostname not in LOOPBACK_HOSTS or parsed.port is None:
        raise OrderbookKitError(
            f"{variable}: the kit runs {server} on this machine only, at "
            f"http://127.0.0.1:<port>; {url!r} is not such an address."
        )
    return parsed.port


def port_is_free(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True
