"""Producer ids for InitProducerId: blocks of ids handed out by the controller.

Theory of operation (Kafka's RPCProducerIdManager). The controller owns the producer id
space: AllocateProducerIds gives a broker the next block of 1000 ids and records it in the
metadata log (ProducerIdsRecord) before answering, so no id is ever handed out twice, across
restarts and brokers. The broker asks for its first block once it is registered, and for the
next one when 90% of the current block is used, so InitProducerId rarely waits. When no id is
at hand, `next_producer_id` raises ProducerIdsUnavailable carrying
COORDINATOR_LOAD_IN_PROGRESS, which clients retry (Kafka's answer in the same case).
"""

from __future__ import annotations

import logging
from typing import Any

from kio.schema.allocate_producer_ids.v0 import request as allocate_request
from kio.schema.errors import ErrorCode

from moldau.protocol.rpc import CONTROLLER, PRODUCER_IDS_CHANNEL, OutboundRequest

log = logging.getLogger("moldau.coordinator")

PREFETCH_FRACTION = 0.9
RETRY_BACKOFF_MS = 100


class ProducerIdsUnavailable(Exception):
    error_code = ErrorCode.coordinator_load_in_progress

    def __init__(self, message: str = "no producer id block yet; retry"):
        super().__init__(message)


ProducerIdExhausted = ProducerIdsUnavailable  # the single-node name


class ProducerIdManager:
    def __init__(self, core: Any):
        self.core = core
        self.next_id = 0
        self.end = 0  # [next_id, end): what is left of the block in use
        self.block_size = 1000
        self.next_block: tuple[int, int] | None = None  # (start, size) of a prefetched block
        self.in_flight = False
        self.retry_at_ms = 0

    def next_producer_id(self) -> int:
        if self.next_id >= self.end and self.next_block is not None:
            (self.next_id, self.block_size), self.next_block = self.next_block, None
            self.end = self.next_id + self.block_size
        if self.next_id >= self.end:
            self.request_block(self.core.now_ms)
            raise ProducerIdsUnavailable()
        producer_id = self.next_id
        self.next_id += 1
        if self.end - self.next_id <= self.block_size * (1 - PREFETCH_FRACTION):
            self.request_block(self.core.now_ms)
        return producer_id

    def _wants_block(self) -> bool:
        return self.next_block is None and (self.end - self.next_id <= self.block_size * (1 - PREFETCH_FRACTION))

    def request_block(self, now_ms: int) -> None:
        core = self.core
        if self.in_flight or not self._wants_block() or now_ms < self.retry_at_ms or core.broker_epoch < 0:
            return
        controller = core.controller_id()
        if controller < 0:
            self.retry_at_ms = now_ms + RETRY_BACKOFF_MS
            return
        self.in_flight = True
        body = allocate_request.AllocateProducerIdsRequest(broker_id=core.node_id, broker_epoch=core.broker_epoch)
        core.send(OutboundRequest(controller, CONTROLLER, 67, 0, body, core.config.controller_socket_timeout_ms,
                                  self._on_response, channel=PRODUCER_IDS_CHANNEL))

    def _on_response(self, response: Any, now_ms: int) -> None:
        self.in_flight = False
        if response is None or response.error_code != ErrorCode.none:
            self.retry_at_ms = now_ms + RETRY_BACKOFF_MS
            return
        block = (response.producer_id_start, response.producer_id_len)
        if self.next_id >= self.end:
            (self.next_id, self.block_size) = block
            self.end = self.next_id + self.block_size
        else:
            self.next_block = block

    def next_deadline_ms(self) -> int | None:
        """Ask for a block (the first one once registered, or after a failed request)."""
        if self.in_flight or self.core.broker_epoch < 0 or not self._wants_block():
            return None
        return self.retry_at_ms

    def run_deadlines(self, now_ms: int) -> None:
        self.request_block(now_ms)
        if not self.in_flight:
            self.retry_at_ms = max(self.retry_at_ms, now_ms + RETRY_BACKOFF_MS)

    def tick(self, now_ms: int) -> None:
        """Nothing periodic beyond the deadline: present so that core.tick can call every extension."""
