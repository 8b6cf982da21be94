"""One HTTP stack for the tools: an aiohttp application served from a thread of its own.

Theory of operation. Everything Moldau serves over HTTP runs on aiohttp: a node's /metrics and
/health (runtime/metrics.py, inside the broker's event loop), Connect's REST API and the web
console. The tools are otherwise synchronous programs (a Connect worker's tasks are threads),
so `BackgroundSite` gives them an aiohttp application on its own event loop in a daemon
thread. The listening socket is bound in the constructor, so a taken port fails at once with
OSError (and port 0 is resolved before `start()`), as `http.server` did.

    site = BackgroundSite(app, "127.0.0.1", 0)
    site.start(); ...; site.stop()
"""

from __future__ import annotations

import asyncio
import socket
import threading

from aiohttp import web

_STOP_TIMEOUT_S = 10


class BackgroundSite:
    def __init__(self, app: web.Application, host: str, port: int):
        self.app = app
        self.socket = socket.create_server((host, port), reuse_port=False)
        self.host = host
        self.port = self.socket.getsockname()[1]
        self.url = f"http://{host}:{self.port}"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        started = threading.Event()
        failure: list[BaseException] = []
        self._thread = threading.Thread(target=self._run, args=(started, failure), name="http-" + str(self.port),
                                        daemon=True)
        self._thread.start()
        started.wait(_STOP_TIMEOUT_S)
        if failure:
            raise failure[0]

    def _run(self, started: threading.Event, failure: list[BaseException]) -> None:
        loop = self._loop = asyncio.new_event_loop()
        try:
            self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
            loop.run_until_complete(self._runner.setup())
            loop.run_until_complete(web.SockSite(self._runner, self.socket).start())
        except BaseException as error:  # reported to the starting thread
            failure.append(error)
            started.set()
            loop.close()
            return
        started.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

    def call(self, coroutine_function, *args):
        """Run `coroutine_function(*args)` on the site's loop and wait for its result."""
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coroutine_function(*args), self._loop).result(_STOP_TIMEOUT_S)

    def stop(self) -> None:
        if self._thread is None:
            self.socket.close()
            return
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(_STOP_TIMEOUT_S)
        self._thread = None
        self.socket.close()
