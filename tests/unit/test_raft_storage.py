"""The quorum-state file and the Raft log (moldau.raft.quorum_state, moldau.raft.log)."""

from __future__ import annotations

import json

import pytest

from moldau.log.memory_fs import MemoryFileSystem
from moldau.raft import quorum_state
from moldau.raft.config import QuorumConfig, parse_voters
from moldau.raft.log import RaftLog, RaftLogError, decode_leader_change, encode_leader_change
from moldau.raft.quorum_state import ElectionState, QuorumStateError
from moldau.records import iterate_batches, iterate_records


def test_quorum_state_is_kafkas_json_version_0():
    raw = quorum_state.encode(ElectionState(epoch=4, leader_id=1, voted_id=-1, voters=(3, 1, 2)))
    assert raw == (b'{"clusterId":"","leaderId":1,"leaderEpoch":4,"votedId":-1,"appliedOffset":0,'
                   b'"currentVoters":[{"voterId":1},{"voterId":2},{"voterId":3}],"data_version":0}')
    assert quorum_state.decode(raw) == ElectionState(4, 1, -1, (1, 2, 3))


def test_quorum_state_written_atomically_and_durably():
    fs = MemoryFileSystem()
    fs.makedirs("/d")
    quorum_state.write(fs, "/d", ElectionState(7, -1, 2, (1, 2, 3)))
    fs.crash("drop")
    assert quorum_state.read(fs, "/d") == ElectionState(7, -1, 2, (1, 2, 3))
    assert quorum_state.read(fs, "/elsewhere") is None


@pytest.mark.parametrize("raw", [b"", b"{", b'{"leaderEpoch":1}', b'{"leaderEpoch":1,"data_version":9}',
                                 b'{"leaderEpoch":"x","data_version":0}'])
def test_unreadable_quorum_state_is_an_error_not_a_guess(raw):
    with pytest.raises(QuorumStateError):
        quorum_state.decode(raw)


def test_kafka_version_1_file_is_read():
    raw = json.dumps({"leaderId": 2, "leaderEpoch": 9, "votedId": 2, "votedDirectoryId":
                      "AAAAAAAAAAAAAAAAAAAAAA", "data_version": 1}).encode()
    assert quorum_state.decode(raw) == ElectionState(9, 2, 2, ())


def test_config_reads_kafka_keys():
    config = QuorumConfig.from_kafka_configs({
        "controller.quorum.election.timeout.ms": "300", "controller.quorum.fetch.timeout.ms": "800",
        "controller.listener.names": "CTRL,OTHER", "unrelated": "x"})
    assert (config.election_timeout_ms, config.fetch_timeout_ms, config.listener_name) == (300, 800, "CTRL")
    assert config.fetch_max_wait_ms == 200 and config.check_quorum_timeout_ms == 1200
    assert QuorumConfig().fetch_max_wait_ms == 500  # Kafka's MAX_FETCH_WAIT_MS
    with pytest.raises(ValueError, match="controller.quorum.fetch.timeout.ms"):
        QuorumConfig.from_kafka_configs({"controller.quorum.fetch.timeout.ms": "soon"})


def test_parse_voters():
    assert parse_voters("1@localhost:9093, 2@[::1]:9094,3@10.0.0.3:9095") == {
        1: ("localhost", 9093), 2: ("::1", 9094), 3: ("10.0.0.3", 9095)}
    for bad in ("", "1@host", "x@h:1", "1@h:1,1@h:2", "1@h:70000", "1:h:9093"):
        with pytest.raises(ValueError, match="controller.quorum.voters"):
            parse_voters(bad)


def test_leader_change_record_is_kafkas_control_record():
    fs = MemoryFileSystem()
    log = RaftLog(fs, "/data", 0)
    assert log.append_leader_change(3, 2, [3, 1, 2], [2, 1], 100) == 0
    data = log.read(0, 1 << 20)
    [(header, batch)] = list(iterate_batches(data))
    assert header.is_control and header.partition_leader_epoch == 3 and header.producer_id == -1
    [record] = list(iterate_records(batch))
    assert record.key == b"\x00\x00\x00\x02"  # control key v0, type LEADER_CHANGE
    assert decode_leader_change(record.value) == (2, [1, 2, 3])
    assert record.value == encode_leader_change(2, [1, 2, 3], [1, 2])


def test_leader_appends_read_committed_skips_control_records():
    log = RaftLog(MemoryFileSystem(), "/data", 0)
    log.append_leader_change(1, 1, [1], [1], 0)
    assert log.append_leader([b"a", b"b"], 1, 5) == (1, 2)
    assert log.append_leader([b"c"], 1, 6) == (3, 3)
    assert log.read_committed(0, 10, high_watermark=3) == [(1, b"a"), (2, b"b")]
    assert log.read_committed(2, 10, high_watermark=4) == [(2, b"b"), (3, b"c")]
    assert log.read_committed(0, 1, high_watermark=4) == [(1, b"a")]
    assert log.last_fetched_epoch == 1 and log.end_offset == 4


def test_flushed_records_survive_a_crash_unflushed_do_not():
    fs = MemoryFileSystem()
    log = RaftLog(fs, "/data", 0)
    log.append_leader([b"a"], 1, 0)
    log.flush()
    assert log.flushed_offset == 1
    log.append_leader([b"b"], 1, 0)
    assert log.flushed_offset == 1
    fs.crash("drop")
    reopened = RaftLog(fs, "/data", 0)
    assert reopened.end_offset == 1 and reopened.read_committed(0, 10, 1) == [(0, b"a")]


def test_divergence_and_truncation_follow_kafka():
    leader = RaftLog(MemoryFileSystem(), "/l", 0)
    follower = RaftLog(MemoryFileSystem(), "/f", 0)
    for epoch, values in ((1, [b"a", b"b"]), (3, [b"c"])):
        leader.append_leader(values, epoch, 0)
    follower.append_follower(leader.read(0, 1 << 20), 3, 0)
    assert follower.end_offset == 3
    follower.truncate_to(2)
    follower.append_leader([b"x", b"y"], 2, 0)  # an uncommitted tail of epoch 2
    # The follower asks from offset 4 with last epoch 2; the leader has no epoch 2.
    assert leader.validate_offset_and_epoch(4, 2) == (1, 2)
    assert leader.validate_offset_and_epoch(3, 3) is None
    assert leader.validate_offset_and_epoch(0, 0) is None
    assert follower.truncation_offset(1, 2) == 2
    follower.truncate_to(2)
    follower.append_follower(leader.read(2, 1 << 20), 3, 0)
    assert follower.read(0, 1 << 20) == leader.read(0, 1 << 20)


def test_follower_append_refuses_gaps_and_future_epochs():
    leader = RaftLog(MemoryFileSystem(), "/l", 0)
    leader.append_leader([b"a"], 1, 0)
    leader.append_leader([b"b"], 2, 0)
    follower = RaftLog(MemoryFileSystem(), "/f", 0)
    with pytest.raises(RaftLogError, match="log end"):
        follower.append_follower(leader.read(1, 1 << 20), 2, 0)
    with pytest.raises(RaftLogError, match="epoch"):
        follower.append_follower(leader.read(0, 1 << 20), 1, 0)
    with pytest.raises(RaftLogError):
        follower.append_follower(b"\x00" * 70, 2, 0)
    assert follower.end_offset == 0
