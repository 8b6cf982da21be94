"""Append-to-sink latency of the Connect lab: a line appended to test.txt, until it is in test.sink.txt.

Runs the lab pipeline (FileStreamSource -> topic -> FileStreamSink, the stock files of config/
with only the broker address, the REST port and the offsets file changed) against one
in-process moldau broker, with moldau's worker and, when Kafka's jars are present, Apache
Kafka 4.1.1's `connect-standalone`; after a warm-up line, appends one line at a time and
polls the sink file every millisecond. Prints one JSON object per worker.

    python benchmarks/connect_latency.py [--lines 20]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from moldau.properties import dumps, load_file  # noqa: E402
from moldau.runtime.embedded import Broker  # noqa: E402
from moldau.testing.kafka_dist import free_port, java_command, kafka_available  # noqa: E402


def _wait_for(path: Path, ending: str, timeout_s: float) -> float:
    began = time.monotonic()
    while time.monotonic() - began < timeout_s:
        if path.exists() and path.read_text().endswith(ending):
            return time.monotonic() - began
        time.sleep(0.001)
    raise TimeoutError(f"{ending.strip()!r} not in {path} after {timeout_s}s")


def measure(worker: str, bootstrap: str, lines: int) -> dict:
    with tempfile.TemporaryDirectory(prefix=f"connect-latency-{worker}-") as scratch:
        directory = Path(scratch)
        config = load_file(str(REPO / "config" / "connect-standalone.properties"))
        config.update({"bootstrap.servers": bootstrap, "listeners": f"http://127.0.0.1:{free_port()}",
                       "offset.storage.file.filename": str(directory / "connect.offsets")})
        (directory / "worker.properties").write_text(dumps(config))
        topic = f"latency-{worker}-{time.time_ns()}"
        for name, key in (("source", "topic"), ("sink", "topics")):
            connector = load_file(str(REPO / "config" / f"connect-file-{name}.properties"))
            (directory / f"{name}.properties").write_text(dumps(dict(connector, **{key: topic})))
        (directory / "test.txt").write_text("warm up\n")
        args = ["worker.properties", "source.properties", "sink.properties"]
        command = ([sys.executable, "-m", "moldau", "connect", "standalone", *args] if worker == "moldau"
                   else java_command("connect-standalone", args))
        env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
        with open(directory / "worker.log", "w") as log:
            process = subprocess.Popen(command, cwd=directory, env=env, stdout=log, stderr=subprocess.STDOUT,
                                       start_new_session=True)
            try:
                _wait_for(directory / "test.sink.txt", "warm up\n", 120)
                latencies = []
                for n in range(lines):
                    with open(directory / "test.txt", "a") as handle:
                        handle.write(f"line {n}\n")
                    latencies.append(_wait_for(directory / "test.sink.txt", f"line {n}\n", 60))
                    time.sleep(0.2)
            finally:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(30)
    ordered = sorted(latencies)
    return {"worker": worker, "lines": lines, "median_s": round(statistics.median(ordered), 3),
            "p90_s": round(ordered[int(0.9 * (len(ordered) - 1))], 3), "max_s": round(ordered[-1], 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="connect-latency-broker-") as data_dir:
        with Broker(data_dir=data_dir, config={"group.initial.rebalance.delay.ms": "0"}) as broker:
            for worker in ("moldau", "kafka") if kafka_available() else ("moldau",):
                print(json.dumps(measure(worker, broker.bootstrap_servers, args.lines)), flush=True)


if __name__ == "__main__":
    main()
