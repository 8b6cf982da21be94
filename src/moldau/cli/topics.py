"""`moldau topics`: create, list, describe, delete, alter-config — in moldau's and Kafka's spelling.

Theory of operation. Both spellings parse into the same `TopicsRequest`:

    moldau topics create NAME -p 3 -r 1 -c retention.ms=1000
    moldau topics --create --topic NAME --partitions 3 --replication-factor 1 --bootstrap-server B

The first positional word is the action (create, list, describe, delete, alter-config); Kafka's
`--create/--list/--describe/--delete/--alter` flags choose it otherwise. Kafka's `--alter` changes
the partition count (`--partitions N`) and/or configs (`--config k=v`), like kafka-topics.

`describe` shows, per partition, leader, replicas, in-sync replicas and the earliest and latest
offsets (ListOffsets), which Kafka's own tool leaves out.
"""

from __future__ import annotations

import argparse
import base64
import time
from dataclasses import dataclass, field

from moldau.cli.common import (
    INT_MAX,
    REQUEST_TIMEOUT_S,
    Settings,
    admin_client,
    client_options,
    cluster_metadata,
    emit_json,
    emit_table,
    integer,
    parse_key_values,
    settings,
    wait,
)
from moldau.cli.main import CliError

CREATE_SETTLE_S = 10.0
ACTIONS = ("create", "list", "describe", "delete", "alter-config", "reassign", "alter")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "topics",
        parents=[client_options()],
        help="create, list, describe, delete topics (also kafka-topics' flags)",
        description="Manage topics. `moldau topics create NAME -p 3` or kafka-topics' "
        "`--create --topic NAME --partitions 3`.",
    )
    parser.add_argument("words", nargs="*", metavar="ACTION [NAME …] [key=value …]",
                        help=f"one of {', '.join(ACTIONS[:-1])}, then topic names (alter-config: NAME key=value …)")
    kafka = parser.add_argument_group("kafka-topics spelling")
    for flag in ("create", "list", "describe", "delete", "alter"):
        kafka.add_argument(f"--{flag}", dest="flag_actions", action="append_const", const=flag,
                           default=[], help=argparse.SUPPRESS)
    parser.add_argument("--topic", "-t", dest="topics", action="append", default=[], metavar="NAME",
                        help="topic name (repeatable)")
    parser.add_argument("--partitions", "-p", type=integer(-INT_MAX - 1, INT_MAX), metavar="N",
                        help="partition count")
    parser.add_argument("--replication-factor", "-r", type=integer(-32768, 32767), metavar="N",
                        help="replicas per partition")
    parser.add_argument("--config", "-c", dest="configs", action="append", default=[], metavar="KEY=VALUE",
                        help="topic config (repeatable; comma-joined also accepted)")
    parser.add_argument("--delete-config", dest="delete_configs", action="append", default=[], metavar="KEY",
                        help="with --alter/alter-config: reset a config to its default")
    parser.add_argument("--if-not-exists", action="store_true", help="create: no error if it exists")
    parser.add_argument("--if-exists", action="store_true", help="delete/alter/describe: no error if missing")
    parser.add_argument("--exclude-internal", action="store_true", help="list/describe: hide internal topics")
    parser.add_argument("--replicas", metavar="IDS",
                        help="reassign: the new replica list, e.g. 3,1,2 (first is the preferred leader)")
    parser.add_argument("--partition", dest="reassign_partitions", type=integer(0, INT_MAX), action="append", default=[],
                        metavar="N", help="reassign: only this partition (repeatable; default all)")
    parser.add_argument("--cancel", action="store_true", help="reassign: cancel the reassignment in progress")
    parser.add_argument("--wait", action="store_true", help="reassign: wait until the new replicas are in sync")
    parser.set_defaults(func=run)


@dataclass
class TopicsRequest:
    action: str
    names: list[str]
    configs: dict[str, str] = field(default_factory=dict)


def parse_request(args: argparse.Namespace) -> TopicsRequest:
    words = list(args.words)
    flags = list(dict.fromkeys(args.flag_actions))
    if len(flags) > 1:
        raise CliError(f"choose one of --{', --'.join(flags)}")
    if words and words[0] in ACTIONS:
        if flags:
            raise CliError(f"both '{words[0]}' and --{flags[0]} given; choose one")
        action, words = words[0], words[1:]
    elif flags:
        action = flags[0]
    elif words:
        raise CliError(f"unknown topics action {words[0]!r}; expected one of {', '.join(ACTIONS[:-1])}")
    else:
        action = "list"
    configs = parse_key_values(args.configs)
    if action == "alter-config":
        if not words:
            raise CliError("alter-config needs a topic name: moldau topics alter-config NAME key=value …")
        names = [words[0]] + list(args.topics)
        configs.update(parse_key_values(words[1:]))
    else:
        names = words + list(args.topics)
    return TopicsRequest(action, names, configs)


def run(args: argparse.Namespace) -> int:
    request = parse_request(args)
    current = settings(args)
    if request.action in ("create", "delete", "alter", "alter-config") and not request.names:
        raise CliError(f"{request.action} needs a topic name (NAME or --topic NAME)")
    admin = admin_client(current)
    handler = {
        "create": create,
        "list": list_topics,
        "describe": describe,
        "delete": delete,
        "alter": alter,
        "alter-config": alter,
        "reassign": reassign,
    }[request.action]
    return handler(admin, current, request, args)


def reassign(admin, current: Settings, request: TopicsRequest, args) -> int:
    """Move partitions' replicas (Kafka's AlterPartitionReassignments, as kafka-reassign-partitions
    --execute does): the new replicas catch up and join the ISR, then the old ones leave.
    With no topic name: list the reassignments in progress (kafka-reassign-partitions --verify)."""
    from moldau.cli import wire

    connection = wire.Cluster(current).bootstrap()
    if not request.names:
        return _show_reassignments(wire.reassignments(connection), current)
    if not args.cancel and not args.replicas:
        raise CliError("reassign needs --replicas IDS (e.g. --replicas 3,1,2) or --cancel")
    try:
        replicas = None if args.cancel else [int(x) for x in args.replicas.split(",") if x.strip()]
    except ValueError:
        raise CliError(f"--replicas takes broker ids separated by commas, got {args.replicas!r}") from None
    for name in request.names:
        metadata = cluster_metadata(admin, current, name).topics.get(name)
        if metadata is None or metadata.error is not None:
            raise CliError(f"topic {name!r} does not exist")
        partitions = args.reassign_partitions or sorted(metadata.partitions)
        refused = wire.reassign(connection, name, {p: replicas for p in partitions})
        if refused:
            partition, code, message = refused[0]
            raise CliError(f"{name}-{partition}: {code}: {message}" if partition >= 0 else f"{code}: {message}")
        print(f"{'Cancelled' if args.cancel else 'Started'} the reassignment of {len(partitions)} partition(s) of {name}")
        if args.wait and not args.cancel:
            _wait_reassigned(wire, connection, name)
    return 0


def _wait_reassigned(wire, connection, name: str, timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    while any(topic == name for topic, *_rest in wire.reassignments(connection)):
        if time.monotonic() > deadline:
            raise CliError(f"the reassignment of {name} did not complete within {timeout_s:.0f} s")
        time.sleep(0.5)
    print(f"The reassignment of {name} is complete")


def _show_reassignments(rows, current: Settings) -> int:
    if current.output == "json":
        emit_json([{"topic": t, "partition": p, "replicas": r, "adding": a, "removing": d} for t, p, r, a, d in rows])
    elif not rows:
        print("No reassignment in progress.")
    else:
        emit_table(["TOPIC", "PARTITION", "REPLICAS", "ADDING", "REMOVING"],
                   [[t, p, ",".join(map(str, r)), ",".join(map(str, a)), ",".join(map(str, d))] for t, p, r, a, d in rows])
    return 0


def create(admin, current: Settings, request: TopicsRequest, args) -> int:
    from confluent_kafka.admin import NewTopic

    if args.partitions is not None and args.partitions < 1:
        raise CliError(f"invalid partition count {args.partitions}: must be at least 1")
    if args.replication_factor is not None and args.replication_factor < 1:
        raise CliError(f"invalid replication factor {args.replication_factor}: must be at least 1")
    new_topics = [
        NewTopic(
            name,
            num_partitions=args.partitions if args.partitions is not None else -1,
            replication_factor=args.replication_factor if args.replication_factor is not None else -1,
            config=request.configs,
        )
        for name in request.names
    ]
    futures = admin.create_topics(new_topics, request_timeout=REQUEST_TIMEOUT_S)
    created = []
    for name in request.names:
        try:
            wait(futures[name], current, subject=name)
        except CliError:
            if args.if_not_exists and _exists(admin, current, name):
                continue
            raise
        created.append(name)
    wait_for_leaders(admin, created)
    if current.output == "json":
        emit_json({"created": created})
    else:
        for name in created:
            print(f"Created topic {name}.")
    return 0


def wait_for_leaders(admin, names: list[str], timeout_s: float = CREATE_SETTLE_S) -> None:
    """Return once every partition of the new topics has a leader in the metadata (or time is up).

    A broker answers CreateTopics once the controller has the topic; its metadata cache may lag a
    moment behind, so a script's next command (describe, produce) could see "unknown topic".
    """
    from confluent_kafka import KafkaException

    deadline = time.monotonic() + timeout_s
    pending = list(names)
    while pending and time.monotonic() < deadline:
        try:
            topics = admin.list_topics(timeout=max(0.5, deadline - time.monotonic())).topics
        except KafkaException:
            return
        pending = [
            name for name in pending
            if name not in topics or topics[name].error is not None or not topics[name].partitions
            or any(p.leader < 0 for p in topics[name].partitions.values())
        ]
        if pending:
            time.sleep(0.05)


def _exists(admin, current: Settings, name: str) -> bool:
    return name in cluster_metadata(admin, current).topics


def list_topics(admin, current: Settings, request: TopicsRequest, args) -> int:
    metadata = cluster_metadata(admin, current)
    topics = sorted(
        (topic for name, topic in metadata.topics.items() if not (args.exclude_internal and name.startswith("__"))),
        key=lambda topic: topic.topic,
    )
    if request.names:
        wanted = set(request.names)
        topics = [topic for topic in topics if topic.topic in wanted]
    if current.output == "json":
        emit_json([{"name": topic.topic, "partitions": len(topic.partitions)} for topic in topics])
    else:
        for topic in topics:
            print(topic.topic)
    return 0


def describe(admin, current: Settings, request: TopicsRequest, args) -> int:
    metadata = cluster_metadata(admin, current)
    names = request.names or sorted(
        name for name in metadata.topics if not (args.exclude_internal and name.startswith("__"))
    )
    missing = [name for name in names if name not in metadata.topics or _unknown(metadata.topics[name])]
    if missing and not args.if_exists:
        raise CliError(f"unknown topic '{missing[0]}'")
    names = [name for name in names if name not in missing]
    offsets = _offsets(admin, current, metadata, names)
    configs = _topic_configs(admin, current, names)
    ids = _topic_ids(admin, names)
    described = [_describe_one(metadata.topics[name], ids.get(name), offsets, configs.get(name, {}))
                 for name in names]
    if current.output == "json":
        emit_json(described)
        return 0
    for index, topic in enumerate(described):
        if index:
            print()
        config_text = ",".join(f"{key}={value}" for key, value in topic["configs"].items())
        topic_id = f"TopicId: {topic['topic_id']}\t" if topic["topic_id"] else ""
        print(f"Topic: {topic['name']}\t{topic_id}PartitionCount: {topic['partition_count']}\t"
              f"ReplicationFactor: {topic['replication_factor']}\tConfigs: {config_text}")
        emit_table(
            ("PARTITION", "LEADER", "REPLICAS", "ISR", "EARLIEST", "LATEST"),
            [
                (p["partition"], p["leader"], p["replicas"], p["isr"], p["earliest_offset"], p["latest_offset"])
                for p in topic["partitions"]
            ],
        )
    return 0


def _unknown(topic) -> bool:
    return topic.error is not None and topic.error.name() in ("UNKNOWN_TOPIC_OR_PART", "_UNKNOWN_TOPIC")


def _describe_one(topic, topic_id: str | None, offsets: dict, configs: dict) -> dict:
    partitions = []
    for partition_id in sorted(topic.partitions):
        partition = topic.partitions[partition_id]
        earliest, latest = offsets.get((topic.topic, partition_id), (None, None))
        partitions.append({
            "partition": partition_id,
            "leader": partition.leader if partition.leader >= 0 else None,
            "replicas": list(partition.replicas),
            "isr": list(partition.isrs),
            "earliest_offset": earliest,
            "latest_offset": latest,
        })
    replication = max((len(p["replicas"]) for p in partitions), default=0)
    return {
        "name": topic.topic,
        "topic_id": topic_id,
        "partition_count": len(partitions),
        "replication_factor": replication,
        "configs": configs,
        "partitions": partitions,
    }


def _topic_ids(admin, names: list[str]) -> dict[str, str]:
    """Topic IDs as Kafka prints them (URL-safe base64, no padding); missing when not known."""
    from confluent_kafka import KafkaException, TopicCollection

    if not names:
        return {}
    ids = {}
    for name, future in admin.describe_topics(TopicCollection(names), request_timeout=REQUEST_TIMEOUT_S).items():
        try:
            uuid = future.result(REQUEST_TIMEOUT_S).topic_id
        except KafkaException:
            continue
        if uuid is None:
            continue
        raw = ((uuid.get_most_significant_bits() & (2**64 - 1)) << 64) | (uuid.get_least_significant_bits() & (2**64 - 1))
        if raw:
            ids[name] = base64.urlsafe_b64encode(raw.to_bytes(16, "big")).decode().rstrip("=")
    return ids


def _offsets(admin, current: Settings, metadata, names: list[str]) -> dict:
    """(topic, partition) -> (earliest, latest) via ListOffsets; unknown on error."""
    from confluent_kafka import KafkaException, TopicPartition
    from confluent_kafka.admin import OffsetSpec

    result: dict = {}
    partitions = [TopicPartition(name, p) for name in names for p in sorted(metadata.topics[name].partitions)]
    if not partitions:
        return result
    found: dict[str, dict] = {}
    for label, spec in (("earliest", OffsetSpec.earliest()), ("latest", OffsetSpec.latest())):
        futures = admin.list_offsets({tp: spec for tp in partitions}, request_timeout=REQUEST_TIMEOUT_S)
        found[label] = {}
        for tp, future in futures.items():
            try:
                found[label][(tp.topic, tp.partition)] = future.result(REQUEST_TIMEOUT_S).offset
            except KafkaException:
                continue
    for tp in partitions:
        key = (tp.topic, tp.partition)
        result[key] = (found["earliest"].get(key), found["latest"].get(key))
    return result


def _topic_configs(admin, current: Settings, names: list[str]) -> dict[str, dict[str, str]]:
    """Per topic, the configs that differ from the broker's defaults (what kafka-topics shows)."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import ConfigResource, ConfigSource

    if not names:
        return {}
    resources = [ConfigResource("topic", name) for name in names]
    result: dict[str, dict[str, str]] = {}
    for resource, future in admin.describe_configs(resources, request_timeout=REQUEST_TIMEOUT_S).items():
        try:
            entries = future.result(REQUEST_TIMEOUT_S)
        except KafkaException:
            continue
        result[resource.name] = {
            key: entry.value
            for key, entry in sorted(entries.items())
            if entry.source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value and not entry.is_sensitive
        }
    return result


def delete(admin, current: Settings, request: TopicsRequest, args) -> int:
    metadata = cluster_metadata(admin, current)
    names = []
    for name in request.names:
        if name not in metadata.topics or _unknown(metadata.topics[name]):
            if args.if_exists:
                continue
            raise CliError(f"unknown topic '{name}'")
        names.append(name)
    deleted = []
    if names:
        futures = admin.delete_topics(names, request_timeout=REQUEST_TIMEOUT_S)
        for name in names:
            wait(futures[name], current, subject=name)
            deleted.append(name)
    if current.output == "json":
        emit_json({"deleted": deleted})
    else:
        for name in deleted:
            print(f"Deleted topic {name}.")
    return 0


def alter(admin, current: Settings, request: TopicsRequest, args) -> int:
    """Partition count (Kafka's `--alter --partitions N`) and/or configs (alter-config)."""
    from confluent_kafka.admin import NewPartitions

    if args.partitions is None and not request.configs and not args.delete_configs:
        raise CliError("nothing to alter: give --partitions N, key=value configs or --delete-config KEY")
    metadata = cluster_metadata(admin, current)
    for name in request.names:
        if name not in metadata.topics or _unknown(metadata.topics[name]):
            if args.if_exists:
                continue
            raise CliError(f"unknown topic '{name}'")
        if args.partitions is not None:
            current_count = len(metadata.topics[name].partitions)
            if args.partitions <= current_count:
                raise CliError(
                    f"invalid partition count for '{name}': {args.partitions} (it has {current_count}; "
                    "partitions can only be added)"
                )
            futures = admin.create_partitions([NewPartitions(name, args.partitions)],
                                              request_timeout=REQUEST_TIMEOUT_S)
            wait(futures[name], current, subject=name)
        if request.configs or args.delete_configs:
            alter_configs(admin, current, "topic", name, request.configs, args.delete_configs)
    summary = {"altered": request.names, "partitions": args.partitions, "configs": request.configs,
               "deleted_configs": list(args.delete_configs)}
    if current.output == "json":
        emit_json(summary)
    else:
        for name in request.names:
            print(f"Altered topic {name}.")
    return 0


def alter_configs(admin, current: Settings, resource_type: str, name: str,
                  set_configs: dict[str, str], delete_keys: list[str]) -> None:
    """IncrementalAlterConfigs: SET each key=value, DELETE each key (back to its default)."""
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource

    entries = [ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)
               for key, value in set_configs.items()]
    entries += [ConfigEntry(key, None, incremental_operation=AlterConfigOpType.DELETE) for key in delete_keys]
    resource = ConfigResource(resource_type, name, incremental_configs=entries)
    futures = admin.incremental_alter_configs([resource], request_timeout=REQUEST_TIMEOUT_S)
    for future in futures.values():
        wait(future, current, subject=name)
