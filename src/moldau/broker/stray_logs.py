"""On start, compare the partition directories on disk with the metadata log; never drop data.

Theory of operation. The metadata log is the truth about which partitions this broker holds;
the partition directories are where their data lives. They can disagree: the metadata log was
lost or damaged (two processes wrote it, someone deleted `__cluster_metadata-0`), a topic was
deleted while the broker was down and its directory's deletion was cut short, or, in a
cluster, a partition moved to other brokers while this one was away. A directory the metadata
log does not assign to this broker is a *stray* (Kafka's word): it is renamed to Kafka's stray
name `<topic>-<partition>.<unique id>-stray` — kept for the operator, out of the way of a new
topic of the same name (which would otherwise find a directory of another topic id there) —
and reported with a warning. A partition the metadata log assigns to this broker whose
directory is missing starts empty, also with a warning: on one node its data is gone, in a
cluster it is fetched again from the leader.

`partition_dirs` is called before the metadata log is replayed (replaying creates the
directories of new partitions) and `check` after; both only touch `fs`.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Callable, Iterable

log = logging.getLogger("moldau.log")

_PARTITION_DIR = re.compile(r"^(.+)-(\d+)$")
STRAY_SUFFIX = "-stray"


def partition_dirs(fs: Any, data_dir: str, skip: Iterable[str] = ()) -> set[str]:
    """Names of the partition directories (`<topic>-<partition>`) in `data_dir`."""
    skipped = set(skip)
    names = set()
    for name in fs.listdir(data_dir):
        if name in skipped or not _PARTITION_DIR.match(name):
            continue
        try:
            fs.listdir(_join(data_dir, name))  # a directory, not a file of that name
        except OSError:
            continue
        names.add(name)
    return names


def check(fs: Any, data_dir: str, before: set[str], held: Iterable[tuple[str, int]],
          new_id: Callable[[], str]) -> list[str]:
    """Move stray directories aside and report missing ones; returns the names moved aside.
    `before`: partition_dirs() before the replay; `held`: the partitions the metadata log
    assigns to this broker (their logs are open now)."""
    held_names = {f"{topic}-{index}" for topic, index in held}
    moved = []
    for name in sorted(before - held_names):
        path = _join(data_dir, name)
        if not fs.exists(path):
            continue  # the replay deleted it: its topic's deletion is in the metadata log
        moved.append(move_aside(fs, data_dir, name, new_id(), "is not assigned to this broker by the metadata log"))
    for name in sorted(held_names - before):
        log.warning("Partition %s is in the metadata log but its directory %s was missing; it starts empty",
                    name, _join(data_dir, name))
    return moved


def move_aside(fs: Any, data_dir: str, name: str, unique_id: str, reason: str) -> str:
    """Rename partition directory `name` to its stray name and say why; returns the new name."""
    stray = f"{name}.{unique_id}{STRAY_SUFFIX}"
    fs.rename(_join(data_dir, name), _join(data_dir, stray))
    fs.sync_dir(data_dir)
    log.warning("Partition directory %s %s; kept as %s, not served", _join(data_dir, name), reason, stray)
    return stray


def _join(directory: str, name: str) -> str:
    return directory.rstrip("/") + "/" + name
