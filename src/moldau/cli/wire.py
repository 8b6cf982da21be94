"""A few Kafka requests sent straight over a socket, for what no client library asks.

`moldau cluster status` needs the metadata quorum's leader (DescribeQuorum, which
confluent-kafka does not offer) and the partitions' leaders and ISRs. One request per
connection, the frames from moldau.protocol.codec; errors surface as OSError.
"""

from __future__ import annotations

import socket
import struct
from typing import Any

from kio.schema.describe_quorum.v0 import request as quorum_request
from kio.schema.metadata.v12 import request as metadata_request

from moldau.protocol import codec

TIMEOUT_S = 5.0
_INT32 = struct.Struct(">i")


def call(address: tuple[str, int], api_key: int, version: int, body: Any) -> Any:
    with socket.create_connection(address, timeout=TIMEOUT_S) as sock:
        sock.sendall(codec.encode_request(api_key, version, 1, "moldau-cli", body))
        (size,) = _INT32.unpack(_read(sock, 4))
        payload = _read(sock, size)
    return codec.read_response(api_key, version, payload)[1]


def _read(sock: socket.socket, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = sock.recv(min(left, 1 << 20))
        if not chunk:
            raise ConnectionError("the node closed the connection")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def active_controller(address: tuple[str, int]) -> int:
    """The metadata quorum's leader (the active controller), -1 when it has none."""
    body = quorum_request.DescribeQuorumRequest(topics=(quorum_request.TopicData(
        topic_name="__cluster_metadata", partitions=(quorum_request.PartitionData(partition_index=0),)),))
    response = call(address, 55, 0, body)
    for topic in response.topics:
        for partition in topic.partitions:
            return partition.leader_id
    return -1


def partitions(address: tuple[str, int]) -> list[tuple[str, int, int, list[int], list[int]]]:
    """(topic, partition, leader, replicas, isr) of every partition, internal topics included."""
    body = metadata_request.MetadataRequest(topics=None, allow_auto_topic_creation=False,
                                            include_topic_authorized_operations=False)
    response = call(address, 3, 12, body)
    found = []
    for topic in sorted(response.topics, key=lambda t: t.name or ""):
        for p in sorted(topic.partitions, key=lambda p: p.partition_index):
            found.append((topic.name, p.partition_index, p.leader_id, list(p.replica_nodes), list(p.isr_nodes)))
    return found


def reassign(address: tuple[str, int], topic: str, targets: dict[int, list[int] | None]) -> list[tuple[int, str, str]]:
    """AlterPartitionReassignments: partition -> new replicas (None cancels). Returns
    (partition, error name, message) for each partition the controller refused."""
    from kio.schema.alter_partition_reassignments.v0 import request as alter

    import datetime

    body = alter.AlterPartitionReassignmentsRequest(
        timeout=datetime.timedelta(seconds=30),
        topics=(alter.ReassignableTopic(name=topic, partitions=tuple(
            alter.ReassignablePartition(partition_index=p, replicas=None if r is None else tuple(r))
            for p, r in sorted(targets.items()))),))
    response = call(address, 45, 0, body)
    if response.error_code != 0:
        return [(-1, response.error_code.name, response.error_message or "")]
    return [(p.partition_index, p.error_code.name, p.error_message or "")
            for t in response.responses for p in t.partitions if p.error_code != 0]


def reassignments(address: tuple[str, int]) -> list[tuple[str, int, list[int], list[int], list[int]]]:
    """(topic, partition, replicas, adding, removing) of every reassignment in progress."""
    from kio.schema.list_partition_reassignments.v0 import request as listing

    import datetime

    response = call(address, 46, 0, listing.ListPartitionReassignmentsRequest(
        timeout=datetime.timedelta(seconds=30), topics=None))
    return [(t.name, p.partition_index, list(p.replicas), list(p.adding_replicas), list(p.removing_replicas))
            for t in response.topics for p in t.partitions]
