"""`moldau.Broker`: a real broker inside the current process, for tests and scripts.

The server runs on its own event loop in a daemon thread, bound to 127.0.0.1 on a free port,
with a temporary data directory unless one is given. `stop()` and `start()` (or `restart()`)
reuse the same data directory and port, so tests can check what survives a restart.

    with moldau.Broker() as broker:
        Producer({"bootstrap.servers": broker.bootstrap_servers})

Secured: `Broker(security="SASL_SSL", users={"admin": "admin-secret", "alice": "alice-secret"},
authorizer=True, super_users=["admin"])` listens with that one security protocol (SSL: mutual
TLS with certificates made in the data directory; SASL: PLAIN and SCRAM-SHA-256/512 for the
given users); `broker.client_config("alice")` is what a confluent-kafka client needs to connect
as that user, `broker.java_client_config("alice")` the same for Java clients and Kafka's tools.
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
                 host: str = "127.0.0.1", security: str | None = None, users: dict[str, str] | None = None,
                 authorizer: bool = False, super_users: list[str] | tuple[str, ...] = ()):
        self._own_dir = data_dir is None
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="moldau-")
        self.security = (security or "PLAINTEXT").upper()
        self.users = dict(users or {})
        self.certs = None
        properties = self._security_properties(authorizer, super_users)
        properties.update(config or {})
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

    def _security_properties(self, authorizer: bool, super_users) -> dict[str, str]:
        import os

        from moldau.security.jaas_text import plain_jaas

        properties: dict[str, str] = {}
        if self.security != "PLAINTEXT":
            properties["listeners"] = f"{self.security}://127.0.0.1:0"
        if "SSL" in self.security:
            from moldau.testing.security import make_certs

            self.certs = make_certs(os.path.join(self.data_dir, "certs"))
            properties.update(self.certs.server_properties())
            if self.security == "SSL":
                properties["ssl.client.auth"] = "required"
        if "SASL" in self.security:
            properties["sasl.enabled.mechanisms"] = "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512"
            properties[f"listener.name.{self.security.lower()}.plain.sasl.jaas.config"] = plain_jaas(self.users)
        if authorizer:
            properties["authorizer.class.name"] = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
            properties["super.users"] = ";".join(f"User:{user}" for user in super_users)
        return properties

    def client_config(self, user: str | None = None, mechanism: str = "SCRAM-SHA-512") -> dict[str, str]:
        """confluent-kafka (librdkafka) settings to connect to this broker, as `user` on SASL."""
        settings = {"bootstrap.servers": self.bootstrap_servers, "security.protocol": self.security}
        if self.certs is not None:
            settings.update(self.certs.librdkafka(mutual=self.security == "SSL"))
        if "SASL" in self.security:
            user = user or next(iter(self.users))
            settings.update({"sasl.mechanism": mechanism, "sasl.username": user, "sasl.password": self.users[user]})
        return settings

    def java_client_config(self, user: str | None = None, mechanism: str = "SCRAM-SHA-512") -> dict[str, str]:
        """The same for Java clients and Kafka's tools (--command-config files)."""
        from moldau.security.jaas_text import login_jaas

        settings = {"bootstrap.servers": self.bootstrap_servers, "security.protocol": self.security}
        if self.certs is not None:
            settings.update(self.certs.java(mutual=self.security == "SSL"))
        if "SASL" in self.security:
            user = user or next(iter(self.users))
            settings.update({"sasl.mechanism": mechanism, "sasl.jaas.config": login_jaas(mechanism, user, self.users[user])})
        return settings

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
        if "SASL" in self.security and self.users:
            credentials = [(user, code, password) for user, password in sorted(self.users.items()) for code in (1, 2)]
            self.call(lambda core: core.add_scram_credentials(credentials))
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
