"""Task runners: one thread per task, moving records between a task and Kafka.

Theory of operation. A `TaskRunner` owns one task instance and one Kafka client, and runs
`start → loop → stop` in its own thread; nothing else touches the client, so confluent-kafka
callbacks (delivery reports, rebalances) run on that thread too. The loop alternates *work*
(`poll`/`put`) with *commits*, which happen every `offset.flush.interval.ms`, when the task asks
(`context.request_commit()`), and when the task stops. Pausing stops the work and keeps the
client alive (a paused sink keeps its group membership with its partitions paused).

Source commit rule (at-least-once): records are remembered in poll order with their source
offsets. A delivery report marks its record acknowledged. A commit first flushes the producer
(bounded by `offset.flush.timeout.ms`), then takes the longest acknowledged prefix, and writes,
per source partition, the offset of the last record in that prefix. A record not yet
acknowledged holds back every record polled after it, so the offsets file never claims
something that Kafka does not have. A failed delivery fails the task without committing it.

Sink commit rule: offsets handed to `put` are tracked per topic-partition as "next offset";
a commit calls the task's `flush(offsets)` and only then commits those offsets to the group
`connect-<name>` synchronously. Partitions being revoked are committed first.

Any exception from the task or a fatal client error marks the task FAILED with the message as
its `trace`; the runner cleans up and exits, other tasks and connectors are untouched.
"""

from __future__ import annotations

import collections
import sys
import threading
import time
import traceback
from typing import Any

import confluent_kafka
from confluent_kafka.admin import AdminClient, NewTopic

from moldau.connect.api import (ConnectError, OffsetStorageReader, RetriableError, SinkRecord, SinkTaskContext,
                                SourceTaskContext, Task)
from moldau.connect.config import client_overrides

RETRY_BACKOFF_S = 0.5
SINK_BATCH_MAX = 500
CLIENT_POLL_S = 0.1


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class TaskRunner:
    """Common lifecycle; subclasses implement `_open_client`, `_work`, `_commit`, `_close_client`."""

    def __init__(self, connector_name: str, task_id: int, task: Task, task_config: dict[str, str],
                 worker_config: dict[str, Any], key_converter, value_converter):
        self.connector_name = connector_name
        self.task_id = task_id
        self.task = task
        self.task_config = task_config
        self.worker_config = worker_config
        self.key_converter = key_converter
        self.value_converter = value_converter
        self.state = "UNASSIGNED"
        self.trace: str | None = None
        self.paused = threading.Event()
        self.thread: threading.Thread | None = None
        self.flush_interval_s = worker_config["offset.flush.interval.ms"] / 1000
        self.flush_timeout_s = worker_config["offset.flush.timeout.ms"] / 1000

    @property
    def version(self) -> str:
        try:
            return str(self.task.version())
        except Exception:  # a user task that cannot say: status must still answer
            return "unknown"

    @property
    def label(self) -> str:
        return f"{self.connector_name}-{self.task_id}"

    def start(self, paused: bool = False) -> None:
        if paused:
            self.paused.set()
        self.thread = threading.Thread(target=self._run, name=f"connect-task-{self.label}", daemon=True)
        self.thread.start()

    def stop(self, timeout_s: float) -> None:
        """Ask the thread to finish (final commit, client closed, `task.stop()`) and wait for it."""
        self.task.context.stopping.set()
        if self.thread is not None:
            self.thread.join(timeout_s)
            if self.thread.is_alive():
                log(f"task {self.label} did not stop within {timeout_s:.1f}s; abandoning its thread")

    def pause(self) -> None:
        self.paused.set()
        if self.state == "RUNNING":
            self.state = "PAUSED"

    def resume(self) -> None:
        self.paused.clear()
        if self.state == "PAUSED":
            self.state = "RUNNING"

    def _run(self) -> None:
        stopping = self.task.context.stopping
        try:
            self._open_client()
            self.task.start(self.task_config)
            self.state = "PAUSED" if self.paused.is_set() else "RUNNING"
            next_commit = time.monotonic() + self.flush_interval_s
            while not stopping.is_set():
                self._step()
                if time.monotonic() >= next_commit or self.task.context.commit_requested.is_set():
                    self.task.context.commit_requested.clear()
                    self._commit()
                    next_commit = time.monotonic() + self.flush_interval_s
            self._commit()
        except Exception as error:
            self._fail(error)
            self._commit_after_failure()
        finally:
            self._shutdown()

    def _commit_after_failure(self) -> None:
        """Best effort: keep what was delivered (acknowledged / flushed) so a restart repeats less."""
        try:
            self._commit()
        except Exception as error:
            log(f"task {self.label}: no offsets committed after the failure ({error})")

    def _shutdown(self) -> None:
        """Close the client first (a sink's last revoke still flushes through the task), then the task."""
        for step, name in ((self._close_client, "closing the client"), (self.task.stop, "stop()")):
            try:
                step()
            except Exception as error:  # cleanup continues; the task is over either way
                log(f"task {self.label}: {name} raised {error!r}")
        if self.state != "FAILED":
            self.state = "UNASSIGNED"

    def _step(self) -> None:
        if self.paused.is_set():
            self.state = "PAUSED" if self.state == "RUNNING" else self.state
            self._idle()
            return
        self.state = "RUNNING" if self.state == "PAUSED" else self.state
        self._work()

    def _fail(self, error: BaseException) -> None:
        self.state = "FAILED"
        summary = str(error) or type(error).__name__
        if isinstance(error, (ConnectError, OSError, ValueError)):
            self.trace = f"{type(error).__name__}: {summary}"
        else:
            self.trace = "".join(traceback.format_exception(error)).rstrip()
        log(f"task {self.label} failed: {summary}")

    # subclass hooks
    def _open_client(self) -> None: ...
    def _work(self) -> None: ...
    def _idle(self) -> None: ...
    def _commit(self) -> None: ...
    def _close_client(self) -> None: ...


def client_base(worker_config: dict[str, Any], client_id: str) -> dict[str, Any]:
    """Bootstrap servers, client id and the worker's security settings (`security.protocol`,
    `sasl.*`, `ssl.*`, in Java's or librdkafka's spelling), which every client of the worker
    uses, as in Kafka; `producer.`/`consumer.`/`admin.` settings are applied over them."""
    from moldau.security.client_properties import librdkafka_properties

    security = {k: str(v) for k, v in worker_config.items()
                if k == "security.protocol" or k.startswith(("sasl.", "ssl."))}
    return {"bootstrap.servers": ",".join(worker_config["bootstrap.servers"]), "client.id": client_id,
            **librdkafka_properties(security)}


def client_overrides_for(worker_config: dict[str, Any], prefix: str) -> dict[str, Any]:
    """A client's prefixed settings, Java spellings translated for librdkafka."""
    from moldau.security.client_properties import librdkafka_properties

    return librdkafka_properties(client_overrides(worker_config, prefix))


class SourceTaskRunner(TaskRunner):
    def __init__(self, *args, offset_store, **kwargs):
        super().__init__(*args, **kwargs)
        self.offset_store = offset_store
        self.task.context = SourceTaskContext(self.connector_name, self.task_id,
                                              OffsetStorageReader(offset_store, self.connector_name))
        self.submitted: collections.deque = collections.deque()  # [record, acked, error]
        self.producer = None
        self.admin = None
        self.known_topics: set[str] = set()
        self.delivery_error: str | None = None

    def _open_client(self) -> None:
        config = client_base(self.worker_config, f"connector-producer-{self.label}")
        config.update({"acks": "all", "max.in.flight.requests.per.connection": 1, "linger.ms": 5})
        config.update(client_overrides_for(self.worker_config, "producer."))
        self.producer = confluent_kafka.Producer(config)

    def _work(self) -> None:
        records = self.task.poll()
        for record in records or ():
            self._send(record)
        self.producer.poll(0)
        self._raise_delivery_error()

    def _idle(self) -> None:
        self.producer.poll(0)
        self.task.context.stopping.wait(CLIENT_POLL_S)

    def _send(self, record) -> None:
        key = self.key_converter.from_connect_data(record.topic, record.key_schema, record.key)
        value = self.value_converter.from_connect_data(record.topic, record.value_schema, record.value)
        if record.topic not in self.known_topics:
            if self.admin is None:
                self.admin = AdminClient(dict(client_base(self.worker_config, f"connector-admin-{self.label}"),
                                              **client_overrides_for(self.worker_config, "admin.")))
            ensure_topic(self.admin, record.topic)
            self.known_topics.add(record.topic)
        entry = [record, False]
        self.submitted.append(entry)
        kwargs = {"key": key, "value": value, "on_delivery": lambda err, msg: self._delivered(entry, err, msg)}
        if record.partition is not None:
            kwargs["partition"] = record.partition
        if record.timestamp_ms is not None:
            kwargs["timestamp"] = record.timestamp_ms
        if record.headers:
            kwargs["headers"] = list(record.headers)
        while True:
            try:
                self.producer.produce(record.topic, **kwargs)
                return
            except BufferError:  # local queue full: let deliveries drain, then retry
                self.producer.poll(CLIENT_POLL_S)

    def _delivered(self, entry: list, error, message) -> None:
        if error is not None:
            self.delivery_error = f"could not deliver a record to topic {entry[0].topic}: {error.str()}"
            return
        entry[1] = True
        try:
            self.task.commit_record(entry[0], message.partition(), message.offset())
        except Exception as hook_error:
            log(f"task {self.label}: commit_record raised {hook_error!r}")

    def _raise_delivery_error(self) -> None:
        if self.delivery_error:
            raise ConnectError(self.delivery_error)

    def _commit(self) -> None:
        if self.producer is None:
            return
        remaining = self.producer.flush(self.flush_timeout_s)
        self._raise_delivery_error()
        offsets: dict[str, tuple[dict, dict]] = {}
        while self.submitted and self.submitted[0][1]:
            record = self.submitted.popleft()[0]
            if record.source_offset is not None:
                key = self.offset_store.key(self.connector_name, record.source_partition)
                offsets[key] = (record.source_partition, record.source_offset)
        self.offset_store.commit(self.connector_name, offsets)
        if remaining:
            log(f"task {self.label}: {remaining} records not acknowledged within offset.flush.timeout.ms; "
                "their offsets wait for the next commit")
        if offsets:
            self.task.commit()

    def _close_client(self) -> None:
        self.admin = None
        if self.producer is not None:
            self.producer.flush(self.flush_timeout_s)
            self.producer = None


def ensure_topic(admin: AdminClient, topic: str) -> None:
    """Create `topic` with the broker's defaults if it is missing (else the broker may auto-create it)."""
    try:
        metadata = admin.list_topics(topic=topic, timeout=10)
        found = metadata.topics.get(topic)
        if found is not None and found.error is None:
            return
        futures = admin.create_topics([NewTopic(topic, num_partitions=-1, replication_factor=-1)], operation_timeout=10)
        futures[topic].result(timeout=15)
        log(f"created topic {topic}")
    except confluent_kafka.KafkaException as error:
        code = error.args[0].code() if error.args else None
        if code != confluent_kafka.KafkaError.TOPIC_ALREADY_EXISTS:
            log(f"could not create topic {topic} ({error}); relying on the broker creating it on first use")


class SinkTaskRunner(TaskRunner):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.task.context = SinkTaskContext(self.connector_name, self.task_id)
        self.consumer = None
        self.consumed: dict[tuple[str, int], int] = {}   # next offset per partition, handed to put
        self.committed: dict[tuple[str, int], int] = {}
        self.pending: list[SinkRecord] = []             # a batch to retry after RetriableError
        self.consumer_paused = False

    def _open_client(self) -> None:
        config = client_base(self.worker_config, f"connector-consumer-{self.label}")
        config.update({"group.id": f"connect-{self.connector_name}", "enable.auto.commit": False,
                       "auto.offset.reset": "earliest", "enable.partition.eof": False})
        config.update(client_overrides_for(self.worker_config, "consumer."))
        self.consumer = confluent_kafka.Consumer(config)
        topics = [t.strip() for t in self.task_config.get("topics", "").split(",") if t.strip()]
        regex = self.task_config.get("topics.regex", "").strip()
        subscription = topics or ["^" + regex.lstrip("^")]
        self.consumer.subscribe(subscription, on_assign=self._assigned, on_revoke=self._revoked)

    def _assigned(self, consumer, partitions) -> None:
        names = [(p.topic, p.partition) for p in partitions]
        self.task.context.assignment = sorted(set(self.task.context.assignment) | set(names))
        if self.paused.is_set():
            consumer.pause(partitions)
        self.task.open(names)

    def _revoked(self, consumer, partitions) -> None:
        names = [(p.topic, p.partition) for p in partitions]
        try:
            self._commit(only=set(names))
        except Exception as error:
            if self.state != "FAILED" and not self.task.context.stopping.is_set():
                raise
            log(f"task {self.label}: last commit before closing failed: {error}")
        finally:
            self.task.close(names)
            self.task.context.assignment = [tp for tp in self.task.context.assignment if tp not in names]
            for name in names:
                self.consumed.pop(name, None)
                self.committed.pop(name, None)
            # records fetched but not yet put belong to the partitions' next owner now
            self.pending = [r for r in self.pending if (r.topic, r.partition) not in names]

    def _work(self) -> None:
        self._set_consumer_paused(False)
        if self.pending:
            self._put(self.pending)
            return
        messages = self.consumer.consume(num_messages=SINK_BATCH_MAX, timeout=CLIENT_POLL_S)
        records = [self._record(m) for m in messages if not self._client_error(m)]
        if records:
            self._put(records)

    def _idle(self) -> None:
        """Paused: keep polling (group membership) but hold back anything already fetched for later."""
        self._set_consumer_paused(True)
        messages = self.consumer.consume(num_messages=SINK_BATCH_MAX, timeout=CLIENT_POLL_S)
        self.pending.extend(self._record(m) for m in messages if not self._client_error(m))

    def _set_consumer_paused(self, paused: bool) -> None:
        if paused != self.consumer_paused:
            assignment = self.consumer.assignment()
            (self.consumer.pause if paused else self.consumer.resume)(assignment)
            self.consumer_paused = paused

    def _client_error(self, message) -> bool:
        error = message.error()
        if error is None:
            return False
        if error.fatal():
            raise ConnectError(f"consumer failed: {error.str()}")
        if error.code() == confluent_kafka.KafkaError.UNKNOWN_TOPIC_OR_PART:
            return True  # the topic may be created later; librdkafka keeps retrying
        log(f"task {self.label}: consumer: {error.str()}")
        return True

    def _record(self, message) -> SinkRecord:
        key_schema, key = self.key_converter.to_connect_data(message.topic(), message.key())
        value_schema, value = self.value_converter.to_connect_data(message.topic(), message.value())
        kind, timestamp = message.timestamp()
        return SinkRecord(message.topic(), message.partition(), message.offset(), key, key_schema, value,
                          value_schema, timestamp if kind != confluent_kafka.TIMESTAMP_NOT_AVAILABLE else None,
                          list(message.headers() or ()))

    def _put(self, records: list[SinkRecord]) -> None:
        try:
            self.task.put(records)
        except RetriableError as error:
            log(f"task {self.label}: put() asked for a retry: {error}")
            self.pending = records
            self.task.context.stopping.wait(RETRY_BACKOFF_S)
            return
        self.pending = []
        for record in records:
            self.consumed[(record.topic, record.partition)] = record.offset + 1

    def _commit(self, only: set | None = None) -> None:
        if self.consumer is None:
            return
        offsets = {tp: o for tp, o in self.consumed.items() if (only is None or tp in only)}
        changed = {tp: o for tp, o in offsets.items() if self.committed.get(tp) != o}
        if not changed:
            return
        self.task.flush(dict(offsets))
        self.consumer.commit(offsets=[confluent_kafka.TopicPartition(t, p, o) for (t, p), o in sorted(changed.items())],
                             asynchronous=False)
        self.committed.update(changed)

    def _close_client(self) -> None:
        if self.consumer is not None:
            try:
                self.consumer.close()
            finally:
                self.consumer = None
