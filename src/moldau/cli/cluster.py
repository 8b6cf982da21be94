"""`moldau cluster`: a local replicated cluster of `moldau server` processes.

    moldau cluster up [--brokers 3] [--data-dir ./moldau-cluster] [--base-port 9092] [--tls]
    moldau cluster status [--output json]
    moldau cluster stop ID | kill ID | start ID | down

Theory of operation. `up` writes one Kafka-style `node-<id>.properties` per node into the
cluster directory (combined mode: broker and controller; node i listens on base port + i - 1
for clients, base + 100 + i - 1 for the controller quorum, base + 200 + i - 1 for metrics), and
`cluster.json` describing the cluster (its id, each node's ports, files and last PID). It starts
every node as a background process (its own data directory `node-<id>/` and log file
`node-<id>.log`), and returns once every node says it runs — registered with the active
controller, which means the metadata quorum has a leader — then prints the bootstrap servers.
Running `up` again on the same directory starts whatever is not running, with its data.

`up --tls` (first start only) makes the cluster's certificates with `moldau certs create`'s
code in `<dir>/certs` — a CA, one server certificate per node for localhost and 127.0.0.1, a
client certificate — and every listener (clients, between brokers, the controllers') speaks
mutual TLS; clients use `<dir>/certs/client-ssl.properties` (printed after the bootstrap
servers). The choice is kept in `cluster.json`, so `up`/`start` later keep it.

`stop` is a clean shutdown (SIGTERM: the node first asks the controller to move its
leaderships away), `kill` a crash (SIGKILL), `start` starts one node again, `down` stops them
all and keeps the data. `status` says for each node whether its process and port are alive and
what the cluster reports: the active controller (from DescribeQuorum), the partitions each node
leads, the partitions that are under-replicated.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from moldau.cli.common import integer
from moldau.cli.main import CliError

DEFAULT_DIR = "./moldau-cluster"
DEFAULT_BASE_PORT = 9092
CONTROLLER_PORT_OFFSET = 100
METRICS_PORT_OFFSET = 200
START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 30
STATE_FILE = "cluster.json"
READY_LINE = "moldau server listening on"


@dataclass
class NodeInfo:
    node_id: int
    port: int
    controller_port: int
    metrics_port: int
    pid: int = 0

    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


@dataclass
class ClusterInfo:
    cluster_id: str
    base_port: int
    nodes: list[NodeInfo]
    security: str = "PLAINTEXT"  # or SSL (`up --tls`): every listener speaks mutual TLS

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(node.address() for node in self.nodes)

    def node(self, node_id: int) -> NodeInfo:
        for node in self.nodes:
            if node.node_id == node_id:
                return node
        known = ", ".join(str(n.node_id) for n in self.nodes)
        raise CliError(f"no node {node_id} in this cluster (its nodes are {known})")


def register(subparsers) -> None:
    parser = subparsers.add_parser("cluster", help="run a local replicated cluster (up, status, stop, kill, start, down)",
                                   description="A local cluster of Moldau nodes, each a background process.")
    actions = parser.add_subparsers(dest="cluster_command", metavar="ACTION")

    def action(name: str, help_text: str, with_id: bool = False):
        sub = actions.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--data-dir", default=DEFAULT_DIR, help=f"the cluster's directory (default {DEFAULT_DIR})")
        if with_id:
            sub.add_argument("node_id", type=integer(1, 100), metavar="ID", help="the node's id (1..N)")
        return sub

    up = action("up", "start a cluster (or the stopped nodes of an existing one) and wait until it runs")
    up.add_argument("--brokers", type=integer(1, 100), default=3, help="how many nodes (default 3)")
    up.add_argument("--base-port", type=integer(1024, 65535), default=DEFAULT_BASE_PORT,
                    help=f"node i listens on base+i-1, its controller on base+{CONTROLLER_PORT_OFFSET}+i-1 "
                         f"(default {DEFAULT_BASE_PORT})")
    up.add_argument("--tls", action="store_true",
                    help="secure every listener with mutual TLS, certificates made in <dir>/certs "
                         "(clients: --command-config <dir>/certs/client-ssl.properties)")
    up.set_defaults(func=run_up)
    status = action("status", "show the nodes, the active controller and partition health")
    status.add_argument("--output", choices=("table", "json"), default=None, help="table (default) or json")
    status.set_defaults(func=run_status)
    action("stop", "stop a node cleanly (its leaderships move away first)", True).set_defaults(func=run_stop)
    action("kill", "kill a node (SIGKILL, as a crash)", True).set_defaults(func=run_kill)
    action("start", "start a stopped or killed node", True).set_defaults(func=run_start)
    action("down", "stop every node (the data stays)").set_defaults(func=run_down)
    parser.set_defaults(func=lambda args: (parser.print_help(sys.stderr), 2)[1])


# --- the cluster directory -----------------------------------------------------------------
def _state_path(data_dir: str) -> Path:
    return Path(data_dir) / STATE_FILE


def load(data_dir: str) -> ClusterInfo:
    path = _state_path(data_dir)
    if not path.exists():
        raise CliError(f"no cluster in {data_dir} (start one with: moldau cluster up --data-dir {data_dir})")
    try:
        raw = json.loads(path.read_text())
        return ClusterInfo(raw["cluster_id"], raw["base_port"], [NodeInfo(**node) for node in raw["nodes"]],
                           raw.get("security", "PLAINTEXT"))
    except (ValueError, KeyError, TypeError) as error:
        raise CliError(f"{path} is not a Moldau cluster description: {error}") from None


def save(data_dir: str, info: ClusterInfo) -> None:
    path = _state_path(data_dir)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(asdict(info), indent=1) + "\n")
    os.replace(temporary, path)


def _new_cluster(brokers: int, base_port: int) -> ClusterInfo:
    import base64

    cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    nodes = [NodeInfo(i, base_port + i - 1, base_port + CONTROLLER_PORT_OFFSET + i - 1,
                      base_port + METRICS_PORT_OFFSET + i - 1) for i in range(1, brokers + 1)]
    return ClusterInfo(cluster_id, base_port, nodes)


def node_properties(info: ClusterInfo, node: NodeInfo, data_dir: str) -> dict[str, str]:
    """A node's server.properties: Kafka 4's keys for a combined-mode KRaft node."""
    count = len(info.nodes)
    voters = ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in info.nodes)
    return {
        "node.id": str(node.node_id),
        "process.roles": "broker,controller",
        "listeners": f"PLAINTEXT://127.0.0.1:{node.port},CONTROLLER://127.0.0.1:{node.controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{node.port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "controller.quorum.voters": voters,
        "log.dirs": str((Path(data_dir) / f"node-{node.node_id}").resolve()),
        "cluster.id": info.cluster_id,
        "default.replication.factor": str(min(3, count)),
        "offsets.topic.replication.factor": str(min(3, count)),
        "transaction.state.log.replication.factor": str(min(3, count)),
        "transaction.state.log.min.isr": str(min(2, count)),
        # A local cluster notices a dead node in seconds, not Kafka's 9, and gives partitions
        # back to their preferred leaders soon after a node returns.
        "broker.heartbeat.interval.ms": "500",
        "broker.session.timeout.ms": "3000",
        "leader.imbalance.check.interval.seconds": "10",
        "metrics.port": str(node.metrics_port),
        **_tls_properties(info, node, data_dir),
    }


def _tls_properties(info: ClusterInfo, node: NodeInfo, data_dir: str) -> dict[str, str]:
    """A `--tls` cluster: every listener SSL, the node's own keystore, client certificates required."""
    if info.security != "SSL":
        return {}
    certs = (Path(data_dir) / "certs").resolve()
    keystore = certs / (f"node-{node.node_id}.keystore.pem" if len(info.nodes) > 1 else "server.keystore.pem")
    return {
        "listeners": f"SSL://127.0.0.1:{node.port},CONTROLLER://127.0.0.1:{node.controller_port}",
        "advertised.listeners": f"SSL://127.0.0.1:{node.port}",
        "inter.broker.listener.name": "SSL",
        "listener.security.protocol.map": "SSL:SSL,CONTROLLER:SSL",
        "ssl.keystore.type": "PEM", "ssl.keystore.location": str(keystore),
        "ssl.key.password": (certs / "password").read_text().strip(),
        "ssl.truststore.type": "PEM", "ssl.truststore.location": str(certs / "ca.crt"),
        "ssl.client.auth": "required",
    }


def _make_certs(info: ClusterInfo, data_dir: str) -> None:
    import datetime
    import secrets

    from moldau.security.certs import make_bundle

    certs = Path(data_dir) / "certs"
    if (certs / "ca.crt").exists():
        return
    certs.mkdir(mode=0o700, parents=True, exist_ok=True)
    bundle = make_bundle(str(certs.resolve()), ["localhost", "127.0.0.1"], len(info.nodes), secrets.token_urlsafe(12),
                         datetime.datetime.now(datetime.timezone.utc))
    for name, data in bundle.items():
        descriptor = os.open(certs / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)


def _write_properties(info: ClusterInfo, node: NodeInfo, data_dir: str) -> Path:
    from moldau.properties import dumps

    path = Path(data_dir) / f"node-{node.node_id}.properties"
    header = f"# Node {node.node_id} of the local Moldau cluster {info.cluster_id} (written by moldau cluster up)\n"
    path.write_text(header + dumps(node_properties(info, node, data_dir)))
    return path


# --- processes -------------------------------------------------------------------------------
def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of ours is dead
        finished, _status = os.waitpid(pid, os.WNOHANG)
        return finished == 0
    except ChildProcessError:
        return _not_zombie(pid)


def _not_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _log_path(data_dir: str, node: NodeInfo) -> Path:
    return Path(data_dir) / f"node-{node.node_id}.log"


def _check_ports(nodes: list[NodeInfo]) -> None:
    """Every port of every node about to start is free — checked before any starts, so that a
    taken port leaves nothing half-started behind."""
    for node in nodes:
        for port in (node.port, node.controller_port, node.metrics_port):
            if not _port_free(port):
                raise CliError(f"port {port} (node {node.node_id}) is in use by another process; "
                               f"stop it or choose another --base-port")


def _launch(info: ClusterInfo, node: NodeInfo, data_dir: str) -> subprocess.Popen:
    properties = _write_properties(info, node, data_dir)
    log = _log_path(data_dir, node)
    with open(log, "ab") as output:
        output.write(f"\n=== starting node {node.node_id} at {time.strftime('%Y-%m-%d %H:%M:%S')} ===\n".encode())
        output.flush()
        process = subprocess.Popen([sys.executable, "-m", "moldau", "server", str(properties), "--log-level", "info"],
                                   stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                                   start_new_session=True, env=_child_env())
    node.pid = process.pid
    return process


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _wait_ready(data_dir: str, started: list[tuple[NodeInfo, subprocess.Popen, int]]) -> None:
    """Wait until every started node printed its ready line (after the start marker offset)."""
    deadline = time.monotonic() + START_TIMEOUT_S
    waiting = list(started)
    while waiting:
        for entry in list(waiting):
            node, process, offset = entry
            text = _log_path(data_dir, node).read_bytes()[offset:].decode("utf-8", "replace")
            if READY_LINE in text:
                waiting.remove(entry)
            elif process.poll() is not None:
                raise CliError(f"node {node.node_id} exited during start: {_last_error(text)} "
                               f"(see {_log_path(data_dir, node)})")
        if waiting and time.monotonic() > deadline:
            ids = ", ".join(str(n.node_id) for n, _p, _o in waiting)
            raise CliError(f"node(s) {ids} did not join the cluster within {START_TIMEOUT_S} s "
                           f"(see {data_dir}/node-<id>.log)")
        time.sleep(0.05)


def _last_error(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in reversed(lines):
        if line.startswith("moldau:"):
            return line[len("moldau:"):].strip()
    return lines[-1] if lines else "no output"


def _start_nodes(info: ClusterInfo, nodes: list[NodeInfo], data_dir: str) -> None:
    _check_ports(nodes)
    started = []
    try:
        for node in nodes:
            offset = _log_path(data_dir, node).stat().st_size if _log_path(data_dir, node).exists() else 0
            started.append((node, _launch(info, node, data_dir), offset))
    except BaseException:  # (a port taken in between, say): stop what this call started
        for node, process, _offset in started:
            process.kill()
            process.wait(10)
            node.pid = 0
        raise
    save(data_dir, info)
    try:
        _wait_ready(data_dir, started)
    except CliError:
        for node, process, _offset in started:
            if process.poll() is None and node.node_id not in _ready_ids(data_dir, started):
                continue  # leave what runs running: `status` and the logs tell the rest
        raise


def _ready_ids(data_dir: str, started) -> set[int]:
    return {node.node_id for node, _p, offset in started
            if READY_LINE in _log_path(data_dir, node).read_bytes()[offset:].decode("utf-8", "replace")}


# --- actions ---------------------------------------------------------------------------------
def run_up(args) -> int:
    data_dir = args.data_dir
    if not 1 <= args.brokers <= 100:
        raise CliError(f"--brokers must be between 1 and 100, got {args.brokers}")
    if not 1024 <= args.base_port <= 65535 - METRICS_PORT_OFFSET - args.brokers:
        raise CliError(f"--base-port must leave room for {args.brokers} nodes' ports "
                       f"(1024-{65535 - METRICS_PORT_OFFSET - args.brokers}), got {args.base_port}")
    directory = Path(data_dir)
    if directory.exists() and not directory.is_dir():
        raise CliError(f"{data_dir} is a file, not a directory")
    if _state_path(data_dir).exists():
        info = load(data_dir)
        if args.brokers != len(info.nodes) and "--brokers" in sys.argv:
            raise CliError(f"{data_dir} holds a cluster of {len(info.nodes)} nodes, not {args.brokers}")
    else:
        _refuse_foreign_data(directory)
        directory.mkdir(parents=True, exist_ok=True)
        info = _new_cluster(args.brokers, args.base_port)
        if getattr(args, "tls", False):
            info.security = "SSL"
            _make_certs(info, data_dir)
    _check_node_dirs(info, data_dir)
    stopped = [node for node in info.nodes if not _pid_alive(node.pid)]
    if stopped:
        _start_nodes(info, stopped, data_dir)
    print(info.bootstrap_servers, flush=True)
    if info.security == "SSL":
        print(f"clients: --command-config {(Path(data_dir) / 'certs' / 'client-ssl.properties').resolve()}", flush=True)
    return 0


def _refuse_foreign_data(directory: Path) -> None:
    if directory.exists() and any(directory.iterdir()):
        raise CliError(f"{directory} is not empty and holds no {STATE_FILE}: not a Moldau cluster directory")


def _check_node_dirs(info: ClusterInfo, data_dir: str) -> None:
    """Each node's data directory must belong to this cluster (its meta.properties)."""
    from moldau.controller.storage import META_PROPERTIES

    for node in info.nodes:
        meta = Path(data_dir) / f"node-{node.node_id}" / META_PROPERTIES
        if not meta.exists():
            continue
        values = dict(line.split("=", 1) for line in meta.read_text().splitlines() if "=" in line and not line.startswith("#"))
        if values.get("cluster.id", info.cluster_id) != info.cluster_id:
            raise CliError(f"{meta} belongs to cluster {values['cluster.id']}, not {info.cluster_id} "
                           f"({STATE_FILE}): refusing to mix two clusters' data")


def run_start(args) -> int:
    info = load(args.data_dir)
    node = info.node(args.node_id)
    if _pid_alive(node.pid):
        raise CliError(f"node {node.node_id} is already running (pid {node.pid})")
    _start_nodes(info, [node], args.data_dir)
    print(f"node {node.node_id} is running on {node.address()}")
    return 0


def run_stop(args) -> int:
    info = load(args.data_dir)
    node = info.node(args.node_id)
    if not _pid_alive(node.pid):
        raise CliError(f"node {node.node_id} is not running")
    _signal_and_wait(node, signal.SIGTERM)
    print(f"node {node.node_id} stopped")
    return 0


def run_kill(args) -> int:
    info = load(args.data_dir)
    node = info.node(args.node_id)
    if not _pid_alive(node.pid):
        raise CliError(f"node {node.node_id} is not running")
    _signal_and_wait(node, signal.SIGKILL)
    print(f"node {node.node_id} killed")
    return 0


def run_down(args) -> int:
    info = load(args.data_dir)
    running = [node for node in info.nodes if _pid_alive(node.pid)]
    for node in running:
        os.kill(node.pid, signal.SIGTERM)
    for node in running:
        _wait_exit(node)
    print(f"stopped {len(running)} node(s); the data stays in {args.data_dir}")
    return 0


def _signal_and_wait(node: NodeInfo, signum: int) -> None:
    os.kill(node.pid, signum)
    _wait_exit(node)


def _wait_exit(node: NodeInfo) -> None:
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while _pid_alive(node.pid):
        if time.monotonic() > deadline:
            os.kill(node.pid, signal.SIGKILL)
        time.sleep(0.05)


def run_status(args) -> int:
    from moldau.cli.common import emit_json, emit_table

    info = load(args.data_dir)
    report = cluster_report(info, args.data_dir)
    if (args.output or getattr(args, "output_format", None)) == "json":
        emit_json(report)
        return 0
    rows = [[n["node_id"], n["pid"] or "-", n["address"], "yes" if n["alive"] else "no",
             "yes" if n["controller"] else "", n["partitions_led"], n["metrics"]] for n in report["nodes"]]
    emit_table(["NODE", "PID", "ADDRESS", "ALIVE", "CONTROLLER", "LEADS", "METRICS"], rows)
    under = report["under_replicated_partitions"]
    offline = report["offline_partitions"]
    print(f"cluster {report['cluster_id']}: active controller {report['active_controller']}, "
          f"{len(under)} under-replicated partition(s), {len(offline)} offline")
    for line in under + offline:
        print(f"  {line}")
    return 0


def cluster_report(info: ClusterInfo, data_dir: str = DEFAULT_DIR) -> dict:
    alive = {node.node_id: _pid_alive(node.pid) and _port_open(node.port) for node in info.nodes}
    controller, partitions = _ask_cluster(info, alive, data_dir)
    led: dict[int, int] = {}
    under, offline = [], []
    for topic, index, leader, replicas, isr in partitions:
        if leader >= 0:
            led[leader] = led.get(leader, 0) + 1
        else:
            offline.append(f"{topic}-{index} (replicas {replicas}, no leader)")
        if leader >= 0 and len(isr) < len(replicas):
            under.append(f"{topic}-{index} (replicas {replicas}, ISR {isr})")
    nodes = [{"node_id": n.node_id, "pid": n.pid if _pid_alive(n.pid) else None, "address": n.address(),
              "alive": alive[n.node_id], "controller": n.node_id == controller,
              "partitions_led": led.get(n.node_id, 0), "metrics": f"http://127.0.0.1:{n.metrics_port}/metrics"}
             for n in info.nodes]
    return {"cluster_id": info.cluster_id, "bootstrap_servers": info.bootstrap_servers,
            "active_controller": controller, "nodes": nodes,
            "under_replicated_partitions": under, "offline_partitions": offline}


def _client_settings(info: ClusterInfo, node: NodeInfo, data_dir: str):
    """What `status` connects with: plaintext, or the cluster's client certificate (`--tls`)."""
    if info.security != "SSL":
        return None
    from moldau.cli.common import Settings, read_properties

    return Settings(node.address(), read_properties(str(Path(data_dir) / "certs" / "client-ssl.properties")), "table")


def _ask_cluster(info: ClusterInfo, alive: dict[int, bool], data_dir: str) -> tuple[int, list]:
    """(active controller id or -1, [(topic, partition, leader, replicas, isr)]) from a live node."""
    from moldau.cli import wire

    for node in info.nodes:
        if not alive[node.node_id]:
            continue
        try:
            connection = wire.connect(("127.0.0.1", node.port), _client_settings(info, node, data_dir))
        except CliError:
            continue
        try:
            return wire.active_controller(connection), wire.partitions(connection)
        except CliError:
            continue
        finally:
            connection.close()
    return -1, []
