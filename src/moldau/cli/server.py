"""`moldau server`: one broker (with its own controller) in the foreground.

Reads Kafka's server.properties keys (--config), then --override key=value pairs, then the
explicit --host/--port/--data-dir/--metrics-port flags. Prints exactly one line on stdout once
it accepts connections (naming the metrics URL when --metrics-port or metrics.port is set);
warnings go to stderr. SIGTERM or SIGINT shut it down cleanly with exit 0.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from moldau.cli.common import integer
from moldau.cli.main import CliError


def register(subparsers) -> None:
    parser = subparsers.add_parser("server", help="run a broker (Kafka's kafka-server-start)",
                                   description="Run a Moldau broker with its own controller.")
    parser.add_argument("config_file", nargs="?", metavar="server.properties", help="Kafka-style server.properties")
    parser.add_argument("--config", dest="config_option", metavar="FILE", help="Kafka-style server.properties")
    parser.add_argument("--data-dir", help="where logs are stored (default ./moldau-data, or log.dirs)")
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=integer(0, 65535), help="port to listen on (default 9092)")
    parser.add_argument("--metrics-port", type=integer(0, 65535), metavar="PORT",
                        help="serve Prometheus /metrics and /health/live, /health/ready on this port "
                             "(metrics.port; default off; 0 picks a free port)")
    parser.add_argument("--log-level", choices=("error", "warning", "info", "debug"), default="warning",
                        help="what the broker logs to stderr (default warning; info: topics created and "
                             "deleted, configs changed, group rebalances, expired members, retention)")
    parser.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                        help="set a server.properties key (repeatable)")
    parser.add_argument("--add-scram", action="append", default=[], metavar="'SCRAM-SHA-512=[name=U,password=P]'",
                        help="create this SCRAM credential unless the user has one (kafka-storage format's "
                             "--add-scram: how a SCRAM-only cluster gets its first user; repeatable)")
    parser.set_defaults(func=run)


def load_config(args):
    from moldau.broker.config import BrokerConfig, ConfigFileError
    from moldau.properties import PropertiesError, load_file

    properties: dict[str, str] = {}
    path = args.config_option or args.config_file
    if path:
        try:
            properties.update(load_file(path))
        except OSError as error:
            raise CliError(f"cannot read {path}: {error.strerror}") from None
        except PropertiesError as error:
            raise CliError(str(error)) from None
    for item in args.override:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise CliError(f"--override takes KEY=VALUE, got {item!r}")
        properties[key.strip()] = value.strip()
    try:
        config = BrokerConfig.from_properties(properties)
    except ConfigFileError as error:
        raise CliError(str(error)) from None
    if args.data_dir:
        config.data_dir = args.data_dir
    if args.host:
        config.host = args.host
    if args.port is not None:
        config.port = args.port
    if getattr(args, "metrics_port", None) is not None:
        if not 0 <= args.metrics_port <= 65535:
            raise CliError(f"--metrics-port must be a port number (0-65535), got {args.metrics_port}")
        config.metrics_port = args.metrics_port
    return config


def run(args) -> int:
    config = load_config(args)
    from moldau.controller.security_records import parse_add_scram

    try:
        config.bootstrap_scram = [parse_add_scram(value) for value in args.add_scram]
    except ValueError as error:
        raise CliError(f"--add-scram: {error}") from None
    for warning in config.warnings:
        print(f"moldau: warning: {warning}", file=sys.stderr)
    logging.basicConfig(level=getattr(logging, getattr(args, "log_level", "warning").upper()),
                        format="[%(asctime)s] %(levelname)s %(name)s: %(message)s")
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    from moldau.runtime.data_dir import DataDirError
    from moldau.runtime.server import ListenError
    from moldau.runtime.tls import TlsConfigError

    try:
        return runner(_serve(config))
    except (DataDirError, ListenError, TlsConfigError) as error:
        raise CliError(str(error)) from None
    except OSError as error:  # reading the data directory: name the file, not the listener
        where = f" ({error.filename})" if error.filename else ""
        raise CliError(f"cannot start: {error.strerror or error}{where}") from None


async def _serve(config) -> int:
    from moldau.runtime.server import Server

    server = Server(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    host, port = await server.start()
    if config.bootstrap_scram:
        server.core.add_scram_credentials(config.bootstrap_scram)
    others = [f"{l.host or '0.0.0.0'}:{l.port} ({l.name})" for l in config.listener_settings.broker_listeners
              if l.name != config.first_listener.name]
    listening = f"{host}:{port}" + (", " + ", ".join(others) if others else "")
    metrics = f"; metrics on http://{host}:{config.metrics_port}/metrics" if config.metrics_port is not None else ""
    print(f"moldau server listening on {listening}{metrics}", flush=True)
    await stop.wait()
    await server.stop()
    return 0
