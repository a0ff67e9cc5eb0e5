"""The kit's command lines: one ``error:`` line and exit code 2 for any bad flag or argument.

argparse prints its usage text and the error on a bad argument; the kit's commands print only
``error: --flag: why; fix`` (as for a bad environment variable), so the line that matters is the
one a learner reads. Every command of the kit - services and server commands alike - builds its
parser from :class:`CommandParser`.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any, NoReturn

__all__ = ["EXIT_BAD_SETTING", "CommandParser", "flag_type"]

EXIT_BAD_SETTING = 2  # also: the broker cannot be reached, or refused what the service needs


class CommandParser(argparse.ArgumentParser):
    """argparse with the kit's one-line errors: ``error: --flag: why`` and exit code 2, never the
    usage text. Its subcommands' parsers (``add_subparsers``) are CommandParsers too."""

    def error(self, message: str) -> NoReturn:
        # argparse says "argument --count: <why>"; the kit's form is "error: --count: <why>".
        self.exit(EXIT_BAD_SETTING, f"error: {message.removeprefix('argument ')}\n")


def flag_type(rule: Callable[[Any], Any]) -> Callable[[str], Any]:
    """An argparse ``type=`` that applies ``rule`` and reports its ``why; fix`` text."""

    def convert(text: str) -> Any:
        try:
            return rule(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = getattr(rule, "__name__", "value")
    return convert
