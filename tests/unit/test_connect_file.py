"""File source/sink tasks and the offsets file, without a broker."""

import json
import os

import pytest

from moldau.connect.api import ConnectError, OffsetStorageReader, SinkRecord, SourceTaskContext
from moldau.connect.data import Schema, Struct
from moldau.connect.file import FileStreamSinkTask, FileStreamSourceTask, _next_line
from moldau.connect.offsets import OffsetFileError, OffsetStore


def source_task(path, store, batch_size=2000):
    task = FileStreamSourceTask()
    task.context = SourceTaskContext("src", 0, OffsetStorageReader(store, "src"))
    task.start({"file": str(path), "topic": "t", "batch.size": str(batch_size)})
    return task


def poll_lines(task, polls=3):
    lines = []
    for _ in range(polls):
        lines += [(r.value, r.source_offset["position"]) for r in task.poll() or ()]
    return lines


def commit(store, records_or_offset, path):
    store.commit("src", {"k": ({"filename": str(path)}, {"position": records_or_offset})})


def test_line_cutting():
    assert _next_line(b"a\nb") == (b"a", 2)
    assert _next_line(b"a\r\nb") == (b"a", 3)
    assert _next_line(b"a\rb") == (b"a", 2)
    assert _next_line(b"a\r") is None  # may be half of CRLF
    assert _next_line(b"partial") is None
    assert _next_line(b"a\nbc\r\nd", 2) == (b"bc", 4)
    assert _next_line(b"a\n\n", 2) == (b"", 1)


def test_reads_existing_lines_then_appends(tmp_path):
    path = tmp_path / "in.txt"
    path.write_text("foo\nbar\n")
    task = source_task(path, OffsetStore(str(tmp_path / "offsets")))
    records = task.poll()
    assert [(r.value, r.source_partition, r.source_offset, r.value_schema) for r in records] == [
        ("foo", {"filename": str(path)}, {"position": 4}, Schema.STRING),
        ("bar", {"filename": str(path)}, {"position": 8}, Schema.STRING),
    ]
    with open(path, "a") as handle:
        handle.write("Another line\npart")
    assert poll_lines(task) == [("Another line", 21)]
    with open(path, "a") as handle:
        handle.write("ial\n")
    assert poll_lines(task) == [("partial", 29)]
    task.stop()


def test_batch_size_limits_a_poll(tmp_path):
    path = tmp_path / "in.txt"
    path.write_text("".join(f"{i}\n" for i in range(10)))
    task = source_task(path, OffsetStore(str(tmp_path / "offsets")), batch_size=3)
    assert [r.value for r in task.poll()] == ["0", "1", "2"]
    assert [r.value for r in task.poll()] == ["3", "4", "5"]
    task.stop()


def test_resumes_from_committed_position(tmp_path):
    path = tmp_path / "in.txt"
    path.write_text("one\ntwo\nthree\n")
    store = OffsetStore(str(tmp_path / "offsets"))
    commit(store, 4, path)
    reopened = OffsetStore(str(tmp_path / "offsets"))
    task = source_task(path, reopened)
    assert poll_lines(task) == [("two", 8), ("three", 14)]
    task.stop()


def test_missing_file_waits_then_reads(tmp_path, capfd):
    path = tmp_path / "later.txt"
    task = source_task(path, OffsetStore(str(tmp_path / "offsets")))
    assert task.poll() is None and task.poll() is None
    err = capfd.readouterr().err
    assert err.count("does not exist yet; waiting for it to be created") == 1
    path.write_text("hello\n")
    assert poll_lines(task) == [("hello", 6)]
    task.stop()


def test_truncated_file_restarts_from_top(tmp_path, capfd):
    path = tmp_path / "in.txt"
    path.write_text("first line\nsecond line\n")
    task = source_task(path, OffsetStore(str(tmp_path / "offsets")))
    assert len(poll_lines(task, 1)) == 2
    with open(path, "w") as handle:  # same inode, shorter content
        handle.write("new\n")
    assert poll_lines(task) == [("new", 4)]
    assert "was truncated" in capfd.readouterr().err
    task.stop()


def test_rotated_file_reads_new_file_from_top(tmp_path, capfd):
    path = tmp_path / "in.txt"
    path.write_text("old 1\nold 2\n")
    task = source_task(path, OffsetStore(str(tmp_path / "offsets")))
    assert len(poll_lines(task, 1)) == 2
    with open(path, "a") as handle:
        handle.write("old 3\n")
    os.rename(path, tmp_path / "in.txt.1")
    path.write_text("fresh 1 is longer than before\n")
    assert poll_lines(task, 4) == [("old 3", 18), ("fresh 1 is longer than before", 30)]
    assert "was replaced (rotated)" in capfd.readouterr().err
    task.stop()


def test_committed_position_past_end_restarts_from_top(tmp_path, capfd):
    path = tmp_path / "in.txt"
    path.write_text("x\n")
    store = OffsetStore(str(tmp_path / "offsets"))
    commit(store, 100, path)
    task = source_task(path, store)
    assert poll_lines(task, 1) == [("x", 2)]
    assert "shorter (2 bytes) than the committed position 100" in capfd.readouterr().err
    task.stop()


def test_invalid_utf8_is_replaced_not_fatal(tmp_path):
    path = tmp_path / "in.txt"
    path.write_bytes(b"ok\n\xff\xfe\n")
    task = source_task(path, OffsetStore(str(tmp_path / "offsets")))
    assert poll_lines(task, 1) == [("ok", 3), ("\ufffd\ufffd", 6)]
    task.stop()


def sink_record(value, schema=Schema.STRING, offset=0):
    return SinkRecord("t", 0, offset, None, None, value, schema)


def test_sink_appends_one_line_per_record_and_flushes(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("existing\n")
    task = FileStreamSinkTask()
    task.start({"file": str(path)})
    point = Schema.struct([("x", Schema.INT32)])
    task.put([sink_record("a"), sink_record(None, Schema.OPTIONAL_STRING), sink_record({"k": [1]}, None),
              sink_record(Struct(point).put("x", 1), point), sink_record(7, Schema.INT64)])
    task.flush({("t", 0): 5})
    assert path.read_text() == 'existing\na\nnull\n{"k":[1]}\n{"x":1}\n7\n'
    task.stop()


def test_sink_unwritable_path_is_a_clear_error(tmp_path):
    task = FileStreamSinkTask()
    with pytest.raises(ConnectError, match="cannot open sink file .*missing-dir/out.txt for appending: No such file"):
        task.start({"file": str(tmp_path / "missing-dir" / "out.txt")})
    with pytest.raises(ConnectError, match="Is a directory"):
        task.start({"file": str(tmp_path)})


def test_offset_store_keys_and_atomic_file(tmp_path):
    path = tmp_path / "connect.offsets"
    store = OffsetStore(str(path))
    store.commit("src", {"k": ({"filename": "a.txt"}, {"position": 5})})
    assert json.loads(path.read_text()) == {'["src",{"filename":"a.txt"}]': {"position": 5}}
    assert OffsetStore(str(path)).get("src", {"filename": "a.txt"}) == {"position": 5}
    assert OffsetStore(str(path)).get("other", {"filename": "a.txt"}) is None
    assert not os.path.exists(str(path) + ".tmp")


def test_offset_store_corrupt_file_is_a_clear_error(tmp_path):
    path = tmp_path / "connect.offsets"
    path.write_text("{broken")
    store = OffsetStore(str(path))  # read when first used, not when the worker starts
    with pytest.raises(OffsetFileError, match="not valid JSON"):
        store.open()


def test_offsets_file_of_kafkas_worker_is_named_with_the_reason(tmp_path):
    """Kafka's FileOffsetBackingStore writes a Java-serialized HashMap at the same default path."""
    path = tmp_path / "connect.offsets"
    path.write_bytes(b"\xac\xed\x00\x05sr\x00\x11java.util.HashMap\x05\x07\xda\xc1\xc3\x16`\xd1\x03")
    with pytest.raises(OffsetFileError) as caught:
        OffsetStore(str(path)).get("src", {"filename": "a.txt"})
    message = str(caught.value)
    assert str(path) in message and "Apache Kafka's Connect worker" in message and "\n" not in message
    path.write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(OffsetFileError, match="not a moldau offsets file"):
        OffsetStore(str(path)).open()


def test_sink_writes_each_batch_before_any_commit(tmp_path):
    """A line is in the file when put() returns — not only at flush (the next offset commit)."""
    task = FileStreamSinkTask()
    out = tmp_path / "sink.txt"
    task.start({"file": str(out)})
    task.put([SinkRecord("t", 0, 0, None, None, "first", Schema.STRING, None, [])])
    assert out.read_text() == "first\n"
    task.stop()
