"""The single-node metadata log: metadata records stored in a partition log.

Each commit is one record batch in `__cluster_metadata-0` (one record per metadata record,
values as in controller/records.py) and is flushed to disk before the controller applies it:
a topic that a client was told exists still exists after a crash. On start the whole log is
replayed into the image. In the cluster this log becomes the Raft-replicated one; the
records and the replay stay the same.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

from moldau.controller import records as r
from moldau.records import Record, build_batch


class LocalMetadataLog:
    def __init__(self, log: Any, now_ms: Callable[[], int]):
        self.log = log
        self.now_ms = now_ms

    def append(self, metadata_records: list[r.MetadataRecord]) -> int:
        now = self.now_ms()
        start = self.log.log_end_offset
        batch = build_batch(
            [Record(start + i, now, None, r.encode(record)) for i, record in enumerate(metadata_records)]
        )
        info = self.log.append_as_leader(batch, 0, now)
        self.log.flush()
        return info.last_offset

    def replay(self) -> Iterator[r.MetadataRecord]:
        for record in self.log.records():
            if record.value is not None:
                yield r.decode(record.value)

    def close(self) -> None:
        self.log.close()
