#!/usr/bin/env python3
"""Where a `moldau server` spends its time under the produce and consume workloads (py-spy).

    /work/venv/bin/pip install py-spy
    python benchmarks/profile_moldau.py [--records 3000000] [--record-size 100]

Starts one `moldau server` (ServerProcess), attaches `py-spy record` to it for each phase while
`moldau perf produce` (acks=1, linger.ms=5), `moldau perf consume`, and Kafka's Java
ProducerPerformance (16 KiB batches: many more requests) and ConsumerPerformance (a group) run
against it, and
prints, per phase, the top frames by own time ("self": the frame was on top of the stack) and by
inclusive time ("total": the frame was anywhere on the stack), as percentages of the samples
py-spy took while the server was busy (idle samples — the event loop waiting in select — are
left out by py-spy's default). The raw collapsed stacks are written to
build/benchmarks/profile-<phase>.txt.
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT / "src")]

from bench import generators  # noqa: E402
from bench.systems import make_runner  # noqa: E402
from bench.workloads import create_topic, producer_props  # noqa: E402

RATE_HZ = 250


def py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(found).exists():
        raise SystemExit("py-spy not found: pip install py-spy")
    return found


class Recorder:
    """`py-spy record` attached to a PID for the duration of a `with` block."""

    def __init__(self, pid: int, output: Path, fmt: str = "raw", native: bool = False):
        # --native needs py-spy to pause the process for each sample (it cannot be --nonblocking),
        # which slows the broker: only the shares of such a profile are meaningful.
        mode = ["--native"] if native else ["--nonblocking"]
        self.command = [py_spy(), "record", "--pid", str(pid), "--rate", str(RATE_HZ), "--format", fmt,
                        "--output", str(output), *mode]
        self.process: subprocess.Popen | None = None

    def __enter__(self):
        self.process = subprocess.Popen(self.command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        time.sleep(0.5)  # attached before the load starts
        return self

    def __exit__(self, *exc):
        assert self.process is not None
        self.process.send_signal(2)  # SIGINT: py-spy writes its output and exits
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def top_frames(collapsed: Path, limit: int) -> tuple[int, list, list]:
    """(samples, [(self %, frame)], [(total %, frame)]) from py-spy's collapsed-stack output."""
    own, inclusive, samples = collections.Counter(), collections.Counter(), 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_short(frame) for frame in stack.split(";")]
        samples += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    percent = lambda counter: [(100.0 * n / max(samples, 1), f) for f, n in counter.most_common(limit)]  # noqa: E731
    return samples, percent(own), percent(inclusive)


def native_leaves(collapsed: Path, limit: int) -> list:
    """[(%, native leaf, the innermost Python frame above it)]: which Python line a system call
    or memcpy (an unnamed libc address) was made for. Shares of the busy samples."""
    shares, samples = collections.Counter(), 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        frames = stack.split(";")
        if frames[-1].startswith(("epoll_wait", "epoll_pwait")):
            continue  # waiting for the network: idle (blocking-mode py-spy cannot tell)
        python = [_short(frame) for frame in frames if ".py:" in frame]
        samples += int(count_text)
        shares[(_short(frames[-1])[:60], python[-1] if python else "")] += int(count_text)
    return [(100.0 * n / max(samples, 1), leaf, caller) for (leaf, caller), n in shares.most_common(limit)]


def _short(frame: str) -> str:
    """'handle (moldau/broker/produce.py:42)' with the path trimmed to the package."""
    for marker in ("/src/", "/lib/python3.11/", "site-packages/"):
        if marker in frame:
            head, _, tail = frame.partition("(")
            return f"{head.strip()} ({tail.split(marker, 1)[1].rstrip(')')})"
    return frame


def _records(phase: str, args) -> tuple[int, int]:
    if phase == "produce-1KiB":
        return args.records // 4, 1024
    if phase.endswith("-java"):
        return args.records // 3, args.record_size
    return args.records, args.record_size


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=3_000_000)
    parser.add_argument("--record-size", type=int, default=100)
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--native", action="store_true",
                        help="sample native frames too (py-spy --native; pauses the broker per sample)")
    parser.add_argument("--phases", default="produce,consume,produce-1KiB,produce-java,consume-java")
    parser.add_argument("--output-dir", default=str(ROOT / "build" / "benchmarks"))
    args = parser.parse_args(argv)
    output = Path(args.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    runner = make_runner("moldau", args.partitions)
    system = runner.start()
    reports = []
    try:
        topic = f"profile-{uuid.uuid4().hex[:8]}"
        create_topic(system, topic, args.partitions)
        java_topic = f"profile-java-{uuid.uuid4().hex[:8]}"
        create_topic(system, java_topic, args.partitions)
        kib_topic = f"profile-kib-{uuid.uuid4().hex[:8]}"
        create_topic(system, kib_topic, args.partitions)
        bootstrap = system.bootstrap_servers
        # A first consumer creates __consumer_offsets (a one-off, measured by micro/first_group.py);
        # done here so that the consume profiles show the steady state.
        generators.librdkafka_produce(bootstrap, java_topic, 1, args.record_size, producer_props("1"))
        generators.librdkafka_consume(bootstrap, java_topic, 1)
        phases = {
            "produce": lambda: generators.librdkafka_produce(bootstrap, topic, args.records, args.record_size,
                                                             producer_props("1")),
            "consume": lambda: generators.librdkafka_consume(bootstrap, topic, args.records),
            "produce-1KiB": lambda: generators.librdkafka_produce(bootstrap, kib_topic, args.records // 4, 1024,
                                                                  producer_props("1")),
            # Java's producer sends 16 KiB batches (batch.size default): ~60× more requests per record.
            "produce-java": lambda: generators.java_produce(bootstrap, java_topic, args.records // 3,
                                                            args.record_size, producer_props("1")),
            "consume-java": lambda: generators.java_consume(bootstrap, java_topic, args.records // 3 + 1,
                                                            f"profile-{uuid.uuid4().hex[:6]}"),
        }
        for phase in args.phases.split(","):
            load = phases[phase]
            raw = output / f"profile-{phase}{'-native' if args.native else ''}.txt"
            cpu_began, began = system.cpu_seconds(), time.monotonic()
            with Recorder(system.pids[0], raw, "raw", native=args.native):
                result = load()
            cpu_util = (system.cpu_seconds() - cpu_began) / (time.monotonic() - began)
            reports.append((phase, raw, result, cpu_util, _records(phase, args)))
    finally:
        runner.stop()
    for phase, raw, result, cpu_util, (records, size) in reports:
        samples, own, inclusive = top_frames(raw, args.top)
        print(f"\n## {phase}: {records} × {size} B, {result['records_per_sec']:,.0f} records/s, "
              f"broker CPU {cpu_util:.2f} cores, {samples} busy samples at {RATE_HZ} Hz ({raw})")
        print("\nself %  frame")
        for share, frame in own:
            print(f"{share:6.1f}  {frame}")
        print("\ntotal %  frame")
        for share, frame in inclusive:
            print(f"{share:7.1f}  {frame}")
        if args.native:
            print("\nself %  native leaf  ←  innermost Python frame")
            for share, leaf, caller in native_leaves(raw, args.top):
                print(f"{share:6.1f}  {leaf}  ←  {caller}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
