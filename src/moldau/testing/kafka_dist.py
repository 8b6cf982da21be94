"""Apache Kafka from Maven Central: its CLI tools and a single-node KRaft broker, for tests.

Theory of operation. `scripts/fetch-kafka.sh` resolves `tools/kafka/pom.xml` with Maven and copies
Kafka's jars (broker, tools, clients, a log4j2 binding) into `kafka_home()/libs`. Nothing here
downloads: when the jars or Java are missing, `need_kafka()` skips the test (or fails it under
MOLDAU_REQUIRE_ALL=1). Every Kafka program runs as `java -cp libs/* MAIN_CLASS args` with a
small heap and a log4j2 configuration that only lets warnings through.

`KafkaServer` is a context manager around one combined broker+controller (KRaft) bound to
127.0.0.1 on two free ports, with its storage in a temporary directory: it writes
server.properties, formats the storage with `kafka.tools.StorageTool`, starts `kafka.Kafka`, and
waits until a Metadata request lists the broker. It stops the JVM by its process group (SIGTERM,
then SIGKILL) and removes the directory it created.

    from moldau.testing.kafka_dist import KafkaServer, kafka_tool, need_kafka
    need_kafka()
    with KafkaServer() as kafka:
        kafka_tool("kafka-topics", ["--bootstrap-server", kafka.bootstrap_servers,
                                    "--create", "--topic", "t"], check=True)

Invariant: every process this module starts is stopped by it (KafkaServer.stop, or kafka_tool's
timeout), including on a failed start.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Mapping, Sequence

from moldau.testing.kafka_tools import TOOL_CLASSES
from moldau.testing.tools import need

KAFKA_VERSION_DEFAULT = "4.1.1"


JVM_OPTS_DEFAULT: tuple[str, ...] = (
    "-Xmx512m",
    "-Xms64m",
    "-XX:+UseSerialGC",
    "-Xss1m",
    "-Djava.awt.headless=true",
    "-Dfile.encoding=UTF-8",
)
# Tools are short-lived: compile little, start fast.
TOOL_JVM_OPTS_DEFAULT: tuple[str, ...] = ("-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1")

_LOG4J2_PROPERTIES = """\
# Written by moldau.testing.kafka_dist: warnings and errors only, to stderr.
status = error
appender.stderr.type = Console
appender.stderr.name = STDERR
appender.stderr.target = SYSTEM_ERR
appender.stderr.layout.type = PatternLayout
appender.stderr.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = warn
rootLogger.appenderRef.stderr.ref = STDERR
"""


class KafkaError(RuntimeError):
    """Kafka could not be run: missing jars or Java, a failed format or start."""


def _repo_pom() -> Path:
    return Path(__file__).resolve().parents[3] / "tools" / "kafka" / "pom.xml"


def kafka_version() -> str:
    """The Kafka version tools/kafka/pom.xml pins (the default when the pom is not around)."""
    pom = _repo_pom()
    if pom.is_file():
        match = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", pom.read_text())
        if match:
            return match.group(1).strip()
    return KAFKA_VERSION_DEFAULT


def kafka_home() -> Path:
    """$MOLDAU_KAFKA_HOME, else ~/.cache/moldau/kafka-<version> (what fetch-kafka.sh fills)."""
    explicit = os.environ.get("MOLDAU_KAFKA_HOME")
    if explicit:
        return Path(explicit)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "moldau" / f"kafka-{kafka_version()}"


def kafka_libs() -> Path:
    return kafka_home() / "libs"


def java_executable() -> str | None:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return str(Path(java_home) / "bin" / "java")
    return shutil.which("java")


def kafka_available() -> bool:
    """True when Java is installed and the Kafka jars have been fetched."""
    libs = kafka_libs()
    return java_executable() is not None and any(libs.glob("kafka_2.13-*.jar")) and any(
        libs.glob("kafka-tools-*.jar")
    )


def need_kafka() -> None:
    """Skip the calling test (fail under MOLDAU_REQUIRE_ALL=1) unless Java and the jars are there."""
    need(java_executable() is not None, "Java (java on PATH or $JAVA_HOME)")
    need(kafka_available(), f"Apache Kafka jars in {kafka_libs()} (run scripts/fetch-kafka.sh)")


def kafka_classpath() -> str:
    """The `-cp` argument running any Kafka main class: every jar in kafka_libs()."""
    libs = kafka_libs()
    if not any(libs.glob("kafka_2.13-*.jar")):
        raise KafkaError(f"no Kafka jars in {libs}; run scripts/fetch-kafka.sh")
    return str(libs / "*")


def log4j2_config() -> Path:
    """A quiet log4j2 configuration (WARN to stderr), written once next to the jars."""
    path = kafka_home() / "config" / "moldau-log4j2.properties"
    if not path.is_file() or path.read_text() != _LOG4J2_PROPERTIES:
        path.parent.mkdir(parents=True, exist_ok=True)
        scratch = path.with_suffix(f".{os.getpid()}.tmp")
        scratch.write_text(_LOG4J2_PROPERTIES)
        scratch.replace(path)
    return path


def main_class(tool: str) -> str:
    """A script name ("kafka-topics", "kafka-topics.sh") or a main class, as a main class."""
    name = tool[:-3] if tool.endswith(".sh") else tool
    return TOOL_CLASSES.get(name, name)


def java_command(tool: str, args: Sequence[str] = (), jvm_opts: Sequence[str] = TOOL_JVM_OPTS_DEFAULT) -> list[str]:
    """The argv running `tool` (script name or main class): for callers that need a Popen."""
    java = java_executable()
    if java is None:
        raise KafkaError("java not found (install Java 17+ or set JAVA_HOME)")
    return [
        java,
        *jvm_opts,
        f"-Dlog4j2.configurationFile={log4j2_config()}",
        "-cp",
        kafka_classpath(),
        main_class(tool),
        *args,
    ]


def kafka_tool(
    tool: str,
    args: Sequence[str] = (),
    *,
    input: str | bytes | None = None,
    timeout: float = 120.0,
    check: bool = False,
    env: Mapping[str, str] | None = None,
    jvm_opts: Sequence[str] = TOOL_JVM_OPTS_DEFAULT,
) -> subprocess.CompletedProcess:
    """Run a Kafka CLI tool to completion; stdout/stderr captured (text unless input is bytes).

    On timeout the tool's whole process group is killed and subprocess.TimeoutExpired raised.
    With check=True a non-zero exit raises KafkaError carrying the tool's stderr.
    """
    command = java_command(tool, args, jvm_opts)
    text = not isinstance(input, bytes)
    process = subprocess.Popen(
        command,
        stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=text,
        env={**os.environ, **env} if env else None,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(input, timeout=timeout)
    except BaseException:
        _kill_group(process, signal.SIGKILL)
        process.communicate()
        raise
    result = subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
    if check and result.returncode != 0:
        raise KafkaError(f"{main_class(tool)} exited {result.returncode}: {_tail(stderr)}")
    return result


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def random_cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes, URL-safe base64 without padding, no leading '-'."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


class KafkaServer:
    """A single-node Apache Kafka (KRaft, broker+controller) on 127.0.0.1, for tests.

    `with KafkaServer() as kafka: kafka.bootstrap_servers`. `overrides` are extra
    server.properties; `data_dir` (kept afterwards) defaults to a temporary directory (removed).
    """

    def __init__(
        self,
        *,
        overrides: Mapping[str, object] | None = None,
        data_dir: str | os.PathLike | None = None,
        jvm_opts: Sequence[str] = JVM_OPTS_DEFAULT,
        start_timeout_s: float = 90.0,
    ):
        self.overrides = dict(overrides or {})
        self.jvm_opts = tuple(jvm_opts)
        self.start_timeout_s = start_timeout_s
        self._given_dir = Path(data_dir) if data_dir is not None else None
        self.directory: Path | None = None
        self.port: int | None = None
        self.controller_port: int | None = None
        self.cluster_id = random_cluster_id()
        self.process: subprocess.Popen | None = None
        self._log_file = None

    @property
    def bootstrap_servers(self) -> str:
        if self.port is None:
            raise KafkaError("KafkaServer is not started")
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def log_path(self) -> Path:
        assert self.directory is not None
        return self.directory / "server.log"

    def __enter__(self) -> "KafkaServer":
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def start(self) -> None:
        if self.process is not None:
            raise KafkaError("KafkaServer already started")
        self.directory = self._given_dir or Path(tempfile.mkdtemp(prefix="moldau-kafka-"))
        self.directory.mkdir(parents=True, exist_ok=True)
        try:
            properties = self._write_properties()
            self._format(properties)
            self._launch(properties)
            self._wait_until_serving()
        except BaseException:
            self.stop()
            raise

    def stop(self, timeout_s: float = 15.0) -> None:
        """Stop the JVM (SIGTERM to its process group, SIGKILL after timeout_s); remove temp dir."""
        process, self.process = self.process, None
        if process is not None:
            if process.poll() is None:
                _kill_group(process, signal.SIGTERM)
                try:
                    process.wait(timeout_s)
                except subprocess.TimeoutExpired:
                    _kill_group(process, signal.SIGKILL)
                    process.wait()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if self._given_dir is None and self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)

    def kill(self) -> None:
        """SIGKILL the broker (a crash); the data directory stays until stop()."""
        if self.process is not None and self.process.poll() is None:
            _kill_group(self.process, signal.SIGKILL)
            self.process.wait()

    def _write_properties(self) -> Path:
        assert self.directory is not None
        self.port, self.controller_port = free_port(), free_port()
        while self.controller_port == self.port:
            self.controller_port = free_port()
        properties = {
            "process.roles": "broker,controller",
            "node.id": 1,
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(self.directory / "data"),
            "num.partitions": 1,
            "auto.create.topics.enable": "true",
            "offsets.topic.replication.factor": 1,
            "offsets.topic.num.partitions": 1,
            "transaction.state.log.replication.factor": 1,
            "transaction.state.log.min.isr": 1,
            "share.coordinator.state.topic.replication.factor": 1,
            "share.coordinator.state.topic.min.isr": 1,
            "group.initial.rebalance.delay.ms": 0,
            **self.overrides,
        }
        path = self.directory / "server.properties"
        path.write_text("".join(f"{key}={value}\n" for key, value in properties.items()))
        return path

    def _format(self, properties: Path) -> None:
        args = ["format", "--ignore-formatted", "--cluster-id", self.cluster_id, "--config", str(properties)]
        result = kafka_tool("kafka-storage", args, timeout=self.start_timeout_s)
        if result.returncode != 0:
            raise KafkaError(f"kafka-storage format failed: {_tail(result.stderr or result.stdout)}")

    def _launch(self, properties: Path) -> None:
        self._log_file = open(self.log_path, "wb")
        command = java_command("kafka-server-start", [str(properties)], self.jvm_opts)
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            cwd=self.directory,
            start_new_session=True,
        )

    def _wait_until_serving(self) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise KafkaError(f"Kafka exited {self.process.returncode} on start: {self._log_tail()}")
            if _broker_listed(self.bootstrap_servers):
                return
            time.sleep(0.2)
        raise KafkaError(f"Kafka did not serve within {self.start_timeout_s}s: {self._log_tail()}")

    def _log_tail(self) -> str:
        try:
            return _tail(self.log_path.read_text(errors="replace"))
        except OSError:
            return "(no log)"


def _broker_listed(bootstrap_servers: str) -> bool:
    """True when the broker answers Metadata with itself in the broker list (it serves clients)."""
    try:
        with socket.create_connection(tuple(_split_host_port(bootstrap_servers)), timeout=0.5):
            pass
    except OSError:
        return False
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap_servers, "log_level": 0, "socket.timeout.ms": 2000})
    try:
        return bool(admin.list_topics(timeout=2).brokers)
    except Exception:
        return False


def _split_host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host, int(port)


def _kill_group(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _tail(text: str | bytes | None, lines: int = 15) -> str:
    if text is None:
        return ""
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    return "\n".join(text.strip().splitlines()[-lines:])


class _ClusterNode(KafkaServer):
    """One combined broker+controller of a KafkaCluster: its ports and the voters are given."""

    def __init__(self, node_id: int, port: int, controller_port: int, voters: str, cluster_id: str,
                 directory: Path, **kwargs):
        super().__init__(data_dir=directory, **kwargs)
        self.node_id = node_id
        self._ports = (port, controller_port)
        self.voters = voters
        self.cluster_id = cluster_id

    def _write_properties(self) -> Path:
        properties_path = super()._write_properties()  # the single-node defaults and the overrides
        self.port, self.controller_port = self._ports
        lines = dict(line.split("=", 1) for line in properties_path.read_text().splitlines() if "=" in line)
        lines.update({
            "node.id": str(self.node_id),
            "controller.quorum.voters": self.voters,
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            **{key: str(value) for key, value in self.overrides.items()},
        })
        properties_path.write_text("".join(f"{key}={value}\n" for key, value in lines.items()))
        return properties_path


class KafkaCluster:
    """N Apache Kafka nodes (KRaft, each broker+controller, static voters) on 127.0.0.1.

    `with KafkaCluster(3) as kafka: kafka.bootstrap_servers`; `kill(node_id)` SIGKILLs one node
    (a crash), `pid(node_id)` finds it. Internal topics get replication factor min(3, N).
    """

    def __init__(self, nodes: int = 3, *, overrides: Mapping[str, object] | None = None,
                 jvm_opts: Sequence[str] = JVM_OPTS_DEFAULT, start_timeout_s: float = 120.0):
        self.size = nodes
        self.start_timeout_s = start_timeout_s
        replication = min(3, nodes)
        self.overrides = {"offsets.topic.replication.factor": replication,
                          "transaction.state.log.replication.factor": replication,
                          "transaction.state.log.min.isr": min(2, replication),
                          "share.coordinator.state.topic.replication.factor": replication,
                          "share.coordinator.state.topic.min.isr": min(2, replication), **(overrides or {})}
        self.jvm_opts = tuple(jvm_opts)
        self.directory: Path | None = None
        self.nodes: dict[int, _ClusterNode] = {}

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(node.bootstrap_servers for _, node in sorted(self.nodes.items()))

    def pid(self, node_id: int) -> int | None:
        return self.nodes[node_id].pid

    def pids(self) -> list[int]:
        return [node.pid for _, node in sorted(self.nodes.items()) if node.pid]

    def __enter__(self) -> "KafkaCluster":
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def start(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="moldau-kafka-cluster-"))
        ports = {node_id: (free_port(), free_port()) for node_id in range(1, self.size + 1)}
        voters = ",".join(f"{node_id}@127.0.0.1:{controller}" for node_id, (_, controller) in ports.items())
        cluster_id = random_cluster_id()
        try:
            for node_id, (port, controller) in ports.items():
                node = _ClusterNode(node_id, port, controller, voters, cluster_id, self.directory / f"node-{node_id}",
                                    overrides=self.overrides, jvm_opts=self.jvm_opts,
                                    start_timeout_s=self.start_timeout_s)
                self.nodes[node_id] = node
                node.directory = node._given_dir
                node.directory.mkdir(parents=True, exist_ok=True)
                node._format(node._write_properties())
            for node in self.nodes.values():  # launched together: a quorum needs a majority
                node._launch(node.directory / "server.properties")
            self._wait_until_serving()
        except BaseException:
            self.stop()
            raise

    def _wait_until_serving(self) -> None:
        from confluent_kafka.admin import AdminClient

        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            for node in self.nodes.values():
                if node.process is not None and node.process.poll() is not None:
                    raise KafkaError(f"Kafka node {node.node_id} exited on start: {node._log_tail()}")
            if any(_broker_listed(node.bootstrap_servers) for node in self.nodes.values()):
                admin = AdminClient({"bootstrap.servers": self.bootstrap_servers, "log_level": 0})
                try:
                    if len(admin.list_topics(timeout=2).brokers) == self.size:
                        return
                except Exception:
                    pass
            time.sleep(0.3)
        raise KafkaError(f"the Kafka cluster did not serve within {self.start_timeout_s}s")

    def kill(self, node_id: int) -> None:
        """SIGKILL one node (a crash); its directory stays until stop()."""
        self.nodes[node_id].kill()

    def restart(self, node_id: int) -> None:
        """Launch a killed node again on its directory and ports."""
        node = self.nodes[node_id]
        node.process = None
        if node._log_file is not None:
            node._log_file.close()
            node._log_file = None
        node._launch(node.directory / "server.properties")

    def stop(self) -> None:
        for node in self.nodes.values():
            node.stop()
        self.nodes.clear()
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None
