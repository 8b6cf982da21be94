"""The standalone worker: worker config + offsets file + herder + REST API, started and stopped as one.

Theory of operation: `StandaloneWorker(worker_properties)` checks the worker settings (problems raise
`ConfigError` before anything starts; unknown keys get one warning line); the offsets file is
opened by the first source connector (an unreadable one fails that connector, naming the file);
`start()` binds the REST API and starts the herder; `add_connector(properties)` validates and
starts one connector (a bad one raises `ConfigError` and leaves the others running); `stop()`
stops every task — each makes its last offset commit — and then the REST API. The worker is
a context manager, which is how tests use it; `moldau connect standalone` wraps it for the
command line (`moldau.cli.connect`).
"""

from __future__ import annotations

from typing import Any

from moldau.connect.config import WORKER_CONFIG, ConfigError, unknown_worker_keys
from moldau.connect.herder import StandaloneHerder
from moldau.connect.offsets import OffsetStore
from moldau.connect.rest import ConnectRestServer, listener_port
from moldau.connect.worker import client_base
from moldau.connect.worker import log


class StandaloneWorker:
    def __init__(self, worker_properties: dict[str, str], rest_port: int | None = None):
        values, errors = WORKER_CONFIG.parse(worker_properties)
        if errors:
            raise ConfigError(["worker configuration: " + e for e in errors])
        self.config: dict[str, Any] = values
        unknown = unknown_worker_keys(worker_properties)
        if unknown:
            log("warning: ignoring unknown worker config keys: " + ", ".join(unknown))
        if values.get("plugin.path"):
            log("plugin.path is ignored: moldau connect loads Python connectors by their import path")
        port, notice = listener_port(values["listeners"])
        if notice:
            log(notice)
        self.rest_port = port if rest_port is None else rest_port
        # Read (and checked writable) when the first source connector starts: a sink-only
        # worker never depends on it, whatever the file holds.
        self.offset_store = OffsetStore(values["offset.storage.file.filename"])
        self.herder = StandaloneHerder(values, self.offset_store)
        self.rest: ConnectRestServer | None = None

    @property
    def rest_url(self) -> str:
        assert self.rest is not None, "start() the worker first"
        return self.rest.url

    def start(self) -> "StandaloneWorker":
        try:
            self.rest = ConnectRestServer(self.herder, self.rest_port, ",".join(self.config["bootstrap.servers"]))
            self.rest.client_config = client_base(self.config, "connect-rest")
        except OSError as error:
            raise ConfigError(f"cannot serve the REST API on 127.0.0.1:{self.rest_port}: {error.strerror}") from None
        self.herder.worker_id = f"127.0.0.1:{self.rest.port}"
        self.rest.start()
        log(f"REST API at {self.rest.url}")
        return self

    def add_connector(self, properties: dict[str, str]) -> str:
        name = str(properties.get("name") or "").strip()
        if not name:
            raise ConfigError('Missing required configuration "name" which has no default value.')
        self.herder.put_connector_config(name, properties, allow_replace=False)
        return name

    def stop(self) -> None:
        self.herder.stop()
        if self.rest is not None:
            self.rest.stop()
            self.rest = None

    def __enter__(self) -> "StandaloneWorker":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
