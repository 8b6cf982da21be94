"""The partitions this broker holds, kept in step with the metadata image (Kafka's ReplicaManager).

Theory of operation. For every partition record the broker applies, `sync` makes the local
replica match the image: a replica assigned here gets its log (opened, or created with its
`partition.metadata`), then becomes leader (leader epoch, replicas, ISR; followers tracked) or
follower (fetching from the leader through replication/fetcher.py); a replica no longer
assigned here (a reassignment moved it away) stops fetching and its log is deleted.

Opening a log costs a few file operations, so a topic with thousands of partitions is not
opened in one go: partitions wait in `pending` and are opened a bounded number per call into
the core (the runtime calls again at once while some wait), or on demand the moment a request
needs one — the event loop keeps serving everyone while a large topic is created.

The broker acts on partition records only once it has applied the metadata log up to its own
registration (`ready`): before that, the image may still show leaderships this broker lost while
it was away. The first time it is ready, every partition in the image is synced.

High watermarks survive restarts in `replication-offset-checkpoint` (Kafka's file and format,
one per data directory), written every replica.high.watermark.checkpoint.interval.ms and on
close; a replica reopened after a crash starts from its checkpointed high watermark, never from
its log end, so nothing unreplicated is shown to consumers as committed.
"""

from __future__ import annotations

import collections
import logging
import uuid
from typing import Any

from moldau.broker import stray_logs
from moldau.log import checkpoints
from moldau.log.config import LogConfig
from moldau.log.partition_log import PartitionLog
from moldau.replication.partition import Partition

log = logging.getLogger("moldau.broker")

HW_CHECKPOINT_FILE = "replication-offset-checkpoint"
OPENS_PER_CALL = 16  # partition logs opened per call into the core while a large topic waits


class ReplicaManager:
    def __init__(self, core: Any, checkpoint_interval_ms: int = 5_000):
        self.core = core
        self.pending: collections.OrderedDict[tuple[str, int], None] = collections.OrderedDict()
        self.ready = False
        self.checkpoint_interval_ms = checkpoint_interval_ms
        self._next_checkpoint_ms = 0
        self._checkpointed: dict[tuple[str, int], int] = self._read_hw_checkpoint()

    @property
    def partitions(self) -> dict[tuple[str, int], Partition]:
        return self.core.partitions

    # --- reacting to the image -----------------------------------------------------------
    def become_ready(self) -> None:
        """The image is caught up with this broker's registration: act on every partition."""
        if self.ready:
            return
        self.ready = True
        core = self.core
        image = core.image
        held = [(name, index) for name in sorted(image.topics_by_name)
                for index, part in sorted(image.topics_by_name[name].partitions.items()) if core.node_id in part.replicas]
        # Directories the metadata log does not assign here are moved aside, never dropped.
        stray_logs.check(core.fs, core.config.data_dir, core.dirs_at_start, held, lambda: core.new_uuid().hex)
        for name in sorted(image.topics_by_name):
            topic = image.topics_by_name[name]
            for index in sorted(topic.partitions):
                self.sync(topic.topic_id, index)

    def sync(self, topic_id: str, index: int) -> None:
        if not self.ready:
            return
        core = self.core
        topic = core.image.topics_by_id.get(topic_id)
        part = topic.partitions.get(index) if topic is not None else None
        key = (topic.name, index) if topic is not None else None
        if part is None or core.node_id not in part.replicas:
            if key is not None and (key in self.partitions or key in self.pending):
                self._drop(key, delete_log=True)
            return
        if key not in self.partitions:
            self.pending[key] = None
            return
        self._apply_state(self.partitions[key])

    def _apply_state(self, partition: Partition) -> None:
        core = self.core
        topic = core.image.topics_by_id.get(partition.topic_id)
        part = topic.partitions.get(partition.index) if topic is not None else None
        if part is None:
            return
        now_ms = core.now_ms
        if part.leader == core.node_id:
            core.fetchers.unfollow(partition.key)
            was_leader = partition.is_leader
            partition.become_leader(part.leader_epoch, part.replicas, part.isr, now_ms, part.partition_epoch)
            if not was_leader:
                log.info("Leading %s-%d at leader epoch %d (ISR %s)", partition.topic, partition.index,
                         part.leader_epoch, list(part.isr))
            core.isr.check_expand(partition, now_ms)
        else:
            partition.become_follower(part.leader, part.leader_epoch, part.replicas, part.isr, part.partition_epoch)
            if part.leader >= 0:
                core.fetchers.follow(partition.key, part.leader, part.leader_epoch)
            else:
                core.fetchers.unfollow(partition.key)
        core.partition_appended(partition.key, now_ms)  # waiting produces and fetches re-check

    def remove_topic(self, topic_id: str) -> None:
        self.core.log_dir.forget(topic_id)
        for key in sorted(set(self.partitions) | set(self.pending)):
            partition = self.partitions.get(key)
            if (partition is not None and partition.topic_id == topic_id) or \
                    (partition is None and self._pending_topic_id(key) == topic_id):
                self._drop(key, delete_log=True)

    def _pending_topic_id(self, key: tuple[str, int]) -> str | None:
        topic = self.core.image.topic(key[0])
        return topic.topic_id if topic is not None else None

    def _drop(self, key: tuple[str, int], delete_log: bool) -> None:
        self.pending.pop(key, None)
        self.core.fetchers.unfollow(key)
        partition = self.partitions.pop(key, None)
        self._checkpointed.pop(key, None)
        if partition is not None:
            if delete_log:
                partition.log.delete()
            else:
                partition.log.close()
            self.core.partition_appended(key, self.core.now_ms)

    # --- opening logs --------------------------------------------------------------------
    def get(self, topic: str, index: int) -> Partition | None:
        """The partition, opening its log now if it is waiting to be opened."""
        key = (topic, index)
        partition = self.partitions.get(key)
        if partition is None and key in self.pending:
            partition = self._open(key)
        return partition

    def open_pending(self) -> None:
        for _ in range(min(OPENS_PER_CALL, len(self.pending))):
            key = next(iter(self.pending))
            self._open(key)

    def _open(self, key: tuple[str, int]) -> Partition | None:
        self.pending.pop(key, None)
        core = self.core
        topic = core.image.topic(key[0])
        if topic is None or key[1] not in topic.partitions:
            return None
        part = topic.partitions[key[1]]
        configs = core.topic_configs(topic.name)
        directory = core._path(f"{topic.name}-{key[1]}")
        try:
            plog = self._open_log(directory, uuid.UUID(topic.topic_id), configs)
            if plog.offline is not None and part.leader >= 0 and part.leader != core.node_id:
                plog = self._refetch_damaged(directory, plog, uuid.UUID(topic.topic_id), configs, part.leader)
        except OSError as error:  # a full disk: retried on every tick (broker/storage.py)
            core.log_dir.open_failed(key, topic.topic_id, error, core.now_ms)
            return None
        core.log_dir.opened(key, core.now_ms)
        partition = Partition(topic.name, key[1], topic.topic_id, plog, core.node_id,
                              follower_silence_max_ms=core.config.broker_session_timeout_ms)
        checkpointed = self._checkpointed.get(key)
        partition.high_watermark = min(plog.log_end_offset, max(plog.log_start_offset, checkpointed or 0))
        core.apply_partition_configs(partition, configs)
        self.partitions[key] = partition
        self._apply_state(partition)
        return partition

    def reopen(self, key: tuple[str, int]) -> Partition | None:
        """Try again to open a log that could not be opened (a full disk, broker/storage.py)."""
        if key in self.partitions or not self.ready:
            return self.partitions.get(key)
        return self._open(key)

    def _refetch_damaged(self, directory: str, damaged: PartitionLog, topic_id: uuid.UUID,
                         configs: dict[str, str], leader: int) -> PartitionLog:
        """A follower's damaged log (log/recovery.py opened it offline) is moved aside — the
        bytes stay for the operator — and the partition is fetched again from its leader,
        from the leader's log start, as a new replica would be."""
        core = self.core
        fault = damaged.offline
        damaged.close()
        stray_logs.move_aside(core.fs, core.config.data_dir, directory.rsplit("/", 1)[1], core.new_uuid().hex,
                              f"is damaged ({fault.describe()}); fetching the partition again from leader {leader}")
        return self._open_log(directory, topic_id, configs)

    def _open_log(self, directory: str, topic_id: uuid.UUID, configs: dict[str, str]) -> PartitionLog:
        """Open a partition's log. A directory left by an older topic of the same name (its
        partition.metadata names another topic id) is removed when that topic's deletion is in
        the metadata log (a deletion cut short), else moved aside as a stray: data is never
        dropped silently. OSError (a full disk) is the caller's to retry (broker/storage.py)."""
        core = self.core
        fs = core.fs
        try:
            on_disk = checkpoints.read_partition_metadata(fs, directory) if fs.exists(directory) else None
        except ValueError as error:  # unreadable: the log's own files decide what is there
            log.warning("%s: %s; writing it anew", directory, error)
            on_disk = None
        if on_disk is not None and on_disk != topic_id:
            if str(on_disk) in core.image.removed_topic_names:
                fs.remove_tree(directory)
            else:
                stray_logs.move_aside(fs, core.config.data_dir, directory.rsplit("/", 1)[1], core.new_uuid().hex,
                                      f"belongs to topic id {on_disk}, unknown to the metadata log")
                on_disk = None
        new = not fs.exists(directory)
        plog = PartitionLog.open(fs, directory, LogConfig.from_kafka_configs(configs), self.core.now_ms)
        if on_disk != topic_id:
            try:
                checkpoints.write_partition_metadata(fs, directory, topic_id, sync=not new)
            except OSError:
                plog.close()
                raise
        return plog

    # --- high watermark checkpoints -----------------------------------------------------------
    def _hw_path(self) -> str:
        return self.core._path(HW_CHECKPOINT_FILE)

    def _read_hw_checkpoint(self) -> dict[tuple[str, int], int]:
        fs = self.core.fs
        path = self._hw_path()
        if not fs.exists(path):
            return {}
        entries: dict[tuple[str, int], int] = {}
        try:
            lines = fs.read_file(path).decode("utf-8").splitlines()
            for line in lines[2:2 + int(lines[1])]:
                topic, partition, offset = line.rsplit(" ", 2)
                entries[(topic, int(partition))] = int(offset)
        except (ValueError, IndexError, UnicodeDecodeError):
            log.warning("Ignoring unreadable %s", path)
            return {}
        return entries

    def checkpoint_high_watermarks(self, now_ms: int, force: bool = False) -> None:
        if not force and now_ms < self._next_checkpoint_ms:
            return
        self._next_checkpoint_ms = now_ms + self.checkpoint_interval_ms
        # Partitions still waiting to be opened keep the high watermark read at start.
        current = {key: hw for key, hw in self._checkpointed.items() if key in self.pending}
        current.update((key, p.high_watermark) for key, p in self.partitions.items())
        if current == self._checkpointed:
            return
        lines = [f"{topic} {partition} {offset}" for (topic, partition), offset in sorted(current.items())]
        text = "0\n" + f"{len(lines)}\n" + "".join(line + "\n" for line in lines)
        try:
            self.core.fs.write_atomic(self._hw_path(), text.encode("utf-8"))
        except OSError as error:  # a full disk: the next checkpoint tries again
            log.warning("cannot write %s: %s", self._hw_path(), error)
            return
        self._checkpointed = current
