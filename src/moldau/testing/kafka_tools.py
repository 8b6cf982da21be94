"""Apache Kafka's command-line tools: each `bin/` script's main class, and launchers that run them.

Kafka ships `bin/kafka-topics.sh` and friends in its release archive; Moldau fetches only the
jars from Maven Central (scripts/fetch-kafka.sh), so it writes the launchers itself: one
`<kafka home>/bin/<tool>.sh` per tool below, each a two-line shell script running
`java -cp <kafka home>/libs/* <main class> "$@"` — what Kafka's own scripts end up doing
(through kafka-run-class.sh). `JAVA_HOME`, `KAFKA_HEAP_OPTS` and `KAFKA_OPTS` are honoured as in
Kafka's scripts; logging goes to stderr at WARN (a log4j2 file written beside the launchers).

This file has no imports of Moldau, so fetch-kafka.sh runs it before anything is installed:

    python3 src/moldau/testing/kafka_tools.py write-launchers ~/.cache/moldau/kafka-4.1.1
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Kafka 4.1's bin/ scripts and the main classes they run (every class is in the fetched jars;
# tests/integration/test_kafka_dist.py checks). Not here: kafka-metadata-shell and
# connect-mirror-maker, whose jars tools/kafka/pom.xml does not fetch, and kafka-server-stop.
TOOL_CLASSES: dict[str, str] = {
    "kafka-acls": "org.apache.kafka.tools.AclCommand",
    "kafka-broker-api-versions": "org.apache.kafka.tools.BrokerApiVersionsCommand",
    "kafka-client-metrics": "org.apache.kafka.tools.ClientMetricsCommand",
    "kafka-cluster": "org.apache.kafka.tools.ClusterTool",
    "kafka-configs": "kafka.admin.ConfigCommand",
    "kafka-console-consumer": "org.apache.kafka.tools.consumer.ConsoleConsumer",
    "kafka-console-producer": "org.apache.kafka.tools.ConsoleProducer",
    "kafka-console-share-consumer": "org.apache.kafka.tools.consumer.ConsoleShareConsumer",
    "kafka-consumer-groups": "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
    "kafka-consumer-perf-test": "org.apache.kafka.tools.ConsumerPerformance",
    "kafka-delegation-tokens": "org.apache.kafka.tools.DelegationTokenCommand",
    "kafka-delete-records": "org.apache.kafka.tools.DeleteRecordsCommand",
    "kafka-dump-log": "kafka.tools.DumpLogSegments",
    "kafka-e2e-latency": "org.apache.kafka.tools.EndToEndLatency",
    "kafka-features": "org.apache.kafka.tools.FeatureCommand",
    "kafka-get-offsets": "org.apache.kafka.tools.GetOffsetShell",
    "kafka-groups": "org.apache.kafka.tools.GroupsCommand",
    "kafka-jmx": "org.apache.kafka.tools.JmxTool",
    "kafka-leader-election": "org.apache.kafka.tools.LeaderElectionCommand",
    "kafka-log-dirs": "org.apache.kafka.tools.LogDirsCommand",
    "kafka-metadata-quorum": "org.apache.kafka.tools.MetadataQuorumCommand",
    "kafka-producer-perf-test": "org.apache.kafka.tools.ProducerPerformance",
    "kafka-reassign-partitions": "org.apache.kafka.tools.reassign.ReassignPartitionsCommand",
    "kafka-server-start": "kafka.Kafka",
    "kafka-share-groups": "org.apache.kafka.tools.consumer.group.ShareGroupCommand",
    "kafka-storage": "kafka.tools.StorageTool",
    "kafka-streams-application-reset": "org.apache.kafka.tools.StreamsResetter",
    "kafka-streams-groups": "org.apache.kafka.tools.streams.StreamsGroupCommand",
    "kafka-topics": "org.apache.kafka.tools.TopicCommand",
    "kafka-transactions": "org.apache.kafka.tools.TransactionsCommand",
    "kafka-verifiable-consumer": "org.apache.kafka.tools.VerifiableConsumer",
    "kafka-verifiable-producer": "org.apache.kafka.tools.VerifiableProducer",
    "kafka-verifiable-share-consumer": "org.apache.kafka.tools.VerifiableShareConsumer",
    "connect-distributed": "org.apache.kafka.connect.cli.ConnectDistributed",
    "connect-standalone": "org.apache.kafka.connect.cli.ConnectStandalone",
}

# Long-running programs get Kafka's server heap; the tools a small, fast-starting JVM.
_SERVERS = {"kafka-server-start": "-Xmx1G -Xms1G", "connect-distributed": "-Xmx2G -Xms256M",
            "connect-standalone": "-Xmx2G -Xms256M"}
_TOOL_HEAP = "-Xmx256M"
_TOOL_JVM = "-XX:+UseSerialGC -XX:TieredStopAtLevel=1"
LOG4J2_NAME = "tools-log4j2.properties"
_LOG4J2 = """\
# Written by moldau's scripts/fetch-kafka.sh for the bin/ launchers: warnings and errors, to stderr.
status = error
appender.stderr.type = Console
appender.stderr.name = STDERR
appender.stderr.target = SYSTEM_ERR
appender.stderr.layout.type = PatternLayout
appender.stderr.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = warn
rootLogger.appenderRef.stderr.ref = STDERR
"""


def launcher(tool: str) -> str:
    """The text of bin/<tool>.sh, which finds the jars relative to itself."""
    heap = _SERVERS.get(tool, _TOOL_HEAP)
    jvm = "" if tool in _SERVERS else f" {_TOOL_JVM}"
    return (
        "#!/usr/bin/env bash\n"
        f"# Apache Kafka's {tool}.sh, written by moldau's scripts/fetch-kafka.sh: runs {TOOL_CLASSES[tool]}\n"
        "# from the jars in ../libs (Kafka's release archive is not fetched, only its Maven jars).\n"
        'home="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"\n'
        'java="${JAVA_HOME:+$JAVA_HOME/bin/}java"\n'
        f'exec "$java" ${{KAFKA_HEAP_OPTS:-{heap}}}{jvm} $KAFKA_OPTS '
        f'-Dlog4j2.configurationFile="$home/config/{LOG4J2_NAME}" -cp "$home/libs/*" {TOOL_CLASSES[tool]} "$@"\n'
    )


def write_launchers(home: str | os.PathLike) -> Path:
    """Write <home>/bin/<tool>.sh for every tool (and their log4j2 file); returns the bin dir."""
    home = Path(home)
    bin_dir, config_dir = home / "bin", home / "config"
    bin_dir.mkdir(parents=True, exist_ok=True)
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / LOG4J2_NAME).write_text(_LOG4J2)
    for tool in sorted(TOOL_CLASSES):
        path = bin_dir / f"{tool}.sh"
        path.write_text(launcher(tool))
        path.chmod(0o755)
    return bin_dir


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "write-launchers":
        sys.exit("usage: kafka_tools.py write-launchers KAFKA_HOME")
    print(write_launchers(sys.argv[2]))
