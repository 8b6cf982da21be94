"""What every client subcommand shares: connection options, client configs, errors, output.

Theory of operation. The global options (`--bootstrap-server`, `--command-config`, `--output`)
are accepted both before the subcommand and after it (Kafka's tools take `--bootstrap-server`
anywhere), so they live in `client_options()`, a parent parser whose defaults are SUPPRESSed:
whichever position the user wrote wins, and `settings(args)` fills in the defaults (env
MOLDAU_BOOTSTRAP_SERVER, then localhost:9092).

Before a command builds a client it calls `check_reachable()`: a plain TCP connect to each
bootstrap address with a short timeout. librdkafka retries an unreachable broker silently until
its own timeouts expire (a minute for some calls), so this check is what turns "nothing is
listening" into one clear line within a few seconds. Kafka errors from futures are translated by
`kafka_failure()` into CliError lines that name the topic/group and the broker's reason.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import socket
import sys
import time
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from moldau.cli.main import CliError

BOOTSTRAP_DEFAULT = "localhost:9092"
BOOTSTRAP_ENV = "MOLDAU_BOOTSTRAP_SERVER"
CONNECT_TIMEOUT_S = 3.0
REQUEST_TIMEOUT_S = 30.0

_librdkafka_logger = logging.getLogger("moldau.cli.librdkafka")
_librdkafka_logger.addHandler(logging.NullHandler())
_librdkafka_logger.propagate = False


def client_options(with_x: bool = True) -> argparse.ArgumentParser:
    """The options every client subcommand takes, before or after the subcommand name.
    `with_x=False` for commands whose own -X names producer or consumer properties."""
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("connection and output")
    group.add_argument(
        "--bootstrap-server",
        "--bootstrap-servers",
        "-b",
        dest="bootstrap_server",
        metavar="HOST:PORT[,…]",
        default=argparse.SUPPRESS,
        help=f"broker(s) to connect to (default: ${BOOTSTRAP_ENV} or {BOOTSTRAP_DEFAULT})",
    )
    group.add_argument(
        "--command-config",
        dest="command_config",
        metavar="FILE",
        default=argparse.SUPPRESS,
        help="client properties file (key=value lines, as for Kafka's tools: security.protocol, "
             "sasl.*, ssl.* in Java's or librdkafka's spelling)",
    )
    if with_x:
        group.add_argument(
            "-X",
            "--client-property",
            dest="client_properties",
            metavar="KEY=VALUE",
            action="append",
            default=argparse.SUPPRESS,
            help="a client property, over --command-config (repeatable; e.g. -X security.protocol=SASL_SSL)",
        )
    group.add_argument(
        "--output",
        "-o",
        dest="output",
        choices=("table", "json"),
        default=argparse.SUPPRESS,
        help="human-readable tables (default) or stable JSON",
    )
    return parent


@dataclass(frozen=True)
class Settings:
    bootstrap_servers: str
    client_config: dict[str, str]
    output: str


def settings(args: argparse.Namespace) -> Settings:
    bootstrap = getattr(args, "bootstrap_server", None) or os.environ.get(BOOTSTRAP_ENV) or BOOTSTRAP_DEFAULT
    config_file = getattr(args, "command_config", None)
    extra = read_properties(config_file) if config_file else {}
    extra.update(parse_key_values(getattr(args, "client_properties", None) or [], "client property"))
    return Settings(bootstrap, extra, getattr(args, "output", None) or "table")


def read_properties(path: str) -> dict[str, str]:
    """A client properties file, read as Java reads it (moldau.properties)."""
    from moldau import properties

    try:
        return properties.load_file(path)
    except OSError as error:
        raise CliError(f"cannot read {path}: {error.strerror}") from None
    except properties.PropertiesError as error:
        raise CliError(f"{path}: {error}") from None


INT_MAX = 2**31 - 1
LONG_MAX = 2**63 - 1


def integer(minimum: int, maximum: int):
    """An argparse `type`: an integer within [minimum, maximum] (a port, a count, a time in ms),
    so that `--port 70000` is an error instead of a port the OS wraps around."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or not minimum <= value <= maximum:
            raise argparse.ArgumentTypeError(f"expected an integer from {minimum} to {maximum}, got {text!r}")
        return value

    parse.__name__ = "integer"
    return parse


def rate(text: str) -> float:
    """An argparse `type` for records per second: a positive number, or -1 for no limit."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (value == -1 or 0 < value < float("inf")):
        raise argparse.ArgumentTypeError(f"expected a positive number of records per second (or -1: no limit), "
                                         f"got {text!r}")
    return value


def parse_key_values(items: Iterable[str], what: str = "config") -> dict[str, str]:
    """`key=value` words (also comma-joined, as kafka-configs' --add-config takes them)."""
    result: dict[str, str] = {}
    for item in items:
        for part in _split_commas(item):
            key, sep, value = part.partition("=")
            if not sep or not key.strip():
                raise CliError(f"bad {what} {part!r}: expected key=value")
            result[key.strip()] = value.strip()
    return result


def _split_commas(item: str) -> list[str]:
    """Split `a=1,b=2` but keep `a=[x,y]` whole (kafka-configs' list syntax)."""
    parts, depth, start = [], 0, 0
    for index, char in enumerate(item):
        if char == "[":
            depth += 1
        elif char == "]":
            depth = max(0, depth - 1)
        elif char == "," and depth == 0:
            parts.append(item[start:index])
            start = index + 1
    parts.append(item[start:])
    return [part.replace("[", "").replace("]", "") for part in parts if part.strip()]


# Authentication and TLS failures librdkafka reported through error_cb (see kafka_failure).
_security_failures: list[str] = []


def _on_client_error(error) -> None:
    name = error_name(error)
    if name in ("_AUTHENTICATION", "_SSL") or "SASL" in str(error) or "SSL" in str(error):
        _security_failures.append(describe_kafka_error(error))


def base_config(current: Settings) -> dict[str, Any]:
    config: dict[str, Any] = {
        "bootstrap.servers": current.bootstrap_servers,
        "client.id": "moldau-cli",
        "error_cb": _on_client_error,
        "logger": _librdkafka_logger,
        "socket.connection.setup.timeout.ms": int(CONNECT_TIMEOUT_S * 1000) * 2,
    }
    if os.environ.get("MOLDAU_DEBUG"):
        _librdkafka_logger.addHandler(logging.StreamHandler(sys.stderr))
        _librdkafka_logger.setLevel(logging.DEBUG)
    config.update(java_client_properties(current.client_config))
    return config


def java_client_properties(properties: Mapping[str, str]) -> dict[str, str]:
    """Kafka (Java) client properties as librdkafka takes them (security/client_properties.py)."""
    from moldau.security.client_properties import librdkafka_properties

    try:
        return librdkafka_properties(properties)
    except ValueError as error:
        raise CliError(str(error)) from None


def check_topic_name(topic: str) -> None:
    """Refuse an illegal topic name locally, with Kafka's reason, before any client waits on
    it (librdkafka would retry its metadata until a timeout and then blame the leader)."""
    from moldau.controller.controller import ControllerError, validate_topic_name

    try:
        validate_topic_name(topic)
    except ControllerError as error:
        raise CliError(str(error)) from None


def unreachable_message(bootstrap_servers: str) -> str:
    return f"cannot reach {bootstrap_servers} — is `moldau server` running?"


def check_reachable(bootstrap_servers: str, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """Raise CliError unless a TCP connection to one of the bootstrap addresses succeeds within
    `timeout_s`. A refused connection is tried again until then: `moldau server &` followed at
    once by a command (a pasted quickstart) finds the server still starting, not absent."""
    addresses = [split_address(part.strip()) for part in bootstrap_servers.split(",") if part.strip()]
    deadline = time.monotonic() + timeout_s
    while True:
        for host, port in addresses:
            remaining = max(0.2, deadline - time.monotonic())
            try:
                with socket.create_connection((host, port), timeout=remaining):
                    return
            except OSError:
                continue
        if time.monotonic() >= deadline:
            raise CliError(unreachable_message(bootstrap_servers))
        time.sleep(0.1)


def split_address(address: str) -> tuple[str, int]:
    if "://" in address:
        address = address.split("://", 1)[1]
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise CliError(f"bad bootstrap server {address!r}: expected HOST:PORT")
    return host.strip("[]") or "localhost", int(port)


def admin_client(current: Settings):
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    check_reachable(current.bootstrap_servers)
    try:
        return AdminClient(base_config(current))
    except KafkaException as error:
        raise CliError(f"bad client configuration: {describe_kafka_error(error)}") from None


def cluster_metadata(admin, current: Settings, topic: str | None = None):
    """Metadata (brokers, topics), or a one-line CliError when the broker does not answer."""
    from confluent_kafka import KafkaException

    try:
        if topic is None:
            return admin.list_topics(timeout=REQUEST_TIMEOUT_S)
        return admin.list_topics(topic=topic, timeout=REQUEST_TIMEOUT_S)
    except KafkaException as error:
        admin.poll(0.1)  # serves error_cb: a refused login shows up there (see kafka_failure)
        raise kafka_failure(error, current.bootstrap_servers) from None


def committed_offsets(admin, current: Settings, group: str) -> dict[tuple[str, int], int]:
    """A group's committed offsets by (topic, partition), or a one-line CliError (see
    moldau/group_offsets.py for why not the admin client's call)."""
    from confluent_kafka import KafkaException, TopicPartition

    from moldau import group_offsets

    metadata = cluster_metadata(admin, current)
    partitions = [TopicPartition(name, index) for name, topic in sorted(metadata.topics.items())
                  if topic.error is None for index in sorted(topic.partitions)]
    try:
        return group_offsets.committed_offsets(base_config(current), group, REQUEST_TIMEOUT_S, partitions)
    except KafkaException as error:
        raise kafka_failure(error, current.bootstrap_servers, group) from None


def wait(future, current: Settings, *, subject: str = "", timeout_s: float = REQUEST_TIMEOUT_S):
    """The result of an admin future, with Kafka errors turned into one CliError line."""
    from confluent_kafka import KafkaException

    try:
        return future.result(timeout=timeout_s)
    except KafkaException as error:
        raise kafka_failure(error, current.bootstrap_servers, subject) from None
    except TimeoutError:
        raise CliError(f"no answer from {current.bootstrap_servers} within {timeout_s:g}s") from None
    except ValueError as error:  # confluent-kafka raises ValueError for bad arguments
        raise CliError(str(error)) from None


def describe_kafka_error(error) -> str:
    inner = error.args[0] if getattr(error, "args", None) else error
    if hasattr(inner, "str"):
        return inner.str()
    return str(inner)


def error_name(error) -> str:
    inner = error.args[0] if getattr(error, "args", None) else error
    return inner.name() if hasattr(inner, "name") else ""


_MESSAGES = {
    "TOPIC_ALREADY_EXISTS": "topic {subject} already exists",
    "UNKNOWN_TOPIC_OR_PART": "unknown topic {subject}",
    "_UNKNOWN_TOPIC": "unknown topic {subject}",
    "INVALID_PARTITIONS": "invalid partition count for {subject}: {detail}",
    "INVALID_REPLICATION_FACTOR": "invalid replication factor for {subject}: {detail}",
    "INVALID_CONFIG": "bad config for {subject}: {detail}",
    "INVALID_TOPIC_EXCEPTION": "invalid topic name {subject}: {detail}",
    "TOPIC_EXCEPTION": "invalid topic name {subject}: {detail}",  # librdkafka's name for code 17
    "GROUP_ID_NOT_FOUND": "unknown group {subject}",
    "NON_EMPTY_GROUP": "group {subject} has active members; stop its consumers first",
    "UNKNOWN_MEMBER_ID": "group {subject} has active members; stop its consumers first",
    "POLICY_VIOLATION": "refused by the broker for {subject}: {detail}",
}


def kafka_failure(error, bootstrap_servers: str, subject: str = "") -> CliError:
    """One line naming what failed and why, from a KafkaException."""
    name, detail = error_name(error), describe_kafka_error(error)
    if name in ("_TRANSPORT", "_ALL_BROKERS_DOWN", "_RESOLVE", "_TIMED_OUT") and _security_failures:
        # librdkafka reports a refused login or TLS handshake as "all brokers down"; say why
        return CliError(f"cannot connect to {bootstrap_servers}: {_security_failures[-1]}")
    if name in ("_TRANSPORT", "_ALL_BROKERS_DOWN", "_RESOLVE"):
        return CliError(unreachable_message(bootstrap_servers))
    if name == "_TIMED_OUT":
        return CliError(f"timed out waiting for {bootstrap_servers}: {detail}")
    template = _MESSAGES.get(name)
    if template and subject:
        return CliError(template.format(subject=f"'{subject}'", detail=detail))
    prefix = f"{subject}: " if subject else ""
    return CliError(f"{prefix}{detail} ({name})" if name and name not in detail else f"{prefix}{detail}")


# ---- output -------------------------------------------------------------------------------


def emit_json(value: Any) -> None:
    json.dump(value, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


def emit_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, file=None) -> None:
    """Left-aligned columns separated by two spaces; None prints as '-'."""
    file = file or sys.stdout
    cells = [[_cell(value) for value in row] for row in rows]
    widths = [len(header) for header in headers]
    for row in cells:
        for index, value in enumerate(row):
            widths[index] = max(widths[index], len(value))
    lines = [headers, *cells]
    for row in lines:
        file.write("  ".join(value.ljust(widths[i]) for i, value in enumerate(row)).rstrip() + "\n")


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, (list, tuple)):
        return ",".join(str(item) for item in value) if value else "-"
    return str(value)


def emit_keyvalues(pairs: Mapping[str, Any], *, file=None) -> None:
    file = file or sys.stdout
    width = max((len(key) for key in pairs), default=0)
    for key, value in pairs.items():
        file.write(f"{key.ljust(width)}  {_cell(value)}\n")
