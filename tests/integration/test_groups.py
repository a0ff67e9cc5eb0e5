"""Consumer groups as parallelism, against the real broker: members split the partitions, a
member beyond the partition count idles, a member leaving hands its partitions on - and the
group as a whole reads every message once."""

from __future__ import annotations

import uuid

import pytest

from orderbook_kit.kafka.admin import admin_client, delete_pipeline
from orderbook_kit.kafka.groups import GroupMember, wait_until_balanced
from orderbook_kit.kafka.offsets import group_lag
from orderbook_kit.kafka.producer import TickProducer
from orderbook_kit.market.simulator import OrderbookSimulator
from orderbook_kit.settings.environment import load_settings
from tests.conftest import wait_for

pytestmark = pytest.mark.kafka


def test_members_share_the_partitions_and_the_group_reads_everything_once() -> None:
    settings = load_settings().isolated(f"groups-{uuid.uuid4().hex[:8]}")
    topic, group = settings.topics.raw, f"group-{uuid.uuid4().hex[:8]}"
    with TickProducer(settings) as producer:  # four symbols: partitions 1 and 2 get ticks
        producer.send_all(
            OrderbookSimulator(["TTF-GAS", "NBP-GAS", "EUA-CO2", "THE-GAS"]).ticks(80)
        )
    members: list[GroupMember] = []
    try:
        members.append(GroupMember("a", topic, group, settings).start())
        assert wait_until_balanced(members, settings) == {"a": [0, 1, 2]}

        members.append(GroupMember("b", topic, group, settings).start())
        two = wait_until_balanced(members, settings)
        assert sorted(p for owned in two.values() for p in owned) == [0, 1, 2]
        assert all(two.values()), f"a member of two got nothing: {two}"

        members += [GroupMember(name, topic, group, settings).start() for name in ("c", "d")]
        four = wait_until_balanced(members, settings)
        assert sorted(len(owned) for owned in four.values()) == [0, 1, 1, 1]  # one idles

        members[0].leave()
        three = wait_until_balanced(members[1:], settings)
        assert sorted(p for owned in three.values() for p in owned) == [0, 1, 2]

        wait_for(
            lambda: int(group_lag(group, topic, settings)["lag"].sum()) == 0,
            30,
            "the group to commit every message",
        )
        # Partitions change hands only at commits already made, so no message is read twice.
        assert sum(sum(member.read.values()) for member in members) == 80
    finally:
        for member in members:
            if member.running:
                member.leave()
        delete_pipeline(settings, groups=[group])

    def group_gone() -> bool:
        with admin_client(
            settings.kafka.bootstrap_servers, settings.kafka.client_timeout_s
        ) as admin:
            return group not in {g["group_id"] for g in admin.list_groups()}

    wait_for(group_gone, 15, "the group to be deleted")
