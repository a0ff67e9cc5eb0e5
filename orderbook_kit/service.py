"""What the kit's services (``ingest``, ``quality``) share: common flags and graceful stopping."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import signal
import threading

from .config import Settings, environment_variables, load_settings

__all__ = ["add_common_arguments", "settings_from", "stop_on_signals"]


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = load_settings()
    parser.add_argument(
        "--bootstrap-servers",
        default=defaults.bootstrap_servers,
        help="Kafka address (env KAFKA_BOOTSTRAP_SERVERS, default %(default)s)",
    )
    parser.add_argument("--count", type=int, help="stop after this many ticks")
    parser.add_argument("--duration", type=float, help="stop after this many seconds")
    parser.add_argument("-q", "--quiet", action="store_true", help="do not print every tick")
    parser.epilog = "Environment variables: " + ", ".join(environment_variables())


def settings_from(arguments: argparse.Namespace, **fields: object) -> Settings:
    """The environment's settings, with the flags the user gave on top."""
    return dataclasses.replace(
        load_settings(), bootstrap_servers=arguments.bootstrap_servers, **fields
    )


def stop_on_signals() -> threading.Event:
    """An event set by Ctrl-C (SIGINT) or SIGTERM, so a service finishes its batch and flushes."""
    stop = threading.Event()

    def request_stop(signum: int, _frame: object) -> None:
        logging.getLogger(__name__).info("received %s, stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    return stop
