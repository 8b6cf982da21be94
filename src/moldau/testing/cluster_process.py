"""`ProcessCluster`: `moldau cluster up` driven from tests — real processes, killable by id.

    with ProcessCluster(tmp_path, brokers=3) as cluster:
        cluster.bootstrap_servers     # "127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3"
        cluster.kill(2); cluster.start(2); cluster.stop(3)

Ports come from a free block (clients, controllers and metrics at base, base+100, base+200).
On exit every node still running is stopped by its PID (SIGKILL after a grace period), so a
failing test leaves no process behind.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

_CLI_TIMEOUT_S = 120


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_base_port(brokers: int) -> int:
    """A base port whose client, controller and metrics ports (base+i, +100, +200) are free and
    all below the ephemeral range: there a killed node's port can be taken by some client's
    outgoing connection before the node restarts (runtime/ports.py says why)."""
    from moldau.runtime.ports import ephemeral_low

    rng = random.Random()
    high = max(20_001, ephemeral_low() - 200 - brokers)
    for _ in range(200):
        base = rng.randrange(20_000, high)
        if all(_free(base + offset + i) for offset in (0, 100, 200) for i in range(brokers)):
            return base
    raise RuntimeError("no free block of ports for a cluster")


def _pythonpath() -> str:
    src = str(Path(__file__).resolve().parents[2])
    existing = os.environ.get("PYTHONPATH")
    return src if not existing else src + os.pathsep + existing


def moldau(*args: str, timeout: float = _CLI_TIMEOUT_S, input: str | None = None) -> subprocess.CompletedProcess:
    """Run the `moldau` command (this source tree's) and return what it did."""
    env = dict(os.environ, PYTHONPATH=_pythonpath())
    return subprocess.run([sys.executable, "-m", "moldau", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, input=input, stdin=None if input is not None else subprocess.DEVNULL)


class ProcessCluster:
    def __init__(self, directory: str | os.PathLike, brokers: int = 3, base_port: int | None = None,
                 tls: bool = False):
        self.directory = str(directory)
        self.brokers = brokers
        self.base_port = base_port or free_base_port(brokers)
        self.tls = tls  # `moldau cluster up --tls`: mutual TLS on every listener

    # --- the cluster command ----------------------------------------------------------------
    def cli(self, action: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = moldau("cluster", action, *args, "--data-dir", self.directory)
        if check and result.returncode != 0:
            raise AssertionError(f"moldau cluster {action} {' '.join(args)} failed ({result.returncode}): "
                                 f"{result.stderr.strip()}\n{self.log_tails()}")
        return result

    def up(self) -> "ProcessCluster":
        self.cli("up", "--brokers", str(self.brokers), "--base-port", str(self.base_port), *(["--tls"] if self.tls else []))
        return self

    def client_config(self) -> dict[str, str]:
        """confluent-kafka settings for this cluster (with the client certificate under --tls)."""
        settings = {"bootstrap.servers": self.bootstrap_servers}
        if self.tls:
            certs = Path(self.directory) / "certs"
            settings.update({"security.protocol": "SSL", "ssl.ca.location": str(certs / "ca.crt"),
                             "ssl.certificate.location": str(certs / "client.crt"),
                             "ssl.key.location": str(certs / "client.key")})
        return settings

    def kill(self, node_id: int) -> None:
        self.cli("kill", str(node_id))

    def stop(self, node_id: int) -> None:
        self.cli("stop", str(node_id))

    def start(self, node_id: int) -> None:
        self.cli("start", str(node_id))

    def status(self) -> dict[str, Any]:
        return json.loads(self.cli("status", "--output", "json").stdout)

    # --- looking at it ----------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        return json.loads((Path(self.directory) / "cluster.json").read_text())

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(f"127.0.0.1:{node['port']}" for node in self.info()["nodes"])

    def address(self, node_id: int) -> str:
        return f"127.0.0.1:{self.base_port + node_id - 1}"

    def node_dir(self, node_id: int) -> Path:
        return Path(self.directory) / f"node-{node_id}"

    def log_tails(self, lines: int = 15) -> str:
        out = []
        for path in sorted(Path(self.directory).glob("node-*.log")):
            text = path.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {path.name}\n" + "\n".join(text))
        return "\n".join(out)

    def wait_for(self, condition, timeout_s: float = 60, what: str = "the condition") -> Any:
        deadline = time.monotonic() + timeout_s
        last = None
        while time.monotonic() < deadline:
            last = condition()
            if last:
                return last
            time.sleep(0.2)
        raise AssertionError(f"timed out after {timeout_s}s waiting for {what} (last: {last!r})\n{self.log_tails()}")

    def _wire_settings(self, node: dict):
        if not self.tls:
            return None
        from moldau.cli.common import Settings

        return Settings(f"127.0.0.1:{node['port']}", self.client_config(), "table")

    def partition_state(self, topic: str, index: int = 0) -> tuple[int, list[int], list[int]]:
        """(leader, replicas, isr) as a live node reports it."""
        from moldau.cli import wire
        from moldau.cli.main import CliError

        for node in self.info()["nodes"]:
            try:
                connection = wire.connect(("127.0.0.1", node["port"]), self._wire_settings(node))
                try:
                    rows = wire.partitions(connection)
                finally:
                    connection.close()
            except CliError:
                continue
            for name, partition, leader, replicas, isr in rows:
                if name == topic and partition == index:
                    return leader, replicas, isr
        raise AssertionError(f"no live node knows {topic}-{index}")

    # --- cleanup --------------------------------------------------------------------------------
    def close(self) -> None:
        path = Path(self.directory) / "cluster.json"
        if not path.exists():
            return
        self.cli("down", check=False)
        for node in self.info()["nodes"]:  # whatever did not stop: by PID
            pid = node.get("pid") or 0
            if pid > 0:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def __enter__(self) -> "ProcessCluster":
        return self.up()

    def __exit__(self, *exc) -> None:
        self.close()
