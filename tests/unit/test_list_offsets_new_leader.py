"""ListOffsets on a leader elected a moment ago (broker/list_offsets.py): until its high
watermark reaches where its epoch began, a consumer asking for the latest offset hears
OFFSET_NOT_AVAILABLE (retriable), never an end below records already acknowledged.

The failing test this came from: franz-go produced 10,000 acknowledged records to a 3-node
moldau.Cluster, partition 0's leader was killed half a second later, and the check that read
each partition up to its end offset found partition 0 empty: the new leader had every record
but its high watermark was still 0 (its followers had not fetched from it yet), and ListOffsets
said the partition ended at 0."""

from __future__ import annotations

import io
import struct

from kio.schema.errors import ErrorCode
from kio.serial import entity_reader, entity_writer

from moldau.protocol import codec
from moldau.protocol.build import build
from moldau.records import Record, build_batch
from test_isr_changes import _leader_of_three

VERSION = 7


def _list_offsets(node, timestamp: int, replica_id: int = -1):
    schema = codec.request_schema(2, VERSION)
    body = io.BytesIO()
    entity_writer(schema)(body, build(schema, {
        "replica_id": replica_id, "isolation_level": 0,
        "topics": [{"name": "t", "partitions": [{"partition_index": 0, "current_leader_epoch": -1,
                                                 "timestamp": timestamp}]}]}))
    header = struct.pack(">hhih", 2, VERSION, 1, 4) + b"test" + b"\x00"
    frame = node.handle(header + body.getvalue())
    response = entity_reader(codec.response_schema(2, VERSION))(memoryview(frame), codec.skip_tagged_fields(frame, 8))[0]
    partition = response.topics[0].partitions[0]
    return partition.error_code, partition.offset


def test_a_new_leader_below_its_epoch_start_answers_offset_not_available():
    node, partition = _leader_of_three()
    for i in range(3):
        partition.append(build_batch([Record(0, 1000 + i, b"k", b"v")], base_offset=0), 1, node.now_ms)
    # The old leader acknowledged them; this node, a follower then, has them but was never told
    # the high watermark. It becomes leader of a new epoch starting at offset 3.
    partition.high_watermark = 0
    partition.become_leader(partition.leader_epoch + 1, partition.replicas, partition.isr, node.now_ms)
    assert (partition.leader_epoch_start_offset, partition.high_watermark) == (3, 0)
    assert _list_offsets(node, -1) == (ErrorCode.offset_not_available, -1)
    assert _list_offsets(node, 1001) == (ErrorCode.offset_not_available, -1)  # found only above the HW
    assert _list_offsets(node, -2) == (ErrorCode.none, 0)  # the earliest offset is known
    assert _list_offsets(node, -1, replica_id=2)[0] == ErrorCode.none  # a replica's question is answered
    # the followers fetch from the new leader: the high watermark reaches the epoch's start
    for follower in (2, 3):
        partition.followers[follower].log_end_offset = 3
    assert partition.maybe_advance_high_watermark()
    assert _list_offsets(node, -1) == (ErrorCode.none, 3)
    assert _list_offsets(node, 1001) == (ErrorCode.none, 1)
