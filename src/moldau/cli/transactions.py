"""`moldau transactions`: list, describe, describe-producers, abort (kafka-transactions.sh).

    moldau transactions list [--state Ongoing] [--producer-id P] [--duration-ms MS]
    moldau transactions describe TRANSACTIONAL_ID        (or --transactional-id ID)
    moldau transactions describe-producers --topic T --partition P
    moldau transactions abort --topic T --partition P --start-offset N
    moldau transactions abort --topic T --partition P --producer-id ID --producer-epoch E
                              [--coordinator-epoch C]

Theory of operation. The same requests as Kafka's tool, through cli/wire.py (confluent-kafka
has no transaction admin API): `list` asks every broker (each answers for the transactional
ids it coordinates) and merges the answers; `describe` finds the id's coordinator
(FindCoordinator, key type 1) and asks it; `describe-producers` asks the partition's leader
which producers it tracks and where their open transaction starts; `abort` ends a *hanging*
transaction in one partition — one whose producer and coordinator are gone, holding back the
last stable offset — by writing an ABORT marker for it there, the producer found by the
offset its open transaction starts at (as `kafka-transactions.sh abort --start-offset`). Tables
by default, `--output json` for scripts. Works against Apache Kafka too.
"""

from __future__ import annotations

import argparse
import importlib
import time
from typing import Any

from kio.schema.errors import ErrorCode

from moldau.cli.common import INT_MAX, LONG_MAX, client_options, emit_json, emit_keyvalues, emit_table, integer, settings
from moldau.cli.main import CliError

ACTIONS = ("list", "describe", "describe-producers", "abort")
KEY_TYPE_TRANSACTION = 1


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "transactions", parents=[client_options()],
        help="list, describe and abort transactions (kafka-transactions.sh)",
        description="Inspect transactions and abort hanging ones.")
    parser.add_argument("words", nargs="*", metavar="ACTION [TRANSACTIONAL_ID]", help=f"one of {', '.join(ACTIONS)}")
    parser.add_argument("--transactional-id", metavar="ID", help="describe: the transactional id")
    parser.add_argument("--state", dest="states", action="append", default=[], metavar="STATE",
                        help="list: only transactions in this state (Ongoing, PrepareCommit, ...), repeatable")
    parser.add_argument("--producer-id", dest="producer_ids", action="append", default=[],
                        type=integer(0, LONG_MAX), metavar="ID", help="list: only this producer id; abort: the producer")
    parser.add_argument("--duration-ms", type=integer(0, LONG_MAX), metavar="MS",
                        help="list: only transactions open longer than MS")
    parser.add_argument("--topic", "-t", metavar="TOPIC", help="describe-producers, abort: the topic")
    parser.add_argument("--partition", "-p", type=integer(0, INT_MAX), metavar="P", help="the partition")
    parser.add_argument("--start-offset", type=integer(0, LONG_MAX), metavar="N",
                        help="abort: the offset the hanging transaction starts at")
    parser.add_argument("--producer-epoch", type=integer(0, 32767), metavar="E", help="abort: the producer's epoch")
    parser.add_argument("--coordinator-epoch", type=integer(0, INT_MAX), metavar="C",
                        help="abort: coordinator epoch for the marker (default: the last one the partition saw)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from moldau.cli.wire import Cluster

    words = list(args.words)
    if not words or words[0] not in ACTIONS:
        raise CliError(f"expected one of {', '.join(ACTIONS)}" + (f", not {words[0]!r}" if words else ""))
    action, rest = words[0], words[1:]
    current = settings(args)
    cluster = Cluster(current)
    try:
        if action == "list":
            return _list(cluster, args, current.output)
        if action == "describe":
            return _describe(cluster, _one(rest, args.transactional_id, "a transactional id"), current.output)
        topic, partition = _topic_partition(args)
        if action == "describe-producers":
            return _describe_producers(cluster, topic, partition, current.output)
        return _abort(cluster, topic, partition, args, current.output)
    finally:
        cluster.close()


def _one(rest: list[str], flag: str | None, what: str) -> str:
    values = rest + ([flag] if flag else [])
    if len(values) != 1:
        raise CliError(f"give {what}")
    return values[0]


def _topic_partition(args: argparse.Namespace) -> tuple[str, int]:
    if not args.topic or args.partition is None:
        raise CliError("give --topic and --partition")
    return args.topic, args.partition


def _build(api_key: int, **fields: Any):
    """A builder of the kio request of `api_key` at a version, keeping the fields it has."""
    def build(version: int) -> Any:
        module = importlib.import_module(f"kio.schema.{_MODULES[api_key]}.v{version}.request")
        schema = getattr(module, _CLASSES[api_key])
        return schema(**{k: v(module) if callable(v) else v for k, v in fields.items()
                         if k in schema.__dataclass_fields__})
    return build


_MODULES = {10: "find_coordinator", 27: "write_txn_markers", 61: "describe_producers",
            65: "describe_transactions", 66: "list_transactions"}
_CLASSES = {10: "FindCoordinatorRequest", 27: "WriteTxnMarkersRequest", 61: "DescribeProducersRequest",
            65: "DescribeTransactionsRequest", 66: "ListTransactionsRequest"}


def _check(code: int, subject: str) -> None:
    error = ErrorCode(code)
    if error != ErrorCode.none:
        raise CliError(f"{subject}: {error.name.upper()}")


# --- list ---------------------------------------------------------------------------------
def _list(cluster, args: argparse.Namespace, output: str) -> int:
    build = _build(66, state_filters=tuple(args.states), producer_id_filters=tuple(args.producer_ids),
                   duration_filter=-1 if args.duration_ms is None else args.duration_ms, transactional_id_pattern=None)
    rows = []
    for node_id in sorted(cluster.brokers):
        response = cluster.broker(node_id).request(66, build)
        _check(response.error_code, f"broker {node_id}")
        if response.unknown_state_filters:
            raise CliError(f"unknown transaction state(s): {', '.join(response.unknown_state_filters)}")
        rows += [(t.transactional_id, node_id, t.producer_id, t.transaction_state) for t in response.transaction_states]
    rows.sort()
    if output == "json":
        emit_json([{"transactional_id": t, "coordinator": c, "producer_id": p, "state": s} for t, c, p, s in rows])
    else:
        emit_table(["TRANSACTIONAL ID", "COORDINATOR", "PRODUCER ID", "STATE"], rows)
    return 0


# --- describe -----------------------------------------------------------------------------
def coordinator_of(cluster, transactional_id: str) -> int:
    def key(module: Any) -> tuple:
        return (transactional_id,)

    response = cluster.bootstrap().request(10, _build(10, key=transactional_id, key_type=KEY_TYPE_TRANSACTION,
                                                      coordinator_keys=key))
    entry = response.coordinators[0] if getattr(response, "coordinators", None) else response
    _check(entry.error_code, f"transactional id '{transactional_id}'")
    return entry.node_id


def _describe(cluster, transactional_id: str, output: str) -> int:
    node_id = coordinator_of(cluster, transactional_id)
    response = cluster.broker(node_id).request(65, _build(65, transactional_ids=(transactional_id,)))
    state = response.transaction_states[0]
    _check(state.error_code, f"transactional id '{transactional_id}'")
    start_ms = state.transaction_start_time_ms
    partitions = [f"{t.topic}-{p}" for t in state.topics for p in t.partitions]
    described = {
        "coordinator": node_id, "transactional_id": transactional_id, "producer_id": state.producer_id,
        "producer_epoch": state.producer_epoch, "state": state.transaction_state,
        "timeout_ms": state.transaction_timeout_ms,
        "start_time_ms": start_ms, "duration_ms": int(time.time() * 1000) - start_ms if start_ms >= 0 else None,
        "partitions": partitions,
    }
    if output == "json":
        emit_json(described)
    else:
        emit_keyvalues({k.replace("_", " ").upper(): v for k, v in described.items()})
    return 0


# --- describe-producers / abort -------------------------------------------------------------
def producers(cluster, topic: str, partition: int) -> list[Any]:
    def topics(module: Any) -> tuple:
        return (module.TopicRequest(name=topic, partition_indexes=(partition,)),)

    response = cluster.broker(cluster.leader(topic, partition)).request(61, _build(61, topics=topics))
    result = response.topics[0].partitions[0]
    _check(result.error_code, f"{topic}-{partition}")
    return list(result.active_producers)


def _describe_producers(cluster, topic: str, partition: int, output: str) -> int:
    rows = [(p.producer_id, p.producer_epoch, p.coordinator_epoch, p.last_sequence, p.last_timestamp,
             p.current_txn_start_offset if p.current_txn_start_offset >= 0 else None)
            for p in producers(cluster, topic, partition)]
    if output == "json":
        emit_json([{"producer_id": r[0], "producer_epoch": r[1], "coordinator_epoch": r[2], "last_sequence": r[3],
                    "last_timestamp_ms": r[4], "current_transaction_start_offset": r[5]} for r in rows])
    else:
        emit_table(["PRODUCER ID", "EPOCH", "COORDINATOR EPOCH", "LAST SEQUENCE", "LAST TIMESTAMP",
                    "OPEN TRANSACTION STARTS AT"], rows)
    return 0


def _abort(cluster, topic: str, partition: int, args: argparse.Namespace, output: str) -> int:
    producer_id, epoch, coordinator_epoch = _aborted_producer(cluster, topic, partition, args)

    def markers(module: Any) -> tuple:
        return (module.WritableTxnMarker(
            producer_id=producer_id, producer_epoch=epoch, transaction_result=False, coordinator_epoch=coordinator_epoch,
            topics=(module.WritableTxnMarkerTopic(name=topic, partition_indexes=(partition,)),)),)

    response = cluster.broker(cluster.leader(topic, partition)).request(27, _build(27, markers=markers))
    _check(response.markers[0].topics[0].partitions[0].error_code, f"abort in {topic}-{partition}")
    result = {"topic": topic, "partition": partition, "producer_id": producer_id, "producer_epoch": epoch,
              "coordinator_epoch": coordinator_epoch, "aborted": True}
    if output == "json":
        emit_json(result)
    else:
        print(f"Aborted the transaction of producer {producer_id} (epoch {epoch}) in {topic}-{partition}")
    return 0


def _aborted_producer(cluster, topic: str, partition: int, args: argparse.Namespace) -> tuple[int, int, int]:
    """(producer id, producer epoch, coordinator epoch) of the transaction to abort."""
    if args.start_offset is not None:
        for producer in producers(cluster, topic, partition):
            if producer.current_txn_start_offset == args.start_offset:
                coordinator_epoch = args.coordinator_epoch if args.coordinator_epoch is not None \
                    else max(0, producer.coordinator_epoch)
                return producer.producer_id, producer.producer_epoch, coordinator_epoch
        raise CliError(f"no open transaction starts at offset {args.start_offset} of {topic}-{partition}")
    if len(args.producer_ids) != 1 or args.producer_epoch is None:
        raise CliError("give --start-offset, or --producer-id and --producer-epoch")
    return args.producer_ids[0], args.producer_epoch, args.coordinator_epoch or 0
