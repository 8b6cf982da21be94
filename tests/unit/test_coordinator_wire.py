"""Every version of every group API the broker serves, through BrokerCore.handle_request.

Requests are built per version from one version-agnostic description (the same `build` the
handlers use for responses), encoded with kio, handled by a core on an in-memory file system,
and the response frames decoded with kio: a field missing for some version, or a response
that does not encode, fails here rather than in a client.
"""

from __future__ import annotations

import io
import struct
import uuid

import pytest
from kio.schema.errors import ErrorCode
from kio.serial import entity_reader, entity_writer

from moldau.broker import apis
from moldau.broker.config import BrokerConfig
from moldau.broker.core import BrokerCore
from moldau.testing.node import committed, local_core
from moldau.log import MemoryFileSystem
from moldau.protocol import codec
from moldau.protocol.build import build

TOPIC_PARTITIONS = [{"name": "t", "partition_indexes": [0, 1]}]

REQUESTS = {
    10: {"key": "g", "key_type": 0, "coordinator_keys": ["g", "h"]},
    11: {"group_id": "join", "session_timeout": 10_000, "rebalance_timeout": 20_000, "member_id": "",
         "group_instance_id": None, "protocol_type": "consumer", "protocols": [{"name": "range", "metadata": b"m"}],
         "reason": None},
    14: {"group_id": "g", "generation_id": 1, "member_id": "nobody", "group_instance_id": None,
         "protocol_type": "consumer", "protocol_name": "range", "assignments": []},
    12: {"group_id": "g", "generation_id": 1, "member_id": "nobody", "group_instance_id": None},
    13: {"group_id": "g", "member_id": "nobody",
         "members": [{"member_id": "nobody", "group_instance_id": None, "reason": None}]},
    8: {"group_id": "g", "generation_id_or_member_epoch": -1, "member_id": "", "group_instance_id": None,
        "retention_time": -1, "topics": [{"name": "t", "partitions": [
            {"partition_index": 0, "committed_offset": 3, "committed_leader_epoch": -1, "committed_metadata": "x"}]}]},
    9: {"group_id": "g", "topics": TOPIC_PARTITIONS, "require_stable": False,
        "groups": [{"group_id": "g", "member_id": None, "member_epoch": -1, "topics": TOPIC_PARTITIONS},
                   {"group_id": "other", "member_id": None, "member_epoch": -1, "topics": None}]},
    16: {"states_filter": [], "types_filter": []},
    15: {"groups": ["g", "missing"], "include_authorized_operations": False},
    42: {"groups_names": ["missing"]},
    47: {"group_id": "g", "topics": [{"name": "t", "partitions": [{"partition_index": 1}]}]},
    22: {"transactional_id": None, "transaction_timeout": 60_000, "producer_id": -1, "producer_epoch": -1,
         "enable2_pc": False, "keep_prepared_txn": False},
}

CASES = [(key, version) for key in REQUESTS
         for version in range(apis.REGISTRY[key].min_version, apis.REGISTRY[key].max_version + 1)]


@pytest.fixture(scope="module")
def core():
    counter = iter(range(1, 1_000_000))
    config = BrokerConfig(data_dir="/data", offsets_topic_num_partitions=2, group_initial_rebalance_delay_ms=0)
    core = local_core(config, MemoryFileSystem(), lambda: uuid.UUID(int=next(counter)), 0)
    committed(core).create_topic("t", 2, 1)
    return core


def call(core, key: int, version: int, data: dict, client_id: str = "wire-test"):
    schema = codec.request_schema(key, version)
    body = io.BytesIO()
    entity_writer(schema)(body, build(schema, data))
    header = struct.pack(">hhih", key, version, 7, len(client_id)) + client_id.encode()
    if codec.is_flexible(key, version):
        header += b"\x00"  # no tagged fields
    result = core.handle_request(header + body.getvalue(), 1, "127.0.0.1", 1_000)
    assert isinstance(result, bytes), f"api {key} v{version} answered {result!r}"
    return decode(key, version, result)


def decode(key: int, version: int, frame: bytes):
    (size, correlation_id) = struct.unpack_from(">ii", frame)
    assert size == len(frame) - 4 and correlation_id == 7
    offset = 8
    if codec.response_header_flexible(key, version):
        offset = codec.skip_tagged_fields(frame, offset)
    value, _ = entity_reader(codec.response_schema(key, version))(memoryview(frame), offset)
    return value


@pytest.mark.parametrize(("key", "version"), CASES, ids=[f"api{k}-v{v}" for k, v in CASES])
def test_every_served_version_round_trips(core, key, version):
    data = dict(REQUESTS[key])
    if key == 11:
        data["group_id"] = f"join-v{version}"
    response = call(core, key, version, data)
    check(key, version, response)


def check(key: int, version: int, response) -> None:
    if key == 10:
        entries = response.coordinators if version >= 4 else [response]
        assert [e.error_code for e in entries] == [ErrorCode.none] * len(entries)
        assert all(e.node_id == 1 for e in entries)
    elif key == 11:
        expected = ErrorCode.member_id_required if version >= 4 else ErrorCode.none
        assert response.error_code == expected and response.member_id.startswith("wire-test-")
    elif key in (12, 14):
        assert response.error_code == ErrorCode.unknown_member_id
    elif key == 13:
        errors = [m.error_code for m in response.members] if version >= 3 else [response.error_code]
        assert errors == [ErrorCode.unknown_member_id]
    elif key == 8:
        assert response.topics[0].partitions[0].error_code == ErrorCode.none
    elif key == 9:
        topics = response.groups[0].topics if version >= 8 else response.topics
        partitions = {p.partition_index: p.committed_offset for p in topics[0].partitions}
        assert partitions == {0: 3, 1: -1}
        if version >= 8:  # several groups in one request; a null topic list means "all"
            assert response.groups[1].group_id == "other" and response.groups[1].topics == ()
    elif key == 16:
        assert response.error_code == ErrorCode.none and "g" in [g.group_id for g in response.groups]
    elif key == 15:
        assert [g.group_state for g in response.groups] == ["Empty", "Dead"]
    elif key == 42:
        assert response.results[0].error_code == ErrorCode.group_id_not_found
    elif key == 47:
        assert response.error_code == ErrorCode.none
    elif key == 22:
        assert response.error_code == ErrorCode.none and response.producer_id >= 0 and response.producer_epoch == 0
