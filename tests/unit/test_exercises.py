"""The notebooks' solutions run on Run All without showing their answers until asked."""

from __future__ import annotations

import pytest

from orderbook_kit.lessons.exercises import SHOW_VARIABLE, Solutions


def test_a_solution_runs_and_holds_its_answer_back_until_shown(
    capsys: pytest.CaptureFixture[str],
) -> None:
    solutions = Solutions(show=False)
    with solutions.hidden(2):
        print("the answer is 42")
    shown = capsys.readouterr().out
    assert "42" not in shown
    assert shown == (
        "Solution 2 ran and its checks passed; `solutions.show(2)` shows its answer.\n"
    )
    solutions.show(2)
    assert capsys.readouterr().out == "the answer is 42\n"


def test_a_failing_solution_shows_what_it_printed_then_fails(
    capsys: pytest.CaptureFixture[str],
) -> None:
    solutions = Solutions(show=False)
    with pytest.raises(AssertionError, match="wrong"), solutions.hidden(1):
        print("looked at 3 partitions")
        raise AssertionError("wrong")
    assert capsys.readouterr().out == "looked at 3 partitions\n"


def test_the_environment_variable_shows_every_answer_at_once(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SHOW_VARIABLE, "1")
    with Solutions().hidden(3):
        print("the answer")
    assert capsys.readouterr().out == "the answer\n"


def test_showing_a_solution_that_has_not_run_says_so() -> None:
    solutions = Solutions(show=False)
    with solutions.hidden(1):
        pass
    with pytest.raises(
        LookupError, match=r"solution 2 has not run yet \(solutions run so far: 1\)"
    ):
        solutions.show(2)
