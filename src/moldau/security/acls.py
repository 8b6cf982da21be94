"""The authorizer: Kafka's StandardAuthorizer semantics as a pure function over the ACLs of the
metadata image.

Theory of operation. An ACL says: principal P from host H is ALLOWed (or DENYed) operation O on
resources of type T whose name equals N (LITERAL; N = "*" matches every name) or starts with N
(PREFIXED). `authorize(request, index)` decides one (principal, host, operation, resource):
1. super users (`super.users`) may do everything;
2. any matching DENY refuses (DENY beats ALLOW, whatever the pattern);
3. a matching ALLOW permits — for the operation itself, ALL, and the implied ones: DESCRIBE is
   implied by READ, WRITE, DELETE and ALTER; DESCRIBE_CONFIGS by ALTER_CONFIGS (ALLOW only);
4. with no ACL at all on the resource, `allow.everyone.if.no.acl.found` decides (default false).
A principal or host of "*" in an ACL matches every principal or host.

Handlers call `BrokerCore.authorize(ctx, operation, resource_type, name)`, which is this function
with the request's principal and host, or True when no authorizer is configured
(`authorizer.class.name` unset). Which operation on which resource each API checks follows
Kafka's table (`API_OPERATIONS` below, tested against every handler).
"""

from __future__ import annotations

from dataclasses import dataclass

# AclOperation codes
UNKNOWN_OP, ANY_OP, ALL, READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE, CLUSTER_ACTION = range(10)
DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE, CREATE_TOKENS, DESCRIBE_TOKENS, TWO_PHASE_COMMIT = range(10, 16)
OPERATION_NAMES = {ALL: "ALL", READ: "READ", WRITE: "WRITE", CREATE: "CREATE", DELETE: "DELETE", ALTER: "ALTER",
                   DESCRIBE: "DESCRIBE", CLUSTER_ACTION: "CLUSTER_ACTION", DESCRIBE_CONFIGS: "DESCRIBE_CONFIGS",
                   ALTER_CONFIGS: "ALTER_CONFIGS", IDEMPOTENT_WRITE: "IDEMPOTENT_WRITE",
                   CREATE_TOKENS: "CREATE_TOKENS", DESCRIBE_TOKENS: "DESCRIBE_TOKENS",
                   TWO_PHASE_COMMIT: "TWO_PHASE_COMMIT", ANY_OP: "ANY"}
# ResourceType codes
UNKNOWN_RESOURCE, ANY_RESOURCE, TOPIC, GROUP, CLUSTER, TRANSACTIONAL_ID, DELEGATION_TOKEN, USER = range(8)
RESOURCE_NAMES = {TOPIC: "TOPIC", GROUP: "GROUP", CLUSTER: "CLUSTER", TRANSACTIONAL_ID: "TRANSACTIONAL_ID",
                  DELEGATION_TOKEN: "DELEGATION_TOKEN", USER: "USER", ANY_RESOURCE: "ANY"}
CLUSTER_NAME = "kafka-cluster"
# PatternType codes
PATTERN_ANY, PATTERN_MATCH, LITERAL, PREFIXED = 1, 2, 3, 4
PATTERN_NAMES = {LITERAL: "LITERAL", PREFIXED: "PREFIXED", PATTERN_ANY: "ANY", PATTERN_MATCH: "MATCH"}
# AclPermissionType codes
PERMISSION_ANY, DENY, ALLOW = 1, 2, 3
PERMISSION_NAMES = {DENY: "DENY", ALLOW: "ALLOW", PERMISSION_ANY: "ANY"}
WILDCARD = "*"
WILDCARD_PRINCIPAL = "User:*"

# The operations each resource type has (Kafka's ResourceType/AclOperation pairs), which is
# also what Metadata/DescribeGroups/DescribeCluster report as authorized operations.
RESOURCE_OPERATIONS = {
    TOPIC: (READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS),
    GROUP: (READ, DELETE, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS),  # group configs (KIP-848), as Kafka 4.1.1
    CLUSTER: (CREATE, ALTER, DESCRIBE, CLUSTER_ACTION, DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE),
    TRANSACTIONAL_ID: (WRITE, DESCRIBE, TWO_PHASE_COMMIT),
    DELEGATION_TOKEN: (DESCRIBE,),
    USER: (CREATE_TOKENS, DESCRIBE_TOKENS),
}
_IMPLIED_BY_ALLOW = {DESCRIBE: (READ, WRITE, DELETE, ALTER), DESCRIBE_CONFIGS: (ALTER_CONFIGS,)}
AUTHORIZER_CLASSES = ("org.apache.kafka.metadata.authorizer.StandardAuthorizer", "kafka.security.authorizer.AclAuthorizer")


@dataclass(frozen=True, slots=True)
class Acl:
    resource_type: int
    resource_name: str
    pattern_type: int
    principal: str
    host: str
    operation: int
    permission_type: int


class AclIndex:
    """The ACLs of the image grouped for lookups: by resource type, literal names in a dict,
    prefixed patterns in a list (few, in practice)."""

    def __init__(self, acls) -> None:
        self.literal: dict[tuple[int, str], list] = {}
        self.prefixed: dict[int, list] = {}
        for acl in acls:
            if acl.pattern_type == PREFIXED:
                self.prefixed.setdefault(acl.resource_type, []).append(acl)
            else:
                self.literal.setdefault((acl.resource_type, acl.resource_name), []).append(acl)

    def matching(self, resource_type: int, name: str) -> list:
        """Every ACL whose pattern covers the resource."""
        found = list(self.literal.get((resource_type, name), ()))
        if name != WILDCARD:
            found.extend(self.literal.get((resource_type, WILDCARD), ()))
        found.extend(acl for acl in self.prefixed.get(resource_type, ()) if name.startswith(acl.resource_name))
        return found


@dataclass(frozen=True, slots=True)
class AuthorizerSettings:
    super_users: frozenset[str]
    allow_if_no_acl: bool

    @classmethod
    def from_security(cls, security: dict[str, str]) -> "AuthorizerSettings":
        users = frozenset(u.strip() for u in security.get("super.users", "").split(";") if u.strip())
        allow = security.get("allow.everyone.if.no.acl.found", "false").strip().lower() == "true"
        return cls(users, allow)


def authorize(principal: str, host: str, operation: int, resource_type: int, name: str,
              index: AclIndex, settings: AuthorizerSettings) -> bool:
    if principal in settings.super_users:
        return True
    acls = index.matching(resource_type, name)
    if not acls:
        return settings.allow_if_no_acl
    allowed = False
    implied_by = _IMPLIED_BY_ALLOW.get(operation, ())
    for acl in acls:
        if acl.principal != principal and acl.principal != WILDCARD_PRINCIPAL:
            continue
        if acl.host != host and acl.host != WILDCARD:
            continue
        if acl.permission_type == DENY:
            if acl.operation in (operation, ALL):
                return False
        elif acl.permission_type == ALLOW:
            if acl.operation in (operation, ALL) or acl.operation in implied_by:
                allowed = True
    return allowed


def authorize_by_resource_type(principal: str, host: str, operation: int, resource_type: int, acls,
                               settings: AuthorizerSettings) -> bool:
    """Whether some resource of the type would be allowed: an ALLOW for the principal (or
    everyone) on any pattern, unless a DENY on every resource ("*" literal) cancels it."""
    if principal in settings.super_users:
        return True
    allowed = False
    for acl in acls:
        if acl.resource_type != resource_type or acl.principal not in (principal, WILDCARD_PRINCIPAL):
            continue
        if acl.host not in (host, WILDCARD) or acl.operation not in (operation, ALL):
            continue
        if acl.permission_type == DENY and acl.pattern_type == LITERAL and acl.resource_name == WILDCARD:
            return False
        allowed = allowed or acl.permission_type == ALLOW
    return allowed


def operations_bitfield(allowed: list[int]) -> int:
    """Kafka's authorized-operations bitfield (bit n = AclOperation code n)."""
    return sum(1 << code for code in allowed)


# --- Kafka's authorization table: API key -> the (operation, resource type) checks -----------
# From Kafka's "Operations and Resources on Protocols" (docs/security, authorization section);
# an entry lists every check the API may make. tests/unit/test_authorization_table.py sends
# each request and checks that the handler makes exactly these checks.
API_OPERATIONS: dict[int, tuple[tuple[int, int], ...]] = {
    0: ((WRITE, TOPIC), (WRITE, TRANSACTIONAL_ID)),  # Produce (transactional id only when set)
    1: ((READ, TOPIC), (CLUSTER_ACTION, CLUSTER)),  # Fetch (CLUSTER_ACTION: follower and metadata fetches)
    2: ((DESCRIBE, TOPIC),),  # ListOffsets
    3: ((DESCRIBE, TOPIC), (CREATE, CLUSTER), (CREATE, TOPIC)),  # Metadata (+ auto-create)
    8: ((READ, GROUP), (READ, TOPIC)),  # OffsetCommit
    9: ((DESCRIBE, GROUP), (DESCRIBE, TOPIC)),  # OffsetFetch
    10: ((DESCRIBE, GROUP), (DESCRIBE, TRANSACTIONAL_ID)),  # FindCoordinator
    11: ((READ, GROUP),),  # JoinGroup
    12: ((READ, GROUP),),  # Heartbeat
    13: ((READ, GROUP),),  # LeaveGroup
    14: ((READ, GROUP),),  # SyncGroup
    15: ((DESCRIBE, GROUP),),  # DescribeGroups
    16: ((DESCRIBE, CLUSTER), (DESCRIBE, GROUP)),  # ListGroups (cluster, else per group)
    17: (),  # SaslHandshake
    18: (),  # ApiVersions
    19: ((CREATE, CLUSTER), (CREATE, TOPIC), (DESCRIBE_CONFIGS, TOPIC)),  # CreateTopics
    20: ((DELETE, TOPIC), (DESCRIBE, TOPIC)),  # DeleteTopics (DESCRIBE: ids, existence)
    21: ((DELETE, TOPIC),),  # DeleteRecords
    22: ((WRITE, TRANSACTIONAL_ID), (IDEMPOTENT_WRITE, CLUSTER), (WRITE, TOPIC)),  # InitProducerId
    23: ((DESCRIBE, TOPIC), (CLUSTER_ACTION, CLUSTER)),  # OffsetForLeaderEpoch
    24: ((WRITE, TRANSACTIONAL_ID), (WRITE, TOPIC)),  # AddPartitionsToTxn
    25: ((WRITE, TRANSACTIONAL_ID), (READ, GROUP)),  # AddOffsetsToTxn
    26: ((WRITE, TRANSACTIONAL_ID),),  # EndTxn
    27: ((CLUSTER_ACTION, CLUSTER),),  # WriteTxnMarkers
    28: ((WRITE, TRANSACTIONAL_ID), (READ, GROUP), (READ, TOPIC)),  # TxnOffsetCommit
    29: ((DESCRIBE, CLUSTER),),  # DescribeAcls
    30: ((ALTER, CLUSTER),),  # CreateAcls
    31: ((ALTER, CLUSTER),),  # DeleteAcls
    32: ((DESCRIBE_CONFIGS, CLUSTER), (DESCRIBE_CONFIGS, TOPIC), (DESCRIBE_CONFIGS, GROUP)),  # DescribeConfigs
    33: ((ALTER_CONFIGS, CLUSTER), (ALTER_CONFIGS, TOPIC), (ALTER_CONFIGS, GROUP)),  # AlterConfigs
    35: ((DESCRIBE, CLUSTER),),  # DescribeLogDirs
    36: (),  # SaslAuthenticate
    37: ((ALTER, TOPIC),),  # CreatePartitions
    42: ((DELETE, GROUP),),  # DeleteGroups
    43: ((ALTER, CLUSTER),),  # ElectLeaders
    44: ((ALTER_CONFIGS, CLUSTER), (ALTER_CONFIGS, TOPIC), (ALTER_CONFIGS, GROUP)),  # IncrementalAlterConfigs
    45: ((ALTER, CLUSTER),),  # AlterPartitionReassignments
    46: ((DESCRIBE, CLUSTER),),  # ListPartitionReassignments
    47: ((DELETE, GROUP), (READ, TOPIC)),  # OffsetDelete
    48: ((DESCRIBE_CONFIGS, CLUSTER),),  # DescribeClientQuotas
    49: ((ALTER_CONFIGS, CLUSTER),),  # AlterClientQuotas
    50: ((DESCRIBE, CLUSTER),),  # DescribeUserScramCredentials
    51: ((ALTER, CLUSTER),),  # AlterUserScramCredentials
    52: ((CLUSTER_ACTION, CLUSTER),),  # Vote (the metadata quorum's own RPCs: nodes only)
    53: ((CLUSTER_ACTION, CLUSTER),),  # BeginQuorumEpoch
    54: ((CLUSTER_ACTION, CLUSTER),),  # EndQuorumEpoch
    55: ((DESCRIBE, CLUSTER),),  # DescribeQuorum
    56: ((CLUSTER_ACTION, CLUSTER),),  # AlterPartition
    58: ((CLUSTER_ACTION, CLUSTER),),  # Envelope (forwarding brokers)
    60: ((DESCRIBE, CLUSTER),),  # DescribeCluster
    62: ((CLUSTER_ACTION, CLUSTER),),  # BrokerRegistration
    63: ((CLUSTER_ACTION, CLUSTER),),  # BrokerHeartbeat
    61: ((READ, TOPIC),),  # DescribeProducers
    65: ((DESCRIBE, TRANSACTIONAL_ID), (DESCRIBE, TOPIC)),  # DescribeTransactions
    66: ((DESCRIBE, TRANSACTIONAL_ID),),  # ListTransactions
    67: ((CLUSTER_ACTION, CLUSTER),),  # AllocateProducerIds
    68: ((READ, GROUP), (DESCRIBE, TOPIC)),  # ConsumerGroupHeartbeat
    74: ((DESCRIBE_CONFIGS, CLUSTER),),  # ListConfigResources
    69: ((DESCRIBE, GROUP),),  # ConsumerGroupDescribe
    34: ((ALTER, CLUSTER),),  # AlterReplicaLogDirs
    75: ((DESCRIBE, TOPIC),),  # DescribeTopicPartitions
    # Between nodes (KRaft): the nodes' principal needs CLUSTER_ACTION (make it a super user).
    52: ((CLUSTER_ACTION, CLUSTER),),  # Vote
    53: ((CLUSTER_ACTION, CLUSTER),),  # BeginQuorumEpoch
    54: ((CLUSTER_ACTION, CLUSTER),),  # EndQuorumEpoch
    55: ((DESCRIBE, CLUSTER),),  # DescribeQuorum
    56: ((CLUSTER_ACTION, CLUSTER),),  # AlterPartition
    57: ((ALTER, CLUSTER),),  # UpdateFeatures
    58: ((CLUSTER_ACTION, CLUSTER),),  # Envelope
    59: ((CLUSTER_ACTION, CLUSTER),),  # FetchSnapshot
    62: ((CLUSTER_ACTION, CLUSTER),),  # BrokerRegistration
    63: ((CLUSTER_ACTION, CLUSTER),),  # BrokerHeartbeat
    64: ((ALTER, CLUSTER),),  # UnregisterBroker
    67: ((CLUSTER_ACTION, CLUSTER),),  # AllocateProducerIds
    70: ((CLUSTER_ACTION, CLUSTER),),  # ControllerRegistration
    80: ((ALTER, CLUSTER),),  # AddRaftVoter
    81: ((ALTER, CLUSTER),),  # RemoveRaftVoter
    82: ((CLUSTER_ACTION, CLUSTER),),  # UpdateRaftVoter
}
