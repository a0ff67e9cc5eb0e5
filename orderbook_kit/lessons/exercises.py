"""The "Try it" solutions of the notebooks: they run on Run All, without giving their answers away.

Every solution cell runs, in the tests and on Run All, so a solution that stopped being right
fails loudly. What it prints or displays is held back until asked for::

    solutions = Solutions()
    with solutions.hidden(1):
        ...  # the solution: prints, charts and asserts as usual

prints ``Solution 1 ran and its checks passed; solutions.show(1) shows its answer.`` and keeps the
output; ``solutions.show(1)`` shows it. ``ORDERBOOK_SHOW_SOLUTIONS=1`` shows every answer at once.
A solution that fails shows everything it printed before the error, then the error.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from IPython.utils.capture import CapturedIO, capture_output

__all__ = ["SHOW_VARIABLE", "Solutions"]

SHOW_VARIABLE = "ORDERBOOK_SHOW_SOLUTIONS"


class Solutions:
    """The held-back output of each solution of one notebook, by number."""

    def __init__(self, *, show: bool | None = None) -> None:
        self.show_all = os.environ.get(SHOW_VARIABLE, "") == "1" if show is None else show
        self._outputs: dict[int, CapturedIO] = {}

    @contextmanager
    def hidden(self, number: int) -> Iterator[None]:
        """Run a solution's code with its output held back (shown at once with ``show_all``)."""
        capture = capture_output()
        captured = capture.__enter__()
        try:
            yield
        except BaseException:
            capture.__exit__(None, None, None)
            captured.show()  # what led up to the failure, then the failure itself
            raise
        capture.__exit__(None, None, None)
        self._outputs[number] = captured
        if self.show_all:
            captured.show()
        else:
            print(
                f"Solution {number} ran and its checks passed; `solutions.show({number})` shows "
                "its answer."
            )

    def show(self, number: int) -> None:
        """Show what solution ``number`` printed and displayed (run its cell first)."""
        captured = self._outputs.get(number)
        if captured is None:
            ran = ", ".join(map(str, sorted(self._outputs))) or "none yet"
            raise LookupError(
                f"solution {number} has not run yet (solutions run so far: {ran}); run its cell, "
                "then show it"
            )
        captured.show()
