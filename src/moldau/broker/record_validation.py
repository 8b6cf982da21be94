"""Per-record checks of a produce payload, answered with Kafka's `record_errors`.

Theory of operation. The leader's batch checks (header, CRC, size, dense offsets) read only
batch headers; two rules concern single records, and Kafka (LogValidator) refuses the whole
batch when any record breaks them, listing each offending record in the Produce response:

- a topic with `cleanup.policy` containing `compact` refuses a record without a key
  (INVALID_RECORD: compaction keeps the latest record *per key*);
- with CreateTime, a record timestamp more than `message.timestamp.after.max.ms` ahead of the
  broker's clock or `message.timestamp.before.max.ms` behind it is refused (INVALID_TIMESTAMP).
  With LogAppendTime the broker's clock stamps the batch, and a producer batch that claims
  LogAppendTime itself is refused (on a CreateTime topic such a batch is range-checked like
  any other — Kafka 4.1.1's behaviour, measured).

Each error is (index of the record in its batch, Kafka's sentence); the partition's error is
INVALID_TIMESTAMP when any error is a timestamp one, else INVALID_RECORD, and `error_message`
sums them up — texts as Apache Kafka 4.1.1 writes them (measured side by side,
tests/integration/test_produce_record_errors.py). Batches are checked in order; the first one
with errors decides the answer, as in Kafka.

Cost: records are decoded only where a rule may apply. A compacted topic decodes every batch
(Kafka decompresses it too); timestamps are first checked on the batch header — the max
timestamp bounds every record from above — and records are decoded only when the header says
one may be out of range, or when `message.timestamp.before.max.ms` is set (no header field
bounds records from below).
"""

from __future__ import annotations

from typing import Any, Sequence

from kio.schema.errors import ErrorCode

from moldau.records import BatchHeader, Record, iterate_records
from moldau.records.batch import NO_TIMESTAMP

LONG_MAX = 2**63 - 1
_SHOWN_MAX = 3  # Kafka's summary shows at most the first three errors


class RecordValidationError(Exception):
    """The batch is refused: `error_code`, `record_errors` [(batch index, message)], `message`."""

    def __init__(self, error_code: ErrorCode, record_errors: list[tuple[int, str]], message: str):
        super().__init__(message)
        self.error_code = error_code
        self.record_errors = record_errors
        self.message = message

    def response_errors(self) -> list[dict[str, Any]]:
        return [{"batch_index": index, "batch_index_error_message": text} for index, text in self.record_errors]


def check_records(payload: Any, headers: Sequence[BatchHeader], topic_partition: str, *, compacted: bool,
                  log_append_time: bool, before_max_ms: int, after_max_ms: int, now_ms: int) -> None:
    """Raise RecordValidationError for the first batch holding a record the topic refuses."""
    for header in headers:
        check_timestamps = _timestamps_may_fail(header, log_append_time, before_max_ms, after_max_ms, now_ms)
        if not compacted and not check_timestamps:
            continue
        batch = payload[header.position : header.position + header.size_bytes]
        errors: list[tuple[ErrorCode, int, str]] = []
        for index, record in enumerate(iterate_records(batch)):
            if compacted and record.key is None:
                errors.append((ErrorCode.invalid_record, index, "Compacted topic cannot accept message without key "
                                                                f"in topic partition {topic_partition}"))
            elif check_timestamps:
                problem = _timestamp_problem(record, log_append_time, before_max_ms, after_max_ms, now_ms)
                if problem is not None:
                    errors.append((ErrorCode.invalid_timestamp, index, problem))
        if errors:
            raise _refusal(errors)


def _timestamps_may_fail(header: BatchHeader, log_append_time: bool, before_max_ms: int, after_max_ms: int,
                         now_ms: int) -> bool:
    if log_append_time:
        return bool(header.timestamp_type)  # only a batch claiming LogAppendTime itself is refused
    if before_max_ms < LONG_MAX:
        return True  # no header field bounds the records from below
    return header.max_timestamp != NO_TIMESTAMP and header.max_timestamp - now_ms > after_max_ms


def _timestamp_problem(record: Record, log_append_time: bool, before_max_ms: int, after_max_ms: int,
                       now_ms: int) -> str | None:
    if log_append_time:  # reached only for a batch that claims LogAppendTime
        return (f"Invalid timestamp type in message {_describe(record)}. Producer should not set timestamp "
                "type to LogAppendTime.")
    timestamp = record.timestamp
    if timestamp == NO_TIMESTAMP or (timestamp - now_ms <= after_max_ms and now_ms - timestamp <= before_max_ms):
        return None
    return (f"Timestamp {timestamp} of message with offset {record.offset} is out of range. The timestamp "
            f"should be within [{now_ms - before_max_ms}, {now_ms + after_max_ms}]")


def _describe(record: Record) -> str:
    """Kafka's DefaultRecord.toString()."""
    key = 0 if record.key is None else len(record.key)
    value = 0 if record.value is None else len(record.value)
    return f"DefaultRecord(offset={record.offset}, timestamp={record.timestamp}, key={key} bytes, value={value} bytes)"


def _refusal(errors: list[tuple[ErrorCode, int, str]]) -> RecordValidationError:
    record_errors = [(index, text) for _code, index, text in errors]
    if any(code == ErrorCode.invalid_timestamp for code, _index, _text in errors):
        return RecordValidationError(ErrorCode.invalid_timestamp, record_errors,
                                     "One or more records have been rejected due to invalid timestamp")
    shown = ", ".join(f"RecordError(batchIndex={index}, message='{text}')" for index, text in record_errors[:_SHOWN_MAX])
    return RecordValidationError(ErrorCode.invalid_record, record_errors,
                                 f"One or more records have been rejected due to {len(record_errors)} record errors "
                                 f"in total, and only showing the first three errors at most: [{shown}]")
