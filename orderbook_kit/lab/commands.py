"""The command line the lab's servers share: ``start``, ``ensure``, ``stop``, ``status`` and
``logs``, each error one ``error:`` line with exit code 2, and ``status`` exiting 3 when nothing
runs (as ``pg_ctl status`` does)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from orderbook_kit.errors import OrderbookKitError
from orderbook_kit.runtime.command_line import CommandParser

__all__ = ["EXIT_NOT_RUNNING", "ServerCommands"]

EXIT_NOT_RUNNING = 3


@dataclass(frozen=True)
class ServerCommands:
    """The shared commands of one lab server. ``server`` names it in messages ("PostgreSQL"),
    ``kept`` says what outlives a stop ("its data")."""

    prog: str
    description: str
    epilog: str
    server: str
    kept: str = "its data"

    def parser(self) -> tuple[CommandParser, argparse._SubParsersAction[CommandParser]]:
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
