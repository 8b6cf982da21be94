"""Kafka Connect's REST API for the standalone worker, on aiohttp (Moldau's one HTTP stack).

Theory of operation: an aiohttp application bound to 127.0.0.1 (the port comes from the first
`listeners` entry, default 8083; port 0 picks a free one) serves from its own event loop in a
background thread (httpserver.BackgroundSite). Each request is matched against `ROUTES`, a
table of (method, path pattern) → handler; a handler calls the herder and returns
`(status, body)`. Herder calls block (they start and stop tasks, read offsets from Kafka), so
the dispatch runs in the loop's thread pool and one slow call never holds up the others.
Request and response bodies are JSON, errors are Kafka's shape
`{"error_code": 404, "message": "Connector x not found"}`. The herder does its own locking, so
handlers need none.

Endpoints: GET / · GET/POST /connectors · GET/DELETE /connectors/{name} · GET/PUT
/connectors/{name}/config · GET /connectors/{name}/status · GET /connectors/{name}/tasks ·
GET /connectors/{name}/tasks/{id}/status · GET /connectors/{name}/offsets ·
POST /connectors/{name}/tasks/{id}/restart · PUT /connectors/{name}/pause · PUT /connectors/{name}/resume · POST /connectors/{name}/restart
(`?includeTasks=true&onlyFailed=true`) · GET /connector-plugins ·
PUT /connector-plugins/{class}/config/validate.
"""

from __future__ import annotations

import asyncio
import json
import re
import urllib.parse
from typing import Any, Callable

import confluent_kafka
from aiohttp import web
from confluent_kafka.admin import AdminClient

from moldau import __version__
from moldau.connect.api import ConnectError
from moldau.connect.config import ConfigError
from moldau.connect.herder import ConflictError, NotFoundError, StandaloneHerder, validate_connector_config
from moldau.connect.plugins import connector_plugins
from moldau.httpserver import BackgroundSite

BODY_BYTES_MAX = 1024 * 1024


class HttpError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def listener_port(listeners: list[str]) -> tuple[int, str | None]:
    """Port of the first listener and a notice when its host is not loopback (we bind 127.0.0.1 anyway)."""
    if not listeners:
        return 8083, None
    parsed = urllib.parse.urlsplit(listeners[0] if "//" in listeners[0] else "http://" + listeners[0])
    if parsed.scheme not in ("http", ""):
        raise ConfigError(f"listeners: only http is supported, got {listeners[0]!r}")
    try:
        port = parsed.port if parsed.port is not None else 8083
    except ValueError:
        raise ConfigError(f"listeners: invalid port in {listeners[0]!r}") from None
    host = parsed.hostname or ""
    notice = None
    if host not in ("", "localhost", "127.0.0.1"):
        notice = f"listeners asks for host {host!r}; the REST API binds 127.0.0.1 only"
    return port, notice


class ConnectRestServer:
    def __init__(self, herder: StandaloneHerder, port: int, bootstrap_servers: str):
        self.herder = herder
        self.bootstrap_servers = bootstrap_servers
        self.client_config: dict | None = None  # the worker's client settings, security included
        self._cluster_id: str | None = None
        app = web.Application(client_max_size=BODY_BYTES_MAX)
        app.router.add_route("*", "/{tail:.*}", self._serve)
        self.site = BackgroundSite(app, "127.0.0.1", port)  # binds now: a taken port raises OSError
        self.port = self.site.port
        self.url = self.site.url

    def start(self) -> None:
        self.site.start()

    def stop(self) -> None:
        self.site.stop()

    async def _serve(self, request: web.Request) -> web.Response:
        too_large = {"error_code": 413, "message": f"Request body larger than {BODY_BYTES_MAX} bytes"}
        if (request.content_length or 0) > BODY_BYTES_MAX:
            return _reply(413, too_large)
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:  # a chunked body that grew past the limit
            return _reply(413, too_large)
        try:
            status, body = await asyncio.get_running_loop().run_in_executor(
                None, dispatch, self, request.method, request.raw_path, raw)
        except Exception as error:  # a bug answers 500, as Kafka's worker does; the server keeps serving
            status, body = 500, {"error_code": 500, "message": f"{type(error).__name__}: {error}"}
        return _reply(status, body)

    def cluster_id(self) -> str | None:
        if self._cluster_id is None:
            try:
                admin = AdminClient(self.client_config or {"bootstrap.servers": self.bootstrap_servers,
                                                           "client.id": "connect-rest"})
                self._cluster_id = admin.list_topics(timeout=5).cluster_id
                del admin
            except confluent_kafka.KafkaException:
                return None
        return self._cluster_id


# --- handlers: (api, match, query, body) -> (status, body) -------------------------------------

def _root(api, m, q, body):
    return 200, {"version": __version__, "commit": "moldau", "kafka_cluster_id": api.cluster_id()}


def _list(api, m, q, body):
    names = api.herder.connector_names()
    expand = q.get("expand", [])
    if not expand:
        return 200, names
    result = {}
    for name in names:
        entry = {}
        if "status" in expand:
            entry["status"] = api.herder.connector_status(name)
        if "info" in expand:
            entry["info"] = api.herder.connector_info(name)
        result[name] = entry
    return 200, result


def _create(api, m, q, body):
    if not isinstance(body, dict) or not isinstance(body.get("name"), str) or not isinstance(body.get("config"), dict):
        raise HttpError(400, 'Request body must be {"name": "...", "config": {...}}')
    config = dict(body["config"])
    config.setdefault("name", body["name"])
    api.herder.put_connector_config(body["name"], config, allow_replace=False)
    return 201, api.herder.connector_info(body["name"])


def _info(api, m, q, body):
    return 200, api.herder.connector_info(m["name"])


def _delete(api, m, q, body):
    api.herder.delete_connector(m["name"])
    return 204, None


def _get_config(api, m, q, body):
    return 200, api.herder.connector_config(m["name"])


def _put_config(api, m, q, body):
    if not isinstance(body, dict):
        raise HttpError(400, "Request body must be a JSON object of connector settings")
    created = api.herder.put_connector_config(m["name"], body)
    return (201 if created else 200), api.herder.connector_info(m["name"])


def _status(api, m, q, body):
    return 200, api.herder.connector_status(m["name"])


def _offsets(api, m, q, body):
    try:
        return 200, api.herder.connector_offsets(m["name"])
    except ConnectError as error:
        raise HttpError(500, str(error)) from None


def _tasks(api, m, q, body):
    return 200, api.herder.task_configs(m["name"])


def _task_status(api, m, q, body):
    return 200, api.herder.task_status(m["name"], int(m["task"]))


def _task_restart(api, m, q, body):
    api.herder.restart_task(m["name"], int(m["task"]))
    return 204, None


def _pause(api, m, q, body):
    api.herder.pause(m["name"])
    return 202, None


def _resume(api, m, q, body):
    api.herder.resume(m["name"])
    return 202, None


def _restart(api, m, q, body):
    include_tasks = q.get("includeTasks", ["false"])[-1].lower() == "true"
    only_failed = q.get("onlyFailed", ["false"])[-1].lower() == "true"
    api.herder.restart(m["name"], include_tasks=include_tasks, only_failed=only_failed)
    if include_tasks or only_failed:
        return 202, api.herder.connector_status(m["name"])
    return 204, None


def _plugins(api, m, q, body):
    return 200, connector_plugins()


def _validate(api, m, q, body):
    if not isinstance(body, dict):
        raise HttpError(400, "Request body must be a JSON object of connector settings")
    config = {str(k): "" if v is None else str(v) for k, v in body.items()}
    config.setdefault("connector.class", m["plugin"])
    _, errors = validate_connector_config(config)
    return 200, {"name": config["connector.class"], "error_count": len(errors), "groups": ["Common"],
                 "configs": [{"value": {"name": "", "value": None, "recommended_values": [], "errors": errors,
                                        "visible": True}}] if errors else []}


_NAME = r"(?P<name>[^/]+)"
ROUTES: list[tuple[str, re.Pattern, Callable]] = [
    (method, re.compile(pattern + r"/?$"), handler)
    for method, pattern, handler in [
        ("GET", r"^", _root),
        ("GET", r"^/connectors", _list),
        ("POST", r"^/connectors", _create),
        ("GET", rf"^/connectors/{_NAME}", _info),
        ("DELETE", rf"^/connectors/{_NAME}", _delete),
        ("GET", rf"^/connectors/{_NAME}/config", _get_config),
        ("PUT", rf"^/connectors/{_NAME}/config", _put_config),
        ("GET", rf"^/connectors/{_NAME}/status", _status),
        ("GET", rf"^/connectors/{_NAME}/tasks", _tasks),
        ("GET", rf"^/connectors/{_NAME}/offsets", _offsets),
        ("GET", rf"^/connectors/{_NAME}/tasks/(?P<task>\d+)/status", _task_status),
        ("POST", rf"^/connectors/{_NAME}/tasks/(?P<task>\d+)/restart", _task_restart),
        ("PUT", rf"^/connectors/{_NAME}/pause", _pause),
        ("PUT", rf"^/connectors/{_NAME}/resume", _resume),
        ("POST", rf"^/connectors/{_NAME}/restart", _restart),
        ("GET", r"^/connector-plugins", _plugins),
        ("PUT", r"^/connector-plugins/(?P<plugin>[^/]+)/config/validate", _validate),
    ]
]


def dispatch(api: ConnectRestServer, method: str, target: str, raw_body: bytes) -> tuple[int, Any]:
    parts = urllib.parse.urlsplit(target)
    query = urllib.parse.parse_qs(parts.query)
    path_matched = False
    for route_method, pattern, handler in ROUTES:
        match = pattern.match(parts.path)
        if match is None:
            continue
        path_matched = True
        if route_method != method:
            continue
        groups = {k: urllib.parse.unquote(v) for k, v in match.groupdict().items()}
        return _call(handler, api, groups, query, raw_body)
    if path_matched:
        return 405, {"error_code": 405, "message": "HTTP 405 Method Not Allowed"}
    return 404, {"error_code": 404, "message": "HTTP 404 Not Found"}


def _call(handler, api, groups, query, raw_body: bytes) -> tuple[int, Any]:
    try:
        body = json.loads(raw_body) if raw_body.strip() else None
    except ValueError as error:
        return 400, {"error_code": 400, "message": f"Request body is not valid JSON: {error}"}
    try:
        return handler(api, groups, query, body)
    except HttpError as error:
        status, message = error.status, str(error)
    except ConfigError as error:
        status, message = 400, str(error) if len(error.errors) == 1 else "\n".join(error.errors)
    except NotFoundError as error:
        status, message = 404, str(error)
    except ConflictError as error:
        status, message = 409, str(error)
    return status, {"error_code": status, "message": message}


def _reply(status: int, body: Any) -> web.Response:
    headers = {"Server": f"moldau-connect/{__version__}"}
    if body is None:
        return web.Response(status=status, headers=headers)
    data = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return web.Response(status=status, body=data, content_type="application/json", headers=headers)
