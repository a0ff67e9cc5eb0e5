"""A three-node cluster on this machine: replicated topics, and a partition leader killed in the
middle of a stream with nothing lost and nothing written twice - into the raw topic, and through
the exactly-once gate, killed itself too."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka.partitioner.default import murmur2

from orderbook_kit.errors import DeliveryError
from orderbook_kit.kafka.admin import admin_client, ensure_topic, topic_config
from orderbook_kit.kafka.offsets import end_offsets
from orderbook_kit.kafka.producer import TickProducer
from orderbook_kit.kafka.reader import read_ticks
from orderbook_kit.kafka.replication import partition_replicas
from orderbook_kit.lab.broker import cluster
from orderbook_kit.market.simulator import OrderbookSimulator
from orderbook_kit.runtime.launcher import start_service
from orderbook_kit.settings.environment import Settings, load_settings
from tests.conftest import free_ports, wait_for
from tests.integration.test_exactly_once import assert_each_raw_message_once, committed
from tests.transactions import gate_outputs, pause_mid_transaction

pytestmark = pytest.mark.kafka

SYMBOLS = ["TTF-GAS", "NBP-GAS", "EUA-CO2"]


@pytest.fixture(scope="module")
def three_nodes() -> Iterator[tuple[str, Path]]:
    directory = Path(tempfile.mkdtemp(prefix="orderbook-test-cluster-"))
    bootstrap = ",".join(f"127.0.0.1:{port}" for port in free_ports(3))
    try:
        cluster.start_cluster(bootstrap, directory, nodes=3, timeout_s=120)
    except BaseException:
        cluster.stop_cluster(directory)  # the nodes that did start: none is left running
        raise
    yield bootstrap, directory
    assert cluster.stop_cluster(directory) == [1, 2, 3]  # every node stops cleanly
    shutil.rmtree(directory, ignore_errors=True)


def cluster_settings(bootstrap: str) -> Settings:
    return load_settings({"KAFKA_BOOTSTRAP_SERVERS": bootstrap}).isolated(
        f"cluster-{uuid.uuid4().hex[:8]}"
    )


def test_a_topic_the_kit_creates_has_three_replicas_and_needs_two_in_sync(
    three_nodes: tuple[str, Path],
) -> None:
    settings = cluster_settings(three_nodes[0])
    with admin_client(settings.kafka.bootstrap_servers, 10) as admin:
        assert ensure_topic(admin, settings.topics.raw, 3)
        min_insync = topic_config(admin, settings.topics.raw, "min.insync.replicas")
    partitions = partition_replicas(settings.topics.raw, settings)
    assert list(partitions["replicas"]) == [[1, 2, 3]] * 3
    assert set(partitions["leader"]) == {1, 2, 3}  # leadership is spread
    assert min_insync == "2"  # acks=all: acknowledged once two of the three have it


# First on the fresh cluster: twice, run right after another test had killed and restarted a
# node, a kafka-python gate started on the cluster never committed - its poll blocked for
# 120 s in kafka-python's Fetcher.send_fetches, which waits without a bound for its I/O thread.
# (librdkafka's gate, run after this test restarts its own victim, never did.) Not understood
# yet: see the closing note of issue 26.
@pytest.mark.usefixtures("kafka_client")  # the gates consume and commit with either client
def test_the_gate_is_exactly_once_through_a_leader_killed_mid_transaction(
    three_nodes: tuple[str, Path],
) -> None:
    bootstrap, directory = three_nodes
    settings = cluster_settings(bootstrap)
    # A live feed until the gate is killed: each pause below needs transactions still coming.
    ingest = start_service("ingest", settings, "-q", "--interval", "0.004", "--fault-rate", "0.01")
    gate = start_service("quality", settings, "-q")
    victim = None
    try:
        wait_for(lambda: committed(settings) > 0, 120, "the gate to commit", gate)
        # The leader of a partition the gate's open transaction has written to, killed while the
        # gate is frozen mid-transaction; then the gate goes on.
        holding = pause_mid_transaction(
            gate, settings, settings.gate.transactional_id, outputs=gate_outputs(settings)
        )
        replicas = partition_replicas(holding[0].topic, settings)
        victim = int(replicas["leader"][holding[0].partition])
        before = committed(settings)
        print(f"killing node {victim}, leader of {holding[0]}, at {before} committed")
        assert cluster.kill_node(directory, victim)
        gate.resume()
        wait_for(lambda: committed(settings) > before, 120, "a commit after the kill", gate)
        # And the gate itself, killed mid-transaction on the two nodes left, and started again.
        pause_mid_transaction(
            gate, settings, settings.gate.transactional_id, outputs=gate_outputs(settings)
        )
        gate.kill()
        assert ingest.stop() == 0, ingest.output()
        first, gate = gate, start_service("quality", settings, "-q")
        raw_count = sum(end_offsets(settings.topics.raw, settings).values())
        wait_for(lambda: committed(settings) == raw_count, 180, "the gate to finish", gate)
        assert gate.stop() == 0, gate.output()
    finally:
        ingest.kill()
        gate.kill()
        if victim is not None:
            cluster.start_node(directory, victim, timeout_s=120)
    try:
        checked, aborted = assert_each_raw_message_once(settings)
    except AssertionError:
        print(f"the killed gate:\n{first.output()}\nits successor:\n{gate.output()}")
        raise
    assert checked == raw_count > 1000  # ticks, and the faults injected among them
    assert aborted > 0  # the killed gate's open transaction: in the log, never read as committed
    print(f"{raw_count} raw messages, each once; {aborted} record(s) of aborted transactions")


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
        wait_for(
            lambda: sum(end_offsets(settings.topics.raw, settings).values()) > 600, 60, "ticks"
        )
        # The leader of TTF-GAS's partition, killed while ticks keep coming.
        by_partition = partition_replicas(settings.topics.raw, settings)["leader"]
        # Kafka's default partitioner: murmur2 of the key, modulo the partition count.
        partition = (murmur2(b"TTF-GAS") & 0x7FFFFFFF) % 3
        victim = int(by_partition[partition])
        sent_before = sum(end_offsets(settings.topics.raw, settings).values())
        assert cluster.kill_node(directory, victim)
        assert ingest.wait(180) == 0, ingest.output()
    finally:
        ingest.kill()
    ticks = read_ticks(settings.topics.raw, settings=settings, timeout_s=60).frame
    assert len(ticks) == 4000 > sent_before  # the stream went on after the kill
    for symbol, rows in ticks.groupby("symbol"):
        seqs = sorted(rows["seq"])
        assert seqs == list(range(len(seqs))), f"{symbol}: a hole or a duplicate"
    new_leader = partition_replicas(settings.topics.raw, settings)["leader"][partition]
    assert new_leader != victim

    cluster.start_node(directory, victim, timeout_s=120)

    def back_in_sync() -> bool:
        in_sync = partition_replicas(settings.topics.raw, settings)["in_sync"]
        return all(len(nodes) == 3 for nodes in in_sync)

    wait_for(back_in_sync, 90, f"node {victim} back in every in-sync replica set")


def test_with_two_of_three_nodes_down_an_acks_all_write_is_refused_naming_the_cause(
    three_nodes: tuple[str, Path],
) -> None:
    bootstrap, directory = three_nodes
    settings = cluster_settings(bootstrap).replace(
        kafka={"client_timeout_s": 3, "delivery_timeout_s": 5}
    )
    with admin_client(settings.kafka.bootstrap_servers, 10) as admin:
        ensure_topic(admin, settings.topics.raw, 1)
    ticks = OrderbookSimulator("TTF-GAS", seed=1).ticks(3)

    def in_sync() -> list[int]:
        return list(partition_replicas(settings.topics.raw, settings)["in_sync"][0])

    leader = int(partition_replicas(settings.topics.raw, settings)["leader"][0])
    first, second = (node for node in (1, 2, 3) if node != leader)
    # One node down: the partition drops it from its in-sync replicas, and writes go on.
    assert cluster.kill_node(directory, first)
    wait_for(lambda: len(in_sync()) == 2, 60, f"node {first} out of the in-sync replicas")
    # The topic exists: no admin client needed (with nodes down, it can take a while to find one).
    with TickProducer(settings, create_topic=False) as producer:
        producer.send(next(ticks))
    # Two down: one in-sync replica left, fewer than min.insync.replicas=2.
    assert cluster.stop_node(directory, second)
    wait_for(lambda: in_sync() == [leader], 60, f"node {second} out of the in-sync replicas")
    # A client tries bootstrap addresses at random: given only the node that is up, it never
    # spends its connection timeout on the two that are down.
    (survivor,) = [n.address for n in cluster.read_layout(directory) or [] if n.node_id == leader]
    on_survivor = settings.replace(kafka={"bootstrap_servers": survivor})
    producer = TickProducer(on_survivor, create_topic=False).connect()
    try:
        producer.send(next(ticks))
        with pytest.raises(DeliveryError) as refused:
            producer.flush()
    finally:
        with contextlib.suppress(DeliveryError):
            producer.close(timeout_s=0)
    message = str(refused.value)
    assert "NotEnoughReplicas" in message and "min.insync.replicas=2" in message, message
    assert f"in sync: node {leader}" in message and "broker status" in message

    for node in (first, second):
        cluster.start_node(directory, node, timeout_s=120)
    wait_for(lambda: len(in_sync()) == 3, 90, "every node back in sync")
    with TickProducer(settings) as producer:
        producer.send(next(ticks))
    written = read_ticks(settings.topics.raw, settings=settings, timeout_s=30).frame
    assert list(written["seq"]) == [0, 2]  # the refused tick is not there, and says so above
