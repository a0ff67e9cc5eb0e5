"""run_service's last line of defence: an error nobody foresaw is one line, not a traceback."""

from __future__ import annotations

import pytest
from kafka.errors import KafkaConnectionError

from orderbook_kit.runtime.service import run_service


def test_an_unforeseen_kafka_error_is_one_line_and_exit_code_1(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def body() -> int:
        raise KafkaConnectionError("socket disconnected")

    assert run_service(body) == 1
    said = capsys.readouterr().err
    assert said.count("\n") == 1 and "Traceback" not in said
    assert said.startswith("error: Kafka failed: ") and "make status" in said
