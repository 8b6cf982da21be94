"""The `moldau` command: one subcommand module each, registered in SUBCOMMANDS.

Each module in SUBCOMMANDS exposes `register(subparsers)`, which adds its subparser and sets
`func` to a callable taking the parsed arguments and returning the exit code. Errors a user
can cause are raised as `CliError` and printed as one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from moldau import __version__

SUBCOMMANDS = (
    "moldau.cli.server",
)


class CliError(Exception):
    """A failure the user can act on: printed as one line, exit code 1 (or `exit_code`)."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="moldau", description="Kafka-compatible messaging in Python")
    parser.add_argument("--version", action="version", version=f"moldau {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
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
