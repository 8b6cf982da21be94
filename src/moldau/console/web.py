"""`moldau console`'s web server: HTML pages, a JSON API, and a sampler for the charts.

Theory of operation. One aiohttp application. Every page (overview, topics, a topic, its
messages, groups, a group, Connect) is the same small HTML shell; the page's own script
(static/console.js, ours, no build step) reads the page from the URL, asks the JSON API under
/api/ and renders the answer into the document as text nodes (never as markup, so data from
the cluster cannot inject anything), then asks again every 2 seconds: pages update by
themselves. Names travel as query parameters (`/topic?name=…`), so any character works.

The API calls ClusterView (cluster.py) in a thread pool. A background sampler wakes every
`SAMPLE_INTERVAL_S`: it checks that the cluster answers (the page shows a banner while it does
not, and drops it when the cluster is back), records throughput (records/s in from log end
offsets, which Kafka offers too; bytes/s and records/s out from Moldau nodes' /metrics) and
each group's total lag, into ring buffers that feed the charts.

Nothing changes the cluster without a confirmation: deleting a topic or resetting a group's
offsets needs `confirm` equal to the name in the request body (the page asks the user to type
it), and every change is a POST carrying the `X-Moldau-Console` header, which a cross-site form
cannot send. The server binds 127.0.0.1 by default.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import time
from importlib import resources
from typing import Any, Callable

import aiohttp
from aiohttp import web

from moldau import __version__
from moldau.console import metrics as node_metrics
from moldau.console.cluster import ClusterView, ConsoleError
from moldau.console.render import CAP_BYTES_DEFAULT, CAP_BYTES_MAX

log = logging.getLogger("moldau.console")

SAMPLE_INTERVAL_S = 2.0
HISTORY_SAMPLES = 300  # 10 minutes at one sample per 2 s
GROUPS_SAMPLED_MAX = 50
PAGES = {"/": "overview", "/topics": "topics", "/topic": "topic", "/messages": "messages",
         "/groups": "groups", "/group": "group", "/connect": "connect"}
_HEADER = "X-Moldau-Console"


class Console:
    """The console's state: the cluster view, the sampler's history, the Connect URL."""

    def __init__(self, view: ClusterView, connect_url: str | None = None, metrics_urls: list[str] | None = None):
        self.view = view
        self.connect_url = connect_url.rstrip("/") if connect_url else None
        self.explicit_metrics = list(metrics_urls or [])
        self.discovered_metrics: dict[int, str] = {}
        self.reachable: bool | None = None
        self.last_error: str | None = None
        self.throughput: collections.deque = collections.deque(maxlen=HISTORY_SAMPLES)
        self.lag: dict[str, collections.deque] = {}
        self.partition_rates: dict[tuple[str, int], float] = {}
        self.sizes: dict[tuple[str, int], int] = {}
        self._previous: tuple[float, dict, dict] | None = None  # (time, end offsets, metric totals)
        self._session: aiohttp.ClientSession | None = None

    # --- sampling ----------------------------------------------------------------------
    def metrics_urls(self) -> list[str]:
        return self.explicit_metrics or [self.discovered_metrics[n] for n in sorted(self.discovered_metrics)]

    def sample(self) -> None:
        """One sampler step (blocking; runs in the pool)."""
        try:
            cluster = self.view.cluster()
        except ConsoleError as error:
            self.reachable, self.last_error = False, str(error)
            return
        self.reachable, self.last_error = True, None
        if not self.explicit_metrics:
            self._discover_metrics(cluster["nodes"])
        metadata = self.view.metadata()
        keys = [(t, p) for t in sorted(metadata.topics) for p in sorted(metadata.topics[t].partitions)]
        ends = self.view.end_offsets(keys)
        scrape = node_metrics.scrape_all(self.metrics_urls()) if self.metrics_urls() else None
        totals = {}
        if scrape is not None and any(scrape.nodes.values()):
            self.sizes = scrape.sizes
            totals = {what: scrape.totals.get(what, 0.0) for what in ("bytes_in", "bytes_out", "records_out")}
        self._record_throughput(time.time(), ends, totals)
        self._sample_lag()

    def _discover_metrics(self, nodes: list[dict]) -> None:
        for node in nodes:
            if node["alive"] and node["id"] not in self.discovered_metrics:
                port = self.view.broker_config(node["id"], "metrics.port")
                if port and port.isdigit():
                    self.discovered_metrics[node["id"]] = f"http://{node['host']}:{port}/metrics"

    def _record_throughput(self, now: float, ends: dict, totals: dict) -> None:
        previous, self._previous = self._previous, (now, ends, totals)
        if previous is None:
            return
        then, old_ends, old_totals = previous
        elapsed = max(1e-3, now - then)
        rates = {}
        for key, end in ends.items():
            if key in old_ends and not key[0].startswith("__"):
                rates[key] = max(0, end - old_ends[key]) / elapsed
        self.partition_rates = rates
        point = {"time": int(now * 1000), "records_in": round(sum(rates.values()), 1)}
        for what in ("bytes_in", "bytes_out", "records_out"):
            if what in totals and what in old_totals:
                point[what] = round(max(0.0, totals[what] - old_totals[what]) / elapsed, 1)
        self.throughput.append(point)

    def _sample_lag(self) -> None:
        try:
            groups = self.view.groups()
        except ConsoleError:
            return
        now = int(time.time() * 1000)
        for group in groups[:GROUPS_SAMPLED_MAX]:
            lag = self.view.group_lag(group["group"])
            if lag is not None:
                self.lag.setdefault(group["group"], collections.deque(maxlen=HISTORY_SAMPLES)).append(
                    {"time": now, "lag": lag})

    async def sample_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                await loop.run_in_executor(None, self.sample)
            except Exception:  # the sampler must outlive a surprise; the next step tries again
                log.exception("console sampler step failed")
            await asyncio.sleep(SAMPLE_INTERVAL_S)

    # --- Connect -----------------------------------------------------------------------
    async def connect_call(self, method: str, path: str) -> tuple[int, Any]:
        if self.connect_url is None:
            raise ConsoleError("no Connect REST URL given (moldau console --connect-url URL)", 404)
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        try:
            async with self._session.request(method, self.connect_url + path) as response:
                text = await response.text()
                return response.status, json.loads(text) if text else None
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as error:
            raise ConsoleError(f"Connect at {self.connect_url} did not answer: {error or type(error).__name__}",
                               503) from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def build_app(console: Console, sample: bool = True) -> web.Application:
    app = web.Application(client_max_size=CAP_BYTES_MAX * 2)
    app["console"] = console
    for path in PAGES:
        app.router.add_get(path, _page)
    app.router.add_get("/static/{name}", _static)
    api = _Api(console)
    for method, path, handler in api.routes():
        app.router.add_route(method, "/api" + path, handler)
    if sample:
        app.cleanup_ctx.append(_sampler)
    return app


async def _sampler(app: web.Application):
    task = asyncio.create_task(app["console"].sample_forever())
    yield
    task.cancel()
    await app["console"].close()


_STATIC_TYPES = {"console.js": "text/javascript", "console.css": "text/css", "shell.html": "text/html"}


def _asset(name: str) -> bytes:
    return resources.files("moldau.console").joinpath("static", name).read_bytes()


async def _page(request: web.Request) -> web.Response:
    shell = _asset("shell.html").decode().replace("{{page}}", PAGES[request.path]).replace("{{version}}", __version__)
    return web.Response(text=shell, content_type="text/html",
                        headers={"Content-Security-Policy": "default-src 'self'; img-src 'self' data:",
                                 "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"})


async def _static(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in _STATIC_TYPES:
        raise web.HTTPNotFound()
    return web.Response(body=_asset(name), content_type=_STATIC_TYPES[name],
                        headers={"X-Content-Type-Options": "nosniff"})


class _Api:
    def __init__(self, console: Console):
        self.console = console

    def routes(self) -> list[tuple[str, str, Callable]]:
        return [
            ("GET", "/status", self.status), ("GET", "/overview", self.overview), ("GET", "/topics", self.topics),
            ("POST", "/topics", self.create_topic), ("GET", "/topic", self.topic),
            ("POST", "/topic/delete", self.delete_topic), ("GET", "/messages", self.messages),
            ("POST", "/produce", self.produce), ("GET", "/groups", self.groups), ("GET", "/group", self.group),
            ("POST", "/group/reset", self.reset), ("GET", "/connect", self.connectors),
            ("POST", "/connect/action", self.connect_action),
        ]

    async def _run(self, function, *args) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, function, *args)

    async def status(self, request):
        return _respond(self._status())

    def _status(self) -> dict:
        console = self.console
        return {"reachable": console.reachable, "error": console.last_error,
                "bootstrap_servers": console.view.settings.bootstrap_servers,
                "metrics": console.metrics_urls(), "connect": console.connect_url}

    async def overview(self, request):
        async def build():
            cluster = await self._run(self.console.view.cluster)
            topics = await self._run(self.console.view.topics, self.console.sizes)
            return dict(cluster, topics=len(topics), partitions=sum(t["partitions"] for t in topics),
                        under_replicated=sum(t["under_replicated"] for t in topics),
                        offline=sum(t["offline"] for t in topics), throughput=list(self.console.throughput),
                        metrics=self.console.metrics_urls())
        return await _guard(build())

    async def topics(self, request):
        return await _guard(self._run(self.console.view.topics, self.console.sizes))

    async def topic(self, request):
        name = _param(request, "name")

        async def build():
            described = await self._run(self.console.view.topic, name, self.console.sizes)
            for partition in described["partitions"]:
                partition["records_per_s"] = self.console.partition_rates.get((name, partition["partition"]))
            return described
        return await _guard(build())

    async def create_topic(self, request):
        body = await _mutation(request)
        try:
            partitions = int(body.get("partitions", 1))
            replication = int(body.get("replication_factor", -1))
        except (TypeError, ValueError):
            return _respond({"error": "partitions and replication factor must be numbers"}, 400)
        configs = body.get("configs") or {}
        if not isinstance(configs, dict):
            return _respond({"error": "configs must be an object of name → value"}, 400)
        configs = {str(k): str(v) for k, v in configs.items()}
        return await _guard(self._run(self.console.view.create_topic, str(body.get("name", "")), partitions,
                                      replication, configs), created=True)

    async def delete_topic(self, request):
        body = await _mutation(request)
        name = str(body.get("name", ""))
        _confirmed(body, name)
        return await _guard(self._run(self.console.view.delete_topic, name))

    async def messages(self, request):
        query = request.query
        try:
            partitions = [int(p) for p in query.get("partitions", "").split(",") if p.strip()] or None
            value = int(query["value"]) if query.get("value", "").strip() else None
            limit = int(query.get("limit", "50"))
            cap = int(query.get("cap", str(CAP_BYTES_DEFAULT)))
            positions = {int(p): int(o) for p, _, o in (item.partition(":") for item in
                                                         query.get("positions", "").split(",") if item)}
        except ValueError:
            return _respond({"error": "partitions, value, limit, cap and positions must be numbers"}, 400)
        return await _guard(self._run(self.console.view.browse, _param(request, "topic"), partitions,
                                      query.get("mode", "end"), value, limit, cap, positions))

    async def produce(self, request):
        body = await _mutation(request)
        try:
            partition = int(body["partition"]) if str(body.get("partition", "")).strip() else None
        except ValueError:
            return _respond({"error": "partition must be a number"}, 400)
        headers = [(str(h.get("key", "")), _bytes(h.get("value"))) for h in body.get("headers") or []
                   if isinstance(h, dict) and h.get("key")]
        return await _guard(self._run(self.console.view.produce, str(body.get("topic", "")), partition,
                                      _bytes(body.get("key")), _bytes(body.get("value")), headers), created=True)

    async def groups(self, request):
        return await _guard(self._run(self.console.view.groups))

    async def group(self, request):
        name = _param(request, "name")

        async def build():
            described = await self._run(self.console.view.group, name)
            history = self.console.lag.setdefault(name, collections.deque(maxlen=HISTORY_SAMPLES))
            history.append({"time": int(time.time() * 1000), "lag": described["total_lag"]})  # the chart ends at now
            described["lag_history"] = list(history)
            return described
        return await _guard(build())

    async def reset(self, request):
        body = await _mutation(request)
        name = str(body.get("name", ""))
        _confirmed(body, name)
        topics = [str(t) for t in body.get("topics") or [] if str(t).strip()]
        value = None if body.get("value") in (None, "") else str(body["value"])
        return await _guard(self._run(self.console.view.reset_offsets, name, str(body.get("to", "")), value, topics))

    async def connectors(self, request):
        async def build():
            status, names = await self.console.connect_call("GET", "/connectors?expand=status&expand=info")
            if status != 200:
                raise ConsoleError(f"Connect answered {status}: {names}", 502)
            return {"url": self.console.connect_url,
                    "connectors": [dict(name=name, **names[name]) for name in sorted(names)]}
        return await _guard(build())

    async def connect_action(self, request):
        body = await _mutation(request)
        name, action = str(body.get("name", "")), body.get("action")
        paths = {"pause": ("PUT", "/pause"), "resume": ("PUT", "/resume"),
                 "restart": ("POST", "/restart?includeTasks=true")}
        if action not in paths or not name:
            return _respond({"error": "action must be pause, resume or restart, with a connector name"}, 400)
        from urllib.parse import quote

        method, suffix = paths[action]
        status, answer = await _guard_raw(self.console.connect_call(method, f"/connectors/{quote(name, safe='')}{suffix}"))
        if status >= 400:
            return _respond({"error": (answer or {}).get("message", f"Connect answered {status}")}, status)
        return _respond({"ok": True, "status": status})


def _param(request: web.Request, name: str) -> str:
    value = request.query.get(name)
    if not value:
        raise web.HTTPBadRequest(text=json.dumps({"error": f"missing ?{name}="}), content_type="application/json")
    return value


async def _mutation(request: web.Request) -> dict:
    """The JSON body of a change; refused unless the console's own page sent it."""
    if request.headers.get(_HEADER) != "1":
        raise web.HTTPForbidden(text=json.dumps({"error": f"changes need the {_HEADER} header (the console page sends it)"}),
                                content_type="application/json")
    try:
        body = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text=json.dumps({"error": "expected a JSON object"}), content_type="application/json")
    return body


def _confirmed(body: dict, name: str) -> None:
    if not name or body.get("confirm") != name:
        raise web.HTTPBadRequest(text=json.dumps({"error": "not confirmed: type the name to confirm"}),
                                 content_type="application/json")


def _bytes(value: Any) -> bytes | None:
    return None if value is None else str(value).encode("utf-8")


def _respond(body: Any, status: int = 200) -> web.Response:
    return web.json_response(body, status=status, dumps=lambda v: json.dumps(v, ensure_ascii=False),
                             headers={"Cache-Control": "no-store"})


async def _guard(awaitable, created: bool = False) -> web.Response:
    try:
        result = await awaitable
    except ConsoleError as error:
        return _respond({"error": str(error)}, error.status)
    return _respond({"ok": True} if result is None else result, 201 if created else 200)


async def _guard_raw(awaitable) -> tuple[int, Any]:
    try:
        return await awaitable
    except ConsoleError as error:
        return error.status, {"message": str(error)}
