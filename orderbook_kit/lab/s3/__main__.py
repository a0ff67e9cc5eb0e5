"""The kit's own S3-compatible server (S3Proxy from Maven Central, no Docker) on 127.0.0.1, for
the archive's lessons and tests.

python -m orderbook_kit.lab.s3 start        # create the bucket(s); wait until it answers
python -m orderbook_kit.lab.s3 ensure       # the one at AWS_ENDPOINT_URL, else start one
python -m orderbook_kit.lab.s3 status       # also: stop, logs

Environment: AWS_ENDPOINT_URL, ORDERBOOK_S3_DIR (its buckets, default ./.s3).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from orderbook_kit.errors import OrderbookKitError
from orderbook_kit.lab.s3 import server
from orderbook_kit.runtime.command_line import CommandParser
from orderbook_kit.settings.defaults import LOCAL_S3_URL
from orderbook_kit.settings.environment import read_setting

EXIT_NOT_RUNNING = 3  # `status`, as the broker's and the database's commands say it


def s3_url() -> str:
    """Only the one setting the s3 commands need: a bad TICK_COUNT must not stop `s3 stop`."""
    return str(read_setting("s3_endpoint_url") or LOCAL_S3_URL)


def main(argv: Sequence[str] | None = None) -> int:
    parser = CommandParser(
        prog="python -m orderbook_kit.lab.s3",
        description="The kit's own S3-compatible server (S3Proxy, no Docker) on 127.0.0.1, at "
        f"AWS_ENDPOINT_URL (default {LOCAL_S3_URL}).",
        epilog="Environment: AWS_ENDPOINT_URL, ORDERBOOK_S3_DIR (its buckets, default ./.s3).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("start", "start it, creating the bucket(s); wait until it answers"),
        ("ensure", "use the S3 server that answers at AWS_ENDPOINT_URL, else start"),
    ):
        command = commands.add_parser(name, help=text)
        command.add_argument(
            "--bucket",
            action="append",
            help=f"bucket to create (repeatable; default {server.DEFAULT_BUCKET})",
        )
    commands.add_parser("stop", help="stop it (its buckets are kept)")
    commands.add_parser("status", help="is it running?")
    logs = commands.add_parser("logs", help="print the end of its log")
    logs.add_argument("-n", "--lines", type=int, default=25)
    arguments = parser.parse_args(argv)
    state_dir = server.default_state_dir()
    try:
        url = s3_url()
        if arguments.command in {"start", "ensure"}:
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
        if arguments.command == "stop":
            if server.stop(state_dir):
                print("S3 server stopped. Its buckets are kept; `start` brings them back.")
            else:
                print(f"No kit S3 server is running from {state_dir}.")
            return 0
        if arguments.command == "status":
            running = server.status(state_dir)
            if running is None:
                print(f"No kit S3 server is running from {state_dir}.")
                return EXIT_NOT_RUNNING
            print(f"S3 server pid {running.pid} at {running.url}. Log: {running.log_file}")
            return 0
        print(server.tail_log(state_dir, arguments.lines))
        return 0
    except OrderbookKitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
