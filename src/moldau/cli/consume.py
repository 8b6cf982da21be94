"""`moldau consume TOPIC`: print messages (kafka-console-consumer), as text or JSON lines.

Theory of operation. Two ways to read, chosen by the options:

- With `--group G` (and no `--partition`) the consumer subscribes as a member of G; it starts at
  G's committed offsets, or where `--from-beginning`/`--offset` say when G has none, and commits
  what it printed (offsets are stored only after a message is written, and committed on exit), so
  the next consumer in G resumes after the last message shown.
- Otherwise it assigns the partitions itself (all of them, or `--partition P`) at earliest,
  latest or offset N, and commits nothing: no group coordinator is involved.

It stops after `--max-messages N`, after `--timeout-ms N` without a message, or on Ctrl-C /
SIGTERM, and then prints `Processed a total of N messages` to stderr, as Kafka's tool does.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass

from moldau.cli.common import (
    INT_MAX,
    LONG_MAX,
    REQUEST_TIMEOUT_S,
    Settings,
    base_config,
    check_reachable,
    check_topic_name,
    client_options,
    java_client_properties,
    integer,
    kafka_failure,
    parse_key_values,
    settings,
)
from moldau.cli.main import CliError

POLL_BATCH = 500
POLL_TIMEOUT_S = 0.2


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "consume",
        parents=[client_options(with_x=False)],
        help="print messages from a topic (kafka-console-consumer)",
        description="Print messages from a topic, one per line.",
    )
    parser.add_argument("topic_arg", nargs="?", metavar="TOPIC", help="topic to read")
    parser.add_argument("--topic", "-t", dest="topic_flag", metavar="TOPIC", help="same as TOPIC")
    parser.add_argument("--from-beginning", action="store_true",
                        help="start at the earliest offset when there is no committed offset")
    parser.add_argument("--group", "-g", metavar="GROUP", help="consume as a member of GROUP, committing offsets")
    parser.add_argument("--offset", metavar="N|earliest|latest", help="start offset (all partitions, or --partition)")
    parser.add_argument("--partition", "-p", type=integer(0, INT_MAX), metavar="P", help="read only partition P")
    parser.add_argument("--max-messages", "-n", type=integer(1, LONG_MAX), metavar="N", help="exit after N messages")
    parser.add_argument("--timeout-ms", type=integer(0, INT_MAX), metavar="MS", help="exit when no message arrives for MS")
    parser.add_argument("--isolation-level", choices=("read_committed", "read_uncommitted"), default=None,
                        help="read_committed: only committed transactions (stops at the last stable offset); "
                             "read_uncommitted (default, as Kafka's console consumer): everything")
    parser.add_argument("--print-key", action="store_true", help="print the key before the value")
    parser.add_argument("--print-offset", action="store_true", help="print the offset")
    parser.add_argument("--print-partition", action="store_true", help="print the partition")
    parser.add_argument("--print-timestamp", action="store_true", help="print the timestamp")
    parser.add_argument("--print-headers", action="store_true", help="print the headers")
    parser.add_argument("--key-separator", default=None, metavar="SEP", help="between printed fields (tab)")
    parser.add_argument("--format", choices=("text", "json"), default=None,
                        help="text (default) or one JSON object per message")
    parser.add_argument("--property", dest="properties", action="append", default=[], metavar="KEY=VALUE",
                        help="kafka-console-consumer formatter property: print.key, print.offset, "
                        "print.partition, print.timestamp, print.headers, key.separator")
    parser.add_argument("--consumer-property", "-X", dest="consumer_properties", action="append", default=[],
                        metavar="KEY=VALUE", help="librdkafka/Kafka consumer config (repeatable)")
    parser.set_defaults(func=run)


@dataclass
class Printer:
    """Kafka's DefaultMessageFormatter fields, or JSON lines."""

    json_lines: bool = False
    key: bool = False
    offset: bool = False
    partition: bool = False
    timestamp: bool = False
    headers: bool = False
    separator: str = "\t"

    def line(self, message) -> str:
        if self.json_lines:
            return json.dumps(as_json(message), ensure_ascii=False)
        fields = []
        if self.timestamp:
            kind, value = message.timestamp()
            label = {1: "CreateTime", 2: "LogAppendTime"}.get(kind, "NO_TIMESTAMP")
            fields.append(f"{label}:{value}" if kind in (1, 2) else label)
        if self.partition:
            fields.append(f"Partition:{message.partition()}")
        if self.offset:
            fields.append(f"Offset:{message.offset()}")
        if self.headers:
            headers = message.headers() or []
            fields.append(",".join(f"{k}:{_text(v)}" for k, v in headers) if headers else "NO_HEADERS")
        if self.key:
            fields.append(_text(message.key()))
        fields.append(_text(message.value()))
        return self.separator.join(fields)


def _text(data: bytes | None) -> str:
    # surrogateescape: bytes that are not UTF-8 reach stdout exactly as stored (see run()).
    return "null" if data is None else data.decode("utf-8", errors="surrogateescape")


def _json_bytes(data: bytes | None, name: str, into: dict) -> None:
    if data is None:
        into[name] = None
        return
    try:
        into[name] = data.decode("utf-8")
    except UnicodeDecodeError:
        into[name] = base64.b64encode(data).decode()
        into[f"{name}_encoding"] = "base64"


def as_json(message) -> dict:
    kind, timestamp = message.timestamp()
    record: dict = {
        "topic": message.topic(),
        "partition": message.partition(),
        "offset": message.offset(),
        "timestamp": timestamp if kind else None,
        "timestamp_type": {1: "CreateTime", 2: "LogAppendTime"}.get(kind),
    }
    _json_bytes(message.key(), "key", record)
    _json_bytes(message.value(), "value", record)
    record["headers"] = [[name, None if value is None else value.decode("utf-8", errors="replace")]
                         for name, value in message.headers() or []]
    return record


def printer(args: argparse.Namespace, current: Settings) -> Printer:
    props = {k: v.lower() if k.startswith("print.") else v
             for k, v in parse_key_values(args.properties, "property").items()}
    fmt = args.format or ("json" if current.output == "json" else "text")
    separator = args.key_separator if args.key_separator is not None else props.get("key.separator", "\t")
    return Printer(
        json_lines=fmt == "json",
        key=args.print_key or props.get("print.key") == "true",
        offset=args.print_offset or props.get("print.offset") == "true",
        partition=args.print_partition or props.get("print.partition") == "true",
        timestamp=args.print_timestamp or props.get("print.timestamp") == "true",
        headers=args.print_headers or props.get("print.headers") == "true",
        separator=separator.encode().decode("unicode_escape") if "\\" in separator else separator,
    )


def start_offset(args: argparse.Namespace) -> int | None:
    """librdkafka's logical offset for --offset/--from-beginning; None = committed or latest."""
    from confluent_kafka import OFFSET_BEGINNING, OFFSET_END

    if args.offset is None:
        return OFFSET_BEGINNING if args.from_beginning else None
    word = args.offset.lower()
    if word == "earliest":
        return OFFSET_BEGINNING
    if word == "latest":
        return OFFSET_END
    try:
        offset = int(word)
    except ValueError:
        raise CliError(f"bad --offset {args.offset!r}: expected a number, earliest or latest") from None
    if offset < 0:
        raise CliError(f"bad --offset {offset}: must be at least 0")
    return offset


def run(args: argparse.Namespace) -> int:
    topic = args.topic_flag or args.topic_arg
    if not topic:
        raise CliError("which topic? moldau consume TOPIC (or --topic TOPIC)")
    check_topic_name(topic)
    if args.max_messages is not None and args.max_messages < 1:
        raise CliError("--max-messages must be at least 1")
    current = settings(args)
    out = printer(args, current)
    if not out.json_lines and hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="surrogateescape")
    offset = start_offset(args)
    consumer = make_consumer(current, args)
    try:
        partitions = topic_partitions(consumer, current, topic, args.partition)
    except BaseException:
        finish(consumer, grouped=False)
        raise
    tally = [0]  # messages printed, kept current for the Ctrl-C path
    stop = _Stop()
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = {sig: signal.signal(sig, stop.handle) for sig in (signal.SIGTERM, signal.SIGINT)} \
        if in_main_thread else {}
    try:
        if args.group and args.partition is None:
            subscribe(consumer, topic, offset if args.offset is not None else None)
        else:
            from confluent_kafka import OFFSET_END, TopicPartition

            start = OFFSET_END if offset is None else offset
            consumer.assign([TopicPartition(topic, p, start) for p in partitions])
        read(consumer, current, out, args, bool(args.group), tally, stop)
    except KeyboardInterrupt:
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        finish(consumer, grouped=bool(args.group))
        print(f"Processed a total of {tally[0]} messages", file=sys.stderr, flush=True)
    return 0


class _Stop:
    """Ctrl-C and SIGTERM, taken only where they cannot split a message.

    While the consumer waits in consume() the signal interrupts it at once (messages it had taken
    are neither printed nor stored, so they are not committed either). Anywhere else it only
    asks the loop to stop after the message being written: a line on stdout, its stored offset
    and the count in "Processed a total of N messages" always agree, even with unbuffered output.
    """

    def __init__(self) -> None:
        self.requested = False
        self.waiting = False

    def handle(self, signum, frame) -> None:
        self.requested = True
        if self.waiting:
            self.waiting = False
            raise KeyboardInterrupt


def make_consumer(current: Settings, args: argparse.Namespace):
    from confluent_kafka import Consumer, KafkaException

    check_reachable(current.bootstrap_servers)
    config = base_config(current)
    config.update({
        # Without --group: a private id, never joined or committed (assign mode).
        "group.id": args.group or f"moldau-console-consumer-{os.getpid()}",
        "enable.auto.commit": bool(args.group),
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest" if args.from_beginning else "latest",
        "enable.partition.eof": False,
        "isolation.level": args.isolation_level or "read_uncommitted",
    })
    config.update(java_client_properties(parse_key_values(args.consumer_properties, "consumer property")))
    try:
        return Consumer(config)
    except KafkaException as error:
        raise kafka_failure(error, current.bootstrap_servers, "consumer configuration") from None


def topic_partitions(consumer, current: Settings, topic: str, partition: int | None) -> list[int]:
    from confluent_kafka import KafkaException

    try:
        metadata = consumer.list_topics(topic=topic, timeout=REQUEST_TIMEOUT_S)
    except KafkaException as error:
        raise kafka_failure(error, current.bootstrap_servers, topic) from None
    described = metadata.topics.get(topic)
    if described is None or (described.error is not None and "UNKNOWN" in described.error.name()):
        raise CliError(f"unknown topic '{topic}'")
    if described.error is not None and not described.partitions:
        raise CliError(f"topic '{topic}': {described.error.str()}")
    partitions = sorted(described.partitions)
    if partition is not None:
        if partition not in described.partitions:
            raise CliError(f"topic '{topic}' has no partition {partition} (it has {len(partitions)})")
        return [partition]
    return partitions


def subscribe(consumer, topic: str, offset: int | None) -> None:
    """Join the group; an explicit --offset overrides the committed offsets on assignment."""
    if offset is None:
        consumer.subscribe([topic])  # committed offsets, else auto.offset.reset
        return

    def on_assign(consumer, partitions):
        for tp in partitions:
            tp.offset = offset
        consumer.assign(partitions)

    consumer.subscribe([topic], on_assign=on_assign)


def read(consumer, current: Settings, out: Printer, args: argparse.Namespace, grouped: bool,
         tally: list[int], stop: _Stop | None = None) -> None:
    stop = stop or _Stop()
    count = 0
    last_message = time.monotonic()
    write = sys.stdout.write
    while (args.max_messages is None or count < args.max_messages) and not stop.requested:
        want = POLL_BATCH if args.max_messages is None else min(POLL_BATCH, args.max_messages - count)
        stop.waiting = True
        if stop.requested:  # a signal between the loop test and here
            stop.waiting = False
            break
        messages = consumer.consume(num_messages=want, timeout=POLL_TIMEOUT_S)
        stop.waiting = False
        for message in messages:
            if stop.requested:
                break
            error = message.error()
            if error is not None:
                check_error(error, current, message.topic())
                continue
            write(out.line(message) + "\n")
            if grouped:
                consumer.store_offsets(message)
            count += 1
            tally[0] = count
            last_message = time.monotonic()
        if messages:
            sys.stdout.flush()
        elif args.timeout_ms is not None and (time.monotonic() - last_message) * 1000 >= args.timeout_ms:
            break
    sys.stdout.flush()


def check_error(error, current: Settings, topic: str | None) -> None:
    name = error.name()
    if name in ("_PARTITION_EOF",):
        return
    if name in ("UNKNOWN_TOPIC_OR_PART", "_UNKNOWN_TOPIC"):
        raise CliError(f"unknown topic '{topic}'")
    if name in ("_TRANSPORT", "_ALL_BROKERS_DOWN") and not error.fatal():
        return  # librdkafka reconnects by itself; a broker restart is not the end of consuming
    if error.fatal() or name in ("GROUP_AUTHORIZATION_FAILED", "TOPIC_AUTHORIZATION_FAILED",
                                 "INVALID_GROUP_ID", "OFFSET_OUT_OF_RANGE"):
        raise CliError(f"{name}: {error.str()}")
    print(f"moldau: warning: {error.str()}", file=sys.stderr)


def finish(consumer, grouped: bool) -> None:
    """Commit what was printed (group mode) and leave the group."""
    from confluent_kafka import KafkaException

    try:
        if grouped:
            try:
                consumer.commit(asynchronous=False)
            except KafkaException:
                pass  # _NO_OFFSET: nothing printed since the last commit
        consumer.close()
    except (KafkaException, RuntimeError):
        pass
