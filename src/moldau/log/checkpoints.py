"""Small text files in a partition directory, in Kafka's formats.

Theory of operation
-------------------
Kafka keeps `recovery-point-offset-checkpoint` and `log-start-offset-checkpoint` once per log
directory (version line, count line, `topic partition offset` lines). Moldau keeps the same
format but one file per partition directory, holding the single entry for that partition:
a checkpoint then never needs coordination between partitions, and deleting the directory
deletes its checkpoints. `partition.metadata` is byte-compatible with Kafka's
(`version: 0` / `topic_id: <base64url uuid, no padding>`). All writes are atomic
(temporary + fsync + rename) through `FileSystem.write_atomic`.
"""

from __future__ import annotations

import base64
import posixpath
import uuid

from .fs import FileSystem

RECOVERY_POINT_FILE = "recovery-point-offset-checkpoint"
LOG_START_OFFSET_FILE = "log-start-offset-checkpoint"
CLEANER_OFFSET_FILE = "cleaner-offset-checkpoint"
PARTITION_METADATA_FILE = "partition.metadata"


def parse_topic_partition(directory: str) -> tuple[str, int]:
    """`<topic>-<partition>` (the directory's last path component) -> (topic, partition)."""
    name = posixpath.basename(posixpath.normpath(directory))
    topic, _, partition = name.rpartition("-")
    if not topic or not partition.isdigit():
        return name, 0
    return topic, int(partition)


def write_offset_checkpoint(fs: FileSystem, directory: str, file_name: str, offset: int) -> None:
    topic, partition = parse_topic_partition(directory)
    text = f"0\n1\n{topic} {partition} {offset}\n"
    fs.write_atomic(posixpath.join(directory, file_name), text.encode("utf-8"))


def read_offset_checkpoint(fs: FileSystem, directory: str, file_name: str) -> int | None:
    """The checkpointed offset, or None when the file is missing or unreadable."""
    path = posixpath.join(directory, file_name)
    if not fs.exists(path):
        return None
    try:
        lines = fs.read_file(path).decode("utf-8").split("\n")
        if lines[0].strip() != "0" or int(lines[1]) != 1:
            return None
        return int(lines[2].split()[-1])
    except (ValueError, IndexError, UnicodeDecodeError):
        return None


def topic_id_to_string(topic_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(topic_id.bytes).decode("ascii").rstrip("=")


def topic_id_from_string(text: str) -> uuid.UUID:
    return uuid.UUID(bytes=base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))


def write_partition_metadata(fs: FileSystem, directory: str, topic_id: uuid.UUID, sync: bool = True) -> None:
    """The partition's topic id. Unsynced for a new, empty partition: if a power loss takes it,
    the broker writes it again at the next start (the metadata log says whose it is)."""
    text = f"version: 0\ntopic_id: {topic_id_to_string(topic_id)}\n"
    fs.write_atomic(posixpath.join(directory, PARTITION_METADATA_FILE), text.encode("ascii"), sync=sync)


def read_partition_metadata(fs: FileSystem, directory: str) -> uuid.UUID | None:
    path = posixpath.join(directory, PARTITION_METADATA_FILE)
    if not fs.exists(path):
        return None
    fields = {}
    for line in fs.read_file(path).decode("ascii").splitlines():
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    if fields.get("version") != "0" or "topic_id" not in fields:
        raise ValueError(f"{path}: unsupported partition.metadata")
    return topic_id_from_string(fields["topic_id"])
