"""`moldau console`: serve the web console on 127.0.0.1 and print its URL.

Runs until SIGINT or SIGTERM. The console talks to the cluster through confluent-kafka with the
global --bootstrap-server and --command-config (so it works against Apache Kafka too), finds
Moldau nodes' /metrics by itself (or takes --metrics-url), and shows Kafka Connect when given
--connect-url.
"""

from __future__ import annotations

import asyncio
import signal

from moldau.cli.main import CliError


def register(subparsers) -> None:
    from moldau.cli.common import client_options, integer

    parser = subparsers.add_parser("console", parents=[client_options()], help="web console for the cluster",
                                   description="Serve a web console for a Moldau or Apache Kafka cluster.")
    parser.add_argument("--port", type=integer(0, 65535), default=8080, help="port to serve on (default 8080; 0 picks a free one)")
    parser.add_argument("--host", default="127.0.0.1", help="address to serve on (default 127.0.0.1)")
    parser.add_argument("--connect-url", metavar="URL", help="a Kafka Connect REST API to show (e.g. http://127.0.0.1:8083)")
    parser.add_argument("--metrics-url", action="append", default=[], metavar="URL",
                        help="a node's /metrics URL (repeatable; default: found from each node's metrics.port)")
    parser.set_defaults(func=run)


def run(args) -> int:
    from moldau.cli.common import settings

    if not 0 <= args.port <= 65535:
        raise CliError(f"--port must be a port number (0-65535), got {args.port}")
    current = settings(args)
    return asyncio.run(_serve(current, args))


async def _serve(current, args) -> int:
    from aiohttp import web

    from moldau.console.cluster import ClusterView
    from moldau.console.web import Console, build_app

    try:
        view = ClusterView(current)
    except Exception as error:  # confluent-kafka refuses a bad --command-config
        raise CliError(f"bad client configuration: {error}") from None
    console = Console(view, args.connect_url, args.metrics_url)
    runner = web.AppRunner(build_app(console), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.port)
    try:
        await site.start()
    except OSError as error:
        await runner.cleanup()
        raise CliError(f"cannot listen on {args.host}:{args.port}: {error.strerror or error}") from None
    port = site._server.sockets[0].getsockname()[1]
    print(f"moldau console on http://{args.host}:{port}/ (cluster {current.bootstrap_servers})", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    await runner.cleanup()
    await loop.run_in_executor(None, view.close)
    return 0
