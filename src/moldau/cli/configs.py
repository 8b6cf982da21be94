"""`moldau configs describe|alter`: topic and broker configs (kafka-configs).

Theory of operation. The entity is a topic (`--topic T`, or Kafka's `--entity-type topics
--entity-name T`) or a broker (`--broker N`, `--entity-type brokers --entity-name N`).
`describe` (DescribeConfigs) shows the configs set on the entity — what kafka-configs shows —
or every config with its source using `--all`. `alter` (IncrementalAlterConfigs) sets
`key=value` pairs (positional, or Kafka's `--add-config k=v,k2=v2`) and removes keys with
`--delete-config k`, returning them to their defaults.
"""

from __future__ import annotations

import argparse

from moldau.cli.common import (
    REQUEST_TIMEOUT_S,
    Settings,
    admin_client,
    client_options,
    cluster_metadata,
    emit_json,
    emit_table,
    parse_key_values,
    settings,
    wait,
)
from moldau.cli.main import CliError
from moldau.cli.topics import alter_configs

ACTIONS = ("describe", "alter")
ENTITY_TYPES = {"topics": "topic", "topic": "topic", "brokers": "broker", "broker": "broker"}


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "configs",
        parents=[client_options()],
        help="describe and alter topic and broker configs (also kafka-configs' flags)",
        description="Describe or alter configs: `moldau configs describe --topic T`, "
        "`moldau configs alter --topic T retention.ms=1000`.",
    )
    parser.add_argument("words", nargs="*", metavar="ACTION [key=value …]", help="describe or alter, then configs")
    for flag in ACTIONS:
        parser.add_argument(f"--{flag}", dest="flag_actions", action="append_const", const=flag, default=[],
                            help=argparse.SUPPRESS)
    parser.add_argument("--topic", "-t", metavar="TOPIC", help="the topic")
    parser.add_argument("--broker", metavar="ID", help="the broker (node id)")
    parser.add_argument("--entity-type", choices=sorted(ENTITY_TYPES), help="Kafka's spelling: topics or brokers")
    parser.add_argument("--entity-name", metavar="NAME", help="Kafka's spelling: topic name or broker id")
    parser.add_argument("--add-config", dest="add_configs", action="append", default=[], metavar="K=V[,K=V…]",
                        help="alter: set these configs (kafka-configs' spelling; repeatable)")
    parser.add_argument("--delete-config", dest="delete_configs", action="append", default=[], metavar="KEY[,KEY…]",
                        help="alter: remove these configs, back to their default (repeatable)")
    parser.add_argument("--all", action="store_true", help="describe: every config, with its source")
    parser.set_defaults(func=run)


def parse_entity(args: argparse.Namespace) -> tuple[str, str]:
    """(resource type "topic"/"broker", name) from --topic/--broker or --entity-type/--entity-name."""
    chosen = [(kind, name) for kind, name in (("topic", args.topic), ("broker", args.broker)) if name is not None]
    if args.entity_type:
        if not args.entity_name:
            raise CliError("--entity-type needs --entity-name")
        chosen.append((ENTITY_TYPES[args.entity_type], args.entity_name))
    elif args.entity_name:
        raise CliError("--entity-name needs --entity-type topics|brokers")
    if len(chosen) != 1:
        raise CliError("give exactly one of --topic T, --broker N, or --entity-type/--entity-name")
    kind, name = chosen[0]
    if kind == "broker" and not name.isdigit():
        raise CliError(f"bad broker id {name!r}: expected a node id number")
    return kind, name


def run(args: argparse.Namespace) -> int:
    words, flags = list(args.words), list(dict.fromkeys(args.flag_actions))
    if words and words[0] in ACTIONS:
        if flags:
            raise CliError(f"both '{words[0]}' and --{flags[0]} given; choose one")
        action, words = words[0], words[1:]
    elif len(flags) == 1:
        action = flags[0]
    elif len(flags) > 1:
        raise CliError("choose one of --describe, --alter")
    else:
        raise CliError("configs needs an action: describe or alter")
    kind, name = parse_entity(args)
    current = settings(args)
    admin = admin_client(current)
    if kind == "topic":
        described = cluster_metadata(admin, current).topics.get(name)
        if described is None or (described.error is not None and not described.partitions):
            raise CliError(f"unknown topic '{name}'")
    if action == "describe":
        if words:
            raise CliError(f"describe takes no key=value arguments (got {words[0]!r})")
        return describe(admin, current, kind, name, args.all)
    set_configs = parse_key_values(args.add_configs + words)
    delete_keys = [key.strip() for item in args.delete_configs for key in item.split(",") if key.strip()]
    if not set_configs and not delete_keys:
        raise CliError("alter needs key=value configs (or --add-config) and/or --delete-config KEY")
    alter_configs(admin, current, kind, name, set_configs, delete_keys)
    if current.output == "json":
        emit_json({"entity_type": kind, "entity_name": name, "set": set_configs, "deleted": delete_keys})
    else:
        print(f"Completed updating config for {kind} {name}.")
    return 0


def _source(entry) -> str:
    source = entry.source
    name = getattr(source, "name", None)
    if name is None:
        from confluent_kafka.admin import ConfigSource

        try:
            name = ConfigSource(source).name
        except ValueError:
            name = str(source)
    return name


def describe(admin, current: Settings, kind: str, name: str, show_all: bool) -> int:
    from confluent_kafka.admin import ConfigResource

    resource = ConfigResource(kind, name)
    future = admin.describe_configs([resource], request_timeout=REQUEST_TIMEOUT_S)[resource]
    entries = wait(future, current, subject=name)
    dynamic = ("DYNAMIC_TOPIC_CONFIG", "DYNAMIC_BROKER_CONFIG", "DYNAMIC_DEFAULT_BROKER_CONFIG")
    rows = [
        {
            "name": key,
            "value": None if entry.is_sensitive else entry.value,
            "source": _source(entry),
            "read_only": bool(entry.is_read_only),
            "sensitive": bool(entry.is_sensitive),
        }
        for key, entry in sorted(entries.items())
        if show_all or _source(entry) in dynamic
    ]
    if current.output == "json":
        emit_json({"entity_type": kind, "entity_name": name, "configs": rows})
        return 0
    label = "topic" if kind == "topic" else "broker"
    print(f"{'All' if show_all else 'Dynamic'} configs for {label} {name} are:")
    emit_table(("NAME", "VALUE", "SOURCE"), [(r["name"], r["value"], r["source"]) for r in rows])
    return 0
