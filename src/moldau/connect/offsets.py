"""The standalone worker's offsets file: where each source partition was committed.

Theory of operation: entries are keyed like Kafka's offset storage, by the JSON text of
`[connector name, source partition]` (e.g. `["local-file-source",{"filename":"test.txt"}]`),
and hold the source offset (e.g. `{"position":42}`). Kafka writes Java-serialized maps; we write
a human-readable JSON object instead (one key per entry) — the keys are the same strings.

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


class OffsetFileError(Exception):
    """The offsets file cannot be read or written (message names the file and the reason)."""


class OffsetStore:
    def __init__(self, path: str):
        self.path = path
        self._lock = threading.Lock()
        self._entries: dict[str, Any] = self._load()

    def _load(self) -> dict[str, Any]:
        try:
            with open(self.path, encoding="utf-8") as handle:
                text = handle.read()
        except FileNotFoundError:
            return {}
        except OSError as error:
            raise OffsetFileError(f"cannot read offsets file {self.path}: {error.strerror}") from None
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
            return self._entries.get(self.key(connector, source_partition))

    def offsets_of(self, connector: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """Every (source partition, source offset) committed for `connector`, in key order."""
        found = []
        with self._lock:
            for key in sorted(self._entries):
                try:
                    name, partition = json.loads(key)
                except ValueError:
                    continue
                if name == connector:
                    found.append((partition, self._entries[key]))
        return found

    def commit(self, connector: str, offsets: dict[str, tuple[dict, dict]]) -> None:
        """Store `{key: (source_partition, source_offset)}` for `connector` and persist the file."""
        if not offsets:
            return
        with self._lock:
            for partition, offset in offsets.values():
                self._entries[self.key(connector, partition)] = offset
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

    def check_writable(self) -> None:
        """Fail early (at worker start) when the offsets file cannot be created."""
        with self._lock:
            self._write()
