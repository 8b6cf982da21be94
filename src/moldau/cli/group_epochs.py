"""Member epochs of a KIP-848 consumer group, straight from ConsumerGroupDescribe (API 69).

librdkafka's describe_consumer_groups reads ConsumerGroupDescribe but keeps no member epochs,
so `moldau groups describe` asks the group's coordinator itself: one ConsumerGroupDescribe v0
request over a plain connection (kio encodes it; it is Kafka's own API, so this works against
Apache Kafka too). With TLS or SASL configured (security.protocol other than PLAINTEXT) the
epochs are left out rather than sent around the client's security settings.
"""

from __future__ import annotations

import io
import socket
import struct

from kio.schema.consumer_group_describe.v0.request import ConsumerGroupDescribeRequest
from kio.schema.consumer_group_describe.v0.response import ConsumerGroupDescribeResponse
from kio.serial import entity_reader, entity_writer

API_KEY, VERSION = 69, 0


def member_epochs(host: str, port: int, group: str, client_config: dict[str, str],
                  timeout_s: float = 10.0) -> dict[str, dict] | None:
    """member id -> {"member_epoch", "target": [[topic, partition]...]} plus the group's epochs
    and state under the key "" ({"group_epoch", "assignment_epoch", "state"}: librdkafka knows
    no Assigning or Reconciling state); None when it cannot be asked."""
    if client_config.get("security.protocol", "PLAINTEXT").upper() != "PLAINTEXT":
        return None
    body = io.BytesIO()
    entity_writer(ConsumerGroupDescribeRequest)(
        body, ConsumerGroupDescribeRequest(group_ids=(group,), include_authorized_operations=False))
    client_id = b"moldau-cli"
    header = struct.pack(">hhih", API_KEY, VERSION, 1, len(client_id)) + client_id + b"\x00"
    payload = header + body.getvalue()
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as sock:
            sock.sendall(struct.pack(">i", len(payload)) + payload)
            size = struct.unpack(">i", _read(sock, 4))[0]
            frame = _read(sock, size)
    except (OSError, struct.error):
        return None
    response, _ = entity_reader(ConsumerGroupDescribeResponse)(frame, 5)  # correlation id + empty tags
    for described in response.groups:
        if described.group_id != group or described.error_code.value != 0:
            continue
        epochs: dict[str, dict] = {"": {"group_epoch": int(described.group_epoch),
                                        "assignment_epoch": int(described.assignment_epoch),
                                        "state": described.group_state}}
        for member in described.members:
            epochs[member.member_id] = {
                "member_epoch": int(member.member_epoch),
                "target": sorted([tp.topic_name, int(p)] for tp in member.target_assignment.topic_partitions
                                 for p in tp.partitions)}
        return epochs
    return None


def _read(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise OSError("connection closed")
        data += chunk
    return bytes(data)
