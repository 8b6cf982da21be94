"""Producer ids for InitProducerId: unique across restarts, handed out from persisted blocks.

Theory of operation. Kafka's controller hands brokers blocks of 1000 producer ids and records
each block in the metadata log, so an id is never given out twice. On one node we keep the
same scheme with a small file: before the first id of a block is handed out, the end of the
block is written (atomically, synced) to `<data dir>/producer-id-block`; after a restart
allocation resumes at that end, skipping whatever was left of the block. At most one block is
wasted per restart, and no id is ever reused.
"""

from __future__ import annotations

from typing import Any

BLOCK_SIZE = 1000  # Kafka's ProducerIdsBlock.PRODUCER_ID_BLOCK_SIZE
FILE_NAME = "producer-id-block"
PRODUCER_ID_MAX = (1 << 63) - 1


class ProducerIdExhausted(Exception):
    pass


class ProducerIdManager:
    def __init__(self, fs: Any, data_dir: str):
        self.fs = fs
        self.path = data_dir.rstrip("/") + "/" + FILE_NAME
        self.next_id = self._read_block_end()
        self.block_end = self.next_id  # nothing reserved yet

    def _read_block_end(self) -> int:
        if not self.fs.exists(self.path):
            return 0
        try:
            return max(0, int(self.fs.read_file(self.path).decode().strip() or 0))
        except ValueError:
            raise ValueError(f"{self.path}: not a producer id") from None

    def next_producer_id(self) -> int:
        if self.next_id >= self.block_end:
            end = self.next_id + BLOCK_SIZE
            if end > PRODUCER_ID_MAX:
                raise ProducerIdExhausted("producer ids exhausted")
            self.fs.write_atomic(self.path, f"{end}\n".encode())
            self.block_end = end
        producer_id = self.next_id
        self.next_id += 1
        return producer_id

    def tick(self, now_ms: int) -> None:
        """Nothing periodic: present so that core.tick can call every extension alike."""
