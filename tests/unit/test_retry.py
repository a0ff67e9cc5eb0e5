"""retry_while_retriable: rides out what passes on its own after a restart, and nothing else."""

from __future__ import annotations

import pytest
from kafka.errors import CoordinatorNotAvailableError, TopicAuthorizationFailedError

from orderbook_kit.errors import BrokerError, BrokerUnreachableError
from orderbook_kit.kafka.admin import retry_while_retriable


def failing(times: int, error: Exception) -> tuple[list[int], object]:
    calls: list[int] = []

    def action() -> str:
        calls.append(1)
        if len(calls) <= times:
            raise error
        return "answer"

    return calls, action


def test_a_coordinator_still_loading_is_waited_for() -> None:
    calls, action = failing(3, CoordinatorNotAvailableError())
    answer = retry_while_retriable(
        action, doing="Reading offsets", bootstrap_servers="127.0.0.1:1", timeout_s=10
    )
    assert answer == "answer"
    assert len(calls) == 4


def test_a_lasting_outage_ends_with_the_kits_error_naming_the_setting() -> None:
    calls, action = failing(10**6, CoordinatorNotAvailableError())
    with pytest.raises(BrokerUnreachableError, match="KAFKA_CLIENT_TIMEOUT_S") as caught:
        retry_while_retriable(
            action, doing="Reading offsets", bootstrap_servers="127.0.0.1:1", timeout_s=0.6
        )
    assert "Reading offsets at 127.0.0.1:1 still failed after 0.6 s" in str(caught.value)
    assert 2 <= len(calls) <= 5  # paused between tries, not spinning


def test_an_error_that_will_not_pass_is_not_retried() -> None:
    calls, action = failing(1, TopicAuthorizationFailedError())
    with pytest.raises(BrokerError) as caught:
        retry_while_retriable(
            action, doing="Reading offsets", bootstrap_servers="127.0.0.1:1", timeout_s=10
        )
    assert "Reading offsets at 127.0.0.1:1 failed" in str(caught.value)
    assert not isinstance(caught.value, BrokerUnreachableError)
    assert len(calls) == 1
