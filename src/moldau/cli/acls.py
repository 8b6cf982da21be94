"""`moldau acls list|add|remove`: ACLs, with kafka-acls' flags (CreateAcls/DescribeAcls/DeleteAcls).

Theory of operation. A resource is `--topic T`, `--group G`, `--transactional-id T` or
`--cluster`, with `--resource-pattern-type literal|prefixed` (list/remove also `any|match`).
`add` makes one ACL per (principal, host, operation): `--allow-principal`/`--deny-principal`
(repeatable), `--allow-host`/`--deny-host` (default *), `--operation` (repeatable; Kafka's
names, any case). `--producer` and `--consumer` add Kafka's conveniences (WRITE, DESCRIBE,
CREATE on the topic; READ, DESCRIBE on topic and group). `list` shows a table (or `-o json`,
one object per ACL); `remove` deletes what matches its filter and prints what it removed.
Kafka's own flags `--add/--list/--remove` work too. Works against Apache Kafka as well.
"""

from __future__ import annotations

import argparse

from moldau.cli.common import admin_client, client_options, emit_json, emit_table, settings, wait
from moldau.cli.main import CliError

ACTIONS = ("list", "add", "remove")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "acls", parents=[client_options()], help="list, add and remove ACLs (also kafka-acls' flags)",
        description="`moldau acls add --allow-principal User:alice --operation read --topic orders`, "
                    "`moldau acls list`, `moldau acls remove --topic orders`.")
    parser.add_argument("action", nargs="?", choices=ACTIONS, help="list (default), add or remove")
    for flag in ACTIONS:
        parser.add_argument(f"--{flag}", dest="flag_actions", action="append_const", const=flag, default=[],
                            help=argparse.SUPPRESS)
    parser.add_argument("--topic", action="append", default=[], metavar="TOPIC", help="a topic resource (repeatable)")
    parser.add_argument("--group", action="append", default=[], metavar="GROUP", help="a group resource (repeatable)")
    parser.add_argument("--transactional-id", action="append", default=[], metavar="ID",
                        help="a transactional id resource (repeatable)")
    parser.add_argument("--cluster", action="store_true", help="the cluster resource")
    parser.add_argument("--resource-pattern-type", default=None,
                        choices=("literal", "prefixed", "any", "match", "LITERAL", "PREFIXED", "ANY", "MATCH"),
                        help="literal (default), prefixed; list/remove also any, match")
    parser.add_argument("--allow-principal", action="append", default=[], metavar="User:NAME",
                        help="add/remove: the principal allowed (repeatable)")
    parser.add_argument("--deny-principal", action="append", default=[], metavar="User:NAME",
                        help="add/remove: the principal denied (repeatable)")
    parser.add_argument("--principal", action="append", default=[], metavar="User:NAME", help="list/remove: filter")
    parser.add_argument("--allow-host", action="append", default=[], metavar="HOST",
                        help="add/remove: the host allowed from (default: any)")
    parser.add_argument("--deny-host", action="append", default=[], metavar="HOST",
                        help="add/remove: the host denied from (default: any)")
    parser.add_argument("--operation", action="append", default=[], metavar="OP",
                        help="Read, Write, Create, Delete, Alter, Describe, ClusterAction, DescribeConfigs, "
                             "AlterConfigs, IdempotentWrite, All")
    parser.add_argument("--producer", action="store_true", help="add/remove: what a producer needs")
    parser.add_argument("--consumer", action="store_true", help="add/remove: what a consumer needs (with --group)")
    parser.add_argument("--force", action="store_true", help="accepted for kafka-acls compatibility")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    flags = list(dict.fromkeys(args.flag_actions))
    if args.action and flags and flags != [args.action]:
        raise CliError(f"both '{args.action}' and --{flags[0]} given; choose one")
    if len(flags) > 1:
        raise CliError("give one of --list, --add, --remove")
    action = args.action or (flags[0] if flags else "list")
    current = settings(args)
    admin = admin_client(current)
    if action == "add":
        return _add(admin, args, current)
    if action == "remove":
        return _remove(admin, args, current)
    return _list(admin, args, current)


def _acl_types():
    from confluent_kafka.admin import AclOperation, AclPermissionType, ResourcePatternType, ResourceType

    return AclOperation, AclPermissionType, ResourcePatternType, ResourceType


def _resources(args, for_filter: bool) -> list[tuple]:
    _op, _perm, _pattern, ResourceType = _acl_types()
    resources = [(ResourceType.TOPIC, t) for t in args.topic] + [(ResourceType.GROUP, g) for g in args.group]
    resources += [(ResourceType.TRANSACTIONAL_ID, t) for t in args.transactional_id]
    if args.cluster:
        resources.append((ResourceType.BROKER, "kafka-cluster"))
    if not resources and for_filter:
        resources.append((ResourceType.ANY, None))
    if not resources:
        raise CliError("name a resource: --topic T, --group G, --transactional-id T or --cluster")
    return resources


def _pattern(args, for_filter: bool):
    _op, _perm, ResourcePatternType, _rt = _acl_types()
    name = (args.resource_pattern_type or ("any" if for_filter else "literal")).upper()
    if not for_filter and name not in ("LITERAL", "PREFIXED"):
        raise CliError("add: --resource-pattern-type must be literal or prefixed")
    return getattr(ResourcePatternType, name)


def _operation(name: str):
    AclOperation = _acl_types()[0]
    key = name.replace("-", "").replace("_", "").upper()
    for member in AclOperation:
        if member.name.replace("_", "") == key and member.name not in ("UNKNOWN",):
            return member
    raise CliError(f"unknown operation {name!r}: expected Read, Write, Create, Delete, Alter, Describe, "
                   "ClusterAction, DescribeConfigs, AlterConfigs, IdempotentWrite or All")


def _wanted(args, resources) -> list[tuple]:
    """(resource type, name, operation) triples of add/remove, --producer/--consumer expanded."""
    AclOperation, _perm, _pattern, ResourceType = _acl_types()
    triples = [(rt, name, _operation(op)) for rt, name in resources for op in args.operation]
    if args.producer:
        triples += [(ResourceType.TOPIC, t, op) for t in args.topic
                    for op in (AclOperation.WRITE, AclOperation.DESCRIBE, AclOperation.CREATE)]
    if args.consumer:
        if not args.group:
            raise CliError("--consumer needs --group")
        triples += [(ResourceType.TOPIC, t, op) for t in args.topic for op in (AclOperation.READ, AclOperation.DESCRIBE)]
        triples += [(ResourceType.GROUP, g, AclOperation.READ) for g in args.group]
    return triples


def _add(admin, args, current) -> int:
    from confluent_kafka.admin import AclBinding

    _op, AclPermissionType, _pattern_type, _rt = _acl_types()
    entries = [(p, h or "*", AclPermissionType.ALLOW) for p in args.allow_principal for h in (args.allow_host or ["*"])]
    entries += [(p, h or "*", AclPermissionType.DENY) for p in args.deny_principal for h in (args.deny_host or ["*"])]
    if not entries:
        raise CliError("add: give --allow-principal or --deny-principal")
    triples = _wanted(args, _resources(args, False))
    if not triples:
        raise CliError("add: give --operation (or --producer / --consumer)")
    pattern = _pattern(args, False)
    bindings = [AclBinding(rt, name, pattern, principal, host, op, permission)
                for rt, name, op in triples for principal, host, permission in entries]
    for binding, future in admin.create_acls(bindings).items():
        wait(future, current, subject=f"ACL for {binding.principal} on {binding.name}")
    print(f"added {len(bindings)} ACL(s)")
    return 0


def _filters(args) -> list:
    from confluent_kafka.admin import AclBindingFilter

    AclOperation, AclPermissionType, _p, _rt = _acl_types()
    operations = [_operation(op) for op in args.operation] or [AclOperation.ANY]
    principals = args.principal + args.allow_principal + args.deny_principal or [None]
    return [AclBindingFilter(rt, name, _pattern(args, True), principal, None, op, AclPermissionType.ANY)
            for rt, name in _resources(args, True) for op in operations for principal in principals]


def _rows(bindings) -> list[dict]:
    return sorted(({"resource_type": b.restype.name, "resource_name": b.name, "pattern_type": b.resource_pattern_type.name,
                    "principal": b.principal, "host": b.host, "operation": b.operation.name,
                    "permission": b.permission_type.name} for b in bindings), key=lambda r: tuple(r.values()))


def _emit(rows: list[dict], current) -> None:
    if current.output == "json":
        emit_json(rows)
        return
    emit_table(["RESOURCE", "NAME", "PATTERN", "PRINCIPAL", "HOST", "OPERATION", "PERMISSION"],
               [[r["resource_type"], r["resource_name"], r["pattern_type"], r["principal"], r["host"],
                 r["operation"], r["permission"]] for r in rows])


def _list(admin, args, current) -> int:
    found = []
    for acl_filter in _filters(args):
        found.extend(wait(admin.describe_acls(acl_filter), current, subject="ACLs"))
    _emit(_rows(found), current)
    return 0


def _remove(admin, args, current) -> int:
    removed = []
    for _filter, future in admin.delete_acls(_filters(args)).items():
        removed.extend(wait(future, current, subject="ACLs"))
    if current.output != "json":
        print(f"removed {len(removed)} ACL(s)")
    _emit(_rows(removed), current) if removed or current.output == "json" else None
    return 0
