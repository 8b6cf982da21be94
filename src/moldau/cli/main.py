"""The `moldau` command: one subcommand module each, registered in SUBCOMMANDS.

Each module in SUBCOMMANDS exposes `register(subparsers)`, which adds its subparser and sets
`func` to a callable taking the parsed arguments and returning the exit code. Errors a user
can cause are raised as `CliError` and printed as one line on stderr, never a traceback.

Global options (`--bootstrap-server`, `--command-config`, `--output`) may come before the
subcommand or after it; see moldau.cli.common.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from moldau import __version__

SUBCOMMANDS = (
    "moldau.cli.server",
    "moldau.cli.topics",
    "moldau.cli.produce",
    "moldau.cli.consume",
    "moldau.cli.groups",
    "moldau.cli.transactions",
    "moldau.cli.configs",
    "moldau.cli.connect",
    "moldau.cli.console",
    "moldau.cli.completion",
    "moldau.cli.perf",
    "moldau.cli.certs",
    "moldau.cli.acls",
)


class CliError(Exception):
    """A failure the user can act on: printed as one line, exit code 1 (or `exit_code`)."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


def build_parser() -> argparse.ArgumentParser:
    from moldau.cli.common import client_options

    parser = argparse.ArgumentParser(
        prog="moldau", description="Kafka-compatible messaging in Python", parents=[client_options()]
    )
    parser.add_argument("--version", action="version", version=f"moldau {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    if extras:
        # argparse stops filling a `words` positional at the first option, so a word after an
        # option (`configs alter --topic T k=v`) lands here; options still must be known.
        if hasattr(args, "words") and not any(extra.startswith("-") for extra in extras):
            args.words = list(args.words) + extras
        else:
            parser.error(f"unrecognized arguments: {' '.join(extras)}")
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except CliError as error:
        print(f"moldau: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`moldau consume … | head`): not an error worth a line.
        _silence_stdout()
        return 0
    except Exception as error:  # never a traceback for the user; MOLDAU_DEBUG=1 shows it
        if os.environ.get("MOLDAU_DEBUG"):
            raise
        from confluent_kafka import KafkaException

        if isinstance(error, KafkaException):
            from moldau.cli.common import kafka_failure, settings

            print(f"moldau: {kafka_failure(error, settings(args).bootstrap_servers)}", file=sys.stderr)
            return 1
        if isinstance(error, OSError) and error.filename:  # name the file, which is the real cause
            print(f"moldau: {error.filename}: {error.strerror or error}", file=sys.stderr)
            return 1
        print(f"moldau: unexpected error: {type(error).__name__}: {error} (MOLDAU_DEBUG=1 shows where)", file=sys.stderr)
        return 1


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except OSError:
        pass
