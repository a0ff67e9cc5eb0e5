"""How often the kit's Kafka clients poll, and how long a group waits for a silent member: tuned
once here, for every reader, group member and service (not environment settings: a learner has no
reason to change them, and a wrong one would make the lessons slow or flaky).
"""

from __future__ import annotations

__all__ = [
    "HEARTBEAT_MS",
    "METADATA_MAX_AGE_MS",
    "POLL_MS",
    "SERVICE_POLL_MS",
    "SESSION_TIMEOUT_MS",
    "TRANSACTION_TIMEOUT_MS",
]

# A bounded read, a lesson's group member, the API's live stream: how long one poll may wait. Short,
# so a deadline or a stop is noticed within a fifth of a second.
POLL_MS = 200
# A service's poll (the gate, the store, the archive): longer, so a quiet topic costs few requests;
# a stop is still noticed within half a second.
SERVICE_POLL_MS = 500
# A member that dies without leaving its group (kill -9, a crash) keeps its partitions until the
# broker stops hearing its heartbeats; a restarted one waits that long. kafka-python's default is
# 45 s; 10 s (heartbeats every 3 s) is still far above any pause of a healthy service.
SESSION_TIMEOUT_MS = 10_000
# A lesson's group members notice a rebalance at their next heartbeat: a short interval makes the
# lessons snappy (kafka-python's default, 3 s, suits real services better).
HEARTBEAT_MS = 500
# How old a group member's view of its topics may get. A leader that joins right after a topic was
# created may not see its partitions yet: it assigns nothing, the group is Stable with nothing
# owned, and only a metadata refresh (kafka-python's default: every 5 minutes) starts the rebalance
# that hands the partitions out. Seen under load in a full test run; 2 s bounds that wait, for one
# small request every 2 s to a broker on this machine.
METADATA_MAX_AGE_MS = 2_000
# A transaction the gate opened and never finished (it was killed, or frozen) holds back every
# reader of committed data until the broker aborts it: after this long, or at once when a gate
# with the same transactional id starts. Far above a batch's work (well under a second), below
# kafka-python's default of a minute, and well above the session timeout: a gate frozen past
# its session finds its group moved on when it wakes, aborts its batch and joins again, rather
# than being fenced by the broker's abort and stopping.
TRANSACTION_TIMEOUT_MS = 30_000
