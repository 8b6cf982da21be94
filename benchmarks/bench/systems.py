"""The systems under test: Apache Kafka and moldau, started the same way and measured the same way.

Theory of operation. A `System` is a running cluster with a bootstrap address, the PIDs of its
broker processes (for memory and CPU), and the replication factor workloads should give their
topics. Both are started with comparable settings: the same default partition count, topic
auto-creation on, and no fsync (Kafka's defaults flush.messages/flush.ms are "never"; moldau
follows the same keys). Kafka runs with the heap and GC flags `kafka-server-start.sh` uses
(-Xmx1g -Xms1g, G1).

Start-up time (workload 6) is measured on fresh instances by `measure_startup`: a probe thread
launched with the server process produces one record (acks=1, topic auto-created) and reports
the time from launching the process to its acknowledgement. Kafka's one-off `kafka-storage
format` step happens before the launch and is reported separately.

The replicated variant (`make_runner(kind, partitions, brokers=3)`): a 3-node KRaft Kafka
(kafka_dist.KafkaCluster: every node broker+controller, static voters) and a 3-node moldau
(`moldau cluster up`, testing/cluster_process.py), both with replication factor 3 for new
topics, min.insync.replicas=2 on the benchmark's topics (acks=all waits for a second replica and
one dead node leaves every partition writable), and the same failure detection (a node is fenced
after 3 s without a heartbeat: moldau cluster up's setting, given to Kafka too). Their `System`
can kill and restart a node (the failover workload).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from moldau.testing.kafka_dist import KafkaCluster, KafkaServer, kafka_version
from moldau.testing.server_process import ServerProcess, free_port
from bench.security import SECURITY

# kafka-server-start.sh: KAFKA_HEAP_OPTS and KAFKA_JVM_PERFORMANCE_OPTS as shipped.
KAFKA_JVM_OPTS = (
    "-Xmx1g", "-Xms1g", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent", "-Djava.awt.headless=true", "-Dfile.encoding=UTF-8",
)
# The same on both: Kafka's default 50 offsets partitions (kafka_dist's test default is 1), and no
# initial rebalance delay (Kafka's 3 s would dominate a group consumer's run on either system).
COMMON_OVERRIDES = {"auto.create.topics.enable": "true", "offsets.topic.num.partitions": "50",
                    "group.initial.rebalance.delay.ms": "0"}
PROBE_TOPIC = "startup-probe"
PROBE_TIMEOUT_S = 120.0


class Unavailable(RuntimeError):
    """This system cannot be run here (a missing piece); the harness skips it with this reason."""


def proc_rss_bytes(pid: int) -> int:
    """Resident set size of one process from /proc (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of one process (and its reaped children are not counted)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def proc_runqueue_seconds(pid: int) -> float:
    """Time the process's threads spent runnable but waiting for a CPU (Linux schedstat, summed
    over its threads): how much a busy machine held the broker back."""
    total = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0.0
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat", "rb") as schedstat:
                total += int(schedstat.read().split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return total / 1e9


class Watchdog:
    """Stops a server when the harness dies without stopping it (SIGKILL, a killed process group).

    Kafka runs in its own session (kafka_dist starts it so), so killing the harness or its process
    group leaves the JVM running. The watchdog is a tiny shell loop in its own session too: once
    the harness's PID is gone it sends SIGTERM (SIGKILL after 10 s) to the server and removes its
    data directory. A normal stop kills the watchdog first.
    """

    _SCRIPT = ("while kill -0 {parent} 2>/dev/null && kill -0 {target} 2>/dev/null; do sleep 1; done; "
               "if kill -0 {target} 2>/dev/null; then kill -TERM {signal_target}; "
               "for i in 1 2 3 4 5 6 7 8 9 10; do kill -0 {target} 2>/dev/null || break; sleep 1; done; "
               "kill -KILL {signal_target} 2>/dev/null; sleep 1; rm -rf {directory}; fi")

    def __init__(self, target_pid: int, whole_group: bool, directory: str | os.PathLike):
        signal_target = f"-- -{target_pid}" if whole_group else str(target_pid)
        script = self._SCRIPT.format(parent=os.getpid(), target=target_pid, signal_target=signal_target,
                                     directory=shlex.quote(str(directory)))
        self.process = subprocess.Popen(["sh", "-c", script], start_new_session=True, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def cancel(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


class FirstAck(threading.Thread):
    """Produces one record until it is acknowledged; `seconds` is launch → acknowledgement."""

    def __init__(self, bootstrap_servers: str, launched_at: float):
        super().__init__(name="first-ack-probe", daemon=True)
        self.bootstrap_servers = bootstrap_servers
        self.launched_at = launched_at
        self.seconds: float | None = None
        self.error: str | None = None

    def run(self) -> None:
        from confluent_kafka import Producer

        producer = Producer({
            "bootstrap.servers": self.bootstrap_servers, "acks": 1, "linger.ms": 0, **SECURITY.librdkafka(),
            "reconnect.backoff.ms": 10, "reconnect.backoff.max.ms": 20,
            "topic.metadata.refresh.fast.interval.ms": 10, "message.timeout.ms": int(PROBE_TIMEOUT_S * 1000),
            "log_level": 0,
        })
        acked: list[float] = []

        def on_delivery(error, message):
            if error is None:
                acked.append(time.monotonic())
            else:
                self.error = error.str()

        producer.produce(PROBE_TOPIC, b"first", on_delivery=on_delivery)
        producer.flush(PROBE_TIMEOUT_S)
        if acked:
            self.seconds = acked[0] - self.launched_at


@dataclass
class System:
    """A running cluster: what workloads and measurements need from it."""

    kind: str
    brokers: int
    replication_factor: int
    bootstrap_servers: str
    pids: list[int]
    version: str
    runner: object = None  # the runner that started it (kill_node / restart_node on clusters)
    topic_configs: dict = None  # configs every benchmark topic is created with

    def rss_bytes(self) -> int:
        return sum(proc_rss_bytes(pid) for pid in self.pids)

    def cpu_seconds(self) -> float:
        return sum(proc_cpu_seconds(pid) for pid in self.pids)

    def runqueue_seconds(self) -> float:
        return sum(proc_runqueue_seconds(pid) for pid in self.pids)

    def kill_node(self, node_id: int) -> None:
        """SIGKILL one node of a cluster (a crash)."""
        self.runner.kill_node(node_id)

    def restart_node(self, node_id: int) -> None:
        self.runner.restart_node(node_id)
        self.pids[:] = self.runner.current_pids()


# The replicated variant: what `moldau cluster up` gives its nodes (cli/cluster.py), given to
# Kafka's nodes too — a dead node is fenced after 3 s on both, not after Kafka's default 9 s.
REPLICATED_OVERRIDES = {"default.replication.factor": "3", "broker.heartbeat.interval.ms": "500",
                        "broker.session.timeout.ms": "3000", "leader.imbalance.check.interval.seconds": "10"}
REPLICATED_TOPIC_CONFIGS = {"min.insync.replicas": "2"}  # acks=all waits for a second replica


class KafkaRunner:
    """One single-node KRaft Kafka (kafka_dist.KafkaServer) with Kafka's shipped JVM flags, or
    with brokers=3 a 3-node KRaft cluster (kafka_dist.KafkaCluster)."""

    kind = "kafka"

    def __init__(self, partitions: int, brokers: int = 1):
        if brokers not in (1, 3):
            raise Unavailable(f"{brokers} Kafka brokers: the harness runs 1 or 3")
        self.partitions = partitions
        self.brokers = brokers
        self.server: KafkaServer | None = None
        self.cluster: KafkaCluster | None = None
        self.watchdog: Watchdog | None = None
        self.watchdogs: list[Watchdog] = []

    def overrides(self) -> dict:
        return {"num.partitions": self.partitions, **COMMON_OVERRIDES}

    def start(self) -> System:
        if self.brokers == 3:
            return self._start_cluster()
        server_class = _SecuredKafkaServer if SECURITY.enabled else KafkaServer
        self.server = server_class(jvm_opts=KAFKA_JVM_OPTS, overrides=self.overrides())
        self.server.start()
        self.watchdog = Watchdog(self.server.pid, whole_group=True, directory=self.server.directory)
        return System("kafka", 1, 1, self.server.bootstrap_servers, [self.server.pid], f"Apache Kafka {kafka_version()}")

    def _start_cluster(self) -> System:
        self.cluster = KafkaCluster(3, jvm_opts=KAFKA_JVM_OPTS, overrides={**self.overrides(), **REPLICATED_OVERRIDES})
        self.cluster.start()
        self._watch_cluster()
        return System("kafka", 3, 3, self.cluster.bootstrap_servers, self.cluster.pids(),
                      f"Apache Kafka {kafka_version()} (3 nodes)", runner=self,
                      topic_configs=dict(REPLICATED_TOPIC_CONFIGS))

    def _watch_cluster(self) -> None:
        for watchdog in self.watchdogs:
            watchdog.cancel()
        self.watchdogs = [Watchdog(pid, whole_group=True, directory=self.cluster.directory) for pid in self.cluster.pids()]

    def kill_node(self, node_id: int) -> None:
        self.cluster.kill(node_id)

    def current_pids(self) -> list[int]:
        return self.cluster.pids()

    def restart_node(self, node_id: int) -> None:
        self.cluster.restart(node_id)
        self._watch_cluster()

    def stop(self) -> None:
        for watchdog in [self.watchdog, *self.watchdogs]:
            if watchdog is not None:
                watchdog.cancel()
        self.watchdog, self.watchdogs = None, []
        if self.server is not None:
            self.server.stop()
            self.server = None
        if self.cluster is not None:
            self.cluster.stop()
            self.cluster = None

    def measure_startup(self) -> dict:
        server = _TimedKafkaServer(jvm_opts=KAFKA_JVM_OPTS, overrides=self.overrides())
        try:
            server.start()
        finally:
            server.stop()
        return {"first_ack_s": server.first_ack_s, "format_s": server.format_s}


class _SecuredKafkaServer(KafkaServer):
    """KafkaServer whose client listener speaks the run's protocol (bench/security.py); the
    controller listener stays PLAINTEXT. The SCRAM user is added when the storage is formatted."""

    def _write_properties(self):
        path = super()._write_properties()
        protocol = SECURITY.protocol
        text = path.read_text().replace("PLAINTEXT://127.0.0.1", f"{protocol}://127.0.0.1", 2).replace(
            f"CONTROLLER://127.0.0.1", "CONTROLLER://127.0.0.1")
        text = text.replace(f"{protocol}://127.0.0.1:{self.controller_port}", f"CONTROLLER://127.0.0.1:{self.controller_port}")
        text = text.replace("inter.broker.listener.name=PLAINTEXT", f"inter.broker.listener.name={protocol}")
        text = text.replace("listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
                            f"listener.security.protocol.map=CONTROLLER:PLAINTEXT,{protocol}:{protocol}")
        text += "".join(f"{key}={value}\n" for key, value in SECURITY.server_properties(protocol).items())
        path.write_text(text)
        return path

    def _format(self, properties):
        from moldau.testing.kafka_dist import KafkaError, kafka_tool

        args = ["format", "--ignore-formatted", "--cluster-id", self.cluster_id, "--config", str(properties)]
        if SECURITY.protocol == "SASL_SSL":
            args += ["--add-scram", SECURITY.add_scram()]
        result = kafka_tool("kafka-storage", args, timeout=self.start_timeout_s)
        if result.returncode != 0:
            raise KafkaError(f"kafka-storage format failed: {(result.stderr or result.stdout)[-800:]}")

    def _wait_until_serving(self):
        from confluent_kafka.admin import AdminClient

        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise Unavailable(f"Kafka exited {self.process.returncode} on start: {self._log_tail()}")
            try:
                admin = AdminClient({"bootstrap.servers": self.bootstrap_servers, **SECURITY.librdkafka()})
                if admin.list_topics(timeout=2).brokers:
                    return
            except Exception:
                pass
            time.sleep(0.3)
        raise Unavailable(f"Kafka did not serve within {self.start_timeout_s}s: {self._log_tail()}")


class _TimedKafkaServer(KafkaServer):
    """KafkaServer whose readiness wait is the first-ack probe, timed from the JVM's launch."""

    first_ack_s: float | None = None
    format_s: float | None = None

    def _format(self, properties):
        began = time.monotonic()
        super()._format(properties)
        self.format_s = time.monotonic() - began

    def _launch(self, properties):
        launched_at = time.monotonic()
        super()._launch(properties)
        self._probe = FirstAck(self.bootstrap_servers, launched_at)
        self._probe.start()

    def _wait_until_serving(self):
        self._probe.join(PROBE_TIMEOUT_S)
        if self._probe.seconds is None:
            raise Unavailable(f"Kafka never acknowledged the probe record: {self._probe.error}")
        self.first_ack_s = self._probe.seconds


class MoldauRunner:
    """One `moldau server` subprocess (moldau.testing.server_process.ServerProcess), or with
    brokers=3 a local cluster of three (`moldau cluster up`, testing/cluster_process.py)."""

    kind = "moldau"
    shadow_uvloop = False

    def __init__(self, partitions: int, brokers: int = 1):
        if brokers not in (1, 3):
            raise Unavailable(f"{brokers} moldau brokers: the harness runs 1 or 3")
        self.partitions = partitions
        self.brokers = brokers
        self.server: ServerProcess | None = None
        self.cluster = None
        self.watchdog: Watchdog | None = None
        self.watchdogs: list[Watchdog] = []
        self.directory: str | None = None

    def overrides(self) -> dict:
        overrides = {"num.partitions": str(self.partitions), **COMMON_OVERRIDES}
        if SECURITY.enabled:
            overrides.update({"listeners": f"{SECURITY.protocol}://127.0.0.1:0",
                              **SECURITY.server_properties(SECURITY.protocol)})
        return overrides

    def start(self) -> System:
        self.directory = tempfile.mkdtemp(prefix="moldau-bench-")
        if self.brokers == 3:
            return self._start_cluster()
        extra = ["--add-scram", SECURITY.add_scram()] if SECURITY.protocol == "SASL_SSL" else []
        self.server = ServerProcess(str(Path(self.directory) / "data"), overrides=self.overrides(), extra_args=extra,
                                     new_session=True)
        with _without_uvloop(self.shadow_uvloop):
            self.server.start()
        self.watchdog = Watchdog(self.server.process.pid, whole_group=False, directory=self.directory)
        from moldau import __version__

        return System(self.kind, 1, 1, self.server.bootstrap_servers, [self.server.process.pid], f"moldau {__version__}")

    def _start_cluster(self) -> System:
        try:
            from moldau.testing.cluster_process import ProcessCluster
        except ImportError:
            raise Unavailable("a 3-broker moldau cluster needs `moldau cluster up` (issue 9)") from None
        from moldau import __version__

        # `moldau cluster up` writes each node's properties (RF 3 defaults, a 3 s session
        # timeout); the benchmark's topics carry min.insync.replicas themselves.
        self.cluster = ProcessCluster(str(Path(self.directory) / "cluster"), brokers=3)
        self.cluster.up()
        self._watch_cluster()
        return System(self.kind, 3, 3, self.cluster.bootstrap_servers, self.current_pids(),
                      f"moldau {__version__} (3 nodes)", runner=self, topic_configs=dict(REPLICATED_TOPIC_CONFIGS))

    def current_pids(self) -> list[int]:
        return [node["pid"] for node in self.cluster.info()["nodes"] if node.get("pid", 0) > 0]

    def _watch_cluster(self) -> None:
        for watchdog in self.watchdogs:
            watchdog.cancel()
        self.watchdogs = [Watchdog(pid, whole_group=False, directory=self.directory) for pid in self.current_pids()]

    def kill_node(self, node_id: int) -> None:
        self.cluster.kill(node_id)

    def restart_node(self, node_id: int) -> None:
        self.cluster.start(node_id)
        self._watch_cluster()

    def stop(self) -> None:
        for watchdog in [self.watchdog, *self.watchdogs]:
            if watchdog is not None:
                watchdog.cancel()
        self.watchdog, self.watchdogs = None, []
        if self.cluster is not None:
            self.cluster.close()
            self.cluster = None
        if self.server is not None:
            self.server.terminate()
            self.server.close()
            self.server = None
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None

    def measure_startup(self) -> dict:
        directory = tempfile.mkdtemp(prefix="moldau-bench-start-")
        port = free_port()
        server = ServerProcess(str(Path(directory) / "data"), port=port, overrides=self.overrides(), new_session=True)
        probe = FirstAck(f"127.0.0.1:{port}", time.monotonic())
        try:
            probe.start()
            with _without_uvloop(self.shadow_uvloop):
                server.start()
            listening_s = server.startup_seconds
            probe.join(PROBE_TIMEOUT_S)
        finally:
            server.terminate()
            server.close()
            shutil.rmtree(directory, ignore_errors=True)
        if probe.seconds is None:
            raise Unavailable(f"moldau never acknowledged the probe record: {probe.error}")
        return {"first_ack_s": probe.seconds, "listening_s": listening_s}


class MoldauAsyncioRunner(MoldauRunner):
    """moldau on asyncio's own event loop instead of uvloop (uvloop has no sendfile): a variant to
    measure the event loop's share, not a configuration users pick."""

    kind = "moldau-asyncio"
    shadow_uvloop = True


@contextlib.contextmanager
def _without_uvloop(active: bool):
    """Start a server whose `import uvloop` fails (a shadowing module first on PYTHONPATH), so
    `moldau server` falls back to asyncio.run."""
    if not active:
        yield
        return
    shadow = tempfile.mkdtemp(prefix="moldau-bench-no-uvloop-")
    Path(shadow, "uvloop.py").write_text("raise ImportError('uvloop shadowed by benchmarks/bench/systems.py')\n")
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = shadow + (os.pathsep + saved if saved else "")
    try:
        yield  # the server has chosen its loop once it prints its listening line
    finally:
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved
        shutil.rmtree(shadow, ignore_errors=True)


class MoldauSendfileRunner(MoldauRunner):
    """moldau with socket.sendfile.enable=true: Fetch record sets sent from the segment files by
    sendfile instead of read and written (the default), to measure what sendfile is worth side
    by side."""

    kind = "moldau-sendfile"

    def overrides(self) -> dict:
        return {**super().overrides(), "socket.sendfile.enable": "true"}


RUNNERS = {"kafka": KafkaRunner, "moldau": MoldauRunner, "moldau-asyncio": MoldauAsyncioRunner,
           "moldau-sendfile": MoldauSendfileRunner}


def make_runner(kind: str, partitions: int, brokers: int = 1):
    try:
        return RUNNERS[kind](partitions, brokers)
    except KeyError:
        raise Unavailable(f"unknown system {kind!r} (known: {', '.join(sorted(RUNNERS))})") from None
