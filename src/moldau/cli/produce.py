"""`moldau produce TOPIC`: lines from stdin or a file become messages (kafka-console-producer).

Theory of operation. Each input line (without its newline) is one message; with
`--key-separator SEP` (or Kafka's `--property parse.key=true --property key.separator=SEP`) the
text before the first SEP is the key. `--header k=v` headers go on every message. On a terminal a
`>` prompt is shown before each line, as Kafka's console producer does.

Delivery reports are counted as they arrive; the command exits non-zero, naming the first
failure, if any message was not acknowledged. A message larger than the producer's
message.max.bytes counts as one failure and the lines after it are still sent, as with Kafka's
console producer. When the input stops on an error (a line without the key separator, Ctrl-C),
what was read before it is flushed first: a line accepted is never silently dropped. The topic
is checked first (a Metadata request for it, which also triggers auto-creation on brokers that
do it), so an unknown topic fails in seconds instead of after message.timeout.ms. Progress
(messages sent, acknowledged, rate, and percent of the file) is printed to stderr twice a
second when stderr is a terminal or with `--progress`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass, field
from typing import IO, Iterator

from moldau.cli.common import (
    INT_MAX,
    REQUEST_TIMEOUT_S,
    Settings,
    base_config,
    check_reachable,
    check_topic_name,
    client_options,
    java_client_properties,
    emit_json,
    integer,
    kafka_failure,
    parse_key_values,
    settings,
)
from moldau.cli.main import CliError

COMPRESSIONS = ("none", "gzip", "snappy", "lz4", "zstd")
PROGRESS_INTERVAL_S = 0.5
AUTO_CREATE_WAIT_S = 2.0
FAILURES_SHOWN = 3
# Metadata errors of a topic that may go away by waiting (auto-creation, a leader election).
_WAIT_FOR = ("", "UNKNOWN_TOPIC_OR_PART", "_UNKNOWN_TOPIC", "LEADER_NOT_AVAILABLE", "NOT_LEADER_FOR_PARTITION")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "produce",
        parents=[client_options(with_x=False)],
        help="send lines from stdin or a file as messages (kafka-console-producer)",
        description="Send each input line as one message.",
    )
    parser.add_argument("topic_arg", nargs="?", metavar="TOPIC", help="topic to write to")
    parser.add_argument("--topic", "-t", dest="topic_flag", metavar="TOPIC", help="same as TOPIC")
    parser.add_argument("--file", "-f", metavar="FILE", help="read lines from FILE instead of stdin")
    parser.add_argument("--key-separator", "-K", metavar="SEP", help="split each line into KEY SEP VALUE")
    parser.add_argument("--header", "-H", dest="headers", action="append", default=[], metavar="KEY=VALUE",
                        help="header added to every message (repeatable)")
    parser.add_argument("--partition", "-P", type=integer(0, INT_MAX), metavar="N", help="write to this partition only")
    parser.add_argument("--acks", default="-1", choices=("0", "1", "-1", "all"),
                        help="acknowledgements to wait for (default: all)")
    parser.add_argument("--compression", "--compression-codec", "-z", dest="compression", default="none",
                        choices=COMPRESSIONS, help="compression codec (default: none)")
    parser.add_argument("--linger-ms", type=integer(0, 900_000), default=5, metavar="MS", help="batching delay (default 5)")
    parser.add_argument("--timeout-ms", type=integer(0, INT_MAX), default=30000, metavar="MS",
                        help="give up on a message after MS (default 30000)")
    parser.add_argument("--property", dest="properties", action="append", default=[], metavar="KEY=VALUE",
                        help="kafka-console-producer reader property: parse.key, key.separator, "
                        "parse.headers, headers.delimiter, headers.separator, headers.key.separator")
    parser.add_argument("--producer-property", "-X", dest="producer_properties", action="append", default=[],
                        metavar="KEY=VALUE", help="librdkafka/Kafka producer config (repeatable)")
    progress = parser.add_mutually_exclusive_group()
    progress.add_argument("--progress", dest="progress", action="store_true", default=None,
                          help="show progress on stderr (default: when stderr is a terminal)")
    progress.add_argument("--no-progress", dest="progress", action="store_false", help="never show progress")
    parser.set_defaults(func=run)


@dataclass
class LineFormat:
    """How a line becomes key, value and headers (Kafka's LineMessageReader properties)."""

    key_separator: str | None = None
    headers_delimiter: str | None = None  # line = HEADERS <delim> [KEY SEP] VALUE
    headers_separator: str = ","
    headers_key_separator: str = ":"
    static_headers: list[tuple[str, bytes]] = field(default_factory=list)

    def parse(self, line: str) -> tuple[bytes | None, bytes, list[tuple[str, bytes]]]:
        headers = list(self.static_headers)
        if self.headers_delimiter is not None:
            header_text, sep, line = line.partition(self.headers_delimiter)
            if not sep:
                raise CliError(f"no headers delimiter {self.headers_delimiter!r} in {header_text[:60]!r}")
            for item in filter(None, header_text.split(self.headers_separator)):
                name, _, value = item.partition(self.headers_key_separator)
                headers.append((name, _bytes(value)))
        key = None
        if self.key_separator is not None:
            key_text, sep, value_text = line.partition(self.key_separator)
            if not sep:
                raise CliError(f"no key separator {self.key_separator!r} in {line[:60]!r}")
            key, line = _bytes(key_text), value_text
        return key, _bytes(line), headers


def line_format(args: argparse.Namespace) -> LineFormat:
    props = parse_key_values(args.properties, "property")
    fmt = LineFormat(static_headers=[(k, v.encode()) for k, v in parse_key_values(args.headers, "header").items()])
    if args.key_separator is not None:
        fmt.key_separator = _unescape(args.key_separator)
    elif props.get("parse.key", "false").lower() == "true":
        fmt.key_separator = _unescape(props.get("key.separator", "\t"))
    if props.get("parse.headers", "false").lower() == "true":
        fmt.headers_delimiter = _unescape(props.get("headers.delimiter", "\t"))
        fmt.headers_separator = props.get("headers.separator", ",")
        fmt.headers_key_separator = props.get("headers.key.separator", ":")
    return fmt


def _bytes(text: str) -> bytes:
    """Input bytes that are not UTF-8 were decoded with surrogateescape: give them back as read."""
    return text.encode("utf-8", "surrogateescape")


def _unescape(text: str) -> str:
    return text.encode().decode("unicode_escape") if "\\" in text else text


class Deliveries:
    """Delivery reports: counts and the first few failures."""

    def __init__(self) -> None:
        self.acknowledged = 0
        self.failed = 0
        self.failures: list[str] = []

    def __call__(self, error, message) -> None:
        if error is None:
            self.acknowledged += 1
            return
        self.failed += 1
        self.note(error.str())

    def note(self, failure: str) -> None:
        if len(self.failures) < FAILURES_SHOWN:
            self.failures.append(failure)


class Progress:
    """One self-overwriting stderr line on a terminal, plain lines otherwise."""

    def __init__(self, enabled: bool, total_bytes: int | None) -> None:
        self.enabled = enabled
        self.total_bytes = total_bytes
        self.started = time.monotonic()
        self.last = self.started
        self.tty = sys.stderr.isatty()

    def update(self, sent: int, deliveries: Deliveries, bytes_read: int, final: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not final and now - self.last < PROGRESS_INTERVAL_S:
            return
        self.last = now
        elapsed = max(now - self.started, 1e-6)
        text = f"produced {sent} messages, {deliveries.acknowledged} acknowledged ({sent / elapsed:,.0f} msg/s)"
        if self.total_bytes:
            text += f", {100.0 * bytes_read / self.total_bytes:5.1f}% of input"
        if self.tty:
            sys.stderr.write("\r" + text + ("\n" if final else ""))
        else:
            sys.stderr.write(text + "\n")
        sys.stderr.flush()


def run(args: argparse.Namespace) -> int:
    topic = args.topic_flag or args.topic_arg
    if not topic:
        raise CliError("which topic? moldau produce TOPIC (or --topic TOPIC)")
    if args.topic_flag and args.topic_arg and args.topic_flag != args.topic_arg:
        raise CliError(f"two topics given: {args.topic_arg!r} and {args.topic_flag!r}")
    check_topic_name(topic)
    current = settings(args)
    fmt = line_format(args)
    producer = make_producer(current, args)
    check_topic(producer, current, topic, args.partition)
    source, total_bytes, interactive = open_input(args.file)
    progress = Progress(args.progress if args.progress is not None else (sys.stderr.isatty() and not interactive),
                        total_bytes)
    deliveries = Deliveries()
    counter = [0]  # lines handed to the producer, also when the input stops on an error
    try:
        sent = send_lines(producer, topic, args.partition, fmt, source, interactive, deliveries, progress, counter)
    except CliError as error:  # a bad line: the lines before it still go out, then say how they fared
        remaining = producer.flush(args.timeout_ms / 1000.0 + 5)
        failed = deliveries.failed + remaining
        if counter[0]:
            error = CliError(f"{error} ({counter[0]} sent before it, {deliveries.acknowledged} acknowledged"
                             + (f", {failed} failed: {(deliveries.failures or ['timeout'])[0]})" if failed else ")"))
        raise error from None
    except BaseException:
        producer.flush(args.timeout_ms / 1000.0 + 5)  # Ctrl-C: the lines read so far still go out
        raise
    finally:
        if source is not sys.stdin:
            source.close()
    remaining = producer.flush(args.timeout_ms / 1000.0 + 5)
    progress.update(sent, deliveries, total_bytes or 0, final=True)
    return report(topic, sent, deliveries, remaining, current.output)


def make_producer(current: Settings, args: argparse.Namespace):
    from confluent_kafka import KafkaException, Producer

    check_reachable(current.bootstrap_servers)
    config = base_config(current)
    config.update({
        "acks": "all" if args.acks in ("-1", "all") else args.acks,
        "compression.type": args.compression,
        "linger.ms": args.linger_ms,
        "message.timeout.ms": args.timeout_ms,
    })
    config.update(java_client_properties(parse_key_values(args.producer_properties, "producer property")))
    try:
        return Producer(config)
    except KafkaException as error:
        raise kafka_failure(error, current.bootstrap_servers, "producer configuration") from None


def check_topic(producer, current: Settings, topic: str, partition: int | None) -> None:
    """Fail fast on an unknown topic or partition.

    The producer's Metadata request lets a broker with auto.create.topics.enable create the
    topic; Kafka may answer UNKNOWN_TOPIC_OR_PARTITION to that very request and have the topic a
    moment later, so "unknown" is believed only after AUTO_CREATE_WAIT_S of asking again.
    """
    from confluent_kafka import KafkaException

    started = time.monotonic()
    while True:
        try:
            metadata = producer.list_topics(topic=topic, timeout=REQUEST_TIMEOUT_S)
        except KafkaException as error:
            raise kafka_failure(error, current.bootstrap_servers, topic) from None
        described = metadata.topics.get(topic)
        error = described.error if described is not None else None
        if error is None and described is not None and described.partitions:
            break
        name = error.name() if error is not None else ""
        waited = time.monotonic() - started
        if name in ("UNKNOWN_TOPIC_OR_PART", "_UNKNOWN_TOPIC") and waited > AUTO_CREATE_WAIT_S:
            raise CliError(f"unknown topic '{topic}'")
        if name not in _WAIT_FOR:  # not a matter of time: say what the broker said, at once
            raise CliError(f"topic '{topic}': {error.str()} ({name})")
        if waited > REQUEST_TIMEOUT_S:
            raise CliError(f"topic '{topic}' has no leader yet ({name or 'no partitions'})")
        time.sleep(0.1)  # being auto-created, or LEADER_NOT_AVAILABLE while leaders are elected
    if partition is not None and partition not in described.partitions:
        raise CliError(f"topic '{topic}' has no partition {partition} (it has {len(described.partitions)})")


def open_input(path: str | None) -> tuple[IO[str], int | None, bool]:
    """The line source, its size in bytes when known, and whether a person is typing."""
    if path is None or path == "-":
        if hasattr(sys.stdin, "reconfigure"):
            sys.stdin.reconfigure(errors="surrogateescape")  # any bytes, sent as read
        return sys.stdin, None, sys.stdin.isatty()
    try:
        handle = open(path, encoding="utf-8", errors="surrogateescape", newline="")
        return handle, os.fstat(handle.fileno()).st_size, False
    except OSError as error:
        raise CliError(f"cannot read {path}: {error.strerror}") from None


def _lines(source: IO[str], interactive: bool) -> Iterator[str]:
    if not interactive:
        yield from source
        return
    while True:
        sys.stderr.write(">")
        sys.stderr.flush()
        line = source.readline()
        if not line:
            sys.stderr.write("\n")
            return
        yield line


def send_lines(producer, topic, partition, fmt: LineFormat, source, interactive, deliveries, progress,
               counter: list[int]) -> int:
    """Produce each line; return how many were handed to the producer, also kept in counter[0]
    for the caller to report when the input stops on an error."""
    from confluent_kafka import KafkaError, KafkaException

    sent = bytes_read = 0
    extra = {} if partition is None else {"partition": partition}
    for line in _lines(source, interactive):
        bytes_read += len(_bytes(line)) if progress.total_bytes else 0
        text = line[:-1] if line.endswith("\n") else line
        text = text[:-1] if text.endswith("\r") else text
        try:
            key, value, headers = fmt.parse(text)
        except CliError as error:
            raise CliError(f"line {sent + 1}: {error}") from None  # "line 7: no key separator ':' in 'x'"
        while True:
            try:
                producer.produce(topic, value, key, headers=headers or None, on_delivery=deliveries, **extra)
                break
            except BufferError:
                producer.poll(0.1)  # local queue full: wait for deliveries, then retry
            except KafkaException as error:
                if error.args[0].code() != KafkaError.MSG_SIZE_TOO_LARGE:
                    raise
                # librdkafka's own check, before any broker sees it: fail this one and go on.
                deliveries.failed += 1
                deliveries.note(f"message {sent + 1} ({len(value) + len(key or b'')} bytes) is larger than the "
                                "producer's message.max.bytes; raise it with -X message.max.bytes=N "
                                "(the topic's max.message.bytes must allow it too)")
                break
        sent += 1
        counter[0] = sent
        producer.poll(0)
        if interactive:
            producer.flush(5)
        progress.update(sent, deliveries, bytes_read)
    return sent


def report(topic: str, sent: int, deliveries: Deliveries, remaining: int, output: str) -> int:
    failed = deliveries.failed + remaining
    if output == "json":
        emit_json({"topic": topic, "sent": sent, "acknowledged": deliveries.acknowledged,
                   "failed": failed, "errors": deliveries.failures})
    if failed:
        reason = deliveries.failures[0] if deliveries.failures else "not acknowledged before the timeout"
        raise CliError(f"{failed} of {sent} messages to '{topic}' failed: {reason}")
    return 0
