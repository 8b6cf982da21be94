"""Producer state of one partition: idempotence checks (KIP-98) and open transactions.

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

Transactions. A transactional producer's first transactional batch in this partition opens a
transaction here: the entry's `current_txn_first_offset` is that batch's offset and the
partition's `ongoing` map holds it. Until a control batch (records/control.py) ends it, the
producer may only write transactional batches (a plain one → INVALID_TXN_STATE), and a
transactional batch may only open a transaction once the transaction coordinator verified
that the partition belongs to the producer's transaction (KIP-890: `mark_verified`, set by the
Produce path after asking the coordinator, cleared by the next marker) — else INVALID_TXN_STATE:
a stray or late batch never opens a transaction nobody will end. A marker (`apply_marker`)
sets the producer's epoch (Transactions V2 bumps it with every marker, so a zombie's late
batch is INVALID_PRODUCER_EPOCH), records the coordinator epoch (an older one is
TRANSACTION_COORDINATOR_FENCED), and closes the open transaction: it is *decided* but stays
*unstable* until the high watermark passes its marker (`on_high_watermark_updated`). The
first unstable offset — the smallest first offset of a transaction that is open, or decided
with its marker not yet replicated — bounds the last stable offset (LSO) that read_committed
consumers read up to and that compaction may clean up to.

PartitionLog.append_as_leader checks every batch here before writing (a duplicate comes back
as `AppendInfo.duplicate` with the original offsets) and append_as_leader/follower record the
written batches and markers. The broker's only other contact is `ProducerStateExtension`
(registered by coordinator.install as core.extensions["producer_state"]), whose `tick` expires
idle producers (never one with an open transaction).

Batches without a producer id (-1) are not tracked. State is rebuilt on open by scanning batch
headers (and the records of control batches) from a snapshot's offset: `close()` writes
`producer-state-snapshot` (our own small text format, not Kafka's binary `.snapshot`; version 1
adds each producer's coordinator epoch and open transaction) at the log end offset, so a clean
restart replays nothing. Truncation rebuilds from the log. Producers idle longer than
producer.id.expiration.ms are dropped by `expire(now_ms)`.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from kio.schema.errors import ErrorCode

from moldau.records.batch import BatchHeader, RecordsError

from .fs import FileSystem

SNAPSHOT_FILE = "producer-state-snapshot"
# Kafka keeps the last 5 batches per producer (the max.in.flight bound for idempotence).
batches_per_producer_max = 5
# Kafka's producer.id.expiration.ms default (1 day).
producer_id_expiration_ms_default = 24 * 3600 * 1000
_SEQUENCE_MAX = 2**31 - 1
_SNAPSHOT_VERSION = 1


@dataclass(slots=True)
class ProducerEntry:
    producer_epoch: int
    # (first_sequence, last_sequence, first_offset, last_offset), oldest first
    batches: list[tuple[int, int, int, int]] = field(default_factory=list)
    last_timestamp: int = -1  # the batches' own (client) time, as DescribeProducers reports it
    # The broker's clock at the producer's last write here (-1: not known yet). Expiry counts
    # from it, not from last_timestamp: records that carry old CreateTime timestamps (replayed
    # or copied data) would otherwise expire their producer at once, and a retry after a
    # leader change would be written twice.
    last_write_ms: int = -1
    coordinator_epoch: int = -1  # of the last marker written for this producer
    current_txn_first_offset: int = -1  # first offset of its open transaction here, or -1

    @property
    def last_sequence(self) -> int:
        return self.batches[-1][1] if self.batches else -1

    def set_epoch(self, epoch: int) -> None:
        """A new epoch forgets the old epoch's sequences (Kafka's maybeUpdateProducerEpoch)."""
        if epoch != self.producer_epoch:
            self.producer_epoch = epoch
            self.batches.clear()


class CompletedTxn(NamedTuple):
    producer_id: int
    first_offset: int
    last_offset: int  # the marker's offset
    aborted: bool


class ProducerStateError(RecordsError):
    """A batch the producer state refuses; `error_code` is the Kafka error to answer with."""


def _in_sequence(last_sequence: int, next_sequence: int) -> bool:
    return next_sequence == last_sequence + 1 or (next_sequence == 0 and last_sequence == _SEQUENCE_MAX)


class ProducerStateManager:
    def __init__(self) -> None:
        self.producers: dict[int, ProducerEntry] = {}
        self.ongoing: dict[int, int] = {}  # first offset of an open transaction -> producer id
        # decided transactions whose marker is not below the high watermark yet:
        # first offset -> (producer id, marker offset)
        self.unreplicated: dict[int, tuple[int, int]] = {}
        # producer id -> epoch the transaction coordinator verified for a first transactional
        # batch (KIP-890); cleared when the transaction opens or a marker arrives
        self.verified: dict[int, int] = {}

    def check(self, header: BatchHeader) -> tuple[int, int] | None:
        """Validate a leader batch; (first_offset, last_offset) of the original if duplicate."""
        if header.producer_id < 0:
            return None
        entry = self.producers.get(header.producer_id)
        if entry is not None:
            duplicate = self._check_sequence(header, entry)
            if duplicate is not None:
                return duplicate
        self._check_transaction(header, entry)
        return None

    @staticmethod
    def _check_sequence(header: BatchHeader, entry: ProducerEntry) -> tuple[int, int] | None:
        if header.producer_epoch < entry.producer_epoch:
            raise ProducerStateError(
                ErrorCode.invalid_producer_epoch,
                f"epoch {header.producer_epoch} < {entry.producer_epoch} for producer "
                f"{header.producer_id}")
        first_sequence, last_sequence = header.base_sequence, header.last_sequence
        if first_sequence < 0:
            return None  # no sequence (a coordinator's transactional offset commit): epoch only
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

    def _check_transaction(self, header: BatchHeader, entry: ProducerEntry | None) -> None:
        in_transaction = entry is not None and entry.current_txn_first_offset >= 0
        if in_transaction and not header.is_transactional:
            raise ProducerStateError(
                ErrorCode.invalid_txn_state,
                f"producer {header.producer_id} has an open transaction: expected a transactional batch")
        if header.is_transactional and not in_transaction \
                and self.verified.get(header.producer_id) != header.producer_epoch:
            raise ProducerStateError(
                ErrorCode.invalid_txn_state,
                f"transactional batch of producer {header.producer_id} epoch {header.producer_epoch} "
                "outside a transaction the coordinator knows of")

    def mark_verified(self, producer_id: int, producer_epoch: int) -> None:
        """The coordinator confirmed this partition is in the producer's transaction."""
        self.verified[producer_id] = producer_epoch

    def has_ongoing_transaction(self, producer_id: int, producer_epoch: int) -> bool:
        entry = self.producers.get(producer_id)
        return entry is not None and entry.current_txn_first_offset >= 0 and entry.producer_epoch == producer_epoch

    def update(self, header: BatchHeader, first_offset: int, timestamp: int, now_ms: int = -1) -> None:
        """Record a written data batch (leader or follower) whose first offset is `first_offset`."""
        if header.producer_id < 0:
            return
        entry = self.producers.get(header.producer_id)
        if entry is None:
            entry = self.producers[header.producer_id] = ProducerEntry(header.producer_epoch)
        entry.set_epoch(header.producer_epoch)
        if header.base_sequence >= 0:
            entry.batches.append((header.base_sequence, header.last_sequence, first_offset,
                                  first_offset + header.last_offset_delta))
            if len(entry.batches) > batches_per_producer_max:
                del entry.batches[0]
        entry.last_timestamp = max(entry.last_timestamp, timestamp)
        entry.last_write_ms = max(entry.last_write_ms, now_ms)
        if header.is_transactional and entry.current_txn_first_offset < 0:
            entry.current_txn_first_offset = first_offset
            self.ongoing[first_offset] = header.producer_id
            self.verified.pop(header.producer_id, None)

    # --- markers ------------------------------------------------------------------------
    def check_marker(self, producer_id: int, producer_epoch: int, coordinator_epoch: int) -> None:
        """A marker the leader is asked to write: refuse a fenced producer epoch or coordinator."""
        entry = self.producers.get(producer_id)
        if entry is None:
            return
        if producer_epoch < entry.producer_epoch:
            raise ProducerStateError(
                ErrorCode.invalid_producer_epoch,
                f"marker epoch {producer_epoch} < {entry.producer_epoch} for producer {producer_id}")
        if coordinator_epoch < entry.coordinator_epoch:
            raise ProducerStateError(
                ErrorCode.transaction_coordinator_fenced,
                f"marker from coordinator epoch {coordinator_epoch} < {entry.coordinator_epoch} "
                f"for producer {producer_id}")

    def apply_marker(self, producer_id: int, producer_epoch: int, coordinator_epoch: int,
                     commit: bool, offset: int, timestamp: int) -> CompletedTxn | None:
        """Record a written marker; the transaction it ended here, if it had written data."""
        entry = self.producers.get(producer_id)
        if entry is None:
            entry = self.producers[producer_id] = ProducerEntry(producer_epoch)
        completed = None
        first = entry.current_txn_first_offset
        if first >= 0:
            completed = CompletedTxn(producer_id, first, offset, not commit)
            self.ongoing.pop(first, None)
            self.unreplicated[first] = (producer_id, offset)
        entry.set_epoch(producer_epoch)
        entry.coordinator_epoch = coordinator_epoch
        entry.current_txn_first_offset = -1
        entry.last_timestamp = max(entry.last_timestamp, timestamp)
        self.verified.pop(producer_id, None)
        return completed

    def last_stable_offset_after(self, completed: CompletedTxn) -> int:
        """The LSO right after `completed` (already applied): the next open transaction's first
        offset, or the marker's next offset (what the aborted-transaction index records)."""
        return min(self.ongoing) if self.ongoing else completed.last_offset + 1

    def first_unstable_offset(self) -> int | None:
        """The first offset of an undecided transaction, or of a decided one whose marker is not
        replicated yet: the last stable offset is at most this."""
        candidates = list(self.ongoing) + list(self.unreplicated)
        return min(candidates) if candidates else None

    def last_stable_offset(self, high_watermark: int) -> int:
        """The LSO: read_committed consumers read below it (decided, replicated data only)."""
        if not self.ongoing and not self.unreplicated:
            return high_watermark  # every fetch asks: no transaction, no work
        if _planted("lso-ignores-open-transactions"):
            return high_watermark
        self.on_high_watermark_updated(high_watermark)
        first = self.first_unstable_offset()
        return high_watermark if first is None else min(first, high_watermark)

    def on_high_watermark_updated(self, high_watermark: int) -> None:
        if self.unreplicated:
            for first in [f for f, (_, marker) in self.unreplicated.items() if marker < high_watermark]:
                del self.unreplicated[first]

    def written_at(self, now_ms: int) -> None:
        """Producers known only from the log or a snapshot (a restart): count their last write
        as now — expiring later than Kafka is safe, forgetting a live producer is not."""
        for entry in self.producers.values():
            if entry.last_write_ms < 0:
                entry.last_write_ms = now_ms

    def expire(self, now_ms: int, expiration_ms: int = producer_id_expiration_ms_default) -> int:
        """Forget producers that wrote nothing here for expiration_ms (broker time) and have no
        open transaction (producer.id.expiration.ms)."""
        self.written_at(now_ms)  # known only from the log, a snapshot or a marker: from now on
        expired = [pid for pid, entry in self.producers.items()
                   if entry.last_write_ms >= 0 and now_ms - entry.last_write_ms > expiration_ms
                   and entry.current_txn_first_offset < 0]
        for pid in expired:
            del self.producers[pid]
        return len(expired)

    def clear(self) -> None:
        self.producers.clear()
        self.ongoing.clear()
        self.unreplicated.clear()
        self.verified.clear()

    # --- snapshot -----------------------------------------------------------------------------
    def write_snapshot(self, fs: FileSystem, directory: str, offset: int) -> None:
        lines = [f"version {_SNAPSHOT_VERSION} offset {offset} producers {len(self.producers)}"]
        for pid in sorted(self.producers):
            entry = self.producers[pid]
            batches = " ".join(",".join(str(v) for v in batch) for batch in entry.batches)
            lines.append(f"{pid} {entry.producer_epoch} {entry.last_timestamp} {entry.coordinator_epoch} "
                         f"{entry.current_txn_first_offset} {batches}".rstrip())
        data = ("\n".join(lines) + "\n").encode("ascii")
        fs.write_atomic(posixpath.join(directory, SNAPSHOT_FILE), data)

    def read_snapshot(self, fs: FileSystem, directory: str) -> int | None:
        """Load the snapshot; return its offset, or None (and no state) if absent or bad."""
        path = posixpath.join(directory, SNAPSHOT_FILE)
        self.clear()
        if not fs.exists(path):
            return None
        try:
            lines = fs.read_file(path).decode("ascii").splitlines()
            head = lines[0].split()
            if head[0] != "version" or head[1] not in ("0", "1") or int(head[5]) != len(lines) - 1:
                return None
            for line in lines[1:]:
                self._load_entry(line.split(), version=int(head[1]))
            return int(head[3])
        except (ValueError, IndexError, UnicodeDecodeError):
            self.clear()
            return None

    def _load_entry(self, parts: list[str], version: int) -> None:
        entry = ProducerEntry(int(parts[1]), [], int(parts[2]))
        rest = parts[3:]
        if version >= 1:
            entry.coordinator_epoch, entry.current_txn_first_offset = int(rest[0]), int(rest[1])
            rest = rest[2:]
        for batch in rest:
            first_seq, last_seq, first_off, last_off = (int(v) for v in batch.split(","))
            entry.batches.append((first_seq, last_seq, first_off, last_off))
        producer_id = int(parts[0])
        self.producers[producer_id] = entry
        if entry.current_txn_first_offset >= 0:
            self.ongoing[entry.current_txn_first_offset] = producer_id

    @staticmethod
    def remove_snapshot(fs: FileSystem, directory: str) -> None:
        fs.remove(posixpath.join(directory, SNAPSHOT_FILE))


class ProducerStateExtension:
    """Expires idle producers of every partition from the broker's tick (and forgets decided
    transactions below the high watermark); the state itself lives in each PartitionLog and is
    checked by its appends."""

    def __init__(self, core: Any) -> None:
        self.core = core

    def tick(self, now_ms: int) -> None:
        partitions = getattr(self.core, "partitions", {})
        for key in sorted(partitions):
            state = partitions[key].log.producer_state
            state.expire(now_ms)
            # A follower's high watermark moves without anyone asking for its LSO: forget the
            # decided transactions below it here, so they stop bounding compaction.
            state.on_high_watermark_updated(partitions[key].high_watermark)


def _planted(name: str) -> bool:
    """A test's planted bug (moldau.raft.faults), imported here: moldau.raft imports the log."""
    from moldau.raft import faults

    return faults.active(name)
