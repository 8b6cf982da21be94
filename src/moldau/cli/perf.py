"""`moldau perf produce|consume|end-to-end`: load generators shaped like Kafka's perf tools.

Theory of operation. Each subcommand turns its flags into a librdkafka configuration (the common
client options, then `--command-config`, then `--producer-prop`/`--consumer-prop` words, which win)
and hands it to moldau.perf, which does the work. Output follows kafka-producer-perf-test and
kafka-consumer-perf-test line for line with `--output table` (the default); with `--output json`
the progress lines go to stderr and stdout gets one JSON object, which is what benchmarks/ reads.

Kafka's spellings are accepted too: `--producer-props k=v k=v` and `--producer.config FILE`,
`--consumer.config FILE`, and `bootstrap.servers` inside the properties instead of
`--bootstrap-server`.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys

from moldau.cli.common import (
    base_config,
    check_reachable,
    check_topic_name,
    client_options,
    java_client_properties,
    parse_key_values,
    rate,
    read_properties,
    settings,
)
from moldau.cli.main import CliError


def register(subparsers) -> None:
    parser = subparsers.add_parser("perf", help="measure throughput and latency (kafka-*-perf-test)",
                                   description="Load generators for any Kafka-compatible cluster.")
    commands = parser.add_subparsers(dest="perf_command", metavar="{produce,consume,end-to-end}")
    _register_produce(commands)
    _register_consume(commands)
    _register_end_to_end(commands)
    parser.set_defaults(func=lambda args: _usage(parser))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def _producer_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--producer-prop", "--producer-props", "-X", dest="producer_props", nargs="+",
                        action="extend", default=[], metavar="KEY=VALUE",
                        help="producer config, librdkafka names (repeatable); acks=1, linger.ms=5, …")
    parser.add_argument("--producer.config", "--producer-config", dest="producer_config", metavar="FILE",
                        help="producer properties file")


def _consumer_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--consumer-prop", "--consumer-props", dest="consumer_props", nargs="+", action="extend",
                        default=[], metavar="KEY=VALUE", help="consumer config, librdkafka names (repeatable)")
    parser.add_argument("--consumer.config", "--consumer-config", dest="consumer_config", metavar="FILE",
                        help="consumer properties file")


def _register_produce(commands) -> None:
    parser = commands.add_parser("produce", parents=[client_options(with_x=False)], help="kafka-producer-perf-test",
                                 description="Send records as fast as allowed; report throughput and latency.")
    parser.add_argument("--topic", required=True, help="topic to write to (it must exist)")
    parser.add_argument("--num-records", type=_positive_int, required=True, metavar="N", help="records to send")
    parser.add_argument("--record-size", type=_positive_int, required=True, metavar="BYTES",
                        help="size of each record's value")
    parser.add_argument("--throughput", type=rate, default=-1, metavar="RECORDS_PER_SEC",
                        help="cap the send rate; -1 (default) means as fast as possible")
    _producer_options(parser)
    parser.add_argument("--reporting-interval", type=_positive_int, default=5000, metavar="MS",
                        help="progress line interval (default 5000)")
    parser.set_defaults(func=run_produce_command)


def _register_consume(commands) -> None:
    parser = commands.add_parser("consume", parents=[client_options(with_x=False)], help="kafka-consumer-perf-test",
                                 description="Read N messages; report throughput.")
    parser.add_argument("--topic", required=True, help="topic to read")
    parser.add_argument("--messages", type=_positive_int, required=True, metavar="N", help="messages to read")
    parser.add_argument("--group", help="consumer group (subscribe); without it every partition is assigned "
                        "from the beginning, needing no group coordinator")
    parser.add_argument("--timeout", type=_positive_int, default=10000, metavar="MS",
                        help="give up after MS with no new message (default 10000)")
    parser.add_argument("--show-detailed-stats", action="store_true", help="a progress line every interval")
    parser.add_argument("--reporting-interval", type=_positive_int, default=5000, metavar="MS",
                        help="progress line interval with --show-detailed-stats (default 5000)")
    _consumer_options(parser)
    parser.set_defaults(func=run_consume_command)


def _register_end_to_end(commands) -> None:
    parser = commands.add_parser("end-to-end", parents=[client_options(with_x=False)],
                                 help="produce at a fixed rate and consume in the same process",
                                 description="End-to-end latency (produce → consume) at a fixed rate on an "
                                 "existing topic.")
    parser.add_argument("--topic", required=True, help="an existing topic, written and read")
    parser.add_argument("--num-records", type=_positive_int, required=True, metavar="N", help="records to send")
    parser.add_argument("--record-size", type=_positive_int, default=100, metavar="BYTES",
                        help="size of each record's value (default 100)")
    parser.add_argument("--throughput", type=rate, required=True, metavar="RECORDS_PER_SEC",
                        help="the fixed send rate the latency is measured at")
    _producer_options(parser)
    _consumer_options(parser)
    parser.set_defaults(func=run_end_to_end_command)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {value}")
    return value


def client_config(args: argparse.Namespace, words: list[str], config_file: str | None, what: str) -> dict:
    """Common options, then the properties file, then KEY=VALUE words; bootstrap checked reachable."""
    current = settings(args)
    config = base_config(current)
    config["client.id"] = "moldau-perf"
    if config_file:
        config.update(java_client_properties(read_properties(config_file)))
    config.update(java_client_properties(parse_key_values(words, what)))
    if "test.mock.num.brokers" not in config:  # librdkafka's in-process mock cluster needs no broker
        check_reachable(str(config["bootstrap.servers"]))
    return config


def _emitter(args: argparse.Namespace):
    json_output = settings(args).output == "json"
    stream = sys.stderr if json_output else sys.stdout

    def emit(line: str) -> None:
        stream.write(line + "\n")
        stream.flush()

    return json_output, emit


def run_produce_command(args: argparse.Namespace) -> int:
    from moldau.perf.produce import run_produce

    check_topic_name(args.topic)

    config = client_config(args, args.producer_props, args.producer_config, "producer property")
    json_output, emit = _emitter(args)
    summary, first_error = _kafka_call(lambda: run_produce(
        config, args.topic, args.num_records, args.record_size, args.throughput, emit, args.reporting_interval / 1000))
    if json_output:
        print(json.dumps({**summary.as_json(), "first_error": first_error}))
    else:
        print(summary.line())
    if summary.errors:
        raise CliError(f"{summary.errors} of {args.num_records} records failed; first: {first_error}")
    return 0


def run_consume_command(args: argparse.Namespace) -> int:
    from moldau.perf.consume import run_consume
    from moldau.perf.stats import ConsumeSummary

    check_topic_name(args.topic)

    config = client_config(args, args.consumer_props, args.consumer_config, "consumer property")
    json_output, emit = _emitter(args)
    summary = _kafka_call(lambda: run_consume(config, args.topic, args.messages, args.group, args.timeout / 1000,
                                              emit if args.show_detailed_stats else None,
                                              args.reporting_interval / 1000))
    if json_output:
        print(json.dumps(summary.as_json()))
    else:
        print(ConsumeSummary.HEADER)
        print(summary.row(_date))
    if summary.messages < args.messages:
        raise CliError(f"consumed {summary.messages} of {args.messages} messages: "
                       f"nothing new for {args.timeout} ms (--timeout)")
    return 0


def run_end_to_end_command(args: argparse.Namespace) -> int:
    from moldau.perf.end_to_end import run_end_to_end

    check_topic_name(args.topic)

    if args.throughput <= 0:
        raise CliError("--throughput must be a positive rate for end-to-end latency")
    producer = client_config(args, args.producer_props, args.producer_config, "producer property")
    consumer = client_config(args, args.consumer_props, args.consumer_config, "consumer property")
    json_output, emit = _emitter(args)
    summary = _kafka_call(lambda: run_end_to_end(producer, consumer, args.topic, args.num_records,
                                                 args.record_size, args.throughput, emit))
    print(json.dumps(summary.as_json()) if json_output else summary.line())
    if summary.records < summary.expected:
        raise CliError(f"only {summary.records} of {summary.expected} records came back")
    return 0


def _kafka_call(call):
    """Run a generator; its start-up failures (unknown topic, bad config) become one CliError line."""
    from confluent_kafka import KafkaException

    from moldau.perf.consume import ConsumeError

    try:
        return call()
    except (ConsumeError, ValueError) as error:
        raise CliError(str(error)) from None
    except KafkaException as error:
        from moldau.cli.common import describe_kafka_error

        raise CliError(f"client error: {describe_kafka_error(error)}") from None


def _date(epoch_ms: int) -> str:
    """Kafka's ConsumerPerformance date format: yyyy-MM-dd HH:mm:ss:SSS."""
    moment = datetime.datetime.fromtimestamp(epoch_ms / 1000)
    return moment.strftime("%Y-%m-%d %H:%M:%S:") + f"{moment.microsecond // 1000:03d}"
