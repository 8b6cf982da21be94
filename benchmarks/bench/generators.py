"""Load generators as subprocesses: franz-go (tests/clients/go/loadgen), kcat, `moldau perf`
(librdkafka from Python) and Kafka's Java perf tools.

Each function runs one generator to completion against a bootstrap address and returns a flat
dict of numbers with the same keys for every generator (records_per_sec, mb_per_sec, p50_ms, …),
so the report can put them side by side. Generators run in their own processes, never in the
harness, so the harness's Python does not compete with them for the GIL.

Every generator runs in its own session, as the brokers do (kafka_dist starts Kafka's JVM so,
systems.py moldau's server): Linux's autogroup scheduling shares the CPU fairly between
sessions, so a process left in the harness's session would share one share with it.

Which generator measures the broker: on two cores the Python and Java generators spend more CPU
per record than a broker does, so they set the pace (docs/benchmarks.md). franz-go (a compiled
client, several producers at once, per-record latency) and kcat (librdkafka's C, reading its
records from a file) cost a fraction of that, and are the defaults.

The Java tools get the JVM flags Kafka's scripts give them (-Xmx512m, G1) and full JIT
compilation — kafka_dist's tool default (C1 only, for quick CLI calls) would slow them down.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from moldau.testing.kafka_dist import kafka_tool
from bench.security import SECURITY

SRC = str(Path(__file__).resolve().parents[2] / "src")
JAVA_TOOL_JVM_OPTS = ("-Xmx512m", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-Djava.awt.headless=true")
TIMEOUT_S = 600.0


class GeneratorFailed(RuntimeError):
    pass


def _moldau_perf(args: list[str], timeout_s: float = TIMEOUT_S) -> dict:
    env = dict(os.environ, PYTHONPATH=SRC + (os.pathsep + os.environ["PYTHONPATH"] if os.environ.get("PYTHONPATH") else ""))
    command = [sys.executable, "-m", "moldau", "perf", *args, "--output", "json"]
    if SECURITY.enabled and "test.mock.num.brokers=1" not in args:
        command += ["--command-config", SECURITY.client_file]
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout_s,
                              start_new_session=True)
    except subprocess.TimeoutExpired:
        raise GeneratorFailed(f"moldau perf {args[0]} timed out after {timeout_s:g}s") from None
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise GeneratorFailed(f"moldau perf {args[0]} exited {done.returncode}: {done.stderr.strip()[-500:]}")
    return json.loads(lines[-1])


def _props(props: dict) -> list[str]:
    return [f"{key}={value}" for key, value in props.items()]


def librdkafka_produce(bootstrap: str, topic: str, records: int, size: int, props: dict, throughput: float = -1) -> dict:
    result = _moldau_perf(["produce", "--bootstrap-server", bootstrap, "--topic", topic, "--num-records", str(records),
                           "--record-size", str(size), "--throughput", str(throughput),
                           "--producer-prop", *_props(props)])
    return {key: result[key] for key in ("records_per_sec", "mb_per_sec", "avg_latency_ms", "max_latency_ms",
                                         "p50_ms", "p95_ms", "p99_ms", "p999_ms", "client_cpu_s")}


def librdkafka_produce_mock(records: int, size: int, props: dict) -> dict:
    """The client's own ceiling: `moldau perf produce` against librdkafka's in-process mock cluster
    (test.mock.num.brokers=1), so no broker process and no real socket is involved."""
    result = _moldau_perf(["produce", "--topic", "mock", "--num-records", str(records), "--record-size", str(size),
                           "--producer-prop", "test.mock.num.brokers=1", *_props(props)])
    return {key: result[key] for key in ("records_per_sec", "mb_per_sec", "client_cpu_s")}


def librdkafka_consume(bootstrap: str, topic: str, messages: int) -> dict:
    result = _moldau_perf(["consume", "--bootstrap-server", bootstrap, "--topic", topic, "--messages", str(messages)])
    return {"records_per_sec": result["messages_per_sec"], "mb_per_sec": result["mb_per_sec"],
            "fetch_records_per_sec": result["fetch_messages_per_sec"], "client_cpu_s": result["client_cpu_s"]}


def librdkafka_end_to_end(bootstrap: str, topic: str, records: int, size: int, rate: float, props: dict) -> dict:
    result = _moldau_perf(["end-to-end", "--bootstrap-server", bootstrap, "--topic", topic,
                           "--num-records", str(records), "--record-size", str(size), "--throughput", str(rate),
                           "--producer-prop", *_props(props)])
    return {key: result[key] for key in ("p50_ms", "p99_ms", "p999_ms", "avg_latency_ms", "max_latency_ms")}


_PRODUCER_FINAL = re.compile(
    r"(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, ([\d.]+) ms max latency, "
    r"(\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th, (\d+) ms 99.9th")


def java_produce(bootstrap: str, topic: str, records: int, size: int, props: dict, throughput: float = -1) -> dict:
    args = ["--topic", topic, "--num-records", str(records), "--record-size", str(size),
            "--throughput", str(int(throughput)), "--producer-props", f"bootstrap.servers={bootstrap}", *_props(props)]
    if SECURITY.enabled:
        args += ["--producer.config", SECURITY.client_file]
    done = kafka_tool("org.apache.kafka.tools.ProducerPerformance", args, timeout=TIMEOUT_S, jvm_opts=JAVA_TOOL_JVM_OPTS)
    match = _PRODUCER_FINAL.search(done.stdout or "")
    if done.returncode != 0 or not match:
        raise GeneratorFailed(f"ProducerPerformance exited {done.returncode}: {_tail(done)}")
    values = [float(group) for group in match.groups()]
    return {"records_per_sec": values[1], "mb_per_sec": values[2], "avg_latency_ms": values[3],
            "max_latency_ms": values[4], "p50_ms": values[5], "p95_ms": values[6], "p99_ms": values[7],
            "p999_ms": values[8]}


def java_consume(bootstrap: str, topic: str, messages: int, group: str) -> dict:
    args = ["--bootstrap-server", bootstrap, "--topic", topic, "--messages", str(messages), "--group", group,
            "--timeout", "20000"]
    if SECURITY.enabled:
        args += ["--consumer.config", SECURITY.client_file]
    done = kafka_tool("org.apache.kafka.tools.ConsumerPerformance", args, timeout=TIMEOUT_S, jvm_opts=JAVA_TOOL_JVM_OPTS)
    rows = [line for line in (done.stdout or "").splitlines() if re.match(r"\d{4}-\d\d-\d\d ", line)]
    if done.returncode != 0 or not rows:
        raise GeneratorFailed(f"ConsumerPerformance exited {done.returncode}: {_tail(done)}")
    fields = [field.strip() for field in rows[-1].split(",")]
    # start, end, MB, MB.sec, nMsg, nMsg.sec, rebalance.ms, fetch.ms, fetch.MB.sec, fetch.nMsg.sec
    if int(fields[4]) < messages:
        raise GeneratorFailed(f"ConsumerPerformance read {fields[4]} of {messages} messages: {_tail(done)}")
    return {"records_per_sec": float(fields[5]), "mb_per_sec": float(fields[3]),
            "fetch_records_per_sec": float(fields[9])}


_E2E_AVG = re.compile(r"Avg latency: ([\d.]+) ms")
_E2E_PERCENTILES = re.compile(r"Percentiles: 50th = (\d+), 99th = (\d+), 99.9th = (\d+)")


def java_end_to_end(bootstrap: str, topic: str, records: int, size: int) -> dict:
    """Kafka's EndToEndLatency: one record at a time, each consumed before the next is sent."""
    args = [bootstrap, topic, str(records), "1", str(size)] + ([SECURITY.client_file] if SECURITY.enabled else [])
    done = kafka_tool("org.apache.kafka.tools.EndToEndLatency", args, timeout=TIMEOUT_S, jvm_opts=JAVA_TOOL_JVM_OPTS)
    avg, percentiles = _E2E_AVG.search(done.stdout or ""), _E2E_PERCENTILES.search(done.stdout or "")
    if done.returncode != 0 or not avg or not percentiles:
        raise GeneratorFailed(f"EndToEndLatency exited {done.returncode}: {_tail(done)}")
    p50, p99, p999 = (float(value) for value in percentiles.groups())
    return {"p50_ms": p50, "p99_ms": p99, "p999_ms": p999, "avg_latency_ms": float(avg.group(1))}


def _tail(done) -> str:
    text = ((done.stderr or "") + "\n" + (done.stdout or "")).strip()
    return text[-600:]


# --- franz-go: tests/clients/go/loadgen ------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]
LOADGEN_SOURCE = ROOT / "tests" / "clients" / "go"
LOADGEN_BINARY = ROOT / "build" / "clients" / "loadgen"


class GeneratorUnavailable(RuntimeError):
    """The generator's program is not on this machine (Go or kcat missing)."""


def loadgen_binary() -> str:
    """Build tests/clients/go/loadgen into build/clients/ when its source is newer (Go's module
    cache holds the pinned franz-go; scripts/test.sh downloads it)."""
    import shutil

    sources = [LOADGEN_SOURCE / "go.mod", LOADGEN_SOURCE / "go.sum", *sorted((LOADGEN_SOURCE / "loadgen").glob("*.go"))]
    newest = max(path.stat().st_mtime for path in sources)
    if LOADGEN_BINARY.exists() and LOADGEN_BINARY.stat().st_mtime >= newest:
        return str(LOADGEN_BINARY)
    go = shutil.which("go")
    if go is None:
        raise GeneratorUnavailable("the franz-go generator needs Go (https://go.dev/dl/) to build tests/clients/go/loadgen")
    LOADGEN_BINARY.parent.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([go, "build", "-o", str(LOADGEN_BINARY), "./loadgen"], cwd=LOADGEN_SOURCE,
                          capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise GeneratorFailed(f"go build ./loadgen: {done.stderr.strip()[-800:]}")
    return str(LOADGEN_BINARY)


def _loadgen(args: list[str], timeout_s: float = TIMEOUT_S) -> dict:
    command = [loadgen_binary(), *args]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, start_new_session=True)
    except subprocess.TimeoutExpired:
        raise GeneratorFailed(f"loadgen {args[0]} timed out after {timeout_s:g}s") from None
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise GeneratorFailed(f"loadgen {args[0]} exited {done.returncode}: {done.stderr.strip()[-500:]}")
    result = json.loads(lines[-1])
    if done.returncode != 0 or result.get("errors"):
        raise GeneratorFailed(f"loadgen {args[0]}: {result.get('errors')} errors, first: {result.get('first_error')}; "
                              f"{done.stderr.strip()[-300:]}")
    return result


_LOADGEN_KEYS = ("records_per_sec", "mb_per_sec", "avg_latency_ms", "max_latency_ms", "p50_ms", "p95_ms", "p99_ms",
                 "p999_ms", "longest_gap_ms", "slowest_window_records_per_sec")


def franz_produce(bootstrap: str, topic: str, records: int, size: int, props: dict, throughput: float = -1,
                  producers: int = 1, auto_create: bool = False, transactional_id: str | None = None,
                  txn_records: int = 100) -> dict:
    """`producers` franz-go clients at once (each with its own connections), flat out unless
    `throughput` (records/s over all of them) is given. Latency: Produce call → acknowledgement.
    With `transactional_id` each client commits a transaction every `txn_records` records."""
    acks = "all" if str(props.get("acks", "1")) in ("all", "-1") else str(props.get("acks", "1"))
    args = ["produce", "-brokers", bootstrap, "-topic", topic, "-records", str(records), "-size", str(size),
            "-producers", str(producers), "-acks", acks, "-linger", f"{props.get('linger.ms', 5)}ms",
            "-rate", str(throughput)]
    if str(props.get("enable.idempotence", "false")) == "true":
        args.append("-idempotent")
    if auto_create:
        args.append("-auto-create")
    if transactional_id:
        args += ["-transactional-id", transactional_id, "-txn-records", str(txn_records)]
    result = _loadgen(args)
    return {key: result[key] for key in _LOADGEN_KEYS if key in result}


def franz_consume(bootstrap: str, topic: str, messages: int, consumers: int = 1,
                  read_committed: bool = False) -> dict:
    """Read `messages` records from the beginning (partitions assigned, no group)."""
    result = _loadgen(["consume", "-brokers", bootstrap, "-topic", topic, "-records", str(messages),
                       "-consumers", str(consumers)] + (["-read-committed"] if read_committed else []))
    # fetch_response_*: request written → response read, as the client saw it: the broker's
    # answer time plus the transfer, without the consumer's decoding.
    keys = ("records_per_sec", "mb_per_sec", "first_record_s", "longest_gap_ms", "fetches", "fetch_response_p50_ms",
            "fetch_response_p99_ms", "fetch_response_mean_ms", "fetch_response_mean_bytes")
    return {key: result[key] for key in keys if key in result}


# --- kcat (librdkafka's C, no Python) -------------------------------------------------------

def _kcat() -> str:
    import shutil

    path = shutil.which("kcat") or shutil.which("kafkacat")
    if path is None:
        raise GeneratorUnavailable("the kcat generator needs kcat (apt-get install kcat)")
    return path


def kcat_lines_file(records: int, size: int) -> Path:
    """A file of `records` lines of `size` bytes each (plus the newline), made once and kept
    under build/benchmarks/ — kcat -l sends one record per line."""
    path = ROOT / "build" / "benchmarks" / f"kcat-{records}x{size}.txt"
    if not path.exists() or path.stat().st_size != records * (size + 1):
        path.parent.mkdir(parents=True, exist_ok=True)
        line = (b"abcdefghijklmnopqrstuvwxyz" * (size // 26 + 1))[:size] + b"\n"
        temporary = path.with_suffix(".tmp")
        with open(temporary, "wb") as out:
            chunk = line * max(1, min(records, (1 << 20) // len(line)))
            per_chunk = len(chunk) // len(line)
            written = 0
            while written + per_chunk <= records:
                out.write(chunk)
                written += per_chunk
            out.write(line * (records - written))
        temporary.replace(path)
    return path


def _timed(command: list[str], what: str) -> float:
    import time

    began = time.monotonic()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S, start_new_session=True)
    except subprocess.TimeoutExpired:
        raise GeneratorFailed(f"{what} timed out after {TIMEOUT_S:g}s") from None
    elapsed = time.monotonic() - began
    if done.returncode != 0 or "ERROR" in done.stderr:
        raise GeneratorFailed(f"{what} exited {done.returncode}: {done.stderr.strip()[-500:]}")
    return elapsed


def kcat_produce(bootstrap: str, topic: str, records: int, size: int, props: dict, producers: int = 1) -> dict:
    """`kcat -P -l FILE` (as issue 16 ran it), `producers` processes at once, each sending the
    whole file's share; throughput is records over the slowest process's wall time (its start
    and metadata lookup included, a few ms)."""
    kcat = _kcat()
    share = records // producers
    path = kcat_lines_file(share, size)
    settings = []
    for key in ("acks", "linger.ms", "compression.type", "enable.idempotence"):
        if key in props:
            settings += ["-X", f"{key}={props[key]}"]
    # librdkafka's defaults otherwise, as issue 16 ran it (`kcat -P -t T -X linger.ms=5 -l file`).
    command = [kcat, "-P", "-b", bootstrap, "-t", topic, *settings, "-l", str(path)]
    elapsed = _parallel([command] * producers, "kcat -P")
    return {"records_per_sec": share * producers / elapsed, "mb_per_sec": share * producers * size / elapsed / 2**20}


def kcat_consume(bootstrap: str, topic: str, messages: int, size: int) -> dict:
    """`kcat -C -o beginning -c N` printing nothing per record (-f '')."""
    command = [_kcat(), "-C", "-b", bootstrap, "-t", topic, "-o", "beginning", "-c", str(messages), "-q", "-f", "",
               "-X", "queued.min.messages=1000000"]
    elapsed = _timed(command, "kcat -C")
    return {"records_per_sec": messages / elapsed, "mb_per_sec": messages * size / elapsed / 2**20}


def _parallel(commands: list[list[str]], what: str) -> float:
    """Run the commands at once; the wall time until the last one finished."""
    import time

    if len(commands) == 1:
        return _timed(commands[0], what)
    began = time.monotonic()
    processes = [subprocess.Popen(c, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                  start_new_session=True) for c in commands]
    try:
        errors = [p.communicate(timeout=TIMEOUT_S)[1] for p in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    elapsed = time.monotonic() - began
    for process, stderr in zip(processes, errors):
        if process.returncode != 0 or "ERROR" in (stderr or ""):
            raise GeneratorFailed(f"{what} exited {process.returncode}: {(stderr or '').strip()[-500:]}")
    return elapsed


def available(generator: str) -> None:
    """Raise GeneratorUnavailable when `generator` cannot run here (builds franz-go's program)."""
    if generator == "franz-go":
        loadgen_binary()
    elif generator == "kcat":
        _kcat()
    elif generator == "java":
        from moldau.testing.kafka_dist import kafka_available

        if not kafka_available():
            raise GeneratorUnavailable("Kafka's Java tools need Java and scripts/fetch-kafka.sh")
