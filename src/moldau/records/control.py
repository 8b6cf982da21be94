"""Control batches: the COMMIT and ABORT markers that end a transaction in a partition.

Theory of operation. When a transaction ends, its coordinator has the leader of every partition
the transaction wrote to append one *control batch* for the producer: attributes control and
transactional set, the producer's id and epoch, no sequence (-1), and exactly one record in
Kafka's EndTransactionMarker layout:

    key   = version int16 (0) | type int16 (0 = ABORT, 1 = COMMIT)
    value = version int16 (0) | coordinator_epoch int32

A read_committed consumer hides the records of aborted transactions (the broker tells it which
ones, from the aborted-transaction index) and never shows control batches to the application;
a read_uncommitted one skips the control batches only. `end_txn_marker_batch` builds a marker
batch (its base offset is assigned by the log); `read_end_txn_marker` reads one back, None for
an empty control batch (compaction may empty one) or a control record of another type.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from kio.schema.errors import ErrorCode

from .batch import RecordsError
from .record import Record, build_batch, iterate_records

CONTROL_TYPE_ABORT = 0
CONTROL_TYPE_COMMIT = 1
_MARKER_VERSION = 0
_KEY = struct.Struct(">hh")
_VALUE = struct.Struct(">hi")


class EndTxnMarker(NamedTuple):
    commit: bool
    coordinator_epoch: int


def end_txn_marker_batch(producer_id: int, producer_epoch: int, coordinator_epoch: int,
                         commit: bool, timestamp_ms: int) -> bytes:
    """One control batch carrying the marker (base offset 0: the log assigns the real one)."""
    key = _KEY.pack(_MARKER_VERSION, CONTROL_TYPE_COMMIT if commit else CONTROL_TYPE_ABORT)
    value = _VALUE.pack(_MARKER_VERSION, coordinator_epoch)
    return build_batch([Record(0, timestamp_ms, key, value)], base_offset=0, producer_id=producer_id,
                       producer_epoch=producer_epoch, transactional=True, control=True)


def read_end_txn_marker(batch: bytes | bytearray | memoryview) -> EndTxnMarker | None:
    """The marker of one complete control batch; None if it holds no end-transaction record."""
    for record in iterate_records(batch):
        key = record.key or b""
        if len(key) < _KEY.size:
            raise RecordsError(ErrorCode.corrupt_message, "control record key shorter than 4 bytes")
        _, control_type = _KEY.unpack_from(key)
        if control_type not in (CONTROL_TYPE_ABORT, CONTROL_TYPE_COMMIT):
            return None
        value = record.value or b""
        if len(value) < _VALUE.size:
            raise RecordsError(ErrorCode.corrupt_message, "end transaction marker value shorter than 6 bytes")
        _, coordinator_epoch = _VALUE.unpack_from(value)
        return EndTxnMarker(control_type == CONTROL_TYPE_COMMIT, coordinator_epoch)
    return None
