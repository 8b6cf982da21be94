"""The standalone worker's offsets file: where each source partition was committed.

Theory of operation: entries are keyed like Kafka's offset storage, by the JSON text of
`[connector name, source partition]` (e.g. `["local-file-source",{"filename":"test.txt"}]`),
and hold the source offset (e.g. `{"position":42}`). Kafka writes Java-serialized maps; we write
a human-readable JSON object instead (one key per entry) — the keys are the same strings. A file
in Kafka's format (or any other non-JSON file) is recognised and refused in one line naming it.

The file is read lazily: `open()` when a source connector starts (the worker does not touch it
for sinks, which keep their offsets in their consumer group).

`commit(connector, offsets)` replaces the file atomically: write a temporary file next to it,
fsync, rename over the old one. A crash leaves either the old or the new file, never half of one.
All methods are safe to call from several task threads.
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any

from moldau.connect.converters import dumps_jackson


# What every Java ObjectOutputStream starts with (STREAM_MAGIC, STREAM_VERSION): Kafka's
# FileOffsetBackingStore writes its map that way, at the same default path.
_JAVA_SERIALIZATION_MAGIC = b"\xac\xed\x00\x05"


class OffsetFileError(Exception):
    """The offsets file cannot be read or written (message names the file and the reason)."""


class OffsetStore:
    def __init__(self, path: str):
        self.path = path
        self._lock = threading.Lock()
        self._entries: dict[str, Any] | None = None  # read on first use (see open())

    def open(self) -> None:
        """Read the file and check it can be written; OffsetFileError names the file and why.
        Called when a source connector starts; a worker running only sinks never reads it."""
        with self._lock:
            self._loaded()
            self._write()

    def _loaded(self) -> dict[str, Any]:
        if self._entries is None:
            self._entries = self._load()
        return self._entries

    def _load(self) -> dict[str, Any]:
        try:
            with open(self.path, "rb") as handle:
                data = handle.read()
        except FileNotFoundError:
            return {}
        except OSError as error:
            raise OffsetFileError(f"cannot read offsets file {self.path}: {error.strerror}") from None
        if data.startswith(_JAVA_SERIALIZATION_MAGIC):
            raise OffsetFileError(f"offsets file {self.path} was written by Apache Kafka's Connect worker (Java "
                                  "serialization), not by moldau; give offset.storage.file.filename a file of "
                                  "moldau's own, or move this one away to start over")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise OffsetFileError(f"offsets file {self.path} is not a moldau offsets file (binary, not JSON); "
                                  "give offset.storage.file.filename another file, or move it away") from None
        if not text.strip():
            return {}
        try:
            entries = json.loads(text)
        except ValueError as error:
            raise OffsetFileError(f"offsets file {self.path} is not valid JSON ({error}); "
                                  "move it away to start over") from None
        if not isinstance(entries, dict):
            raise OffsetFileError(f"offsets file {self.path} does not hold a JSON object; move it away to start over")
        return entries

    @staticmethod
    def key(connector: str, source_partition: dict[str, Any]) -> str:
        return dumps_jackson([connector, source_partition])

    def get(self, connector: str, source_partition: dict[str, Any]) -> dict[str, Any] | None:
        with self._lock:
            return self._loaded().get(self.key(connector, source_partition))

    def offsets_of(self, connector: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """Every (source partition, source offset) committed for `connector`, in key order."""
        found = []
        with self._lock:
            entries = self._loaded()
            for key in sorted(entries):
                try:
                    name, partition = json.loads(key)
                except ValueError:
                    continue
                if name == connector:
                    found.append((partition, entries[key]))
        return found

    def commit(self, connector: str, offsets: dict[str, tuple[dict, dict]]) -> None:
        """Store `{key: (source_partition, source_offset)}` for `connector` and persist the file."""
        if not offsets:
            return
        with self._lock:
            entries = self._loaded()
            for partition, offset in offsets.values():
                entries[self.key(connector, partition)] = offset
            self._write()

    def _write(self) -> None:
        directory = os.path.dirname(os.path.abspath(self.path))
        temporary = self.path + ".tmp"
        try:
            os.makedirs(directory, exist_ok=True)
            with open(temporary, "w", encoding="utf-8") as handle:
                json.dump(self._entries, handle, indent=1, sort_keys=True)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, self.path)
        except OSError as error:
            raise OffsetFileError(f"cannot write offsets file {self.path}: {error.strerror}") from None

