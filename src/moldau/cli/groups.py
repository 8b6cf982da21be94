"""`moldau groups`: list, describe, reset-offsets, delete consumer groups (kafka-consumer-groups).

Theory of operation. Both spellings parse to an action and a group:

    moldau groups describe G                 moldau groups --describe --group G
    moldau groups reset-offsets G --topic T --to-earliest
    moldau groups --reset-offsets --group G --topic T --to-earliest --execute

`describe` joins three answers: the group's members and their assignment (DescribeGroups, or
ConsumerGroupDescribe for a KIP-848 group: then also each member's epoch and target assignment), its
committed offsets (OffsetFetch) and each partition's log end offset (ListOffsets); lag is
log end − committed. `reset-offsets` computes the new offset of every partition of the given
topics (earliest, latest, N clamped into [earliest, latest], the first offset at a time, or a
shift), prints them, and commits them with OffsetCommit unless it is a dry run. Like Kafka, it
refuses while the group has members. Kafka's spelling is a dry run unless `--execute` is given;
moldau's spelling executes unless `--dry-run` is given.
"""

from __future__ import annotations

import argparse
from datetime import datetime, timezone

from moldau.cli.common import (
    LONG_MAX,
    REQUEST_TIMEOUT_S,
    Settings,
    admin_client,
    client_options,
    cluster_metadata,
    committed_offsets,
    emit_json,
    emit_table,
    integer,
    settings,
    wait,
)
from moldau.cli.main import CliError

ACTIONS = ("list", "describe", "reset-offsets", "delete")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "groups",
        parents=[client_options()],
        help="list, describe, reset offsets of, delete consumer groups (also kafka-consumer-groups' flags)",
        description="Manage consumer groups.",
    )
    parser.add_argument("words", nargs="*", metavar="ACTION [GROUP]", help=f"one of {', '.join(ACTIONS)}, then a group")
    for flag in ACTIONS:
        parser.add_argument(f"--{flag}", dest="flag_actions", action="append_const", const=flag, default=[],
                            help=argparse.SUPPRESS)
    parser.add_argument("--group", "-g", dest="groups", action="append", default=[], metavar="GROUP",
                        help="the group to describe, reset or delete (repeatable; same as GROUP after the action)")
    parser.add_argument("--topic", "-t", dest="topics", action="append", default=[], metavar="TOPIC[:P,P…]",
                        help="reset-offsets: topic (optionally with partitions), repeatable")
    parser.add_argument("--all-topics", action="store_true", help="reset-offsets: every topic the group committed")
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--to-earliest", action="store_true", help="reset-offsets: to each partition's first offset")
    target.add_argument("--to-latest", action="store_true", help="reset-offsets: to each partition's end")
    target.add_argument("--to-offset", type=integer(0, LONG_MAX), metavar="N", help="reset-offsets: to offset N")
    target.add_argument("--to-datetime", metavar="YYYY-MM-DDTHH:mm:SS[.sss][Z|±hh:mm]",
                        help="reset-offsets: to the first offset at or after this time")
    target.add_argument("--shift-by", type=integer(-LONG_MAX, LONG_MAX), metavar="N",
                        help="reset-offsets: move each committed offset by N (negative: back)")
    run_mode = parser.add_mutually_exclusive_group()
    run_mode.add_argument("--execute", action="store_true", help="reset-offsets: apply (Kafka's spelling)")
    run_mode.add_argument("--dry-run", action="store_true", help="reset-offsets: only show the new offsets")
    parser.set_defaults(func=run)


def parse_action(args: argparse.Namespace) -> tuple[str, list[str], bool]:
    """(action, groups, kafka_spelling)."""
    words, flags = list(args.words), list(dict.fromkeys(args.flag_actions))
    if len(flags) > 1:
        raise CliError(f"choose one of --{', --'.join(flags)}")
    if words and words[0] in ACTIONS:
        if flags:
            raise CliError(f"both '{words[0]}' and --{flags[0]} given; choose one")
        return words[0], words[1:] + args.groups, False
    if flags:
        return flags[0], words + args.groups, True
    if words:
        raise CliError(f"unknown groups action {words[0]!r}; expected one of {', '.join(ACTIONS)}")
    return "list", args.groups, False


def run(args: argparse.Namespace) -> int:
    action, groups, kafka_spelling = parse_action(args)
    current = settings(args)
    if action != "list" and not groups:
        raise CliError(f"{action} needs a group (GROUP or --group GROUP)")
    admin = admin_client(current)
    if action == "list":
        return list_groups(admin, current)
    if action == "describe":
        return describe(admin, current, groups)
    if action == "delete":
        return delete(admin, current, groups)
    execute = args.execute or (not kafka_spelling and not args.dry_run)
    return reset_offsets(admin, current, groups, args, execute)


def list_groups(admin, current: Settings) -> int:
    result = wait(admin.list_consumer_groups(request_timeout=REQUEST_TIMEOUT_S), current)
    listed = sorted(
        ({"group": g.group_id, "state": _state(g.state), "type": _type(g)} for g in result.valid),
        key=lambda row: row["group"]
    )
    if current.output == "json":
        emit_json(listed)
    else:
        for row in listed:
            print(row["group"])
    return 0


def _state(state) -> str:
    return state.name if state is not None and hasattr(state, "name") else str(state or "UNKNOWN")


def _type(description) -> str:
    """"consumer" for a KIP-848 group, "classic" otherwise (librdkafka's ConsumerGroupType)."""
    kind = getattr(description, "type", None)
    name = getattr(kind, "name", str(kind or "")).lower()
    return "consumer" if name == "consumer" else "classic"


def _epochs(description, group: str, current: Settings) -> dict | None:
    from moldau.cli.group_epochs import member_epochs

    coordinator = description.coordinator
    if coordinator is None:
        return None
    return member_epochs(coordinator.host, coordinator.port, group, current.client_config)


def _partitions(pairs) -> str:
    by_topic: dict[str, list[int]] = {}
    for topic, partition in pairs:
        by_topic.setdefault(topic, []).append(partition)
    return ",".join(f"{t}:{'/'.join(str(p) for p in sorted(ps))}" for t, ps in sorted(by_topic.items())) or "-"


def describe(admin, current: Settings, groups: list[str]) -> int:
    described = [describe_one(admin, current, group) for group in groups]
    if current.output == "json":
        emit_json(described)
        return 0
    for index, group in enumerate(described):
        if index:
            print()
        members = len(group["members"])
        epochs = f", group epoch {group['group_epoch']}" if group.get("group_epoch") is not None else ""
        print(f"Consumer group '{group['group']}': protocol {group['type']}, state {group['state']}, "
              f"{members} member(s){epochs}, assignor {group['protocol'] or '-'}")
        if group["type"] == "consumer":
            emit_table(("CONSUMER-ID", "CLIENT-ID", "MEMBER-EPOCH", "ASSIGNMENT", "TARGET-ASSIGNMENT"), [
                (m["member_id"], m["client_id"], m.get("member_epoch", "-"), _partitions(m["assignment"]),
                 _partitions(m.get("target_assignment", []))) for m in group["members"]])
        emit_table(
            ("GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "CONSUMER-ID", "HOST", "CLIENT-ID"),
            [
                (group["group"], p["topic"], p["partition"], p["committed_offset"], p["log_end_offset"], p["lag"],
                 p["member_id"], p["host"], p["client_id"])
                for p in group["partitions"]
            ],
        )
    return 0


def describe_one(admin, current: Settings, group: str) -> dict:
    description = wait(admin.describe_consumer_groups([group], request_timeout=REQUEST_TIMEOUT_S)[group],
                       current, subject=group)
    committed = committed_offsets(admin, current, group)
    state = _state(description.state)
    if state in ("DEAD", "UNKNOWN") and not description.members and not committed:
        raise CliError(f"unknown group '{group}'")
    owners = {}
    for member in description.members:
        for tp in member.assignment.topic_partitions if member.assignment else []:
            owners[(tp.topic, tp.partition)] = member
    keys = sorted(set(committed) | set(owners))
    log_end = latest_offsets(admin, keys)
    partitions = []
    for key in keys:
        member = owners.get(key)
        offset, end = committed.get(key), log_end.get(key)
        partitions.append({
            "topic": key[0],
            "partition": key[1],
            "committed_offset": offset,
            "log_end_offset": end,
            "lag": end - offset if offset is not None and end is not None else None,
            "member_id": member.member_id if member else None,
            "host": member.host if member else None,
            "client_id": member.client_id if member else None,
        })
    kind = _type(description)
    epochs = _epochs(description, group, current) if kind == "consumer" else None
    if epochs and state == "UNKNOWN":
        state = epochs[""]["state"].upper()
    return {
        "group": group,
        "type": kind,
        "state": state,
        "group_epoch": epochs[""]["group_epoch"] if epochs else None,
        "protocol": description.partition_assignor or None,
        "coordinator": description.coordinator.id if description.coordinator else None,
        "members": [
            {
                "member_id": m.member_id,
                "client_id": m.client_id,
                "host": m.host,
                "assignment": sorted(
                    [tp.topic, tp.partition] for tp in (m.assignment.topic_partitions if m.assignment else [])
                ),
                **({"member_epoch": epochs[m.member_id]["member_epoch"],
                    "target_assignment": epochs[m.member_id]["target"]} if epochs and m.member_id in epochs else {}),
            }
            for m in sorted(description.members, key=lambda m: m.member_id)
        ],
        "partitions": partitions,
    }


def _list_offsets(admin, keys, spec) -> dict:
    from confluent_kafka import KafkaException, TopicPartition

    if not keys:
        return {}
    futures = admin.list_offsets({TopicPartition(t, p): spec for t, p in keys}, request_timeout=REQUEST_TIMEOUT_S)
    found = {}
    for tp, future in futures.items():
        try:
            found[(tp.topic, tp.partition)] = future.result(REQUEST_TIMEOUT_S).offset
        except KafkaException:
            continue
    return found


def latest_offsets(admin, keys) -> dict:
    from confluent_kafka.admin import OffsetSpec

    return _list_offsets(admin, keys, OffsetSpec.latest())


def earliest_offsets(admin, keys) -> dict:
    from confluent_kafka.admin import OffsetSpec

    return _list_offsets(admin, keys, OffsetSpec.earliest())


def delete(admin, current: Settings, groups: list[str]) -> int:
    futures = admin.delete_consumer_groups(groups, request_timeout=REQUEST_TIMEOUT_S)
    for group in groups:
        wait(futures[group], current, subject=group)
    if current.output == "json":
        emit_json({"deleted": groups})
    else:
        for group in groups:
            print(f"Deleted consumer group '{group}'.")
    return 0


def parse_datetime(text: str) -> int:
    """Kafka's --to-datetime formats (ISO 8601, local time when no zone) → epoch milliseconds."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise CliError(f"bad --to-datetime {text!r}: expected YYYY-MM-DDTHH:mm:SS[.sss][Z|±hh:mm]") from None
    if moment.tzinfo is None:
        moment = moment.astimezone()  # local time, as kafka-consumer-groups reads it
    return int(moment.astimezone(timezone.utc).timestamp() * 1000)


def reset_partitions(admin, current: Settings, group: str, args: argparse.Namespace) -> list[tuple[str, int]]:
    """The (topic, partition) pairs to reset: from --topic T[:P,…] or --all-topics."""
    if args.all_topics:
        return sorted(committed_offsets(admin, current, group))
    if not args.topics:
        raise CliError("reset-offsets needs --topic TOPIC (or --all-topics)")
    metadata = cluster_metadata(admin, current)
    keys = []
    for spec in args.topics:
        topic, _, partition_text = spec.partition(":")
        described = metadata.topics.get(topic)
        if described is None or (described.error is not None and not described.partitions):
            raise CliError(f"unknown topic '{topic}'")
        if partition_text:
            try:
                wanted = [int(p) for p in partition_text.split(",") if p.strip()]
            except ValueError:
                raise CliError(f"bad --topic {spec!r}: expected TOPIC:P[,P…]") from None
            missing = [p for p in wanted if p not in described.partitions]
            if missing:
                raise CliError(f"topic '{topic}' has no partition {missing[0]}")
        else:
            wanted = sorted(described.partitions)
        keys += [(topic, p) for p in wanted]
    return sorted(set(keys))


def new_offsets(admin, current: Settings, group: str, keys, args: argparse.Namespace) -> dict:
    from confluent_kafka.admin import OffsetSpec

    earliest, latest = earliest_offsets(admin, keys), latest_offsets(admin, keys)
    missing = [key for key in keys if key not in earliest or key not in latest]
    if missing:
        raise CliError(f"cannot read offsets of {missing[0][0]}-{missing[0][1]}")
    if args.to_earliest:
        return dict(earliest)
    if args.to_latest:
        return dict(latest)
    if args.to_offset is not None:
        return {key: min(max(args.to_offset, earliest[key]), latest[key]) for key in keys}
    if args.to_datetime is not None:
        at = _list_offsets(admin, keys, OffsetSpec.for_timestamp(parse_datetime(args.to_datetime)))
        return {key: at[key] if at.get(key, -1) >= 0 else latest[key] for key in keys}
    if args.shift_by is not None:
        committed = committed_offsets(admin, current, group)
        return {key: min(max(committed.get(key, latest[key]) + args.shift_by, earliest[key]), latest[key])
                for key in keys}
    raise CliError("reset-offsets needs one of --to-earliest, --to-latest, --to-offset N, --to-datetime T, --shift-by N")


def reset_offsets(admin, current: Settings, groups: list[str], args: argparse.Namespace, execute: bool) -> int:
    from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition

    plans = []
    for group in groups:
        description = wait(admin.describe_consumer_groups([group], request_timeout=REQUEST_TIMEOUT_S)[group],
                           current, subject=group)
        if description.members:
            raise CliError(f"group '{group}' has {len(description.members)} active member(s); "
                           "stop its consumers before resetting offsets")
        keys = reset_partitions(admin, current, group, args)
        offsets = new_offsets(admin, current, group, keys, args)
        if execute and offsets:
            request = ConsumerGroupTopicPartitions(group, [TopicPartition(t, p, o) for (t, p), o in sorted(offsets.items())])
            future = admin.alter_consumer_group_offsets([request], request_timeout=REQUEST_TIMEOUT_S)[group]
            wait(future, current, subject=group)
        plans.append((group, offsets))
    if current.output == "json":
        emit_json([
            {"group": group, "executed": execute,
             "offsets": [{"topic": t, "partition": p, "offset": o} for (t, p), o in sorted(offsets.items())]}
            for group, offsets in plans
        ])
        return 0
    if not execute:
        print("Dry run: no offsets were changed (add --execute to apply).")
    emit_table(("GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"),
               [(group, t, p, o) for group, offsets in plans for (t, p), o in sorted(offsets.items())])
    return 0
