"""`moldau.Broker`: a real broker inside the current process, for tests and scripts.

The server runs on its own event loop in a daemon thread, bound to 127.0.0.1 on a free port,
with a temporary data directory unless one is given. `stop()` and `start()` (or `restart()`)
reuse the same data directory and port, so tests can check what survives a restart.

    with moldau.Broker() as broker:
        Producer({"bootstrap.servers": broker.bootstrap_servers})
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import threading

from moldau.broker.config import BrokerConfig
from moldau.runtime.server import Server

_START_TIMEOUT_S = 30

# Called with each broker just before it stops, while it still runs (the pytest plugin
# collects the API versions clients used, for the compatibility matrix).
STOP_HOOKS: list = []


class Broker:
    def __init__(self, data_dir: str | None = None, port: int = 0, config: dict[str, str] | None = None,
                 host: str = "127.0.0.1"):
        self._own_dir = data_dir is None
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="moldau-")
        properties = dict(config or {})
        self.config = BrokerConfig.from_properties(properties)
        self.config.data_dir = self.data_dir
        self.config.host = host
        self.config.port = port
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: Server | None = None

    @property
    def host(self) -> str:
        return self.config.host

    @property
    def port(self) -> int:
        return self.config.port

    @property
    def metrics_url(self) -> str | None:
        """http://host:port of /metrics and /health/* (config {"metrics.port": "0"}), else None."""
        port = self.config.metrics_port
        return f"http://{self.config.host}:{port}" if port else None

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.config.host}:{self.config.port}"

    def listener_port(self, name: str) -> int:
        """The port of a listener (`listeners=NAME://...`), once started."""
        listener = self.config.listener_settings.listener(name)
        if listener is None:
            raise KeyError(f"no listener named {name}")
        return listener.port

    def bootstrap_servers_for(self, name: str) -> str:
        listener = self.config.listener_settings.listener(name)
        return f"{(listener.host if listener.host not in ('', '0.0.0.0') else '127.0.0.1')}:{self.listener_port(name)}"

    def start(self) -> "Broker":
        if self._thread is not None:
            return self
        ready = threading.Event()
        failure: list[BaseException] = []
        self._thread = threading.Thread(target=self._run, args=(ready, failure), name="moldau-broker", daemon=True)
        self._thread.start()
        if not ready.wait(_START_TIMEOUT_S):
            raise RuntimeError("moldau broker did not start in time")
        if failure:
            self._thread = None
            raise failure[0]
        return self

    def _run(self, ready: threading.Event, failure: list[BaseException]) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        server = Server(self.config)
        try:
            loop.run_until_complete(server.start())
        except BaseException as error:  # reported to the starting thread
            failure.append(error)
            ready.set()
            loop.close()
            return
        self._server = server
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(server.stop())
            loop.close()

    def stop(self) -> None:
        if self._thread is None:
            return
        assert self._loop is not None
        for hook in STOP_HOOKS:
            hook(self)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(_START_TIMEOUT_S)
        self._thread = None
        self._server = None

    def restart(self) -> "Broker":
        self.stop()
        return self.start()

    def close(self) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> "Broker":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def call(self, function, *args):
        """Run `function(core, *args)` on the broker's loop thread and return its result
        (for tests that need to look at or nudge broker state)."""
        assert self._loop is not None and self._server is not None
        future = asyncio.run_coroutine_threadsafe(_call(self._server, function, args), self._loop)
        return future.result(_START_TIMEOUT_S)


async def _call(server: Server, function, args):
    return function(server.core, *args)
