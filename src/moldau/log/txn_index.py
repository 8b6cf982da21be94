"""The aborted-transaction index of one segment: `<base offset>.txnindex`, Kafka's layout.

Theory of operation
-------------------
When an ABORT marker ends a transaction that wrote data to a partition, the log appends one
entry to the transaction index of the segment the marker lands in:

    version int16 (0) | producer_id int64 | first_offset int64 | last_offset int64 |
    last_stable_offset int64                                       (34 bytes, big-endian)

`first_offset` is the transaction's first data offset in this partition, `last_offset` the
marker's offset, `last_stable_offset` the partition's LSO right after the abort (the first
offset of the next undecided transaction, or last_offset + 1). A read_committed Fetch asks
`collect(fetch_offset, upper_bound_offset)` of the segments from the one holding the fetch
offset onwards: every entry whose range overlaps [fetch_offset, upper_bound) goes back to the
consumer in `aborted_transactions`, and the search stops at the first entry whose
last_stable_offset reaches the upper bound (nothing later can overlap). The consumer then drops
the records of those producers between first_offset and the marker.

The file is created only when the first entry is written (most segments have none), appended
as entries come (bytes in the OS at once, as every log write), fsynced with the segment, and
loaded whole on open; entries live in memory as one `array('q')` of four longs each, which is
what the fetch path reads. Entries are appended in ascending last_offset order. Truncation cuts
the entries whose marker is at or above the new end; a log rebuilt after an unclean shutdown
rewrites the index from the markers it scans.
"""

from __future__ import annotations

import posixpath
import struct
from array import array
from typing import NamedTuple

from .faults import write_error
from .fs import FileSystem

ENTRY = struct.Struct(">hqqqq")
ENTRY_BYTES = ENTRY.size  # 34
_VERSION = 0


class AbortedTxn(NamedTuple):
    producer_id: int
    first_offset: int
    last_offset: int
    last_stable_offset: int


class TransactionIndex:
    def __init__(self, fs: FileSystem, path: str) -> None:
        self.fs = fs
        self.path = path
        self.entries = array("q")  # producer_id, first_offset, last_offset, last_stable_offset, ...
        self.dirty = False  # appended since the last sync
        # An append the disk refused (full): the entries are right in memory and the whole file
        # is written again at the next sync (a restart without a clean close rebuilds it anyway).
        self.unwritten = False

    def __len__(self) -> int:
        return len(self.entries) // 4

    def entry(self, number: int) -> AbortedTxn:
        base = number * 4
        e = self.entries
        return AbortedTxn(e[base], e[base + 1], e[base + 2], e[base + 3])

    def all(self) -> list[AbortedTxn]:
        return [self.entry(n) for n in range(len(self))]

    @property
    def last_offset(self) -> int:
        return self.entries[-2] if self.entries else -1

    # --- files --------------------------------------------------------------------------
    def load(self) -> bool:
        """Read the file if it exists; False if it is damaged (entries then stay empty)."""
        self.entries = array("q")
        if not self.fs.exists(self.path):
            return True
        data = self.fs.read_file(self.path)
        usable = len(data) - len(data) % ENTRY_BYTES  # a torn last entry is dropped
        previous = -1
        for version, producer_id, first, last, stable in ENTRY.iter_unpack(data[:usable]):
            if version != _VERSION or last <= previous or first > last:
                self.entries = array("q")
                return False
            self.entries.extend((producer_id, first, last, stable))
            previous = last
        return True

    def append(self, txn: AbortedTxn) -> None:
        assert txn.last_offset > self.last_offset, "aborted transactions are indexed in marker order"
        try:
            handle = self.fs.open(self.path, create=True)
            try:
                if handle.size != (len(self)) * ENTRY_BYTES:
                    handle.truncate(len(self) * ENTRY_BYTES)
                handle.append([ENTRY.pack(_VERSION, *txn)])
            finally:
                handle.close()
        except OSError as error:  # the marker is in the log already: never fail it here
            write_error(posixpath.dirname(self.path), "appending to the aborted-transaction index", error)
            self.unwritten = True
        self.entries.extend(txn)
        self.dirty = True

    def sync(self) -> None:
        if self.unwritten:
            txns = self.all()
            self.fs.write_atomic(self.path, b"".join(ENTRY.pack(_VERSION, *t) for t in txns))
            self.unwritten = self.dirty = False
            return
        if not self.dirty:
            return
        handle = self.fs.open(self.path, create=True)
        try:
            handle.sync()
        finally:
            handle.close()
        self.dirty = False

    def rewrite(self, txns: list[AbortedTxn]) -> None:
        """Replace every entry (a rebuilt log); no file when there are none."""
        if txns == self.all() and (txns or not self.fs.exists(self.path)):
            return
        self.entries = array("q")
        for txn in txns:
            self.entries.extend(txn)
        if not txns:
            self.fs.remove(self.path)
            return
        self.fs.write_atomic(self.path, b"".join(ENTRY.pack(_VERSION, *t) for t in txns))
        self.dirty = False

    def truncate_to(self, offset: int) -> None:
        """Drop the entries whose marker is at or above `offset`."""
        keep = len(self)
        while keep and self.entries[keep * 4 - 2] >= offset:
            keep -= 1
        if keep == len(self):
            return
        self.rewrite(self.all()[:keep])

    def delete(self) -> None:
        self.entries = array("q")
        self.fs.remove(self.path)

    # --- reads --------------------------------------------------------------------------
    def collect(self, fetch_offset: int, upper_bound_offset: int, into: list[AbortedTxn]) -> bool:
        """Add the entries overlapping [fetch_offset, upper_bound_offset) to `into`; True when
        the search is complete (no later segment can hold an overlapping entry)."""
        e = self.entries
        for base in range(0, len(e), 4):
            if e[base + 2] >= fetch_offset and e[base + 1] < upper_bound_offset:
                into.append(AbortedTxn(e[base], e[base + 1], e[base + 2], e[base + 3]))
            if e[base + 3] >= upper_bound_offset:
                return True
        return False
