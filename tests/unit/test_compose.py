"""docker-compose.yml, checked without a Docker engine: the Compose specification's JSON schema,
and the promises the README makes about it (same Kafka and settings as the JVM broker, loopback
only, a volume that keeps the log, a healthcheck for `up --wait`)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
import yaml
from psycopg.conninfo import conninfo_to_dict

from orderbook_kit.lab.broker.cluster import CLUSTER_PROPERTIES
from orderbook_kit.lab.broker.properties import SHARED_PROPERTIES
from orderbook_kit.lab.jvm import JMX_EXPORTER_VERSION, KAFKA_VERSION
from orderbook_kit.lab.s3 import server as s3_server
from orderbook_kit.settings import defaults

COMPOSE_FILE = Path(__file__).resolve().parents[2] / "docker-compose.yml"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def kafka(compose: dict) -> dict:
    return compose["services"]["kafka"]


def test_valid_against_the_compose_specification(compose: dict) -> None:
    schema_file = resources.files("check_jsonschema") / "builtin_schemas/vendor/compose-spec.json"
    schema = json.loads(schema_file.read_text())
    jsonschema.validate(compose, schema)  # raises with the offending path if invalid


def test_schema_check_catches_mistakes(compose: dict) -> None:
    schema_file = resources.files("check_jsonschema") / "builtin_schemas/vendor/compose-spec.json"
    schema = json.loads(schema_file.read_text())
    broken = {**compose, "services": {"kafka": {**compose["services"]["kafka"], "ports": 9092}}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


def test_image_is_the_pinned_official_kafka(kafka: dict) -> None:
    assert kafka["image"] == f"apache/kafka:{KAFKA_VERSION}"


def test_host_port_is_bound_to_loopback_only(kafka: dict) -> None:
    assert kafka["ports"][0] == "127.0.0.1:9092:9092"
    assert all(port.startswith("127.0.0.1:") for port in kafka["ports"])


def test_same_broker_settings_as_the_jvm_broker(kafka: dict) -> None:
    environment = kafka["environment"]
    for key, value in SHARED_PROPERTIES.items():
        variable = "KAFKA_" + key.upper().replace(".", "_")
        assert environment.get(variable) == value, f"{variable} should be {value!r}"


def test_two_listeners_host_and_containers(kafka: dict) -> None:
    environment = kafka["environment"]
    assert environment["KAFKA_ADVERTISED_LISTENERS"] == "HOST://127.0.0.1:9092,DOCKER://kafka:29092"
    assert "CONTROLLER://:9093" in environment["KAFKA_LISTENERS"].split(",")
    assert environment["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@kafka:9093"


def test_cluster_id_is_sixteen_bytes(kafka: dict) -> None:
    cluster_id = kafka["environment"]["CLUSTER_ID"]
    assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16


def test_log_lives_in_a_named_volume(compose: dict, kafka: dict) -> None:
    log_dir = kafka["environment"]["KAFKA_LOG_DIRS"]
    assert f"kafka-data:{log_dir}" in kafka["volumes"]
    assert "kafka-data" in compose["volumes"]


def test_healthcheck_asks_the_broker(kafka: dict) -> None:
    check = kafka["healthcheck"]
    assert "kafka-topics.sh --bootstrap-server kafka:29092" in " ".join(check["test"])
    assert check["retries"] > 0


def test_postgres_answers_at_the_default_database_url_on_loopback_only(compose: dict) -> None:
    postgres = compose["services"]["postgres"]
    default = conninfo_to_dict(defaults.DATABASE_URL)
    assert postgres["ports"] == [f"127.0.0.1:{default['port']}:5432"]
    assert postgres["environment"]["POSTGRES_USER"] == default["user"]
    assert postgres["environment"]["POSTGRES_DB"] == default["dbname"]
    assert "POSTGRES_PASSWORD" not in postgres["environment"]  # no secret in the repository


def test_postgres_is_the_same_major_version_as_the_kits_own_and_keeps_its_data(
    compose: dict,
) -> None:
    postgres = compose["services"]["postgres"]
    assert postgres["image"] == "postgres:16"  # pgserver 0.1.4 ships PostgreSQL 16.2
    volume, _, target = postgres["volumes"][0].partition(":")
    assert volume in compose["volumes"] and target == "/var/lib/postgresql/data"
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])  # for `up --wait`


CLUSTER_NODES = ["kafka-1", "kafka-2", "kafka-3"]


def test_the_cluster_profile_runs_three_nodes_at_the_kits_cluster_addresses(compose: dict) -> None:
    nodes = [compose["services"][name] for name in CLUSTER_NODES]
    assert all(node["profiles"] == ["cluster"] for node in nodes)  # not started by a plain `up`
    assert all(node["image"] == f"apache/kafka:{KAFKA_VERSION}" for node in nodes)
    advertised = [
        node["environment"]["KAFKA_ADVERTISED_LISTENERS"].split(",")[0].removeprefix("HOST://")
        for node in nodes
    ]
    assert ",".join(advertised) == defaults.CLUSTER_SERVERS
    for node, address in zip(nodes, advertised, strict=True):
        port = address.rpartition(":")[2]
        assert node["ports"] == [f"127.0.0.1:{port}:{port}"]  # loopback only


def test_the_cluster_nodes_have_the_jvm_clusters_settings(compose: dict) -> None:
    voters = {str(i): f"{i}@kafka-{i}:9093" for i in (1, 2, 3)}
    for name in CLUSTER_NODES:
        environment = compose["services"][name]["environment"]
        node_id = environment["KAFKA_NODE_ID"]
        wanted = {**SHARED_PROPERTIES, **CLUSTER_PROPERTIES, "node.id": node_id}
        for key, value in wanted.items():
            variable = "KAFKA_" + key.upper().replace(".", "_")
            assert environment.get(variable) == value, f"{name}: {variable} should be {value!r}"
        assert environment["KAFKA_CONTROLLER_QUORUM_VOTERS"] == ",".join(voters.values())
        volume = compose["services"][name]["volumes"][0].partition(":")[0]
        assert volume in compose["volumes"] and volume.startswith(name)
    ids = {compose["services"][name]["environment"]["KAFKA_NODE_ID"] for name in CLUSTER_NODES}
    assert ids == set(voters)


MONITORING_CONFIG = Path("orderbook_kit/monitoring/config")


@pytest.mark.parametrize("name", ["prometheus", "grafana"])
def test_the_monitoring_profile_runs_pinned_images_on_loopback_with_the_kits_config(
    compose: dict, name: str
) -> None:
    service = compose["services"][name]
    assert service["profiles"] == ["monitoring"]
    assert ":" in service["image"] and not service["image"].endswith(":latest")
    # Host networking: the services' metrics are on the host's 127.0.0.1. Then no port is
    # published, and each server must be told to listen on loopback itself.
    assert service["network_mode"] == "host" and "ports" not in service
    repository = COMPOSE_FILE.parent
    for volume in service["volumes"]:
        source, _, target = volume.partition(":")
        if source.startswith("./orderbook_kit/"):
            assert (repository / source).exists(), f"{source} is mounted but does not exist"
            assert target.endswith(":ro"), f"{source} is mounted writable"


def test_prometheus_listens_on_loopback_and_uses_the_kits_files(compose: dict) -> None:
    prometheus = compose["services"]["prometheus"]
    assert "--web.listen-address=127.0.0.1:9090" in prometheus["command"]
    mounted = {v.split(":")[0] for v in prometheus["volumes"]}
    assert f"./{MONITORING_CONFIG}/prometheus.yml" in mounted
    assert f"./{MONITORING_CONFIG}/rules.yml" in mounted
    assert "./.prometheus/targets" in mounted  # where the kit writes the services' targets
    assert defaults.PROMETHEUS_URL == "http://127.0.0.1:9090"


def test_grafana_listens_on_loopback_and_reads_the_provisioned_prometheus(compose: dict) -> None:
    grafana = compose["services"]["grafana"]
    environment = grafana["environment"]
    assert environment["GF_SERVER_HTTP_ADDR"] == "127.0.0.1"
    assert "GF_SECURITY_ADMIN_PASSWORD" not in environment  # no secret in the repository
    sources = yaml.safe_load(
        (
            COMPOSE_FILE.parent
            / MONITORING_CONFIG
            / "grafana/provisioning/datasources/prometheus.yml"
        ).read_text()
    )["datasources"]
    assert [s["url"] for s in sources] == [defaults.PROMETHEUS_URL]
    home = environment["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home.startswith("/var/lib/grafana/dashboards/")
    dashboard = COMPOSE_FILE.parent / MONITORING_CONFIG / "grafana/dashboards" / Path(home).name
    assert json.loads(dashboard.read_text())["uid"] == "orderbook-pipeline"


# The broker's metrics in Docker: the image has no JMX exporter, so a one-shot container puts the
# kit's agent into a volume and the broker's start command attaches it.
DOCKER_CONFIG = MONITORING_CONFIG / "docker"
AGENT_FOLDER = "/opt/jmx-exporter"


def test_the_broker_attaches_the_kits_jmx_exporter_on_a_loopback_port(
    compose: dict, kafka: dict
) -> None:
    assert "127.0.0.1:9404:9404" in kafka["ports"]
    assert kafka["depends_on"]["jmx-exporter"]["condition"] == "service_completed_successfully"
    script = kafka["command"][-1]
    assert f"{AGENT_FOLDER}/jmx_prometheus_javaagent-{JMX_EXPORTER_VERSION}.jar" in script
    assert "=9404:/opt/jmx-exporter-config/kafka-jmx.yml" in script
    assert script.rstrip().endswith("exec /etc/kafka/docker/run")  # the image's own CMD
    mounts = dict(volume.split(":")[:2] for volume in kafka["volumes"])  # source: target
    assert mounts["jmx-exporter"] == AGENT_FOLDER
    assert (
        mounts[f"./{MONITORING_CONFIG}/kafka-jmx.yml"] == "/opt/jmx-exporter-config/kafka-jmx.yml"
    )
    # Only the broker's process gets the agent: the healthcheck's kafka-topics.sh would
    # otherwise start a second exporter on the same port.
    assert "KAFKA_OPTS" not in kafka["environment"]
    assert "jmx-exporter" in compose["volumes"]


def test_the_agent_is_the_kits_version_fetched_by_the_kits_script(compose: dict) -> None:
    fetcher = compose["services"]["jmx-exporter"]
    assert "profiles" not in fetcher  # the broker depends on it, in every profile
    assert fetcher["environment"]["JMX_EXPORTER_VERSION"] == JMX_EXPORTER_VERSION
    source = f"./{DOCKER_CONFIG}/fetch-jmx-exporter.sh"
    assert f"{source}:/fetch-jmx-exporter.sh:ro" in fetcher["volumes"]
    assert (COMPOSE_FILE.parent / source).is_file()
    assert fetcher["entrypoint"] == ["sh", "/fetch-jmx-exporter.sh", AGENT_FOLDER]
    assert f"jmx-exporter:{AGENT_FOLDER}" in fetcher["volumes"]


def test_the_compose_prometheus_scrapes_the_brokers_published_metrics_port(compose: dict) -> None:
    prometheus = compose["services"]["prometheus"]
    assert f"./{DOCKER_CONFIG}/targets:/etc/prometheus/docker-targets:ro" in prometheus["volumes"]
    config = yaml.safe_load(
        (COMPOSE_FILE.parent / MONITORING_CONFIG / "prometheus.yml").read_text()
    )
    (orderbook,) = [job for job in config["scrape_configs"] if job["job_name"] == "orderbook"]
    globs = [f for sd in orderbook["file_sd_configs"] for f in sd["files"]]
    assert "docker-targets/*.json" in globs
    (group,) = json.loads((COMPOSE_FILE.parent / DOCKER_CONFIG / "targets/kafka.json").read_text())
    published = {p.rsplit(":", 1)[0] for p in compose["services"]["kafka"]["ports"]}
    assert group["targets"] == ["127.0.0.1:9404"] and "127.0.0.1:9404" in published
    assert group["labels"] == {"service": "kafka"}


@pytest.mark.parametrize("agent_present", [True, False])
def test_the_brokers_start_command_attaches_the_agent_only_when_it_is_there(
    kafka: dict, tmp_path: Path, agent_present: bool
) -> None:
    """The start command itself, run by bash with Compose's `$$` escapes undone and the image's
    start script replaced by one that prints what the broker's JVM would get."""
    folder = tmp_path / "agent"
    folder.mkdir()
    if agent_present:
        (folder / f"jmx_prometheus_javaagent-{JMX_EXPORTER_VERSION}.jar").write_bytes(b"PK")
    run = tmp_path / "run"
    run.write_text('#!/bin/sh\necho "KAFKA_OPTS=$KAFKA_OPTS"\n')
    run.chmod(0o755)
    script = (
        kafka["command"][-1]
        .replace("$$", "$")
        .replace(AGENT_FOLDER + "/", f"{folder}/")
        .replace("/etc/kafka/docker/run", str(run))
    )
    done = subprocess.run(
        ["bash", "-c", script],
        env={"PATH": os.environ["PATH"], "KAFKA_OPTS": "-Dfrom.image=1"},
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    )
    if agent_present:
        agent = f"-javaagent:{folder}/jmx_prometheus_javaagent-{JMX_EXPORTER_VERSION}.jar=9404:"
        assert done.stdout.startswith(f"KAFKA_OPTS={agent}")
        assert done.stdout.rstrip().endswith("-Dfrom.image=1")  # the image's own options kept
        assert done.stderr == ""
    else:
        assert done.stdout.strip() == "KAFKA_OPTS=-Dfrom.image=1"
        assert "no broker metrics" in done.stderr


def test_the_s3_profile_serves_the_archives_bucket_at_the_kits_s3_address_on_loopback(
    compose: dict,
) -> None:
    s3 = compose["services"]["s3"]
    assert s3["profiles"] == ["s3"]
    assert ":" in s3["image"] and not s3["image"].endswith(":latest")
    host = defaults.LOCAL_S3_URL.removeprefix("http://")
    (published,) = s3["ports"]
    assert published.rsplit(":", 1)[0] == host  # 127.0.0.1:9000, loopback only
    environment = s3["environment"]
    assert environment["COM_ADOBE_TESTING_S3MOCK_STORE_INITIAL_BUCKETS"] == s3_server.DEFAULT_BUCKET
    assert environment["COM_ADOBE_TESTING_S3MOCK_STORE_RETAIN_FILES_ON_EXIT"] == "true"
    root = environment["COM_ADOBE_TESTING_S3MOCK_STORE_ROOT"]
    assert f"s3-data:{root}" in s3["volumes"] and "s3-data" in compose["volumes"]
