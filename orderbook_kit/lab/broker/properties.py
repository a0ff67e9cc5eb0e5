"""The broker's settings: one single-node KRaft (broker + controller) property set.

``SHARED_PROPERTIES`` is what the JVM broker and ``docker-compose.yml`` have in common (a test
checks the compose file against it); only listeners and the data directory differ between the two.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "BROKER_LOG4J2",
    "SHARED_PROPERTIES",
    "TOOLS_LOG4J2",
    "render_properties",
    "server_properties",
]

NODE_ID = 1

SHARED_PROPERTIES: dict[str, str] = {
    "process.roles": "broker,controller",
    "node.id": str(NODE_ID),
    "controller.listener.names": "CONTROLLER",
    # One node: every internal topic can only have one replica.
    "offsets.topic.replication.factor": "1",
    "transaction.state.log.replication.factor": "1",
    "transaction.state.log.min.isr": "1",
    "share.coordinator.state.topic.replication.factor": "1",
    "share.coordinator.state.topic.min.isr": "1",
    # A learner's consumer group should start reading at once, not after a 3 s rebalance delay.
    "group.initial.rebalance.delay.ms": "0",
    # Topics are created on purpose; auto-created ones hide typos and can lose first messages.
    "auto.create.topics.enable": "false",
    # The log cleaner looks for work every 2 s (Kafka's default: 15 s), so notebook 13 can watch
    # a compacted topic being cleaned without waiting long.
    "log.cleaner.backoff.ms": "2000",
}


def server_properties(host: str, port: int, controller_port: int, data_dir: Path) -> dict[str, str]:
    """The JVM broker's full property set, listening on ``host`` only."""
    return {
        **SHARED_PROPERTIES,
        "controller.quorum.voters": f"{NODE_ID}@{host}:{controller_port}",
        "listeners": f"PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://{host}:{port}",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(data_dir),
    }


def render_properties(properties: dict[str, str]) -> str:
    lines = ["# Written by orderbook_kit.lab.broker on every start; edit the kit, not this file."]
    lines += [f"{key}={value}" for key, value in properties.items()]
    return "\n".join(lines) + "\n"


# The broker logs to <state>/logs/server.log, rolled at 10 MB, three files kept.
BROKER_LOG4J2 = """\
status = warn
appender.file.type = RollingFile
appender.file.name = FILE
appender.file.fileName = ${sys:kafka.logs.dir}/server.log
appender.file.filePattern = ${sys:kafka.logs.dir}/server.log.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 10MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 3
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
# Per-request and state-change chatter drowns what a learner needs to see.
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.state.name = state.change.logger
logger.state.level = WARN
"""

# Command-line tools print their results on stdout; only warnings and errors go to stderr.
TOOLS_LOG4J2 = """\
status = warn
appender.stderr.type = Console
appender.stderr.name = STDERR
appender.stderr.target = SYSTEM_ERR
appender.stderr.layout.type = PatternLayout
appender.stderr.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.stderr.ref = STDERR
"""
