"""The command line the lab's servers share: ``start``, ``ensure``, ``stop``, ``status`` and
``logs``, each error one ``error:`` line with exit code 2, and ``status`` exiting 3 when nothing
runs (as ``pg_ctl status`` does).

A server's module declares only what is its own: how to start it (``start`` and ``ensure``), a
line about it running, and any command of its own (``url``, ``target``)::

    COMMANDS = ServerCommands(prog=..., server="PostgreSQL", state_dir=server.default_state_dir,
                              stop=server.stop, describe=describe, tail_log=server.tail_log)
    COMMANDS.main(argv, {"start": start, "ensure": start, "url": print_url})
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from orderbook_kit.errors import OrderbookKitError
from orderbook_kit.runtime.command_line import CommandParser

__all__ = ["EXIT_NOT_RUNNING", "Action", "ServerCommands", "Subcommands", "run_command"]

EXIT_NOT_RUNNING = 3

Action = Callable[[argparse.Namespace, Path], int]  # (arguments, state folder) -> exit code
Subcommands = argparse._SubParsersAction


@dataclass(frozen=True)
class ServerCommands:
    """The shared commands of one lab server. ``server`` names it in messages ("PostgreSQL"),
    ``kept`` says what outlives a stop ("its data")."""

    prog: str
    description: str
    epilog: str
    server: str
    state_dir: Callable[[], Path]  # where the kit's server lives
    stop: Callable[[Path], bool]  # stop the server of that folder; False if none ran
    describe: Callable[[Path], str | None]  # a line about the running server, or None
    tail_log: Callable[[Path, int], str]  # the end of its log
    kept: str = "its data"

    def main(
        self,
        argv: Sequence[str] | None,
        actions: Mapping[str, Action],
        add_commands: Callable[[Subcommands[CommandParser]], None] | None = None,
    ) -> int:
        """Parse ``argv`` and run its command: one of ``actions`` (``start`` and ``ensure`` at
        least, plus the server's own, which ``add_commands`` adds to the parser), else the shared
        ``stop``, ``status`` or ``logs``."""
        parser, commands = self.parser()
        if add_commands is not None:
            add_commands(commands)
        arguments = parser.parse_args(argv)
        return run_command(lambda: self._run(arguments, actions))

    def _run(self, arguments: argparse.Namespace, actions: Mapping[str, Action]) -> int:
        directory = self.state_dir()
        if arguments.command in actions:
            return actions[arguments.command](arguments, directory)
        if arguments.command == "stop":
            return self.stopped(self.stop(directory), directory)
        if arguments.command == "status":
            return self.status(self.describe(directory), directory)
        print(self.tail_log(directory, arguments.lines))
        return 0

    def parser(self) -> tuple[CommandParser, Subcommands[CommandParser]]:
        """The parser with the shared commands; add a server's own to the second value."""
        parser = CommandParser(prog=self.prog, description=self.description, epilog=self.epilog)
        commands = parser.add_subparsers(dest="command", required=True)
        commands.add_parser("start", help="start it (or say where it runs); wait until it answers")
        commands.add_parser("ensure", help=f"use the {self.server} that answers, else start it")
        commands.add_parser("stop", help=f"stop it ({self.kept} is kept)")
        commands.add_parser("status", help=f"is it running? (exit code {EXIT_NOT_RUNNING} if not)")
        logs = commands.add_parser("logs", help="print the end of its log")
        logs.add_argument("-n", "--lines", type=int, default=25)
        return parser, commands

    def stopped(self, stopped: bool, directory: Path) -> int:
        if stopped:
            print(
                f"{self.server} stopped. {self.kept.capitalize()} is kept; `start` brings it back."
            )
        else:
            print(f"No kit {self.server} is running from {directory}.")
        return 0

    def status(self, found: str | None, directory: Path) -> int:
        """Print ``found`` (a line about the running server), or that none runs."""
        if found is None:
            print(f"No kit {self.server} is running from {directory}.")
            return EXIT_NOT_RUNNING
        print(found)
        return 0


def run_command(action: Callable[[], int]) -> int:
    """``action()``, with a kit error as one ``error:`` line and exit code 2."""
    try:
        return action()
    except OrderbookKitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
