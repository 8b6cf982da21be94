"""Idempotent-producer state of one partition: duplicate and sequence checks (KIP-98).

Theory of operation
-------------------
An idempotent producer stamps each batch with (producer_id, producer_epoch, base_sequence);
sequences grow by the record count per partition. The leader remembers, per producer id, its
epoch and the sequence ranges and offsets of its last `batches_per_producer_max` (5, Kafka's
max.in.flight bound) batches, and checks each incoming batch as Kafka's ProducerStateManager:

- epoch older than the known one → INVALID_PRODUCER_EPOCH;
- same epoch and (first_seq, last_seq) equal to a remembered batch → a *duplicate* (a retry of
  an acknowledged batch): nothing is written, the original offsets are returned;
- new epoch: the sequence must start at 0 (unless the producer was unknown);
- same epoch: base_sequence must be last_seq + 1 (wrapping at 2^31-1), else
  OUT_OF_ORDER_SEQUENCE_NUMBER; an unknown producer id is accepted at any sequence (its state
  may have been removed by retention, as Kafka allows).

PartitionLog.append_as_leader checks every batch here before writing (a duplicate comes back
as `AppendInfo.duplicate` with the original offsets) and append_as_leader/follower record the
written batches. The broker's only other contact is `ProducerStateExtension` (registered by
coordinator.install as core.extensions["producer_state"]), whose `tick` expires idle producers.

Batches without a producer id (-1) are not tracked. State is rebuilt on open by scanning batch
headers (no records) from a snapshot's offset: `close()` writes `producer-state-snapshot`
(our own small text format, not Kafka's binary `.snapshot`) at the log end offset, so a clean
restart replays nothing. Truncation rebuilds from the log. Producers idle longer than
producer.id.expiration.ms are dropped by `expire(now_ms)`. Transactions (ongoing-transaction
tracking, last stable offset, aborted-transaction index) are not implemented here.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field

from typing import Any

from kio.schema.errors import ErrorCode

from moldau.records.batch import BatchHeader, RecordsError

from .fs import FileSystem

SNAPSHOT_FILE = "producer-state-snapshot"
# Kafka keeps the last 5 batches per producer (the max.in.flight bound for idempotence).
batches_per_producer_max = 5
# Kafka's producer.id.expiration.ms default (1 day).
producer_id_expiration_ms_default = 24 * 3600 * 1000
_SEQUENCE_MAX = 2**31 - 1


@dataclass(slots=True)
class ProducerEntry:
    producer_epoch: int
    # (first_sequence, last_sequence, first_offset, last_offset), oldest first
    batches: list[tuple[int, int, int, int]] = field(default_factory=list)
    last_timestamp: int = -1

    @property
    def last_sequence(self) -> int:
        return self.batches[-1][1] if self.batches else -1


class ProducerStateError(RecordsError):
    """A batch the producer state refuses; `error_code` is the Kafka error to answer with."""


def _in_sequence(last_sequence: int, next_sequence: int) -> bool:
    return next_sequence == last_sequence + 1 or (next_sequence == 0 and last_sequence == _SEQUENCE_MAX)


class ProducerStateManager:
    def __init__(self) -> None:
        self.producers: dict[int, ProducerEntry] = {}

    def check(self, header: BatchHeader) -> tuple[int, int] | None:
        """Validate a leader batch; (first_offset, last_offset) of the original if duplicate."""
        entry = self.producers.get(header.producer_id)
        if header.producer_id < 0 or entry is None:
            return None
        if header.producer_epoch < entry.producer_epoch:
            raise ProducerStateError(
                ErrorCode.invalid_producer_epoch,
                f"epoch {header.producer_epoch} < {entry.producer_epoch} for producer "
                f"{header.producer_id}")
        first_sequence, last_sequence = header.base_sequence, header.last_sequence
        if header.producer_epoch == entry.producer_epoch:
            for batch in entry.batches:
                if batch[0] == first_sequence and batch[1] == last_sequence:
                    return batch[2], batch[3]
            if entry.batches and not _in_sequence(entry.last_sequence, first_sequence):
                raise ProducerStateError(
                    ErrorCode.out_of_order_sequence_number,
                    f"producer {header.producer_id}: sequence {first_sequence} after "
                    f"{entry.last_sequence}")
        elif first_sequence != 0:
            raise ProducerStateError(
                ErrorCode.out_of_order_sequence_number,
                f"producer {header.producer_id}: new epoch {header.producer_epoch} must start "
                f"at sequence 0, got {first_sequence}")
        return None

    def update(self, header: BatchHeader, first_offset: int, timestamp: int) -> None:
        """Record a written batch (leader or follower) whose first offset is `first_offset`."""
        if header.producer_id < 0:
            return
        entry = self.producers.get(header.producer_id)
        if entry is None or header.producer_epoch != entry.producer_epoch:
            entry = self.producers[header.producer_id] = ProducerEntry(header.producer_epoch)
        if header.base_sequence >= 0:
            entry.batches.append((header.base_sequence, header.last_sequence, first_offset,
                                  first_offset + header.last_offset_delta))
            if len(entry.batches) > batches_per_producer_max:
                del entry.batches[0]
        entry.last_timestamp = max(entry.last_timestamp, timestamp)

    def expire(self, now_ms: int, expiration_ms: int = producer_id_expiration_ms_default) -> int:
        expired = [pid for pid, entry in self.producers.items()
                   if entry.last_timestamp >= 0 and now_ms - entry.last_timestamp > expiration_ms]
        for pid in expired:
            del self.producers[pid]
        return len(expired)

    def clear(self) -> None:
        self.producers.clear()

    # --- snapshot -----------------------------------------------------------------------------
    def write_snapshot(self, fs: FileSystem, directory: str, offset: int) -> None:
        lines = [f"version 0 offset {offset} producers {len(self.producers)}"]
        for pid in sorted(self.producers):
            entry = self.producers[pid]
            batches = " ".join(",".join(str(v) for v in batch) for batch in entry.batches)
            lines.append(f"{pid} {entry.producer_epoch} {entry.last_timestamp} {batches}".rstrip())
        data = ("\n".join(lines) + "\n").encode("ascii")
        fs.write_atomic(posixpath.join(directory, SNAPSHOT_FILE), data)

    def read_snapshot(self, fs: FileSystem, directory: str) -> int | None:
        """Load the snapshot; return its offset, or None (and no state) if absent or bad."""
        path = posixpath.join(directory, SNAPSHOT_FILE)
        self.producers = {}
        if not fs.exists(path):
            return None
        try:
            lines = fs.read_file(path).decode("ascii").splitlines()
            head = lines[0].split()
            if head[:2] != ["version", "0"] or int(head[5]) != len(lines) - 1:
                return None
            for line in lines[1:]:
                parts = line.split()
                entry = ProducerEntry(int(parts[1]), [], int(parts[2]))
                for batch in parts[3:]:
                    first_seq, last_seq, first_off, last_off = (int(v) for v in batch.split(","))
                    entry.batches.append((first_seq, last_seq, first_off, last_off))
                self.producers[int(parts[0])] = entry
            return int(head[3])
        except (ValueError, IndexError, UnicodeDecodeError):
            self.producers = {}
            return None

    @staticmethod
    def remove_snapshot(fs: FileSystem, directory: str) -> None:
        fs.remove(posixpath.join(directory, SNAPSHOT_FILE))


class ProducerStateExtension:
    """Expires idle producers of every partition from the broker's tick; the state itself
    lives in each PartitionLog and is checked by its appends."""

    def __init__(self, core: Any) -> None:
        self.core = core

    def tick(self, now_ms: int) -> None:
        partitions = getattr(self.core, "partitions", {})
        for key in sorted(partitions):
            partitions[key].log.producer_state.expire(now_ms)
