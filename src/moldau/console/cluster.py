"""What the console knows about a cluster, read through confluent-kafka only (so Apache Kafka too).

Theory of operation. `ClusterView` wraps one AdminClient, one Producer and one Consumer (used
for the message browser without joining a group: it assigns partitions and never commits).
Every method is blocking and returns plain JSON-ready dicts; the web layer (web.py) calls them
from a thread pool, so a slow or unreachable cluster never stalls the page server. Kafka errors
surface as `ConsoleError` with one readable line. The browser consumer is shared and guarded by
a lock (a confluent-kafka Consumer is not safe for concurrent use).

Where the cluster speaks only the Kafka protocol, the console can still tell: nodes and the
active controller (DescribeCluster), partitions with leader, replicas and ISR (Metadata),
offsets (ListOffsets), configs with their source (DescribeConfigs), groups with members, lag
(DescribeGroups, OffsetFetch). Sizes on disk come from a Moldau node's /metrics where one is
offered (metrics.py); a node that stopped answering is remembered and shown as not alive.
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

from confluent_kafka import (
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic, OffsetSpec

from moldau.cli.common import Settings, base_config
from moldau.console.render import render_bytes

REQUEST_TIMEOUT_S = 5.0
BROWSE_WAIT_S = 3.0
MESSAGES_MAX = 500


class ConsoleError(Exception):
    """A failure to show the user as one line (HTTP status `status`)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def _wait(future, subject: str = "") -> Any:
    try:
        return future.result(timeout=REQUEST_TIMEOUT_S)
    except KafkaException as error:
        raise _failure(error.args[0] if error.args else error, subject) from None
    except TimeoutError:
        raise ConsoleError("the cluster did not answer in time", 503) from None


def _failure(error: Any, subject: str = "") -> ConsoleError:
    if isinstance(error, KafkaError):
        transport = error.code() in (KafkaError._TRANSPORT, KafkaError._TIMED_OUT, KafkaError._ALL_BROKERS_DOWN)
        text = f"{error.name()}: {error.str()}"
        return ConsoleError(f"{subject}: {text}" if subject else text, 503 if transport else 400)
    return ConsoleError(f"{subject}: {error}" if subject else str(error))


class ClusterView:
    def __init__(self, settings: Settings):
        self.settings = settings
        config = base_config(settings)
        config["client.id"] = "moldau-console"
        self.admin = AdminClient(config)
        self._producer_config = dict(config, **{"linger.ms": 0, "message.max.bytes": 16 * 1024 * 1024})
        self._producer = None
        self._consumer_config = dict(config, **{
            "group.id": f"moldau-console-{uuid.uuid4()}",  # never joined nor committed: assign() only
            "enable.auto.commit": False, "enable.partition.eof": True, "fetch.max.bytes": 64 * 1024 * 1024,
            "receive.message.max.bytes": 80 * 1024 * 1024})
        self._consumer = None
        self._browse_lock = threading.Lock()
        self._known_nodes: dict[int, dict] = {}  # every node ever seen: one that vanished is not alive

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
        if self._producer is not None:
            self._producer.flush(2)

    # --- cluster -------------------------------------------------------------------------
    def cluster(self) -> dict:
        """Cluster id, nodes (alive or not) and the active controller.

        From a Metadata request, which any live broker answers, not from DescribeCluster alone:
        librdkafka sends DescribeCluster to the controller it last learned of from Metadata, and
        waits for that node — when the controller's node died, for ever, since nothing else this
        console asks refreshes it. A node's rack comes from DescribeCluster, asked only when a
        node appears (a failure there leaves the rack unknown)."""
        metadata = self.metadata()
        alive = set()
        new = False
        for node in metadata.brokers.values():
            alive.add(node.id)
            known = self._known_nodes.get(node.id)
            new = new or known is None
            self._known_nodes[node.id] = {"id": node.id, "host": node.host, "port": node.port,
                                          "rack": known["rack"] if known else None}
        if new:
            self._learn_racks()
        controller = metadata.controller_id if metadata.controller_id >= 0 else None
        nodes = [dict(self._known_nodes[i], alive=i in alive, controller=i == controller)
                 for i in sorted(self._known_nodes)]
        return {"cluster_id": metadata.cluster_id, "controller": controller, "nodes": nodes}

    def _learn_racks(self) -> None:
        try:
            described = _wait(self.admin.describe_cluster(request_timeout=REQUEST_TIMEOUT_S))
        except ConsoleError:
            return
        for node in described.nodes:
            if node.id in self._known_nodes:
                self._known_nodes[node.id]["rack"] = node.rack

    def metadata(self):
        try:
            return self.admin.list_topics(timeout=REQUEST_TIMEOUT_S)
        except KafkaException as error:
            raise _failure(error.args[0]) from None

    def end_offsets(self, keys: list[tuple[str, int]], spec: Any = None) -> dict[tuple[str, int], int]:
        if not keys:
            return {}
        spec = spec or OffsetSpec.latest()
        futures = self.admin.list_offsets({TopicPartition(t, p): spec for t, p in keys},
                                          request_timeout=REQUEST_TIMEOUT_S)
        found = {}
        for tp, future in futures.items():
            try:
                found[(tp.topic, tp.partition)] = future.result(REQUEST_TIMEOUT_S).offset
            except (KafkaException, TimeoutError):
                continue
        return found

    def start_offsets(self, keys: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
        return self.end_offsets(keys, OffsetSpec.earliest())

    # --- topics --------------------------------------------------------------------------
    def topics(self, sizes: dict[tuple[str, int], int] | None = None) -> list[dict]:
        metadata = self.metadata()
        names = sorted(t for t in metadata.topics if not t.startswith("__"))
        keys = [(t, p) for t in names for p in sorted(metadata.topics[t].partitions)]
        ends, starts = self.end_offsets(keys), self.start_offsets(keys)
        result = []
        for name in names:
            topic = metadata.topics[name]
            partitions = topic.partitions.values()
            replication = max((len(p.replicas) for p in partitions), default=0)
            parts = [(name, p) for p in topic.partitions]
            size = sum(sizes.get(k, 0) for k in parts) if sizes and any(k in sizes for k in parts) else None
            result.append({
                "name": name,
                "partitions": len(topic.partitions),
                "replication_factor": replication,
                "under_replicated": sum(1 for p in partitions if len(p.isrs) < len(p.replicas)),
                "offline": sum(1 for p in partitions if p.leader < 0),
                "records": sum(max(0, ends.get(k, 0) - starts.get(k, 0)) for k in parts),
                "size_bytes": size,
            })
        return result

    def topic(self, name: str, sizes: dict[tuple[str, int], int] | None = None) -> dict:
        metadata = self.metadata()
        topic = metadata.topics.get(name)
        if topic is None or (topic.error is not None and not topic.partitions):
            raise ConsoleError(f"unknown topic {name!r}", 404)
        keys = [(name, p) for p in sorted(topic.partitions)]
        ends, starts = self.end_offsets(keys), self.start_offsets(keys)
        partitions = []
        for _, index in keys:
            p = topic.partitions[index]
            partitions.append({
                "partition": index, "leader": p.leader, "replicas": list(p.replicas), "isr": list(p.isrs),
                "under_replicated": len(p.isrs) < len(p.replicas), "offline": p.leader < 0,
                "log_start_offset": starts.get((name, index)), "log_end_offset": ends.get((name, index)),
                "size_bytes": (sizes or {}).get((name, index)),
            })
        return {"name": name, "partitions": partitions, "configs": self.topic_configs(name)}

    def topic_configs(self, name: str) -> list[dict]:
        resource = ConfigResource(ConfigResource.Type.TOPIC, name)
        try:
            described = _wait(self.admin.describe_configs([resource], request_timeout=REQUEST_TIMEOUT_S)[resource], name)
        except ConsoleError:
            return []
        return [{"name": key, "value": None if entry.is_sensitive else entry.value,
                 "source": _source(entry.source), "sensitive": entry.is_sensitive}
                for key, entry in sorted(described.items())]

    def broker_config(self, node_id: int, key: str) -> str | None:
        resource = ConfigResource(ConfigResource.Type.BROKER, str(node_id))
        try:
            described = self.admin.describe_configs([resource], request_timeout=REQUEST_TIMEOUT_S)[resource].result(
                REQUEST_TIMEOUT_S)
        except (KafkaException, TimeoutError):
            return None
        entry = described.get(key)
        return entry.value if entry is not None else None

    def create_topic(self, name: str, partitions: int, replication_factor: int, configs: dict[str, str]) -> None:
        if not name or partitions < 1 or not (replication_factor >= 1 or replication_factor == -1):
            raise ConsoleError("a topic needs a name, at least one partition and a replication factor")
        topic = NewTopic(name, num_partitions=partitions, replication_factor=replication_factor, config=configs)
        _wait(self.admin.create_topics([topic], request_timeout=REQUEST_TIMEOUT_S)[name], name)

    def delete_topic(self, name: str) -> None:
        _wait(self.admin.delete_topics([name], request_timeout=REQUEST_TIMEOUT_S)[name], name)

    # --- messages ------------------------------------------------------------------------
    def browse(self, topic: str, partitions: list[int] | None, mode: str, value: int | None, limit: int,
               cap: int, positions: dict[int, int] | None = None) -> dict:
        """Up to `limit` messages of `topic` from the start point `mode`: beginning, end (the
        last `limit` of each partition), offset (`value`), timestamp (`value`, ms) or positions
        (a partition → next offset map: the follow-live mode)."""
        limit = max(1, min(limit, MESSAGES_MAX))
        described = self.topic(topic)
        every = [p["partition"] for p in described["partitions"]]
        chosen = [p for p in (partitions or every) if p in every]
        if not chosen:
            raise ConsoleError(f"topic {topic!r} has no such partition", 404)
        bounds = {p["partition"]: (p["log_start_offset"], p["log_end_offset"]) for p in described["partitions"]}
        starts = self._start_points(topic, chosen, bounds, mode, value, limit, positions or {})
        with self._browse_lock:
            messages = self._read(topic, starts, bounds, limit, cap)
        messages.sort(key=lambda m: (m["timestamp"], m["partition"], m["offset"]))
        next_positions = dict(starts)
        for message in messages:
            next_positions[message["partition"]] = max(next_positions[message["partition"]], message["offset"] + 1)
        return {"topic": topic, "messages": messages[:limit] if mode != "end" else messages[-limit:],
                "positions": {str(p): o for p, o in sorted(next_positions.items())},
                "bounds": {str(p): list(b) for p, b in sorted(bounds.items())}}

    def _start_points(self, topic, chosen, bounds, mode, value, limit, positions) -> dict[int, int]:
        if mode == "beginning":
            return {p: bounds[p][0] for p in chosen}
        if mode == "end":
            return {p: max(bounds[p][0], bounds[p][1] - limit) for p in chosen}
        if mode == "offset":
            if value is None or value < 0:
                raise ConsoleError("an offset must be a number ≥ 0")
            return {p: min(max(value, bounds[p][0]), bounds[p][1]) for p in chosen}
        if mode == "positions":
            return {p: min(max(positions.get(p, bounds[p][1]), bounds[p][0]), bounds[p][1]) for p in chosen}
        if mode == "timestamp":
            if value is None:
                raise ConsoleError("a time must be given")
            found = self.end_offsets([(topic, p) for p in chosen], OffsetSpec.for_timestamp(value))
            return {p: found[(topic, p)] if found.get((topic, p), -1) >= 0 else bounds[p][1] for p in chosen}
        raise ConsoleError(f"unknown start {mode!r}: beginning, end, offset, timestamp or positions")

    def _read(self, topic, starts: dict[int, int], bounds, limit: int, cap: int) -> list[dict]:
        from confluent_kafka import Consumer

        if self._consumer is None:
            self._consumer = Consumer(self._consumer_config)
        consumer = self._consumer
        wanted = {p: o for p, o in starts.items() if o < bounds[p][1]}
        if not wanted:
            return []
        consumer.assign([TopicPartition(topic, p, o) for p, o in sorted(wanted.items())])
        messages: list[dict] = []
        open_partitions = set(wanted)
        deadline = time.monotonic() + BROWSE_WAIT_S
        try:
            while open_partitions and len(messages) < limit * len(wanted) and time.monotonic() < deadline:
                message = consumer.poll(0.2)
                if message is None:
                    continue
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        open_partitions.discard(message.partition())
                        continue
                    raise _failure(error, topic)
                partition = message.partition()
                if partition not in open_partitions:
                    continue
                messages.append(_message(message, cap))
                if sum(1 for m in messages if m["partition"] == partition) >= limit:
                    open_partitions.discard(partition)
        finally:
            consumer.unassign()
        return messages

    def produce(self, topic: str, partition: int | None, key: bytes | None, value: bytes | None,
                headers: list[tuple[str, bytes]]) -> dict:
        from confluent_kafka import Producer

        if self._producer is None:
            self._producer = Producer(self._producer_config)
        outcome: dict = {}

        def delivered(error, message) -> None:
            outcome["error"] = error
            outcome["message"] = message

        kwargs = {"key": key, "value": value, "headers": headers or None, "on_delivery": delivered}
        if partition is not None:
            kwargs["partition"] = partition
        try:
            self._producer.produce(topic, **kwargs)
        except (KafkaException, BufferError, ValueError) as error:
            raise ConsoleError(f"{topic}: {error}") from None
        self._producer.flush(REQUEST_TIMEOUT_S * 2)
        if "error" not in outcome:
            raise ConsoleError("the cluster did not acknowledge the message in time", 503)
        if outcome["error"] is not None:
            raise _failure(outcome["error"], topic)
        message = outcome["message"]
        return {"topic": topic, "partition": message.partition(), "offset": message.offset()}

    # --- groups --------------------------------------------------------------------------
    def groups(self) -> list[dict]:
        listed = _wait(self.admin.list_consumer_groups(request_timeout=REQUEST_TIMEOUT_S))
        ids = sorted(g.group_id for g in listed.valid)
        if not ids:
            return []
        futures = self.admin.describe_consumer_groups(ids, request_timeout=REQUEST_TIMEOUT_S)
        result = []
        for group_id in ids:
            try:
                described = futures[group_id].result(REQUEST_TIMEOUT_S)
            except (KafkaException, TimeoutError):
                result.append({"group": group_id, "state": "UNKNOWN", "protocol": None, "members": None})
                continue
            result.append({"group": group_id, "state": _state(described.state),
                           "protocol": described.partition_assignor or None, "members": len(described.members)})
        return result

    def group(self, group_id: str) -> dict:
        from moldau.cli.groups import describe_one  # the CLI's `groups describe`, reused
        from moldau.cli.main import CliError

        try:
            described = describe_one(self.admin, self.settings, group_id)
        except CliError as error:
            raise ConsoleError(str(error), 404 if "unknown group" in str(error) else 503) from None
        described["total_lag"] = sum(p["lag"] or 0 for p in described["partitions"])
        return described

    def group_lag(self, group_id: str) -> int | None:
        """Total lag of a group (committed offsets against log end offsets), or None."""
        from moldau.cli.common import committed_offsets  # not the admin client's: it can crash
        from moldau.cli.main import CliError

        try:
            offsets = committed_offsets(self.admin, self.settings, group_id)
        except CliError:
            return None
        ends = self.end_offsets(sorted(offsets))
        return sum(max(0, ends[k] - o) for k, o in offsets.items() if k in ends)

    def reset_offsets(self, group_id: str, to: str, value: str | None, topics: list[str]) -> dict:
        """kafka-consumer-groups --reset-offsets --execute, for an empty group: to earliest,
        latest, an offset or a time (ISO 8601), on `topics` (all the group's topics if empty)."""
        import argparse

        from moldau.cli.groups import new_offsets, reset_partitions
        from moldau.cli.main import CliError

        described = self.group(group_id)
        if described["members"]:
            raise ConsoleError(f"group {group_id!r} has {len(described['members'])} active member(s); "
                               "stop its consumers before resetting offsets", 409)
        args = argparse.Namespace(all_topics=not topics, topics=topics, to_earliest=to == "earliest",
                                  to_latest=to == "latest", to_offset=None, to_datetime=None, shift_by=None)
        try:
            if to == "offset":
                args.to_offset = int(value or "")
            elif to == "datetime":
                args.to_datetime = value
            elif to not in ("earliest", "latest"):
                raise ConsoleError(f"unknown reset target {to!r}: earliest, latest, offset or datetime")
            keys = reset_partitions(self.admin, self.settings, group_id, args)
            offsets = new_offsets(self.admin, self.settings, group_id, keys, args)
        except ValueError:
            raise ConsoleError(f"an offset must be a number, got {value!r}") from None
        except CliError as error:
            raise ConsoleError(str(error)) from None
        if not offsets:
            raise ConsoleError(f"group {group_id!r} has no committed offsets to reset")
        request = ConsumerGroupTopicPartitions(group_id, [TopicPartition(t, p, o) for (t, p), o in sorted(offsets.items())])
        _wait(self.admin.alter_consumer_group_offsets([request], request_timeout=REQUEST_TIMEOUT_S)[group_id], group_id)
        return {"group": group_id, "offsets": [{"topic": t, "partition": p, "offset": o}
                                              for (t, p), o in sorted(offsets.items())]}


def _message(message, cap: int) -> dict:
    timestamp_type, timestamp = message.timestamp()
    return {
        "partition": message.partition(), "offset": message.offset(), "timestamp": timestamp,
        "timestamp_type": {1: "CreateTime", 2: "LogAppendTime"}.get(timestamp_type, "none"),
        "key": render_bytes(message.key(), cap), "value": render_bytes(message.value(), cap),
        "headers": [{"key": k, "value": render_bytes(v, cap)} for k, v in (message.headers() or [])],
    }


def _state(state) -> str:
    return getattr(state, "name", str(state))


def _source(source) -> str:
    """DescribeConfigs' source in words: topic, broker, default (Kafka's ConfigSource names)."""
    from confluent_kafka.admin import ConfigSource

    try:
        name = ConfigSource(source).name
    except ValueError:
        name = str(source)
    return {"DYNAMIC_TOPIC_CONFIG": "topic", "DYNAMIC_BROKER_CONFIG": "broker (dynamic)",
            "DYNAMIC_DEFAULT_BROKER_CONFIG": "cluster default (dynamic)", "STATIC_BROKER_CONFIG": "broker",
            "DEFAULT_CONFIG": "default"}.get(name, name.lower())
