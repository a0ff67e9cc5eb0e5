"""The kit's own S3-compatible server (S3Proxy from Maven Central, no Docker) on 127.0.0.1, for
the archive's lessons and tests.

python -m orderbook_kit.lab.s3 start        # create the bucket(s); wait until it answers
python -m orderbook_kit.lab.s3 ensure       # the one at AWS_ENDPOINT_URL, else start one
python -m orderbook_kit.lab.s3 status       # also: stop, logs

Environment: AWS_ENDPOINT_URL, ORDERBOOK_S3_DIR (its buckets, default ./.s3).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from orderbook_kit.lab.commands import ServerCommands, Subcommands
from orderbook_kit.lab.s3 import server
from orderbook_kit.runtime.command_line import CommandParser
from orderbook_kit.settings.defaults import LOCAL_S3_URL
from orderbook_kit.settings.environment import read_setting


def s3_url() -> str:
    """Only the one setting the s3 commands need: a bad TICK_COUNT must not stop `stop`."""
    return str(read_setting("archive.s3_endpoint_url") or LOCAL_S3_URL)


def start(arguments: argparse.Namespace, state_dir: Path) -> int:
    url = s3_url()
    buckets = tuple(arguments.bucket or (server.DEFAULT_BUCKET,))
    if arguments.command == "start":
        server.start(url, state_dir, buckets=buckets)
        started = True
    else:
        started = server.ensure(url, state_dir, buckets=buckets)
    if started:
        print(
            f"S3 server (S3Proxy {server.S3PROXY_VERSION}) at {url}, bucket(s) "
            f"{', '.join(buckets)}; data in {state_dir / 'data'}."
        )
    else:
        print(f"Using the S3 server that answers at {url}.")
    print(
        f"Point the archive at it: export AWS_ENDPOINT_URL={url} "
        f"ORDERBOOK_ARCHIVE_URL=s3://{buckets[0]}/archive"
    )
    return 0


def describe(state_dir: Path) -> str | None:
    running = server.status(state_dir)
    if running is None:
        return None
    return f"S3 server pid {running.pid} at {running.url}. Log: {running.log_file}"


COMMANDS = ServerCommands(
    prog="python -m orderbook_kit.lab.s3",
    description="The kit's own S3-compatible server (S3Proxy, no Docker) on 127.0.0.1, at "
    f"AWS_ENDPOINT_URL (default {LOCAL_S3_URL}).",
    epilog="Environment: AWS_ENDPOINT_URL, ORDERBOOK_S3_DIR (its buckets, default ./.s3).",
    server="S3 server",
    state_dir=server.default_state_dir,
    stop=server.stop,
    describe=describe,
    tail_log=server.tail_log,
    kept="its buckets",
)


def add_bucket_flags(commands: Subcommands[CommandParser]) -> None:
    for name in ("start", "ensure"):
        commands.choices[name].add_argument(
            "--bucket",
            action="append",
            help=f"bucket to create (repeatable; default {server.DEFAULT_BUCKET})",
        )


def main(argv: Sequence[str] | None = None) -> int:
    return COMMANDS.main(argv, {"start": start, "ensure": start}, add_bucket_flags)


if __name__ == "__main__":
    sys.exit(main())
