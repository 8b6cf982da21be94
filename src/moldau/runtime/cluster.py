"""`moldau.Cluster`: a real replicated cluster inside the current process, for tests.

N nodes, each a full Moldau node (broker and controller, combined mode) with its own
listeners on 127.0.0.1 (a client port and a controller port, free ones), talking to each other
over real sockets with Kafka's RPCs — the same code `moldau cluster up` runs as processes. They
share one event loop in a daemon thread.

Each node keeps its data in an in-memory file system that behaves like a disk under a crash:
`kill(id)` stops a node without flushing anything and drops every byte it had not synced (as
a power loss would), so what survives is what replication and fsync made durable; `restart(id)`
starts it again on what is left, with the same ports. `stop(id)` is a clean shutdown (controlled
shutdown first: its leaderships move away). `isolate(id)` cuts a node off from the others
(clients still reach it — the classic partitioned old leader) until `heal()`.

    with moldau.Cluster(brokers=3) as cluster:
        Producer({"bootstrap.servers": cluster.bootstrap_servers, "acks": "all"})
        cluster.kill(cluster.leader("topic", 0))

Secured: `Cluster(security="SASL_SSL", users={"alice": "alice-secret"})` — clients, the
brokers among themselves and the controllers use that protocol (SASL: SCRAM-SHA-512 between
brokers as user `broker`, PLAIN on the controller listener, PLAIN and SCRAM-SHA-256/512 for
clients; TLS with certificates made in a temporary directory; "SSL": mutual TLS for clients and
brokers, TLS between controllers); `client_config(user)` is what a confluent-kafka client
needs.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from typing import Any, Callable

from moldau.broker.config import BrokerConfig
from moldau.log.memory_fs import MemoryFileSystem
from moldau.runtime.ports import free_port as _free_port
from moldau.runtime.server import Server

_START_TIMEOUT_S = 60
CONTROLLED_SHUTDOWN_TIMEOUT_S = 10.0




class ClusterNode:
    def __init__(self, node_id: int, config: BrokerConfig, fs: MemoryFileSystem):
        self.node_id = node_id
        self.config = config
        self.fs = fs
        self.server: Server | None = None

    @property
    def bootstrap_server(self) -> str:
        return f"127.0.0.1:{self.config.port}"

    @property
    def alive(self) -> bool:
        return self.server is not None


INTER_BROKER_USER = "broker"


class Cluster:
    def __init__(self, brokers: int = 3, config: dict[str, str] | None = None, seed: int | None = None,
                 security: str = "PLAINTEXT", users: dict[str, str] | None = None):
        if brokers < 1:
            raise ValueError("a cluster needs at least one broker")
        self.rng = random.Random(seed)
        self.security = security.upper()
        self.users = dict(users or {})
        self.certs = None
        self._certs_dir: str | None = None
        self.bootstrap_scram: list[tuple[str, int, str]] = []
        secured = self._security_properties()
        ports = [(_free_port(), _free_port()) for _ in range(brokers)]
        voters = ",".join(f"{i + 1}@127.0.0.1:{controller}" for i, (_client, controller) in enumerate(ports))
        factor = str(min(3, brokers))
        self.nodes: dict[int, ClusterNode] = {}
        for index, (client_port, controller_port) in enumerate(ports):
            node_id = index + 1
            properties = {
                "node.id": str(node_id), "process.roles": "broker,controller",
                "listeners": f"{self.security}://127.0.0.1:{client_port},CONTROLLER://127.0.0.1:{controller_port}",
                "controller.listener.names": "CONTROLLER", "controller.quorum.voters": voters,
                "cluster.id": "moldau-embedded-cluster", "default.replication.factor": factor,
                "offsets.topic.replication.factor": factor, "transaction.state.log.replication.factor": factor,
                # A test cluster notices a dead broker in seconds, not Kafka's 9.
                "broker.heartbeat.interval.ms": "250", "broker.session.timeout.ms": "2000",
                "leader.imbalance.check.interval.seconds": "5",
            }
            properties.update(secured)
            properties.update(config or {})
            broker_config = BrokerConfig.from_properties(properties)
            broker_config.data_dir = f"/moldau/node-{node_id}"
            broker_config.bootstrap_scram = list(self.bootstrap_scram)
            self.nodes[node_id] = ClusterNode(node_id, broker_config, MemoryFileSystem())
        self.blocked: set[int] = set()  # isolated nodes
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _security_properties(self) -> dict[str, str]:
        if self.security == "PLAINTEXT":
            return {}
        import secrets
        import tempfile

        from moldau.security.jaas_text import login_jaas, plain_jaas

        tls = "SSL" in self.security
        listener = self.security.lower()
        controller = self.security if "SASL" in self.security else "SSL"
        properties = {"listener.security.protocol.map": f"{self.security}:{self.security},CONTROLLER:{controller}",
                      "inter.broker.listener.name": self.security}
        if tls:
            from moldau.testing.security import make_certs

            self._certs_dir = tempfile.mkdtemp(prefix="moldau-cluster-certs-")
            self.certs = make_certs(self._certs_dir)
            properties.update(self.certs.server_properties())
            if self.security == "SSL":
                properties["ssl.client.auth"] = "required"
        if "SASL" in self.security:
            # The brokers log in to each other with SCRAM (its credential bootstrapped into the
            # metadata log, as `--add-scram` does); the controllers, which must talk before
            # any credential is in the metadata log, with PLAIN (as in Kafka).
            password = secrets.token_hex(16)
            self.bootstrap_scram = [(INTER_BROKER_USER, 2, password)]
            properties.update({
                "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
                "sasl.mechanism.inter.broker.protocol": "SCRAM-SHA-512",
                "sasl.mechanism.controller.protocol": "PLAIN",
                f"listener.name.{listener}.plain.sasl.jaas.config": plain_jaas(self.users),
                f"listener.name.{listener}.scram-sha-512.sasl.jaas.config":
                    login_jaas("SCRAM-SHA-512", INTER_BROKER_USER, password),
                "listener.name.controller.plain.sasl.jaas.config":
                    plain_jaas({INTER_BROKER_USER: password})[:-1]
                    + f' username="{INTER_BROKER_USER}" password="{password}";'})
        return properties

    def client_config(self, user: str | None = None, mechanism: str = "SCRAM-SHA-512") -> dict[str, str]:
        """confluent-kafka (librdkafka) settings to connect to this cluster, as `user` on SASL."""
        settings = {"bootstrap.servers": self.bootstrap_servers, "security.protocol": self.security}
        if self.certs is not None:
            settings.update(self.certs.librdkafka(mutual=self.security == "SSL"))
        if "SASL" in self.security:
            user = user or next(iter(self.users))
            settings.update({"sasl.mechanism": mechanism, "sasl.username": user, "sasl.password": self.users[user]})
        return settings

    # --- addresses ---------------------------------------------------------------------------
    @property
    def bootstrap_servers(self) -> str:
        return ",".join(node.bootstrap_server for node in self.nodes.values())

    def node(self, node_id: int) -> ClusterNode:
        if node_id not in self.nodes:
            raise KeyError(f"no node {node_id} (nodes are {sorted(self.nodes)})")
        return self.nodes[node_id]

    # --- life ---------------------------------------------------------------------------------
    def start(self) -> "Cluster":
        if self._thread is None:
            ready = threading.Event()
            self._thread = threading.Thread(target=self._run, args=(ready,), name="moldau-cluster", daemon=True)
            self._thread.start()
            ready.wait(_START_TIMEOUT_S)
        self._submit(self._start_nodes(sorted(self.nodes)))
        if "SASL" in self.security and self.users:  # SCRAM credentials for the clients' users
            credentials = [(user, code, password) for user, password in sorted(self.users.items()) for code in (1, 2)]
            controller = self.controller_id()
            self.call(controller, lambda core: core.add_scram_credentials(credentials))
            self.wait_for(lambda: all(self.call(n, lambda core: len(core.image.scram_credentials) >= len(credentials))
                                      for n in self.alive()), what="the SCRAM credentials on every node")
        return self

    def _run(self, ready: threading.Event) -> None:
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        ready.set()
        self._loop.run_forever()

    def _submit(self, coroutine, timeout_s: float = _START_TIMEOUT_S) -> Any:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout_s)

    async def _start_nodes(self, node_ids: list[int]) -> None:
        for node_id in node_ids:
            node = self.nodes[node_id]
            if node.server is None:
                server = Server(node.config, fs=node.fs, peer_filter=self._can_talk)
                await server.start()
                node.server = server
        for node_id in node_ids:
            server = self.nodes[node_id].server
            if not await server.wait_running(_START_TIMEOUT_S):
                raise RuntimeError(f"node {node_id} did not join the cluster: {server.fatal_error or 'timed out'}")

    def _can_talk(self, source: int, destination: int) -> bool:
        return source == destination or (source not in self.blocked and destination not in self.blocked)

    def kill(self, node_id: int) -> None:
        """Stop a node as a crash would: nothing flushed, unsynced bytes lost."""
        node = self.node(node_id)
        if node.server is not None:
            self._submit(node.server.abort())
            node.server = None
            node.fs.crash("drop")

    def stop(self, node_id: int) -> None:
        """A clean shutdown: leaderships move away first (controlled shutdown), then stop."""
        node = self.node(node_id)
        if node.server is not None:
            server = node.server

            async def stop() -> None:
                await server.controlled_shutdown(CONTROLLED_SHUTDOWN_TIMEOUT_S)
                await server.stop()

            self._submit(stop())
            node.server = None

    def restart(self, node_id: int) -> None:
        """Start a stopped or killed node again on what its disk kept, and wait until it runs."""
        self.kill(node_id) if self.node(node_id).alive else None
        self._submit(self._start_nodes([node_id]))

    def isolate(self, node_id: int) -> None:
        """Cut the node off from the other nodes (not from clients)."""
        self.node(node_id)
        self.blocked.add(node_id)

    def heal(self) -> None:
        self.blocked.clear()

    def close(self) -> None:
        if self._loop is None:
            return
        for node_id in sorted(self.nodes):
            node = self.nodes[node_id]
            if node.server is not None:
                try:
                    self._submit(node.server.stop())
                except Exception:
                    pass
                node.server = None

        async def cancel_the_rest() -> None:  # connection attempts still in flight, say
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        try:
            self._submit(cancel_the_rest(), timeout_s=10)
        except Exception:
            pass
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(_START_TIMEOUT_S)
        self._thread = None
        self._loop = None
        if self._certs_dir is not None:
            import shutil

            shutil.rmtree(self._certs_dir, ignore_errors=True)
            self._certs_dir = None

    def __enter__(self) -> "Cluster":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # --- looking inside ---------------------------------------------------------------------
    def call(self, node_id: int, function: Callable[..., Any], *args: Any) -> Any:
        """Run `function(core, *args)` on a live node's core, on the cluster's loop."""
        server = self.node(node_id).server
        if server is None:
            raise RuntimeError(f"node {node_id} is not running")

        async def run() -> Any:
            try:
                return function(server.core, *args)
            finally:
                server.after_core_call()  # send what the call queued

        return self._submit(run())

    def alive(self) -> list[int]:
        return [node_id for node_id in sorted(self.nodes) if self.nodes[node_id].alive]

    def controller_id(self) -> int:
        """The active controller (the metadata quorum's leader), as a live node sees it."""
        for node_id in self.alive():
            leader = self.call(node_id, lambda core: core.raft.leader_id if core.raft.is_leader else -1)
            if leader >= 0:
                return leader
        return -1

    def leader(self, topic: str, partition: int = 0) -> int:
        """The partition's leader according to the committed metadata of a live node (-1: none)."""
        for node_id in self.alive():
            def find(core) -> int:
                image = core.image.topic(topic)
                return image.partitions[partition].leader if image and partition in image.partitions else -2
            leader = self.call(node_id, find)
            if leader != -2:
                return leader
        return -1

    def isr(self, topic: str, partition: int = 0) -> tuple[int, ...]:
        node_id = self.alive()[0]
        return self.call(node_id, lambda core: core.image.topic(topic).partitions[partition].isr)

    def wait_for(self, condition: Callable[[], bool], timeout_s: float = 30, what: str = "the condition") -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if condition():
                return
            time.sleep(0.05)
        raise TimeoutError(f"timed out after {timeout_s}s waiting for {what}")
