"""Produce (key 0), versions 3–13; v0–v2 advertised (as Kafka 4 does) and refused.

Theory of operation. For each partition the leader validates the batches (header, CRC, size),
assigns offsets, stamps its leader epoch and writes the bytes to the OS before answering: an
acknowledged batch survives a killed process. acks=0 gets no response at all; acks=1 and
acks=-1 are answered after the write (with one node the ISR is this broker, so acks=-1 only
adds the min.insync.replicas check); on a cluster acks=-1 waits until the high watermark passes
the batch — every ISR member has it — or the request's timeout (REQUEST_TIMED_OUT), and a
leadership lost meanwhile answers NOT_LEADER_OR_FOLLOWER. Each append wakes the fetches
waiting on the partition.

Errors per partition, as Kafka: UNKNOWN_TOPIC_OR_PARTITION (no auto-creation on produce),
UNKNOWN_TOPIC_ID (v13), NOT_LEADER_OR_FOLLOWER, KAFKA_STORAGE_ERROR (the disk is full or below
log.dir.free.bytes.min, or the partition's log is damaged or could not be opened: broker/storage.py),
CORRUPT_MESSAGE, MESSAGE_TOO_LARGE,
INVALID_RECORD (a record without a key on a compacted topic), INVALID_TIMESTAMP (a CreateTime
outside message.timestamp.before/after.max.ms of the broker's clock), NOT_ENOUGH_REPLICAS,
INVALID_REQUIRED_ACKS. Per-record refusals fill `record_errors` (each record's index in its
batch and why) and `error_message`, as Kafka does (broker/record_validation.py).

Transactions. A partition whose first batch is transactional and whose producer has no open
transaction here must be confirmed by the producer's transaction coordinator first (KIP-890,
txn_verify.py): verified for clients that added it themselves (v≤11), added for Transactions
V2 clients (v12+); the response then waits for the coordinator (on another node: a Delayed).
A partition the coordinator does not confirm is answered its error (INVALID_TXN_STATE: not
in the transaction, TRANSACTION_ABORTABLE from v11, INVALID_PRODUCER_EPOCH: fenced) and not
written. Transactional records without a transactional id in the request:
TRANSACTIONAL_ID_AUTHORIZATION_FAILED for every partition, as Kafka.
"""

from __future__ import annotations

import dataclasses

import struct
from typing import Any

from kio.schema.errors import ErrorCode

from moldau.broker import apis
from moldau.broker.apis import throttled_response
from moldau.broker.txn_verify import client_error, verify
from moldau.protocol import codec
from moldau.protocol.hot import decode_produce_request, encode_produce_response
from moldau.broker.record_validation import RecordValidationError, check_records
from moldau.records import HEADER_SIZE, RecordsError, parse_header, validate_payload
from moldau.replication.partition import PartitionError
from moldau.security import acls as a
from moldau.security.quotas import PRODUCER_BYTE_RATE

_ZERO_UUID = "00000000-0000-0000-0000-000000000000"
_VERIFY_BACKSTOP_MS = 35_000  # a coordinator on another node that never answers


@apis.api(0, 3, 13, advertised_min_version=0, decoder=decode_produce_request)
def handle(core, ctx: apis.RequestContext, request):
    if ctx.version < 3:
        return _refuse_legacy(ctx, request)
    acks = request.acks
    responses = []
    waiting: list[tuple[Any, int, int, dict]] = []  # acks=all appends not yet on every ISR member
    unverified: list[tuple[dict, str, str | None, Any, tuple[int, int]]] = []
    # Authorization (Kafka's table): WRITE on the transactional id, if any, then on each topic.
    transactional_id = getattr(request, "transactional_id", None)
    denied_all = transactional_id is not None and not core.authorize(ctx, a.WRITE, a.TRANSACTIONAL_ID, transactional_id)
    for topic in request.topic_data:
        name, topic_id = core.image.resolve(getattr(topic, "name", None), getattr(topic, "topic_id", None))
        denied = (ErrorCode.transactional_id_authorization_failed if denied_all else
                  ErrorCode.topic_authorization_failed if name is not None and not core.authorize(ctx, a.WRITE, a.TOPIC, name)
                  else None)
        partitions = []
        for data in topic.partition_data:
            producer = None if denied is not None else _opens_transaction(core, name, data)
            if denied is not None:
                partitions.append(_result(data.index, denied))
            elif producer is None:
                partitions.append(_append(core, ctx, name, topic_id, data, acks, waiting))
            else:  # answered once the transaction coordinator verified (or added) the partition
                partitions.append(_result(data.index, ErrorCode.none))
                unverified.append((partitions[-1], name, topic_id, data, producer))
        responses.append({"name": name or "", "topic_id": topic_id or _ZERO_UUID, "partition_responses": partitions})
    # producer_byte_rate quotas (security/quotas.py): the client is told how long to back off
    # and the connection is muted for that long (KIP-219).
    throttle_ms = core.throttle(ctx, PRODUCER_BYTE_RATE, ctx.request_bytes)
    if unverified and transactional_id is None:  # Kafka refuses the whole request
        return _respond(ctx, acks, _all_failed(responses, ErrorCode.transactional_id_authorization_failed), throttle_ms)
    if unverified:
        return _verify_then_append(core, ctx, request, responses, unverified, waiting, throttle_ms)
    if acks == -1 and waiting and not _settle(waiting):
        return _delayed_produce(core, ctx, request, responses, waiting, throttle_ms)
    return _respond(ctx, acks, responses, throttle_ms)


def _respond(ctx, acks: int, responses: list[dict], throttle_ms: int = 0):
    if acks == 0:
        return None
    return throttled_response(ctx, _frame(ctx, responses, throttle_ms), throttle_ms, client_throttles_from_version=6)


def _frame(ctx, responses: list[dict], throttle_ms: int) -> bytes:
    # The hot path: a struct encoder, byte-for-byte what kio writes (tests/protocol/test_hot.py).
    return encode_produce_response(ctx.header.correlation_id, ctx.version,
                                   {"responses": responses, "throttle_time": throttle_ms})


def _opens_transaction(core, name, data) -> tuple[int, int] | None:
    """(producer id, epoch) when the partition's first batch is transactional and would open a
    transaction here: the coordinator must verify (or add) the partition first (KIP-890)."""
    records = data.records
    if name is None or records is None or len(records) < HEADER_SIZE:
        return None
    header = parse_header(records, 0)
    if not header.is_transactional or header.producer_id < 0:
        return None
    partition = core.partition(name, data.index)
    if partition is None or not partition.is_leader:
        return None  # _append answers the error
    if partition.log.producer_state.has_ongoing_transaction(header.producer_id, header.producer_epoch):
        return None
    return header.producer_id, header.producer_epoch


def _verify_then_append(core, ctx, request, responses: list[dict], unverified: list, waiting: list,
                        throttle_ms: int) -> Any:
    """Ask the coordinator about every partition that would open a transaction; append those
    it confirms, answer the others with its (translated) error; respond when all are known
    (and, for acks=all, replicated)."""
    producer_id, producer_epoch = unverified[0][4]
    partitions = [(name, data.index) for _, name, _, data, _ in unverified]
    # Record sets are views of the connection's receive buffer, valid only during this call
    # (protocol/hot.py). A coordinator on another node answers later, when the buffer holds the
    # next request: keep copies, or the append reads someone else's bytes.
    unverified = [(slot, name, topic_id, _owned(data), producer) for slot, name, topic_id, data, producer in unverified]
    holder: dict = {}

    def verified(codes: dict) -> None:
        for slot, name, topic_id, data, producer in unverified:
            code = codes.get((name, data.index), ErrorCode.none)
            if producer != (producer_id, producer_epoch):
                code = ErrorCode.invalid_txn_state  # one producer per request, as Kafka assumes
            if code == ErrorCode.none:
                partition = core.partition(name, data.index)
                if partition is not None:
                    partition.log.producer_state.mark_verified(*producer)
                slot.update(_append(core, ctx, name, topic_id, data, request.acks, waiting))
            else:
                slot.update(_result(data.index, client_error(code, ctx.version > 10)))
        if request.acks == 0:
            result = None
        elif waiting and not _settle(waiting):
            result = _delayed_produce(core, ctx, request, responses, waiting, throttle_ms)
        else:
            result = _frame(ctx, responses, throttle_ms)
        if "delayed" in holder:
            if isinstance(result, apis.Delayed):  # now waiting for the replicas
                result.callback = holder["delayed"].complete
            else:
                holder["delayed"].complete(result)
        else:
            holder["frame"] = result

    verify(core, request.transactional_id, producer_id, producer_epoch, partitions, ctx.version >= 12,
           ctx.now_ms, verified)
    if "frame" in holder or request.acks == 0:
        return holder.get("frame")
    holder["delayed"] = apis.Delayed(
        ctx.now_ms + _VERIFY_BACKSTOP_MS, lambda now_ms: None,
        lambda now_ms: _respond(ctx, request.acks, _all_failed(responses, ErrorCode.request_timed_out)))
    return holder["delayed"]


def _all_failed(responses: list[dict], code: ErrorCode) -> list[dict]:
    return [{**topic, "partition_responses": [_result(p["index"], code) for p in topic["partition_responses"]]}
            for topic in responses]


def _settle(waiting: list) -> bool:
    """Settle the acks=all results whose fate is known; True when none is left waiting.
    A result is settled when the high watermark passed its last offset (NOT_ENOUGH_REPLICAS_AFTER_APPEND
    if the ISR shrank below min.insync.replicas meanwhile, as Kafka) or the leadership it was
    written under is gone (NOT_LEADER_OR_FOLLOWER: the write may be truncated)."""
    still = []
    for entry in waiting:
        partition, last_offset, leader_epoch, result = entry
        if not partition.is_leader or partition.leader_epoch != leader_epoch or partition.log.closed:
            _fail(result, ErrorCode.not_leader_or_follower, "Leadership changed before the write was replicated")
        elif partition.high_watermark > last_offset:
            if len(partition.isr) < partition.effective_min_insync_replicas:
                _fail(result, ErrorCode.not_enough_replicas_after_append,
                      f"The ISR shrank below min.insync.replicas={partition.effective_min_insync_replicas} "
                      "after the write")
        else:
            still.append(entry)
    waiting[:] = still
    return not still


def _fail(result: dict, code: ErrorCode, message: str) -> None:
    result.update(error_code=code, error_message=message, base_offset=-1, log_append_time=None, log_start_offset=-1)


def _owned(data):
    if type(data.records) is memoryview:
        return dataclasses.replace(data, records=bytes(data.records))
    return data


def _delayed_produce(core, ctx, request, responses: list[dict], waiting: list, throttle_ms: int) -> apis.Delayed:
    """acks=all: answer once every ISR member has the batches (Kafka's DelayedProduce), or
    REQUEST_TIMED_OUT for those that are not after the request's timeout."""

    def frame() -> bytes:
        return _frame(ctx, responses, throttle_ms)

    def try_complete(now_ms: int):
        return frame() if _settle(waiting) else None

    def on_expire(now_ms: int):
        if not _settle(waiting):
            for _partition, _last, _epoch, result in waiting:
                _fail(result, ErrorCode.request_timed_out, "The write was not replicated to every in-sync replica in time")
        return frame()

    timeout_ms = max(0, int(request.timeout.total_seconds() * 1000))
    delayed = apis.Delayed(ctx.now_ms + timeout_ms, try_complete, on_expire,
                           tuple(sorted({entry[0].key for entry in waiting})))
    core.watch(delayed)
    return delayed


def _append(core, ctx, name, topic_id, data, acks, waiting: list) -> dict:
    if acks not in (-1, 0, 1):
        return _result(data.index, ErrorCode.invalid_required_acks)
    if name is None:
        return _result(data.index, ErrorCode.unknown_topic_id if topic_id else ErrorCode.unknown_topic_or_partition)
    partition = core.partition(name, data.index)
    if partition is None:
        try:
            core.raise_if_unavailable(name, data.index)  # its log could not be opened (disk full)
        except PartitionError as error:
            return _result(data.index, error.error_code, str(error))
        known = core.image.topic(name) is not None and data.index in core.image.topic(name).partitions
        return _result(data.index, ErrorCode.not_leader_or_follower if known else ErrorCode.unknown_topic_or_partition)
    if data.records is None:
        return _result(data.index, ErrorCode.corrupt_message, "no records")
    refused = core.log_dir.refuse_write(len(data.records), ctx.now_ms)  # log.dir.free.bytes.min
    if refused is not None:
        core.metrics.produce_failed(name)
        return _result(data.index, ErrorCode.kafka_storage_error, refused)
    try:
        partition.check_leader()  # before the records are looked at, as in Kafka
        headers = validate_payload(data.records, partition.log.config.max_message_bytes)
        _check_records(partition, data.records, headers, ctx.now_ms)
        # The log checks idempotent producers' sequences and epochs (log/producer_state.py):
        # a retried batch comes back as a duplicate with its original offsets, unwritten.
        info = partition.append(data.records, acks, ctx.now_ms, validated=headers)
    except RecordValidationError as error:  # record_errors: which records, and why
        core.metrics.produce_failed(name)
        return _result(data.index, error.error_code, error.message, record_errors=error.response_errors())
    except (RecordsError, PartitionError) as error:  # LogError and ProducerStateError included
        core.metrics.produce_failed(name)
        return _result(data.index, error.error_code, str(error))
    if not info.duplicate:
        core.metrics.produced(name, len(data.records), info.record_count)
        core.partition_appended(partition.key, ctx.now_ms)
    result = _result(data.index, ErrorCode.none, base_offset=info.first_offset,
                     log_append_time=info.log_append_time_ms, log_start_offset=partition.log_start_offset)
    if acks == -1:  # a retried duplicate waits too: its first attempt may not be replicated yet
        waiting.append((partition, info.last_offset, partition.leader_epoch, result))
    return result


def _check_records(partition, payload, headers, now_ms: int) -> None:
    """Per-record rules (broker/record_validation.py): keys on compacted topics, timestamps."""
    config = partition.log.config
    check_records(payload, headers, f"{partition.topic}-{partition.index}", compacted=config.compact,
                  log_append_time=config.log_append_time, before_max_ms=partition.timestamp_before_max_ms,
                  after_max_ms=partition.timestamp_after_max_ms, now_ms=now_ms)


def _result(index, code, message=None, base_offset=-1, log_append_time=-1, log_start_offset=-1,
            record_errors=()) -> dict:
    return {
        "index": index,
        "error_code": code,
        "base_offset": base_offset,
        "log_append_time": None if log_append_time < 0 else log_append_time,
        "log_start_offset": log_start_offset,
        "record_errors": list(record_errors),
        "error_message": message if code != ErrorCode.none else None,
    }


# --- v0–v2: parsed by hand (kio has no schema for them) and refused ---------------------

_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")


def _refuse_legacy(ctx, payload) -> bytes | None:
    """Answer every partition of a v0–v2 request with UNSUPPORTED_VERSION."""
    buf = memoryview(payload)
    pos = ctx.header.body_offset
    (acks,) = _I16.unpack_from(buf, pos)
    pos += 2 + 4  # acks, timeout
    topics = []
    (topic_count,) = _I32.unpack_from(buf, pos)
    pos += 4
    for _ in range(max(topic_count, 0)):
        name, pos = _string(buf, pos)
        (partition_count,) = _I32.unpack_from(buf, pos)
        pos += 4
        partitions = []
        for _ in range(max(partition_count, 0)):
            (index, size) = struct.unpack_from(">ii", buf, pos)
            pos += 8 + max(size, 0)
            partitions.append(index)
        topics.append((name, partitions))
    if acks == 0:
        return None
    body = bytearray(_I32.pack(len(topics)))
    for name, partitions in topics:
        encoded = name.encode()
        body += _I16.pack(len(encoded)) + encoded + _I32.pack(len(partitions))
        for index in partitions:
            body += struct.pack(">ihq", index, int(ErrorCode.unsupported_version), -1)
            if ctx.version == 2:
                body += struct.pack(">q", -1)
    if ctx.version >= 1:
        body += _I32.pack(0)
    frame = _I32.pack(ctx.header.correlation_id) + bytes(body)
    return _I32.pack(len(frame)) + frame


def _string(buf, pos) -> tuple[str, int]:
    (length,) = _I16.unpack_from(buf, pos)
    pos += 2
    if length < 0:
        return "", pos
    if pos + length > len(buf):
        raise codec.MalformedRequest("string runs past the end of the frame")
    return bytes(buf[pos : pos + length]).decode("utf-8", "replace"), pos + length
