"""Bad settings, from the environment or from flags: one `error:` line naming the variable or flag,
why, and the fix; exit code 2; never a traceback - from every entry point. No broker is needed:
each is refused before anything connects.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from orderbook_kit.errors import PostgresNotAvailableError, SettingsError
from orderbook_kit.lab.postgres import runtime
from orderbook_kit.lab.postgres.server import embedded_address
from orderbook_kit.settings.environment import (
    SETTINGS,
    Settings,
    environment_variables,
    load_settings,
)
from orderbook_kit.settings.sections import SECTIONS

SERVICES = [
    "orderbook_kit.ingest",
    "orderbook_kit.quality",
    "orderbook_kit.store",
    "orderbook_kit.archive",
]


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("TICK_COUNT", "abc", "TICK_COUNT: 'abc' is not a whole number; use e.g. 200"),
        ("TICK_COUNT", "0", "TICK_COUNT: must be at least 1, got 0; use e.g. 200"),
        ("TICK_SEED", "4.2", "TICK_SEED: '4.2' is not a whole number; use e.g. 42"),
        ("ORDERBOOK_PARTITIONS", "0", "ORDERBOOK_PARTITIONS: must be at least 1, got 0"),
        (
            "ORDERBOOK_KAFKA_CLIENT",
            "librdkafka",
            "ORDERBOOK_KAFKA_CLIENT: 'librdkafka' is not a client the kit knows; use "
            "'kafka-python' or 'confluent'",
        ),
        ("ORDERBOOK_TOPIC", "raw ticks", "ORDERBOOK_TOPIC: 'raw ticks' is not a valid Kafka topic"),
        ("ORDERBOOK_DLQ_TOPIC", "..", "ORDERBOOK_DLQ_TOPIC: '..' is not a valid Kafka topic name"),
        ("KAFKA_CLIENT_TIMEOUT_S", "0", "KAFKA_CLIENT_TIMEOUT_S: must be more than 0 s, got 0"),
        ("KAFKA_CLIENT_TIMEOUT_S", "0.2", "KAFKA_CLIENT_TIMEOUT_S: must be at least 1 s, got 0.2"),
        (
            "KAFKA_BOOTSTRAP_SERVERS",
            "127.0.0.1:0",
            "KAFKA_BOOTSTRAP_SERVERS: '127.0.0.1:0' has port '0', not 1-65535; use host:port",
        ),
        ("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:70000", "has port '70000', not 1-65535"),
        ("KAFKA_BOOTSTRAP_SERVERS", "localhost", "'localhost' is not host:port"),
        ("KAFKA_CLUSTER_SERVERS", "127.0.0.1:9192,nodes", "KAFKA_CLUSTER_SERVERS: 'nodes' is not"),
        (
            "ORDERBOOK_GATE_STATE_TOPIC",
            "orderbook.dlq",
            "'orderbook.dlq' is also the dead letters topic (ORDERBOOK_DLQ_TOPIC)",
        ),
        (
            "ORDERBOOK_BOOK_SNAPSHOTS_TOPIC",
            "orderbook.book.updates",
            "is also the book updates topic (ORDERBOOK_BOOK_UPDATES_TOPIC)",
        ),
        (
            "ORDERBOOK_SYMBOL",
            "lowercase",
            "ORDERBOOK_SYMBOL: 'lowercase' is not an instrument code; use 1-32 upper-case",
        ),
        ("TICK_INTERVAL_S", "inf", "TICK_INTERVAL_S: 'inf' is not a finite number; use e.g. 0.05"),
        ("TICK_INTERVAL_S", "nan", "TICK_INTERVAL_S: 'nan' is not a finite number"),
        ("TICK_VOLATILITY", "1e308", "TICK_VOLATILITY: must be at most 1, got 1e+308"),
        ("TICK_VOLATILITY", "-0.1", "TICK_VOLATILITY: must be at least 0, got -0.1"),
        ("PRICE_JUMP_LIMIT", "0", "PRICE_JUMP_LIMIT: must be more than 0, got 0"),
        ("STREAM_SECONDS", "-1", "STREAM_SECONDS: must be more than 0 s, got -1"),
        (
            "KAFKA_DELIVERY_TIMEOUT_S",
            "5",
            "KAFKA_DELIVERY_TIMEOUT_S: 5 s must be longer than KAFKA_CLIENT_TIMEOUT_S (10 s)",
        ),
        (
            "ORDERBOOK_CLEAN_TOPIC",
            "orderbook.raw",
            "ORDERBOOK_CLEAN_TOPIC: 'orderbook.raw' is also the raw topic (ORDERBOOK_TOPIC); the "
            "quality gate would read its own output",
        ),
        (
            "ORDERBOOK_DLQ_TOPIC",
            "orderbook.clean",
            "is also the clean topic (ORDERBOOK_CLEAN_TOPIC)",
        ),
        (
            "DATABASE_URL",
            "mysql://root@db/market",
            "DATABASE_URL: 'mysql://root@db/market' is not a postgresql:// URL; use "
            "postgresql://user@host:port/database, e.g. postgresql://orderbook@127.0.0.1:5433/",
        ),
        ("DATABASE_URL", "127.0.0.1:5433", "DATABASE_URL: '127.0.0.1:5433' is not a postgresql://"),
        ("DATABASE_URL", "postgresql:///orderbook", "'postgresql:///orderbook' names no host"),
        (
            "DATABASE_URL",
            "mysql://admin:hunter2@db/x",
            "DATABASE_URL: 'mysql://admin:***@db/x' is not",  # never the password
        ),
        (
            "ORDERBOOK_DB_SCHEMA",
            "Market Data",
            "ORDERBOOK_DB_SCHEMA: 'Market Data' is not a usable schema name; use 1-63 lower-case",
        ),
        ("ORDERBOOK_DB_SCHEMA", "1st", "'1st' is not a usable schema name"),
        ("ORDERBOOK_STORE_GROUP", " ", None),  # blank means the default: no error
        (
            "ORDERBOOK_GATE_DELIVERY",
            "exactly_once",
            "ORDERBOOK_GATE_DELIVERY: 'exactly_once' is not a delivery the gate knows; use "
            "'exactly-once' or 'at-least-once'",
        ),
        ("ORDERBOOK_GATE_INSTANCE", "gate/1", "ORDERBOOK_GATE_INSTANCE: 'gate/1' is not an"),
        ("ORDERBOOK_GATE_DELIVERY", " At-Least-Once ", None),  # case and spaces do not matter
    ],
)
def test_a_bad_variable_is_named_with_the_fix(
    variable: str, value: str, expected: str | None
) -> None:
    if expected is None:
        load_settings({variable: value})
        return
    with pytest.raises(SettingsError) as error:
        load_settings({variable: value})
    assert str(error.value).startswith(f"{variable}: ")
    assert expected in str(error.value)


def test_the_gate_is_exactly_once_by_default_under_a_transactional_id_that_survives_restarts() -> (
    None
):
    gate = load_settings({}).gate
    assert gate.delivery == "exactly-once"
    assert gate.transactional_id == f"{gate.group}.0"
    second = load_settings({"ORDERBOOK_GATE_INSTANCE": "eu-1", "ORDERBOOK_QUALITY_GROUP": "g"})
    assert second.gate.transactional_id == "g.eu-1"
    assert load_settings({"ORDERBOOK_GATE_DELIVERY": "AT-LEAST-ONCE"}).gate.delivery == (
        "at-least-once"
    )


def test_every_setting_sits_in_one_section_with_its_variable_and_rule() -> None:
    sections = {field.name: field.type for field in dataclasses.fields(Settings)}
    assert list(sections) == [section.name for section in SECTIONS]  # one attribute per section
    assert set(SETTINGS) == {
        f"{section.name}.{field.name}"
        for section in SECTIONS
        for field in dataclasses.fields(section)
    }
    assert len(environment_variables()) == len(SETTINGS)  # one variable per setting
    for key in SETTINGS:  # each default is the section's, and reads back by key
        section, _, name = key.partition(".")
        assert Settings().value(key) == getattr(getattr(Settings(), section), name)


def test_settings_change_by_section_and_every_change_is_checked() -> None:
    settings = Settings()
    fast = settings.replace(kafka={"client": "confluent"}, archive={"roll_ticks": "7"})
    assert (fast.kafka.client, fast.archive.roll_ticks) == ("confluent", 7)  # typed by its rule
    assert (fast.topics, fast.store) == (settings.topics, settings.store)  # the rest unchanged
    assert settings.kafka.client == "kafka-python"  # frozen: a new value, the old one intact
    assert fast == settings.with_values({"kafka.client": "confluent", "archive.roll_ticks": 7})
    assert settings.replace(kafka=fast.kafka).kafka == fast.kafka  # a whole section
    with pytest.raises(TypeError, match="no section 'kafak'; its sections are kafka, topics"):
        settings.replace(kafak={"client": "confluent"})
    with pytest.raises(TypeError, match="client_library"):
        settings.replace(kafka={"client_library": "confluent"})
    with pytest.raises(SettingsError, match=r"^ORDERBOOK_KAFKA_CLIENT: 'java' is not a client"):
        settings.replace(kafka={"client": "java"})


def test_unset_or_blank_means_the_default_and_values_get_their_type() -> None:
    assert load_settings({}) == Settings()
    assert load_settings({"TICK_COUNT": "  ", "ORDERBOOK_PARTITIONS": " 6 "}).topics.partitions == 6


def test_settings_as_environment_variables_give_the_same_settings() -> None:
    changed = Settings().replace(
        topics={"partitions": 6},
        simulator={"tick_interval_s": 0.25},
        service={"metrics_port": 0},
        lab={"free_ports": "21000-21999"},
    )
    settings = changed.isolated("lesson-07")
    assert load_settings(settings.as_environment()) == settings


def test_an_isolated_run_has_a_schema_and_groups_of_its_own() -> None:
    settings = Settings().isolated("Test-1.A")
    assert settings.store.schema == "orderbook_test_1_a"  # a valid schema name, whatever the label
    assert settings.store.group == "orderbook-store.Test-1.A"
    assert settings.topics.clean == "orderbook.clean.Test-1.A"


def test_settings_made_in_code_are_checked_too() -> None:
    with pytest.raises(SettingsError, match=r"^ORDERBOOK_PARTITIONS: must be at least 1"):
        Settings().replace(topics={"partitions": 0})
    with pytest.raises(
        SettingsError, match=r"^ORDERBOOK_TOPIC: 'orderbook\.raw\.a b' is not a valid Kafka"
    ):
        Settings().isolated("a b")


SETTING_PREFIXES = ("ORDERBOOK_", "TICK_", "KAFKA_", "PRICE_", "STREAM_", "DATABASE_")
LOGGERS_SERVICES_SET = ("kafka", "orderbook_kit.kafka.producer")


def run(module: str, *arguments: str, **environment: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(SETTING_PREFIXES)}
    return subprocess.run(
        [sys.executable, "-m", module, *arguments],
        env={**env, **environment},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def run_in_process(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Like :func:`run`, calling the service's ``main`` in this process: the same code path from
    the command line to the exit code, without a Python start-up per case (the signal handlers
    and log levels a service sets are put back afterwards)."""

    def run_main(
        module: str, *arguments: str, **environment: str
    ) -> subprocess.CompletedProcess[str]:
        for key in list(os.environ):
            if key.startswith(SETTING_PREFIXES):
                monkeypatch.delenv(key)
        for key, value in environment.items():
            monkeypatch.setenv(key, value)
        handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
        levels = {name: logging.getLogger(name).level for name in LOGGERS_SERVICES_SET}
        try:
            package = importlib.import_module(module)  # ingest is a module, the others packages
            entry = (
                getattr(package, "main", None) or importlib.import_module(f"{module}.__main__").main
            )
            code = entry(list(arguments))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 2
        finally:
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
            for name, level in levels.items():
                logging.getLogger(name).setLevel(level)
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess([module, *arguments], code, out, err)

    return run_main


def assert_one_error_line(run_: subprocess.CompletedProcess[str], expected: str) -> None:
    assert run_.returncode == 2, run_.stderr
    assert "Traceback" not in run_.stderr
    lines = run_.stderr.strip().splitlines()
    assert len(lines) == 1, run_.stderr
    assert lines[0].startswith(f"error: {expected}"), lines[0]


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize(
    ("environment", "arguments", "expected"),
    [
        ({"TICK_COUNT": "abc"}, [], "TICK_COUNT: 'abc' is not a whole number"),
        ({"ORDERBOOK_PARTITIONS": "0"}, [], "ORDERBOOK_PARTITIONS: must be at least 1"),
        ({"KAFKA_CLIENT_TIMEOUT_S": "0"}, [], "KAFKA_CLIENT_TIMEOUT_S: must be more than 0 s"),
        ({"ORDERBOOK_SYMBOL": "lowercase"}, [], "ORDERBOOK_SYMBOL: 'lowercase' is not an"),
        ({}, ["--count", "0"], "--count: must be at least 1, got 0; use e.g. 100"),
        ({}, ["--count", "-5"], "--count: must be at least 1, got -5"),
        ({}, ["--count", "many"], "--count: 'many' is not a whole number"),
        ({}, ["--duration", "inf"], "--duration: 'inf' is not a finite number"),
        ({}, ["--bootstrap-servers", "127.0.0.1:99999"], "--bootstrap-servers: '127.0.0.1:99999'"),
        ({}, ["--bootstrap-servers", "127.0.0.1:0"], "--bootstrap-servers: '127.0.0.1:0' has port"),
    ],
)
def test_services_refuse_bad_settings_with_one_line(
    service: str,
    environment: dict[str, str],
    arguments: list[str],
    expected: str,
    run_in_process: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    assert_one_error_line(run_in_process(service, *arguments, **environment), expected)


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_process_refuses_a_bad_setting_with_one_line_and_exit_code_2(
    service: str,
) -> None:
    # The cases above in this process; here the real thing, once per service.
    assert_one_error_line(run(service, TICK_COUNT="abc"), "TICK_COUNT: 'abc' is not a whole")


@pytest.mark.parametrize(
    ("service", "arguments", "expected"),
    [
        ("orderbook_kit.ingest", ["--symbol", "ttf"], "--symbol: 'ttf' is not an instrument"),
        ("orderbook_kit.ingest", ["--interval", "0"], "--interval: must be more than 0 s"),
        ("orderbook_kit.ingest", ["--volatility", "1e308"], "--volatility: must be at most 1"),
        ("orderbook_kit.ingest", ["--topic", "bad/topic"], "--topic: 'bad/topic' is not a valid"),
        ("orderbook_kit.ingest", ["--fault-rate", "2"], "--fault-rate: must be at most 1, got 2"),
        ("orderbook_kit.ingest", ["--fault", "gap"], "--fault: 'gap' is not KIND=PROBABILITY"),
        ("orderbook_kit.quality", ["--group", ""], "--group: '' is not a usable consumer group"),
        ("orderbook_kit.quality", ["--idle", "0"], "--idle: must be more than 0 s"),
        ("orderbook_kit.quality", ["--delivery", "twice"], "--delivery: 'twice' is not a delivery"),
        ("orderbook_kit.quality", ["--instance", "a b"], "--instance: 'a b' is not an instance"),
        ("orderbook_kit.quality", ["--instance", "x" * 65], "--instance: 'xxxxxxxx"),
        ("orderbook_kit.store", ["--idle", "0"], "--idle: must be more than 0 s"),
        ("orderbook_kit.store", ["--schema", "Bad"], "--schema: 'Bad' is not a usable schema"),
        ("orderbook_kit.store", ["--group", ""], "--group: '' is not a usable consumer group"),
        (
            "orderbook_kit.store",
            ["--database-url", "sqlite:///ticks.db"],
            "--database-url: 'sqlite:///ticks.db' is not a postgresql:// URL",
        ),
        ("orderbook_kit.quality", ["--price-jump-limit", "-1"], "--price-jump-limit: must be more"),
        ("orderbook_kit.archive", ["--roll-ticks", "0"], "--roll-ticks: must be at least 1"),
        ("orderbook_kit.archive", ["--roll-seconds", "x"], "--roll-seconds: 'x' is not"),
        (
            "orderbook_kit.archive",
            ["--archive-url", "ftp://host/x"],
            "--archive-url: 'ftp://host/x': the archive writes to a folder or to S3",
        ),
        (
            "orderbook_kit.quality",
            ["--source-topic", "orderbook.clean"],
            "--source-topic: 'orderbook.clean' is also the clean topic",
        ),
        (
            "orderbook_kit.quality",
            ["--dlq-topic", "orderbook.raw"],
            "--dlq-topic: 'orderbook.raw' is also the raw topic",
        ),
    ],
)
def test_service_flags_are_checked_by_the_same_rules(
    service: str,
    arguments: list[str],
    expected: str,
    run_in_process: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    assert_one_error_line(run_in_process(service, *arguments), expected)


def test_a_topic_collision_from_the_environment_names_the_variable() -> None:
    result = run("orderbook_kit.quality", ORDERBOOK_DLQ_TOPIC="orderbook.raw")
    assert_one_error_line(result, "ORDERBOOK_DLQ_TOPIC: 'orderbook.raw' is also the raw topic")


def test_broker_commands_need_only_their_own_settings(tmp_path: Path) -> None:
    # A bad TICK_COUNT must not stop `broker stop` from stopping (nothing runs here: exit 0).
    stop = run(
        "orderbook_kit.lab.broker",
        "stop",
        TICK_COUNT="abc",
        ORDERBOOK_BROKER_DIR=str(tmp_path / "broker"),
    )
    assert stop.returncode == 0, stop.stderr
    assert "No kit broker is running" in stop.stdout


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        ({"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:0"}, "KAFKA_BOOTSTRAP_SERVERS: '127.0.0.1:0' has"),
        ({"KAFKA_START_TIMEOUT_S": "soon"}, "KAFKA_START_TIMEOUT_S: 'soon' is not a number"),
        ({"KAFKA_START_TIMEOUT_S": "0"}, "KAFKA_START_TIMEOUT_S: must be more than 0 s"),
    ],
)
def test_broker_start_refuses_bad_settings(
    environment: dict[str, str], expected: str, tmp_path: Path
) -> None:
    result = run(
        "orderbook_kit.lab.broker", "start", ORDERBOOK_BROKER_DIR=str(tmp_path / "b"), **environment
    )
    assert_one_error_line(result, expected)


def test_broker_dir_that_is_a_file(tmp_path: Path, free_address: str) -> None:
    a_file = tmp_path / "broker"
    a_file.write_text("not a folder")
    result = run(
        "orderbook_kit.lab.broker",
        "start",
        ORDERBOOK_BROKER_DIR=str(a_file),
        KAFKA_BOOTSTRAP_SERVERS=free_address,
    )
    assert_one_error_line(result, f"ORDERBOOK_BROKER_DIR: {a_file} is a file, not a folder; point")


def test_broker_dir_that_cannot_be_written(free_address: str) -> None:
    # Under /sys nothing can be created, not even by root (a chmod'ed folder would not stop root).
    result = run(
        "orderbook_kit.lab.broker",
        "start",
        ORDERBOOK_BROKER_DIR="/sys/orderbook-test",
        KAFKA_BOOTSTRAP_SERVERS=free_address,
    )
    assert_one_error_line(result, "ORDERBOOK_BROKER_DIR: cannot write to /sys/orderbook-test (")


def test_db_commands_need_only_database_url(tmp_path: Path) -> None:
    # A bad TICK_COUNT must not stop anyone from stopping the database.
    result = run(
        "orderbook_kit.lab.postgres", "status", TICK_COUNT="abc", ORDERBOOK_DB_DIR=str(tmp_path)
    )
    assert result.returncode == 3, result.stderr  # "not running", not a settings error
    assert f"No kit PostgreSQL is running from {tmp_path}" in result.stdout


def test_log_level_is_a_checked_setting() -> None:
    assert load_settings({"ORDERBOOK_LOG_LEVEL": " info "}).service.log_level == "INFO"
    with pytest.raises(SettingsError, match=r"^ORDERBOOK_LOG_LEVEL: 'loud' is not a log level"):
        load_settings({"ORDERBOOK_LOG_LEVEL": "loud"})


def test_store_reset_with_a_bad_database_url_is_one_line() -> None:
    result = run("orderbook_kit.store", "reset", "--yes", DATABASE_URL="bogus")
    assert_one_error_line(result, "DATABASE_URL: 'bogus' is not a postgresql:// URL")


def test_db_reset_wants_a_yes() -> None:
    result = run("orderbook_kit.store", "reset")
    assert_one_error_line(result, "this deletes every table in schema 'orderbook'")
    assert "add --yes to do it" in result.stderr


def test_without_the_pgserver_wheel_the_error_names_docker_and_the_system_postgres(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(runtime.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(PostgresNotAvailableError) as error:
        runtime.postgres_bin()
    message = str(error.value)
    assert message.startswith("No embedded PostgreSQL for this machine (")
    assert "docker compose up -d postgres" in message and "sudo apt install postgresql" in message


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://learner@127.0.0.1:6000/market", (6000, "learner", "market")),
        ("postgresql://learner@localhost/market", (5432, "learner", "market")),
        ("postgres://127.0.0.1:6001", (6001, "orderbook", "orderbook")),
    ],
)
def test_the_embedded_server_takes_port_user_and_database_from_database_url(
    url: str, expected: tuple[int, str, str]
) -> None:
    address = embedded_address(url)
    assert (address.port, address.user, address.database) == expected


def test_on_cluster_points_the_clients_at_the_cluster_and_keeps_the_rest() -> None:
    settings = load_settings({"KAFKA_CLUSTER_SERVERS": "127.0.0.1:7001,127.0.0.1:7002"})
    on_cluster = settings.on_cluster()
    assert on_cluster.kafka.bootstrap_servers == "127.0.0.1:7001,127.0.0.1:7002"
    assert on_cluster == settings.replace(
        kafka={"bootstrap_servers": on_cluster.kafka.bootstrap_servers}
    )


def test_s3_commands_need_only_their_own_settings_and_run_the_server_here_only(
    tmp_path: Path,
) -> None:
    state = {"ORDERBOOK_S3_DIR": str(tmp_path / "s3"), "TICK_COUNT": "abc"}
    status = run("orderbook_kit.lab.s3", "status", **state)
    assert status.returncode == 3 and "No kit S3 server is running" in status.stdout
    remote = run(
        "orderbook_kit.lab.s3", "start", AWS_ENDPOINT_URL="https://s3.amazonaws.com", **state
    )
    assert_one_error_line(remote, "AWS_ENDPOINT_URL: the kit runs its S3 server on this machine")
    bad = run("orderbook_kit.lab.s3", "start", AWS_ENDPOINT_URL="9000", **state)
    assert_one_error_line(bad, "AWS_ENDPOINT_URL: '9000' is not an S3 endpoint")


@pytest.mark.parametrize(
    ("arguments", "environment", "expected"),
    [
        (["--schema", "pg_x"], {}, "--schema: 'pg_x' is reserved by PostgreSQL"),
        ([], {"ORDERBOOK_DB_SCHEMA": "information_schema"}, "ORDERBOOK_DB_SCHEMA: 'information_"),
    ],
)
def test_a_schema_postgresql_reserves_is_a_settings_error(
    arguments: list[str],
    environment: dict[str, str],
    expected: str,
    run_in_process: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    # It was a 35-line traceback from PostgreSQL ("unacceptable schema name").
    assert_one_error_line(
        run_in_process("orderbook_kit.store", *arguments, **environment), expected
    )


@pytest.mark.parametrize(
    ("module", "arguments", "expected"),
    [
        ("orderbook_kit.api", ["--bogus"], "unrecognized arguments: --bogus"),
        ("orderbook_kit.api", ["--port", "x"], "--port: 'x' is not a whole number"),
        ("orderbook_kit.api", ["--port", "70000"], "--port: must be at most 65535"),
        ("orderbook_kit.api", ["--stream-buffer", "1"], "--stream-buffer: must be at least 10"),
        ("orderbook_kit.lab.postgres", [], "the following arguments are required: command"),
        ("orderbook_kit.store", ["reset", "--bogus"], "unrecognized arguments: --bogus"),
        ("orderbook_kit.lab.postgres", ["bogus"], "command: invalid choice: 'bogus'"),
        ("orderbook_kit.lab.postgres", ["logs", "-n", "x"], "-n/--lines: invalid int value"),
        ("orderbook_kit.lab.s3", ["bogus"], "command: invalid choice: 'bogus'"),
        ("orderbook_kit.archive", ["check", "--bogus"], "unrecognized arguments: --bogus"),
        ("orderbook_kit.lab.prometheus", ["bogus"], "command: invalid choice: 'bogus'"),
        ("orderbook_kit.lab.broker", [], "the following arguments are required: command"),
        ("orderbook_kit.lab.broker", ["start", "--nodes", "x"], "--nodes: invalid int value"),
        ("orderbook_kit.quality", ["--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_every_commands_argument_errors_are_one_line_without_the_usage(
    module: str,
    arguments: list[str],
    expected: str,
    run_in_process: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    assert_one_error_line(run_in_process(module, *arguments), expected)


@pytest.mark.parametrize("where", ["/etc/passwd", "/nonexistent/archive"])
def test_archive_check_of_a_place_with_no_archive_is_a_settings_error(
    where: str, run_in_process: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    # It reported a failed data check, as if the archive's data were bad.
    result = run_in_process("orderbook_kit.archive", "check", ORDERBOOK_ARCHIVE_URL=where)
    assert_one_error_line(result, "ORDERBOOK_ARCHIVE_URL: ")
    assert where in result.stderr
