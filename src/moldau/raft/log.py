"""`RaftLog`: the metadata log `__cluster_metadata-0` as the Raft client sees it.

Theory of operation
-------------------
The log is an ordinary `PartitionLog` (segments, indexes, leader-epoch cache, recovery after
a crash) in `<data_dir>/__cluster_metadata-0`, in Kafka's record-batch format, so Kafka's
`kafka-dump-log.sh --cluster-metadata-decoder` reads it. This class adds what Raft needs:

- Leader appends (`append_leader`): one batch per call, each record's value an opaque
  controller record, no key, the batch stamped with the leader's epoch. A new leader first
  writes a LeaderChange control record (`append_leader_change`): a control batch whose one
  record has Kafka's control key (version 0, type 2) and a `LeaderChangeMessage` v0 value
  listing the voters and those that voted for it. It gives the new epoch an entry of its own
  to commit (Raft's "commit an entry of your own term first").
- Follower appends (`append_follower`): the bytes the leader sent, whole batches, which must
  start exactly at our log end offset and carry epochs no newer than ours.
- Divergence, as Kafka's ReplicatedLog: `validate_offset_and_epoch` is the leader's check of a
  follower's (fetch offset, last fetched epoch) — None when the follower's log matches ours
  up to its fetch offset, else the (epoch, end offset) to truncate to; `truncate_to_end_offset`
  is the follower's answer to it.
- Durability: the client calls `flush()` (one fsync) before it lets anyone count the records;
  `flushed_offset` is the offset below which everything is on disk.
- `last_fetched_epoch` is the epoch of the last batch, 0 for an empty log (as Kafka).

There is no log start offset other than 0: this round has no snapshots, so nothing is ever
deleted from the metadata log (retention is off) and FetchSnapshot is never needed.
"""

from __future__ import annotations

import errno
import io
import posixpath
import struct
import uuid
from typing import Iterator

from kio.schema.leader_change_message.v0.data import LeaderChangeMessage, Voter
from kio.serial import entity_reader, entity_writer

from moldau.log.config import LogConfig
from moldau.log.fs import FileSystem
from moldau.log.partition_log import LogError, PartitionLog
from moldau.records import Record, RecordsError, build_batch, iterate_batches, iterate_records
from moldau.records.batch import validate_payload

from . import faults
from .config import BATCH_BYTES_MAX

TOPIC = "__cluster_metadata"
PARTITION = 0
DIRECTORY = f"{TOPIC}-{PARTITION}"
# Kafka's Uuid.METADATA_TOPIC_ID: the metadata topic's id in Fetch v13+.
TOPIC_ID = uuid.UUID(int=1)

# Control record key (version int16, type int16); type 2 is LEADER_CHANGE.
_CONTROL_KEY = struct.Struct(">hh")
CONTROL_TYPE_LEADER_CHANGE = 2
_write_leader_change = entity_writer(LeaderChangeMessage)
_read_leader_change = entity_reader(LeaderChangeMessage)
_RECORDS_READ_BYTES = 1024 * 1024


class RaftLogError(Exception):
    """Bytes from a peer that cannot go into the log (the response is dropped)."""


def encode_leader_change(leader_id: int, voters: list[int], granting: list[int]) -> bytes:
    message = LeaderChangeMessage(
        version=0,
        leader_id=leader_id,
        voters=tuple(Voter(voter_id=v) for v in sorted(voters)),
        granting_voters=tuple(Voter(voter_id=v) for v in sorted(granting)),
    )
    buffer = io.BytesIO()
    _write_leader_change(buffer, message)
    return buffer.getvalue()


def decode_leader_change(value: bytes) -> tuple[int, list[int]]:
    """(leader id, voter ids) of a LeaderChange control record's value."""
    message, _ = _read_leader_change(value, 0)
    return int(message.leader_id), sorted(int(v.voter_id) for v in message.voters)


class RaftLog:
    def __init__(self, fs: FileSystem, data_dir: str, now_ms: int,
                 segment_bytes: int = 1024 * 1024 * 1024) -> None:
        self.directory = posixpath.join(data_dir, DIRECTORY)
        config = LogConfig(segment_bytes=segment_bytes, retention_ms=-1, retention_bytes=-1,
                           max_message_bytes=BATCH_BYTES_MAX, segment_ms=2**62)
        self.log = PartitionLog.open(fs, self.directory, config, now_ms)
        if self.log.offline is not None:  # damaged below what was synced: refuse to start on it
            fault = self.log.offline
            self.log.close()
            raise OSError(errno.EIO, f"the metadata log is damaged: {fault.describe()}", fault.path)

    # --- positions ----------------------------------------------------------------------------
    @property
    def end_offset(self) -> int:
        return self.log.log_end_offset

    @property
    def flushed_offset(self) -> int:
        return min(self.log.recovery_point, self.log.log_end_offset)

    @property
    def last_fetched_epoch(self) -> int:
        return max(self.log.latest_epoch, 0)

    def end_offset_for_epoch(self, epoch: int) -> tuple[int, int]:
        """(largest epoch <= `epoch` we have, the offset where it ends), Kafka's semantics."""
        return self.log.end_offset_for_epoch(epoch)

    # --- appends ------------------------------------------------------------------------------
    def append_leader(self, values: list[bytes], epoch: int, now_ms: int) -> tuple[int, int]:
        """One data batch of `values`; returns (first offset, last offset)."""
        records = [Record(i, now_ms, None, value) for i, value in enumerate(values)]
        batch = build_batch(records, partition_leader_epoch=epoch)
        info = self.log.append_as_leader(batch, epoch, now_ms)
        return info.first_offset, info.last_offset

    def append_leader_change(self, epoch: int, leader_id: int, voters: list[int],
                             granting: list[int], now_ms: int) -> int:
        value = encode_leader_change(leader_id, voters, granting)
        key = _CONTROL_KEY.pack(0, CONTROL_TYPE_LEADER_CHANGE)
        batch = build_batch([Record(0, now_ms, key, value)], control=True,
                            partition_leader_epoch=epoch)
        return self.log.append_as_leader(batch, epoch, now_ms).first_offset

    def append_follower(self, payload: bytes, epoch: int, now_ms: int) -> list[tuple[int, int, list[int]]]:
        """Append whole batches from the leader; returns (epoch, leader id, voters) of the
        LeaderChange records among them (to check against our own configuration)."""
        try:
            headers = validate_payload(payload, BATCH_BYTES_MAX, require_dense_offsets=False)
        except RecordsError as error:
            raise RaftLogError(f"bad batch from the leader: {error}") from None
        if headers[0].base_offset != self.end_offset:
            raise RaftLogError(f"batch at {headers[0].base_offset}, log end {self.end_offset}")
        for header in headers:
            if header.partition_leader_epoch > epoch or header.partition_leader_epoch < 0:
                raise RaftLogError(f"batch epoch {header.partition_leader_epoch} in epoch {epoch}")
        try:
            self.log.append_as_follower(payload, now_ms)
        except LogError as error:
            raise RaftLogError(str(error)) from None
        return list(_leader_changes(payload))

    def flush(self) -> None:
        if self.log.recovery_point < self.log.log_end_offset:
            self.log.flush()

    # --- divergence ---------------------------------------------------------------------------
    def validate_offset_and_epoch(self, offset: int, epoch: int) -> tuple[int, int] | None:
        """None if our log holds `epoch` up to at least `offset`; else (epoch, end offset)
        of the longest prefix the follower may keep."""
        if offset == 0:
            return None
        end_epoch, end_offset = self.end_offset_for_epoch(epoch)
        if end_epoch != epoch or end_offset < offset:
            return end_epoch, end_offset
        return None

    def truncation_offset(self, epoch: int, end_offset: int) -> int:
        """Where to truncate after the leader said our log diverges past (epoch, end_offset)
        (Kafka's ReplicatedLog.truncateToEndOffset)."""
        if epoch <= 0 or faults.active("skip-follower-truncation"):
            offset = min(end_offset, self.end_offset)
        else:
            local_epoch, local_end = self.end_offset_for_epoch(epoch)
            offset = min(local_end, end_offset) if local_epoch == epoch else local_end
        return max(0, offset)

    def truncate_to(self, offset: int) -> None:
        self.log.truncate_to(offset)

    # --- reads --------------------------------------------------------------------------------
    def read(self, offset: int, max_bytes: int) -> bytes:
        return self.log.read(offset, max_bytes, None, True).read_bytes()

    def batches(self, start: int, end: int) -> Iterator[tuple[int, int, int, bool, bytes]]:
        """(base offset, last offset, epoch, is control, batch bytes) of the batches that
        hold offsets in [start, end)."""
        offset = start
        while offset < end:
            data = self.read(offset, _RECORDS_READ_BYTES)
            if not data:
                return
            for header, batch in iterate_batches(data):
                if header.base_offset >= end:
                    return
                yield (header.base_offset, header.last_offset, header.partition_leader_epoch,
                       header.is_control, batch)
                offset = header.last_offset + 1

    def read_committed(self, start: int, max_records: int, high_watermark: int) -> list[tuple[int, bytes]]:
        """Data records (offset, value) from `start`, below the high watermark."""
        out: list[tuple[int, bytes]] = []
        for _, _, _, control, batch in self.batches(max(0, start), high_watermark):
            if control:
                continue
            for record in iterate_records(batch):
                if start <= record.offset < high_watermark and record.value is not None:
                    out.append((record.offset, record.value))
                    if len(out) >= max_records:
                        return out
        return out

    def close(self) -> None:
        self.log.close()


def _leader_changes(payload: bytes) -> Iterator[tuple[int, int, list[int]]]:
    for header, batch in iterate_batches(payload):
        if not header.is_control:
            continue
        for record in iterate_records(batch):
            if record.key is None or len(record.key) < 4 or record.value is None:
                continue
            _, kind = _CONTROL_KEY.unpack_from(record.key)
            if kind == CONTROL_TYPE_LEADER_CHANGE:
                leader_id, voters = decode_leader_change(record.value)
                yield header.partition_leader_epoch, leader_id, voters
