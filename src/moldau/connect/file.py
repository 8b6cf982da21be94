"""FileStreamSource and FileStreamSink: Kafka's lab connectors, on the Python connector API.

Theory of operation — source. The task reads the file as bytes and cuts it into lines at LF, CRLF
or CR (a trailing CR waits for the next byte, it may be half of a CRLF; a line without its
terminator waits until the terminator is written). Each line becomes one record with the string
schema; its source offset is `{"position": byte offset just after the line}` under the source
partition `{"filename": file}`, the same keys as Kafka's FileStreamSourceTask. On start the task
seeks to the committed position, so a restart resumes after the last line Kafka acknowledged.
When there is nothing to read it waits 100 ms and then checks the path:

- missing file: one notice, then wait for it to appear (never a failure);
- file shorter than what was already read (truncated, e.g. `> file`), or the committed position
  past the end at start: notice, read again from the top;
- a different file at the path (rotated: renamed away and recreated): the old file was read to
  its end already, so notice and read the new one from the top.

Without `file` the source reads standard input (no offsets, as in Kafka).

Theory of operation — sink. Each record's value is written as one line (strings as they are,
null as `null`, bytes decoded as UTF-8, structs/maps/lists as JSON) and each batch `put` receives
is flushed to the file at once — as Kafka's FileStreamSinkTask, whose PrintStream hands every
line to the OS — so an appended line shows up in milliseconds, not at the next offset commit
(offset.flush.interval.ms, a minute by default). `flush`, which the worker calls before
committing consumer offsets, flushes again, so a committed offset always means the line is in
the file. Without `file` the sink writes to standard output.
"""

from __future__ import annotations

import os
import select
import sys
import time
from typing import Any

from moldau.connect.api import (ConnectError, SinkConnector, SinkRecord, SinkTask, SourceConnector, SourceRecord,
                                SourceTask)
from moldau.connect.config import ConfigDef, at_least
from moldau.connect.converters import dumps_jackson, to_json_value
from moldau.connect.data import Schema, Struct

IDLE_WAIT_S = 0.1
READ_CHUNK_BYTES = 64 * 1024


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class FileStreamSourceTask(SourceTask):
    KAFKA_CLASS = "org.apache.kafka.connect.file.FileStreamSourceTask"  # what /tasks reports as task.class
    def start(self, config: dict[str, str]) -> None:
        self.filename = config.get("file") or None
        self.topic = config["topic"]
        self.batch_size = int(config.get("batch.size", 2000))
        self.partition_key = {"filename": self.filename}
        self.stream = None
        self.identity = None
        self.buffer = b""
        self.read_position = 0  # bytes of the file consumed into `buffer`
        self.line_position = 0  # bytes of the file turned into records
        self.waiting_notice_given = False
        stored = self.context.offset_storage_reader.offset(self.partition_key) if self.filename else None
        if stored and isinstance(stored.get("position"), int):
            self.line_position = self.read_position = stored["position"]

    def poll(self) -> list[SourceRecord] | None:
        if self.filename is None:
            return self._poll_stdin()
        if self.stream is None and not self._open():
            self.context.stopping.wait(IDLE_WAIT_S)
            return None
        if _next_line(self.buffer) is not None:  # lines left over from a poll cut short by batch.size
            return self._records()
        chunk = self.stream.read(READ_CHUNK_BYTES)
        if not chunk:
            self._check_replaced_or_truncated()
            self.context.stopping.wait(IDLE_WAIT_S)
            return None
        self.buffer += chunk
        self.read_position += len(chunk)
        return self._records()

    def _open(self) -> bool:
        try:
            self.stream = open(self.filename, "rb")
        except FileNotFoundError:
            if not self.waiting_notice_given:
                _log(f"FileStreamSource: file {self.filename} does not exist yet; waiting for it to be created")
                self.waiting_notice_given = True
            return False
        except OSError as error:
            raise ConnectError(f"cannot read source file {self.filename}: {error.strerror}") from None
        self.waiting_notice_given = False
        status = os.fstat(self.stream.fileno())
        self.identity = (status.st_dev, status.st_ino)
        if self.line_position > status.st_size:
            _log(f"FileStreamSource: {self.filename} is shorter ({status.st_size} bytes) than the committed "
                 f"position {self.line_position}; it was truncated or replaced, reading from the top")
            self.line_position = 0
        self.stream.seek(self.line_position)
        self.read_position = self.line_position
        self.buffer = b""
        return True

    def _check_replaced_or_truncated(self) -> None:
        try:
            status = os.stat(self.filename)
        except FileNotFoundError:
            return  # renamed away and not recreated yet: keep the open file, look again later
        if (status.st_dev, status.st_ino) != self.identity:
            _log(f"FileStreamSource: {self.filename} was replaced (rotated); reading the new file from the top")
            self._restart_from_top()
        elif status.st_size < self.read_position:
            _log(f"FileStreamSource: {self.filename} was truncated to {status.st_size} bytes; reading from the top")
            self._restart_from_top()

    def _restart_from_top(self) -> None:
        self.stream.close()
        self.stream = None
        self.line_position = 0
        self._open()

    def _records(self) -> list[SourceRecord]:
        records = []
        start = 0  # cut lines by index and trim the buffer once: slicing per line is quadratic
        while len(records) < self.batch_size:
            cut = _next_line(self.buffer, start)
            if cut is None:
                break
            line_bytes, used = cut
            start += used
            self.line_position += used
            records.append(self._record(line_bytes, {"position": self.line_position}))
        self.buffer = self.buffer[start:]
        return records

    def _record(self, line: bytes, offset: dict[str, Any] | None) -> SourceRecord:
        return SourceRecord(self.partition_key, offset, self.topic, value=line.decode("utf-8", errors="replace"),
                            value_schema=Schema.STRING, timestamp_ms=int(time.time() * 1000))

    def _poll_stdin(self) -> list[SourceRecord] | None:
        ready, _, _ = select.select([sys.stdin], [], [], IDLE_WAIT_S)
        if not ready:
            return None
        chunk = os.read(sys.stdin.fileno(), READ_CHUNK_BYTES)
        if not chunk:
            self.context.stopping.wait(IDLE_WAIT_S)
            return None
        self.buffer += chunk
        records, start = [], 0
        while (cut := _next_line(self.buffer, start)) is not None:
            start += cut[1]
            records.append(self._record(cut[0], None))
        self.buffer = self.buffer[start:]
        return records

    def stop(self) -> None:
        if getattr(self, "stream", None) is not None:  # runs on the task thread, after the last poll
            self.stream.close()
            self.stream = None


def _next_line(buffer: bytes, start: int = 0) -> tuple[bytes, int] | None:
    """The first complete line of `buffer[start:]` and the bytes it uses, terminator included."""
    newline = buffer.find(b"\n", start)
    carriage = buffer.find(b"\r", start, newline if newline >= 0 else len(buffer))
    if carriage >= 0:
        if carriage + 1 >= len(buffer):
            return None  # maybe the first half of CRLF
        end = carriage + (2 if buffer[carriage + 1 : carriage + 2] == b"\n" else 1)
        return buffer[start:carriage], end - start
    if newline >= 0:
        return buffer[start:newline], newline + 1 - start
    return None


def _single_topic(name: str, value: Any) -> str | None:
    if value is not None and ("," in value or not value.strip()):
        return "'topic' in FileStreamSourceConnector configuration requires definition of a single topic"
    return None


class FileStreamSourceConnector(SourceConnector):
    def config_def(self) -> ConfigDef:
        return (ConfigDef()
                .define("file", "string", None, "Source file; standard input when unset")
                .define("topic", "string", doc="The topic to publish data to", validator=_single_topic)
                .define("batch.size", "int", 2000, "Most records returned by one poll", at_least(1)))

    def task_class(self):
        return FileStreamSourceTask

    def task_configs(self, max_tasks: int) -> list[dict[str, str]]:
        return [dict(self.config)]  # one file, one reader, whatever tasks.max says


class FileStreamSinkTask(SinkTask):
    KAFKA_CLASS = "org.apache.kafka.connect.file.FileStreamSinkTask"
    def start(self, config: dict[str, str]) -> None:
        self.filename = config.get("file") or None
        if self.filename is None:
            self.output = sys.stdout
            return
        try:
            self.output = open(self.filename, "a", encoding="utf-8")
        except OSError as error:
            raise ConnectError(f"cannot open sink file {self.filename} for appending: {error.strerror}") from None

    def put(self, records: list[SinkRecord]) -> None:
        for record in records:
            self.output.write(_line_text(record.value_schema, record.value) + "\n")
        self.output.flush()  # a line is in the file as soon as its record arrives, as in Kafka

    def flush(self, offsets) -> None:
        self.output.flush()

    def stop(self) -> None:
        output = getattr(self, "output", None)
        if output is not None and output is not sys.stdout:
            output.close()


def _line_text(schema: Schema | None, value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, (dict, list, tuple, Struct)):
        return dumps_jackson(to_json_value(schema, value))
    return dumps_jackson(value) if isinstance(value, (bool, float)) else str(value)


class FileStreamSinkConnector(SinkConnector):
    def config_def(self) -> ConfigDef:
        return ConfigDef().define("file", "string", None, "Destination file; standard output when unset")

    def task_class(self):
        return FileStreamSinkTask

    def task_configs(self, max_tasks: int) -> list[dict[str, str]]:
        return [dict(self.config)]  # one writer keeps whole lines in one file
