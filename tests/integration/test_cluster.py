"""A three-node cluster on this machine: replicated topics, and a partition leader killed in the
middle of a stream with nothing lost and nothing written twice."""

from __future__ import annotations

import shutil
import socket
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka.partitioner.default import murmur2

from orderbook_kit.broker import cluster
from orderbook_kit.config import Settings, load_settings
from orderbook_kit.connection import admin_client, ensure_topic, topic_config
from orderbook_kit.consumer import read_ticks
from orderbook_kit.launcher import start_service
from orderbook_kit.offsets import end_offsets
from tests.conftest import wait_for

pytestmark = pytest.mark.kafka

SYMBOLS = ["TTF-GAS", "NBP-GAS", "EUA-CO2"]


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@pytest.fixture(scope="module")
def three_nodes() -> Iterator[tuple[str, Path]]:
    directory = Path(tempfile.mkdtemp(prefix="orderbook-test-cluster-"))
    bootstrap = ",".join(f"127.0.0.1:{port}" for port in free_ports(3))
    cluster.start_cluster(bootstrap, directory, nodes=3, timeout_s=120)
    yield bootstrap, directory
    assert cluster.stop_cluster(directory) == [1, 2, 3]  # every node stops cleanly
    shutil.rmtree(directory, ignore_errors=True)


def cluster_settings(bootstrap: str) -> Settings:
    return load_settings({"KAFKA_BOOTSTRAP_SERVERS": bootstrap}).isolated(
        f"cluster-{uuid.uuid4().hex[:8]}"
    )


def describe(settings: Settings, topic: str) -> list[dict]:
    with admin_client(settings.bootstrap_servers, 10) as admin:
        (described,) = admin.describe_topics([topic])
    return sorted(described["partitions"], key=lambda p: p["partition_index"])


def test_a_topic_the_kit_creates_has_three_replicas_and_needs_two_in_sync(
    three_nodes: tuple[str, Path],
) -> None:
    settings = cluster_settings(three_nodes[0])
    with admin_client(settings.bootstrap_servers, 10) as admin:
        assert ensure_topic(admin, settings.raw_topic, 3)
        min_insync = topic_config(admin, settings.raw_topic, "min.insync.replicas")
    partitions = describe(settings, settings.raw_topic)
    assert [sorted(p["replica_nodes"]) for p in partitions] == [[1, 2, 3]] * 3
    assert {p["leader_id"] for p in partitions} == {1, 2, 3}  # leadership is spread
    assert min_insync == "2"  # acks=all: acknowledged once two of the three have it


def test_a_leader_killed_mid_stream_loses_and_duplicates_nothing(
    three_nodes: tuple[str, Path],
) -> None:
    bootstrap, directory = three_nodes
    settings = cluster_settings(bootstrap)
    symbols = [flag for symbol in SYMBOLS for flag in ("--symbol", symbol)]
    ingest = start_service(
        "ingest", settings, "-q", "--count", "4000", "--interval", "0.002", *symbols
    )
    try:
        wait_for(lambda: sum(end_offsets(settings.raw_topic, settings).values()) > 600, 60, "ticks")
        # The leader of TTF-GAS's partition, killed while ticks keep coming.
        by_partition = {
            p["partition_index"]: p["leader_id"] for p in describe(settings, settings.raw_topic)
        }
        # Kafka's default partitioner: murmur2 of the key, modulo the partition count.
        partition = (murmur2(b"TTF-GAS") & 0x7FFFFFFF) % 3
        victim = by_partition[partition]
        sent_before = sum(end_offsets(settings.raw_topic, settings).values())
        assert cluster.kill_node(directory, victim)
        assert ingest.wait(180) == 0, ingest.output()
    finally:
        ingest.kill()
    ticks = read_ticks(settings.raw_topic, settings=settings, timeout_s=60).frame
    assert len(ticks) == 4000 > sent_before  # the stream went on after the kill
    for symbol, rows in ticks.groupby("symbol"):
        seqs = sorted(rows["seq"])
        assert seqs == list(range(len(seqs))), f"{symbol}: a hole or a duplicate"
    new_leader = describe(settings, settings.raw_topic)[partition]["leader_id"]
    assert new_leader != victim

    cluster.start_node(directory, victim, timeout_s=120)

    def back_in_sync() -> bool:
        return all(len(p["isr_nodes"]) == 3 for p in describe(settings, settings.raw_topic))

    wait_for(back_in_sync, 90, f"node {victim} back in every in-sync replica set")
