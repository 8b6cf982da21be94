"""The Raft client's files as Kafka 4.1 reads them: the metadata log through Kafka's
DumpLogSegments (kafka-dump-log.sh), and the quorum-state file through Kafka's own
FileQuorumStateStore (both directions: Kafka reads ours, we read Kafka's)."""

from __future__ import annotations

import random
import subprocess

import pytest

from moldau.raft import RaftClient, quorum_state
from moldau.raft.quorum_state import ElectionState
from moldau.runtime.disk import OsFileSystem
from moldau.testing.kafka_dist import java_executable, kafka_classpath, kafka_tool, need_kafka

pytestmark = pytest.mark.integration

_QUORUM_STATE_CHECK = """
import java.io.File;
import java.util.*;
import org.apache.kafka.raft.*;
import org.apache.kafka.server.common.KRaftVersion;

public class QuorumStateCheck {
    public static void main(String[] args) throws Exception {
        System.out.println(new FileQuorumStateStore(new File(args[0])).readElectionState().get());
        new FileQuorumStateStore(new File(args[1])).writeElectionState(
            ElectionState.withElectedLeader(7, 2, Optional.empty(), new HashSet<>(Arrays.asList(1, 2, 3))),
            KRaftVersion.KRAFT_VERSION_0);
    }
}
"""


@pytest.fixture
def metadata_dir(tmp_path):
    client = RaftClient(1, {1: ("localhost", 9093)}, OsFileSystem(), str(tmp_path), "cluster-x",
                        random.Random(1), 1_000)
    client.append([b"hello", b"world"], 1_001)
    client.run_deadlines(1_001)
    assert client.high_watermark == 3
    client.close()
    return tmp_path / "__cluster_metadata-0"


def test_kafka_dump_log_reads_the_metadata_log(metadata_dir):
    need_kafka()
    result = kafka_tool("kafka.tools.DumpLogSegments",
                        ["--files", str(metadata_dir / "00000000000000000000.log"), "--print-data-log"],
                        check=True)
    out = result.stdout
    assert "isControl: true" in out and "partitionLeaderEpoch: 1" in out
    assert 'LeaderChange: {"version":0,"leaderId":1,"voters":[{"voterId":1}],"grantingVoters":[{"voterId":1}]}' in out
    assert "payload: hello" in out and "payload: world" in out
    assert out.count("isvalid: true") == 2


def test_kafka_and_moldau_read_each_others_quorum_state(metadata_dir, tmp_path):
    need_kafka()
    source = tmp_path / "QuorumStateCheck.java"
    source.write_text(_QUORUM_STATE_CHECK)
    kafkas = tmp_path / "kafka-quorum-state"
    result = subprocess.run(
        [java_executable(), "-cp", kafka_classpath(), str(source), str(metadata_dir / "quorum-state"), str(kafkas)],
        capture_output=True, text=True, timeout=180, check=True)
    assert "epoch=1" in result.stdout and "leaderId=OptionalInt[1]" in result.stdout
    assert "voters=[1]" in result.stdout
    assert quorum_state.decode(kafkas.read_bytes()) == ElectionState(7, 2, -1, (1, 2, 3))
    assert kafkas.read_bytes() == quorum_state.encode(ElectionState(7, 2, -1, (1, 2, 3)))
