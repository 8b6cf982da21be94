"""The Python API for writing connectors: the same shape as Kafka Connect's Java API.

Theory of operation. A *connector* is configured once (`start(config)`), checks its settings
(`config_def()` plus an optional `validate(config)`), and splits the work into at most
`tasks.max` task configurations (`task_configs(max_tasks)`). A *task* does the copying; each
task runs in its own thread in the worker.

Every method of a task runs on the task's own thread. When the worker wants the task to end it
sets `self.context.stopping` (a `threading.Event`); after the current `poll`/`put` returns the
worker makes its last commit, closes its client and calls `stop()` on the same thread.

Source tasks: the worker calls `poll()` in a loop. It returns a list of `SourceRecord`s (or an
empty list / None when there is nothing right now; wait for data with
`self.context.stopping.wait(seconds)`, a second at most, so stopping is quick). Each record carries a
`source_partition` (which input, e.g. `{"filename": "/tmp/in.txt"}`) and a `source_offset` (how
far into it, e.g. `{"position": 1234}`), both small JSON-able dicts. The worker converts and
produces the records, and only when the producer has acknowledged a record (and every record
polled before it from the same source partition) does its offset become committable; offsets are
written to the offsets file every `offset.flush.interval.ms` and when the task stops. On start a
task reads where it left off from `self.context.offset_storage_reader.offset(source_partition)`.
Delivery is therefore at-least-once: a crash after producing and before the commit replays those
records; nothing acknowledged-and-committed is produced twice, nothing is skipped.

Sink tasks: the worker consumes the subscribed topics in the consumer group `connect-<name>` and
calls `put(records)` with `SinkRecord`s whose key and value are already converted. Every
`offset.flush.interval.ms` (and before partitions are revoked or the task stops) it calls
`flush(offsets)`; when `flush` returns, the data handed to `put` must be durable, because the
worker then commits those consumer offsets. An exception from `put` or `flush` fails the task;
raise `RetriableError` to have the same batch retried after a pause instead.

Minimal example (a source that counts):

    class CounterTask(SourceTask):
        def start(self, config):
            stored = self.context.offset_storage_reader.offset({"counter": "c"})
            self.next = stored["n"] + 1 if stored else 0
            self.topic = config["topic"]
        def poll(self):
            self.context.stopping.wait(0.1)
            record = SourceRecord({"counter": "c"}, {"n": self.next}, self.topic,
                                  value=self.next, value_schema=Schema.INT64)
            self.next += 1
            return [record]

    class CounterConnector(SourceConnector):
        def config_def(self): return ConfigDef().define("topic")
        def start(self, config): self.config = config
        def task_class(self): return CounterTask
        def task_configs(self, max_tasks): return [dict(self.config)]

Run it with `connector.class=mypackage.mymodule.CounterConnector` (or `mypackage.mymodule:CounterConnector`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from moldau.connect.config import ConfigDef
from moldau.connect.data import Schema


class ConnectError(Exception):
    """A connector or task failure; the message is shown in the status `trace`."""


class RetriableError(ConnectError):
    """A temporary failure: the worker retries the same operation after a short pause."""


@dataclass
class SourceRecord:
    source_partition: dict[str, Any]
    source_offset: dict[str, Any]
    topic: str
    value: Any = None
    value_schema: Schema | None = None
    key: Any = None
    key_schema: Schema | None = None
    partition: int | None = None
    timestamp_ms: int | None = None
    headers: list[tuple[str, bytes]] = field(default_factory=list)


@dataclass
class SinkRecord:
    topic: str
    partition: int
    offset: int
    key: Any
    key_schema: Schema | None
    value: Any
    value_schema: Schema | None
    timestamp_ms: int | None = None
    headers: list[tuple[str, bytes]] = field(default_factory=list)


class OffsetStorageReader:
    """Read committed source offsets; given to source tasks as `context.offset_storage_reader`."""

    def __init__(self, store, connector_name: str):
        self._store = store
        self._connector_name = connector_name

    def offset(self, source_partition: dict[str, Any]) -> dict[str, Any] | None:
        return self._store.get(self._connector_name, source_partition)

    def offsets(self, source_partitions: list[dict[str, Any]]) -> list[dict[str, Any] | None]:
        return [self.offset(p) for p in source_partitions]


class TaskContext:
    """What a task may ask of the worker. `stopping` is set when the task should return quickly."""

    def __init__(self, connector_name: str, task_id: int):
        self.connector_name = connector_name
        self.task_id = task_id
        self.stopping = threading.Event()
        self.commit_requested = threading.Event()

    def request_commit(self) -> None:
        """Ask for an offset commit as soon as possible instead of at the next interval."""
        self.commit_requested.set()


class SourceTaskContext(TaskContext):
    def __init__(self, connector_name: str, task_id: int, offset_storage_reader: OffsetStorageReader):
        super().__init__(connector_name, task_id)
        self.offset_storage_reader = offset_storage_reader


class SinkTaskContext(TaskContext):
    def __init__(self, connector_name: str, task_id: int):
        super().__init__(connector_name, task_id)
        self.assignment: list[tuple[str, int]] = []


class ConnectorContext:
    def __init__(self, connector_name: str):
        self.connector_name = connector_name


class Task:
    context: TaskContext

    def version(self) -> str:
        from moldau import __version__

        return __version__

    def start(self, config: dict[str, str]) -> None:
        """Open resources. Raising here fails the task with the error as its trace."""

    def stop(self) -> None:
        """Release resources; called on the task thread after the last poll/put (and after a failure)."""


class SourceTask(Task):
    context: SourceTaskContext

    def poll(self) -> list[SourceRecord] | None:
        raise NotImplementedError

    def commit(self) -> None:
        """Called after the worker committed offsets (the data is safely in Kafka)."""

    def commit_record(self, record: SourceRecord, partition: int, offset: int) -> None:
        """Called for each record the producer acknowledged, with its Kafka partition and offset."""


class SinkTask(Task):
    context: SinkTaskContext

    def put(self, records: list[SinkRecord]) -> None:
        raise NotImplementedError

    def flush(self, offsets: dict[tuple[str, int], int]) -> None:
        """Make everything `put` so far durable; `offsets` maps (topic, partition) → next offset."""

    def open(self, partitions: list[tuple[str, int]]) -> None:
        """Partitions newly assigned to this task."""

    def close(self, partitions: list[tuple[str, int]]) -> None:
        """Partitions taken away (after a final flush and commit)."""


class Connector:
    type = "connector"
    context: ConnectorContext

    def version(self) -> str:
        from moldau import __version__

        return __version__

    def config_def(self) -> ConfigDef:
        return ConfigDef()

    def validate(self, config: dict[str, Any]) -> list[str]:
        """Checks across keys that `config_def` cannot express; return error sentences."""
        return []

    def start(self, config: dict[str, str]) -> None:
        """`config` is the raw string map, as in Kafka; `self.config_def().validate(config)` gives
        typed values with defaults filled in (the worker has already checked that this succeeds)."""
        self.config = dict(config)

    def task_class(self) -> type[Task]:
        raise NotImplementedError

    def task_configs(self, max_tasks: int) -> list[dict[str, str]]:
        return [dict(self.config)]

    def stop(self) -> None:
        pass


class SourceConnector(Connector):
    type = "source"


class SinkConnector(Connector):
    type = "sink"
