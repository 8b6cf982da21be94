"""Kafka's authorization table, API by API: each handler checks exactly the operations on the
resources Kafka's table names (security/acls.py API_OPERATIONS), refuses with Kafka's error
when the principal lacks them, and serves it once the ACLs allow them.

Modelled on Kafka's own AuthorizerIntegrationTest: a principal with no ACLs sends every API;
then the ACLs the table names are granted and the same request must pass authorization.
"""

from __future__ import annotations

import dataclasses
import io
import struct
import uuid

import pytest
from kio.schema.errors import ErrorCode
from kio.serial import entity_reader, entity_writer

from moldau.broker import apis
from moldau.broker.config import BrokerConfig
from moldau.broker.core import BrokerCore
from moldau.controller import records as r
from moldau.log import MemoryFileSystem
from moldau.protocol import codec
from moldau.protocol.build import build
from moldau.records.record import Record, build_batch
from moldau.security import acls as a

AUTH_ERRORS = {ErrorCode.topic_authorization_failed, ErrorCode.group_authorization_failed,
               ErrorCode.cluster_authorization_failed, ErrorCode.transactional_id_authorization_failed}
BATCH = build_batch([Record(0, 1_000, b"k", b"v")])
TP = [{"name": "t", "partition_indexes": [0]}]
ACL = {"resource_type": 2, "resource_name": "t", "resource_pattern_type": 3, "pattern_type": 3,
       "principal": "User:x", "host": "*", "operation": 3, "permission_type": 3}
FILTER = {"resource_type_filter": 1, "resource_name_filter": None, "pattern_type_filter": 1,
          "principal_filter": None, "host_filter": None, "operation": 1, "permission_type": 1}

# api key -> (version, request description)
REQUESTS = {
    0: (9, {"transactional_id": None, "acks": 1, "timeout": 5000, "topic_data": [
        {"name": "t", "partition_data": [{"index": 0, "records": BATCH}]}]}),
    1: (12, {"replica_id": -1, "max_wait": 0, "min_bytes": 1, "max_bytes": 1 << 20, "isolation_level": 0,
             "session_id": 0, "session_epoch": -1, "rack_id": "", "cluster_id": None, "replica_state": None,
             "topics": [{"topic": "t", "topic_id": None, "partitions": [
                 {"partition": 0, "current_leader_epoch": -1, "fetch_offset": 0, "last_fetched_epoch": -1,
                  "log_start_offset": -1, "partition_max_bytes": 1 << 20, "replica_directory_id": None}]}],
             "forgotten_topics_data": []}),
    2: (7, {"replica_id": -1, "isolation_level": 0, "timeout_ms": 1000, "topics": [
        {"name": "t", "partitions": [{"partition_index": 0, "current_leader_epoch": -1, "timestamp": -1}]}]}),
    3: (12, {"topics": [{"name": "t", "topic_id": None}], "allow_auto_topic_creation": False,
             "include_topic_authorized_operations": False, "include_cluster_authorized_operations": False}),
    8: (8, {"group_id": "g", "generation_id_or_member_epoch": -1, "member_id": "", "group_instance_id": None,
            "retention_time": -1, "topics": [{"name": "t", "partitions": [
                {"partition_index": 0, "committed_offset": 0, "committed_leader_epoch": -1, "committed_metadata": ""}]}]}),
    9: (7, {"group_id": "g", "topics": TP, "require_stable": False}),
    10: (3, {"key": "g", "key_type": 0}),
    11: (7, {"group_id": "g", "session_timeout": 10_000, "rebalance_timeout": 10_000, "member_id": "",
             "group_instance_id": None, "protocol_type": "consumer",
             "protocols": [{"name": "range", "metadata": b""}], "reason": None}),
    12: (4, {"group_id": "g", "generation_id": 1, "member_id": "m", "group_instance_id": None}),
    13: (4, {"group_id": "g", "members": [{"member_id": "m", "group_instance_id": None, "reason": None}]}),
    14: (5, {"group_id": "g", "generation_id": 1, "member_id": "m", "group_instance_id": None,
             "protocol_type": "consumer", "protocol_name": "range", "assignments": []}),
    15: (5, {"groups": ["g"], "include_authorized_operations": True}),
    16: (4, {"states_filter": []}),
    19: (7, {"topics": [{"name": "new", "num_partitions": 1, "replication_factor": 1, "assignments": [],
                         "configs": []}], "timeout": 5000, "validate_only": True}),
    20: (5, {"topic_names": ["t"], "timeout": 5000}),
    21: (2, {"topics": [{"name": "t", "partitions": [{"partition_index": 0, "offset": 0}]}], "timeout": 5000}),
    22: (4, {"transactional_id": None, "transaction_timeout": 60_000, "producer_id": -1, "producer_epoch": -1}),
    23: (4, {"replica_id": -1, "topics": [{"topic": "t", "partitions": [
        {"partition": 0, "current_leader_epoch": -1, "leader_epoch": 0}]}]}),
    24: (3, {"v3_and_below_transactional_id": "tx", "v3_and_below_producer_id": 0, "v3_and_below_producer_epoch": 0,
             "v3_and_below_topics": [{"name": "t", "partitions": [0]}]}),
    25: (3, {"transactional_id": "tx", "producer_id": 0, "producer_epoch": 0, "group_id": "g"}),
    26: (3, {"transactional_id": "tx", "producer_id": 0, "producer_epoch": 0, "committed": True}),
    27: (1, {"markers": [{"producer_id": 0, "producer_epoch": 0, "transaction_result": False, "coordinator_epoch": 0,
                          "topics": [{"name": "t", "partition_indexes": [0]}]}]}),
    28: (3, {"transactional_id": "tx", "group_id": "g", "producer_id": 0, "producer_epoch": 0, "generation_id": -1,
             "member_id": "", "group_instance_id": None, "topics": [{"name": "t", "partitions": [
                 {"partition_index": 0, "committed_offset": 0, "committed_leader_epoch": -1,
                  "committed_metadata": ""}]}]}),
    29: (3, FILTER),
    30: (3, {"creations": [ACL]}),
    31: (3, {"filters": [FILTER]}),
    32: (4, {"resources": [{"resource_type": 2, "resource_name": "t", "configuration_keys": None}],
             "include_synonyms": False, "include_documentation": False}),
    33: (2, {"resources": [{"resource_type": 2, "resource_name": "t", "configs": []}], "validate_only": True}),
    35: (4, {"topics": None}),
    37: (3, {"topics": [{"name": "t", "count": 2, "assignments": None}], "timeout": 5000, "validate_only": True}),
    42: (2, {"groups_names": ["g"]}),
    43: (2, {"election_type": 0, "topic_partitions": [{"topic": "t", "partitions": [0]}], "timeout": 5000}),
    44: (1, {"resources": [{"resource_type": 2, "resource_name": "t", "configs": []}], "validate_only": True}),
    46: (0, {"timeout": 5000, "topics": None}),
    47: (0, {"group_id": "g", "topics": [{"name": "t", "partitions": [{"partition_index": 0}]}]}),
    48: (1, {"components": [], "strict": False}),
    49: (1, {"entries": [{"entity": [{"entity_type": "user", "entity_name": "u"}],
                          "ops": [{"key": "producer_byte_rate", "value": 1024.0, "remove": False}]}],
             "validate_only": True}),
    50: (0, {"users": None}),
    51: (0, {"deletions": [], "upsertions": [{"name": "u", "mechanism": 2, "iterations": 4096, "salt": b"s",
                                               "salted_password": b"p" * 64}]}),
    60: (1, {"include_cluster_authorized_operations": True, "endpoint_type": 1}),
    61: (0, {"topics": [{"name": "t", "partition_indexes": [0]}]}),
    65: (0, {"transactional_ids": ["tx"]}),
    66: (1, {"state_filters": [], "producer_id_filters": [], "duration_filter": -1}),
    68: (1, {"group_id": "g", "member_id": "m", "member_epoch": 0, "instance_id": None, "rack_id": None,
             "rebalance_timeout": 30_000, "subscribed_topic_names": ["t"], "subscribed_topic_regex": None,
             "server_assignor": None, "topic_partitions": []}),
    69: (1, {"group_ids": ["g"], "include_authorized_operations": True}),
    74: (1, {"resource_types": [32]}),
}
UNCHECKED = {17, 18, 36}  # SaslHandshake, ApiVersions, SaslAuthenticate: before authentication
FILTERING = {16, 66}  # ListGroups, ListTransactions leave out what the principal may not see, without an error


def _core() -> BrokerCore:
    counter = iter(range(1, 1_000_000))
    config = BrokerConfig.from_properties({
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": "User:admin", "offsets.topic.num.partitions": "1",
        "transaction.state.log.num.partitions": "1"})
    config.data_dir = "/data"
    core = BrokerCore(config, MemoryFileSystem(), lambda: uuid.UUID(int=next(counter)), 0)
    core.controller.create_topic("t", 1, 1)
    # An open transaction, for ListTransactions to show or leave out and DescribeTransactions to
    # describe (an Empty one's start time, -1, is more than kio's reader accepts).
    transactions = core.extensions["txn_coordinator"]
    transactions.coordinator_node("tx")
    answers = []
    transactions.init_producer_id("tx", 60_000, None, 0, lambda *answer: answers.append(answer))
    transactions.add_partitions("tx", answers[0][1], answers[0][2], {("t", 0)}, 0, 0, answers.append)
    return core


def _call(core: BrokerCore, principal: str, key: int) -> set[ErrorCode]:
    version, data = REQUESTS[key]
    schema = codec.request_schema(key, version)
    body = io.BytesIO()
    entity_writer(schema)(body, build(schema, data))
    header = struct.pack(">hhih", key, version, 7, 4) + b"test"
    if codec.is_flexible(key, version):
        header += b"\x00"
    session = core.connection_opened(99, None, "127.0.0.1")
    session.principal = principal
    result = core.handle_request(header + body.getvalue(), 99, "127.0.0.1", 1_000)
    if isinstance(result, apis.Delayed):
        result = None if result.done else result.on_expire(2_000)
    frame = b"".join(result) if isinstance(result, list) else result
    response_schema = codec.response_schema(key, version)
    offset = 8 + (1 if codec.response_header_flexible(key, version) else 0)
    value, _ = entity_reader(response_schema)(frame, offset)
    return set(_error_codes(value))


def _error_codes(value):
    if dataclasses.is_dataclass(value):
        for f in dataclasses.fields(value):
            item = getattr(value, f.name)
            if isinstance(item, ErrorCode):
                yield item
            else:
                yield from _error_codes(item)
    elif isinstance(value, tuple):
        for item in value:
            yield from _error_codes(item)


def _grant(core: BrokerCore, principal: str, checks) -> None:
    records = []
    for operation, resource_type in checks:
        name = a.CLUSTER_NAME if resource_type == a.CLUSTER else "*"
        records.append(r.AccessControlEntryRecord(id=uuid.uuid4(), resource_type=resource_type, resource_name=name,
                                                  pattern_type=a.LITERAL, principal=principal, host="*",
                                                  operation=operation, permission_type=a.ALLOW))
    core.controller.commit(records)


# Requests between nodes (KRaft, replication): each must check CLUSTER_ACTION (or what the table
# says) on the cluster; their requests are built by the cluster's own tests, not here.
BETWEEN_NODES = {52, 53, 54, 55, 56, 57, 58, 59, 62, 63, 64, 67, 70, 80, 81, 82}


def test_every_served_api_is_in_the_table():
    assert sorted(k for k in apis.REGISTRY if k not in a.API_OPERATIONS) == []
    assert sorted(k for k in apis.REGISTRY if k not in REQUESTS and k not in UNCHECKED | BETWEEN_NODES) == []


@pytest.mark.parametrize("key", sorted(REQUESTS))
def test_denied_without_acls_with_the_operations_of_the_table(key):
    core = _core()
    core.authorization_log = []
    errors = _call(core, "User:bob", key)
    checked = {(op, rt) for api, op, rt in core.authorization_log if api == key}
    table = set(a.API_OPERATIONS[key])
    assert checked and checked <= table, f"api {key} checked {checked}, Kafka's table says {table}"
    if key not in FILTERING:
        assert errors & AUTH_ERRORS, f"api {key} answered {errors} to a principal without ACLs"


@pytest.mark.parametrize("key", sorted(REQUESTS))
def test_allowed_with_the_acls_of_the_table(key):
    core = _core()
    _grant(core, "User:bob", a.API_OPERATIONS[key])
    errors = _call(core, "User:bob", key)
    assert not errors & AUTH_ERRORS, f"api {key} answered {errors} although the table's ACLs allow it"
    assert not _call(core, "User:admin", key) & AUTH_ERRORS  # super users need no ACLs
