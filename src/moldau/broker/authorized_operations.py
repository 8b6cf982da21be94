"""Kafka's operations per resource type, as the `*_authorized_operations` fields report them.

A client that sets include_cluster/topic_authorized_operations (Metadata, DescribeCluster) or
include_authorized_operations (DescribeGroups) gets a bit set of Kafka's AclOperation codes.
Without an authorizer Kafka reports every operation the resource type supports — and only
those: the cluster resource has no WRITE, a group no WRITE or ALTER (measured against Apache
Kafka 4.1.1: tests/integration/test_authorized_operations.py). An authorizer narrows these
sets to what the principal may do; without one they are the answer.
"""

from __future__ import annotations

NOT_REQUESTED = -2147483648  # Integer.MIN_VALUE: the client did not ask

# AclOperation codes
READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE, CLUSTER_ACTION = 3, 4, 5, 6, 7, 8, 9
DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE = 10, 11, 12

TOPIC = (READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS)
GROUP = (READ, DELETE, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS)
CLUSTER = (CREATE, ALTER, DESCRIBE, CLUSTER_ACTION, DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE)


def bits(operations: tuple[int, ...]) -> int:
    return sum(1 << code for code in operations)


def reported(operations: tuple[int, ...], requested: bool) -> int:
    """The field's value: the operations' bits when the client asked for them."""
    return bits(operations) if requested else NOT_REQUESTED
