"""Kafka's authorization table, API by API: each handler checks exactly the operations on the
resources Kafka's table names (security/acls.py API_OPERATIONS), refuses with Kafka's error
when the principal lacks them, and serves it once the ACLs allow them.

Modelled on Kafka's own AuthorizerIntegrationTest: a principal with no ACLs sends every API;
then the ACLs the table names are granted and the same request must pass authorization.
"""

from __future__ import annotations

import dataclasses
import uuid

import pytest
from kio.schema.errors import ErrorCode

from moldau.broker import apis
from moldau.broker.config import BrokerConfig
from moldau.broker.core import BrokerCore
from moldau.controller import records as r
from moldau.protocol import codec
from moldau.protocol.build import build
from moldau.records.record import Record, build_batch
from moldau.security import acls as a
from moldau.testing.node import committed, local_core

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
    45: (0, {"timeout": 5000, "topics": [{"name": "t", "partitions": [{"partition_index": 0, "replicas": None}]}]}),
    46: (0, {"timeout": 5000, "topics": None}),
    47: (0, {"group_id": "g", "topics": [{"name": "t", "partitions": [{"partition_index": 0}]}]}),
    48: (1, {"components": [], "strict": False}),
    49: (1, {"entries": [{"entity": [{"entity_type": "user", "entity_name": "u"}],
                          "ops": [{"key": "producer_byte_rate", "value": 1024.0, "remove": False}]}],
             "validate_only": True}),
    50: (0, {"users": None}),
    51: (0, {"deletions": [], "upsertions": [{"name": "u", "mechanism": 2, "iterations": 4096, "salt": b"s",
                                               "salted_password": b"p" * 64}]}),
    # the quorum's and the brokers' own RPCs, shaped so that even an allowed one changes nothing
    # (another cluster's id, a stale epoch, an unknown broker)
    52: (2, {"cluster_id": "another-cluster", "voter_id": 1, "topics": [{"topic_name": "__cluster_metadata", "partitions": [
        {"partition_index": 0, "replica_epoch": 0, "replica_id": 5, "replica_directory_id": None,
         "voter_directory_id": None, "last_offset_epoch": 0, "last_offset": 0, "pre_vote": False}]}]}),
    53: (1, {"cluster_id": "another-cluster", "voter_id": 1, "topics": [{"topic_name": "__cluster_metadata", "partitions": [
        {"partition_index": 0, "voter_directory_id": None, "leader_id": 5, "leader_epoch": 0}]}],
        "leader_endpoints": []}),
    54: (1, {"cluster_id": "another-cluster", "topics": [{"topic_name": "__cluster_metadata", "partitions": [
        {"partition_index": 0, "leader_id": 5, "leader_epoch": 0, "preferred_candidates": []}]}],
        "leader_endpoints": []}),
    55: (2, {"topics": [{"topic_name": "__cluster_metadata", "partitions": [{"partition_index": 0}]}]}),
    56: (3, {"broker_id": 7, "broker_epoch": 1, "topics": []}),
    58: (0, {"request_data": b"", "request_principal": None, "client_host_address": bytes([127, 0, 0, 1])}),
    62: (4, {"broker_id": 7, "cluster_id": "another-cluster", "incarnation_id": uuid.UUID(int=7), "listeners": [],
             "features": [], "rack": None, "is_migrating_zk_broker": False, "log_dirs": [],
             "previous_broker_epoch": -1}),
    63: (1, {"broker_id": 7, "broker_epoch": 1, "current_metadata_offset": 0, "want_fence": False,
             "want_shut_down": False, "offline_log_dirs": []}),
    67: (0, {"broker_id": 7, "broker_epoch": 1}),
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
    config = BrokerConfig.from_properties({
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": "User:admin", "offsets.topic.num.partitions": "1",
        "transaction.state.log.num.partitions": "1"})
    config.data_dir = "/data"
    core = local_core(config)
    committed(core).create_topic("t", 1, 1)
    # An open transaction, for ListTransactions to show or leave out and DescribeTransactions to
    # describe (an Empty one's start time, -1, is more than kio's reader accepts).
    node = core.local_node
    transactions = core.extensions["txn_coordinator"]
    transactions.coordinator_node("tx")
    node.pump()
    answers = []
    transactions.init_producer_id("tx", 60_000, None, node.now_ms, lambda *answer: answers.append(answer))
    node.pump()
    transactions.add_partitions("tx", answers[0][1], answers[0][2], {("t", 0)}, 0, node.now_ms, answers.append)
    node.pump()
    assert len(answers) == 2, answers
    return core


def _call(core: BrokerCore, principal: str, key: int) -> set[ErrorCode]:
    version, data = REQUESTS[key]
    schema = codec.request_schema(key, version)
    session = core.connection_opened(99, None, "127.0.0.1")
    session.principal = principal
    value = core.local_node.request(key, version, build(schema, data), connection_id=99)
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
        records.append(r.AccessControlEntryRecord(
            id=uuid.uuid4(), resource_type=resource_type, resource_name=name, pattern_type=a.LITERAL,
            principal=principal, host="*", operation=operation, permission_type=a.ALLOW))
    committed(core).write(records, core.local_node.now_ms)


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
