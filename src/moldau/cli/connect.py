"""`moldau connect standalone WORKER.properties CONNECTOR.properties...` — Kafka's connect-standalone.sh.

Theory of operation: the worker file is read and checked first; any problem there (or with the
offsets file, or the REST port) is a one-line error and exit code 1, because nothing can run.
Then each connector file is read and started in order. A broken connector file — unreadable,
unknown `connector.class`, missing settings — is reported on stderr as one block naming the file
and every problem, and the worker carries on with the others (fix it and PUT the config through
the REST API, or restart). The worker runs until SIGINT or SIGTERM, then stops every task
(each makes its final offset commit) and exits 0.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from moldau.cli.main import CliError


def register(subparsers) -> None:
    parser = subparsers.add_parser("connect", help="Kafka Connect runtime (standalone mode)",
                                   description="Run Kafka Connect connectors: file source/sink and Python connectors.")
    modes = parser.add_subparsers(dest="connect_mode", metavar="MODE")
    standalone = modes.add_parser("standalone", help="run a standalone worker, like connect-standalone.sh",
                                  description="Run a standalone Connect worker with the given connectors.")
    standalone.add_argument("worker_properties", metavar="WORKER.properties",
                            help="worker settings (bootstrap.servers, converters, offsets file, listeners)")
    standalone.add_argument("connector_properties", metavar="CONNECTOR.properties", nargs="*",
                            help="one file per connector (name, connector.class, ...)")
    standalone.set_defaults(func=run_standalone)
    parser.set_defaults(func=lambda args: _usage(parser))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def run_standalone(args: argparse.Namespace) -> int:
    from moldau.connect.config import ConfigError
    from moldau.connect.herder import ConflictError
    from moldau.connect.offsets import OffsetFileError
    from moldau.properties import PropertiesError, load_file
    from moldau.connect.standalone import StandaloneWorker

    try:
        worker = StandaloneWorker(load_file(args.worker_properties)).start()
    except OSError as error:
        raise CliError(f"cannot read worker config {args.worker_properties}: {error.strerror}") from None
    except (ConfigError, PropertiesError, OffsetFileError) as error:
        raise CliError(f"{args.worker_properties}: {error}") from None
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for path in args.connector_properties:
            try:
                worker.add_connector(load_file(path))
            except OSError as error:
                print(f"moldau connect: cannot read connector config {path}: {error.strerror}", file=sys.stderr)
            except (ConfigError, ConflictError, PropertiesError) as error:
                print(f"moldau connect: connector config {path} was not started: {error}", file=sys.stderr)
        sys.stderr.flush()
        while not stop.wait(0.2):
            pass
    finally:
        for sig, handler in previous.items():  # a second Ctrl-C interrupts a slow shutdown
            signal.signal(sig, handler)
        worker.stop()
    return 0
