"""Task runners' commit rules, with fake clients: source offsets only after acknowledgement, sink
offsets only after flush."""

from __future__ import annotations

import pytest

from moldau.connect.api import ConnectError, RetriableError, SinkTask, SourceRecord, SourceTask
from moldau.connect.config import WORKER_CONFIG
from moldau.connect.converters import StringConverter
from moldau.connect.data import Schema
from moldau.connect.offsets import OffsetStore
from moldau.connect.worker import SinkTaskRunner, SourceTaskRunner


class FakeError:
    def str(self):
        return "Broker: Not enough in-sync replicas"


class FakeMessage:
    def __init__(self, topic, partition, offset, value):
        self._t, self._p, self._o, self._v = topic, partition, offset, value

    def partition(self): return self._p
    def offset(self): return self._o
    def topic(self): return self._t
    def key(self): return None
    def value(self): return self._v
    def timestamp(self): return (1, 1700000000000)
    def headers(self): return None
    def error(self): return None


class FakeProducer:
    """Keeps delivery callbacks until the test acknowledges (or fails) a record."""

    def __init__(self):
        self.pending = []
        self.acked = set()

    def produce(self, topic, key=None, value=None, on_delivery=None, **kwargs):
        self.pending.append((topic, value, on_delivery))

    def ack(self, index, error=None):
        topic, value, callback = self.pending[index]
        self.acked.add(index)
        callback(error, FakeMessage(topic, 0, index, value))

    def poll(self, timeout=0):
        return 0

    def flush(self, timeout=0):
        return len(self.pending) - len(self.acked)


class ListSource(SourceTask):
    def __init__(self):
        self.committed = []

    def commit_record(self, record, partition, offset):
        self.committed.append((record.value, partition, offset))


def converters():
    key, value = StringConverter(), StringConverter()
    key.configure({}, True)
    value.configure({}, False)
    return key, value


def source_runner(tmp_path):
    worker = WORKER_CONFIG.validate({"offset.storage.file.filename": str(tmp_path / "offsets")})
    store = OffsetStore(worker["offset.storage.file.filename"])
    runner = SourceTaskRunner("src", 0, ListSource(), {}, worker, *converters(), offset_store=store)
    runner.producer = FakeProducer()
    runner.known_topics.add("t")  # no admin client in unit tests
    return runner, store


def record(n):
    return SourceRecord({"file": "f"}, {"position": n}, "t", value=f"line {n}", value_schema=Schema.STRING)


def test_source_offsets_wait_for_every_earlier_acknowledgement(tmp_path):
    runner, store = source_runner(tmp_path)
    for n in (1, 2, 3):
        runner._send(record(n))
    runner.producer.ack(1)
    runner.producer.ack(2)
    runner._commit()
    assert store.get("src", {"file": "f"}) is None  # record 1 not acknowledged: nothing is committable
    runner.producer.ack(0)
    runner._commit()
    assert store.get("src", {"file": "f"}) == {"position": 3}
    assert OffsetStore(store.path).get("src", {"file": "f"}) == {"position": 3}  # on disk
    assert runner.task.committed == [("line 2", 0, 1), ("line 3", 0, 2), ("line 1", 0, 0)]


def test_source_partial_prefix_is_committed(tmp_path):
    runner, store = source_runner(tmp_path)
    for n in (1, 2, 3):
        runner._send(record(n))
    runner.producer.ack(0)
    runner.producer.ack(2)
    runner._commit()
    assert store.get("src", {"file": "f"}) == {"position": 1}


def test_failed_delivery_fails_the_task_and_commits_nothing(tmp_path):
    runner, store = source_runner(tmp_path)
    runner._send(record(1))
    runner.producer.ack(0, FakeError())
    with pytest.raises(ConnectError, match="could not deliver a record to topic t: Broker: Not enough in-sync replicas"):
        runner._commit()
    assert store.get("src", {"file": "f"}) is None


class FakeConsumer:
    def __init__(self, log):
        self.log = log

    def commit(self, offsets, asynchronous):
        self.log.append(("commit", [(tp.topic, tp.partition, tp.offset) for tp in offsets]))


class RecordingSink(SinkTask):
    def __init__(self, log, failures=0):
        self.log, self.failures = log, failures

    def put(self, records):
        if self.failures:
            self.failures -= 1
            raise RetriableError("not yet")
        self.log.append(("put", [r.value for r in records]))

    def flush(self, offsets):
        self.log.append(("flush", dict(offsets)))


def sink_runner(tmp_path, failures=0):
    worker = WORKER_CONFIG.validate({"offset.storage.file.filename": str(tmp_path / "offsets")})
    log = []
    runner = SinkTaskRunner("snk", 0, RecordingSink(log, failures), {"topics": "t"}, worker, *converters())
    runner.consumer = FakeConsumer(log)
    return runner, log


def test_sink_flushes_before_committing(tmp_path):
    runner, log = sink_runner(tmp_path)
    runner._put([runner._record(FakeMessage("t", 0, 5, b"x")), runner._record(FakeMessage("t", 1, 9, b"y"))])
    runner._commit()
    runner._commit()  # nothing new: no second flush or commit
    assert log == [("put", ["x", "y"]), ("flush", {("t", 0): 6, ("t", 1): 10}), ("commit", [("t", 0, 6), ("t", 1, 10)])]


def test_sink_retriable_error_retries_the_same_batch(tmp_path):
    runner, log = sink_runner(tmp_path, failures=1)
    runner.task.context.stopping.set()  # makes the retry backoff instant
    batch = [runner._record(FakeMessage("t", 0, 0, b"x"))]
    runner._put(batch)
    assert runner.pending == batch and runner.consumed == {}
    runner._put(runner.pending)
    assert runner.pending == [] and runner.consumed == {("t", 0): 1}
    assert log == [("put", ["x"])]


class PausingConsumer(FakeConsumer):
    """Hands out what was fetched before the pause took effect, as a real client may."""

    def __init__(self, log, fetched):
        super().__init__(log)
        self.fetched = fetched

    def assignment(self):
        return ["t-0"]

    def pause(self, partitions):
        self.log.append(("pause", partitions))

    def resume(self, partitions):
        self.log.append(("resume", partitions))

    def consume(self, num_messages, timeout):
        batch, self.fetched = self.fetched, []
        return batch


def test_paused_sink_keeps_already_fetched_records_for_after_resume(tmp_path):
    runner, log = sink_runner(tmp_path)
    runner.consumer = PausingConsumer(log, [FakeMessage("t", 0, 3, b"early")])
    runner.pause()
    runner._step()
    assert runner.pending and runner.consumed == {}
    runner.resume()
    runner._step()
    assert log == [("pause", ["t-0"]), ("resume", ["t-0"]), ("put", ["early"])]
    assert runner.consumed == {("t", 0): 4}
