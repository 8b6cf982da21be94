#!/usr/bin/env python3
"""Moldau and Apache Kafka side by side, on this machine: one command.

    scripts/fetch-kafka.sh                       # once: Kafka's jars from Maven Central
    python benchmarks/compare.py                 # full run (1M records, 10 repetitions), ~30 min
    python benchmarks/compare.py --quick         # smoke run (20k records, 1 repetition), ~1-2 min
    python benchmarks/compare.py --workloads produce-100B-acks1 --generators kcat --repetitions 12

Theory of operation. Both systems are started once (single node each, same partition count, no
fsync) and every workload runs against both, alternating which goes first from one repetition to
the next, with every chosen load generator that applies. The default generators are franz-go
(tests/clients/go/loadgen: several producers at once, per-record latency) and kcat, because on
two cores they are not the bottleneck; librdkafka through `moldau perf` (Python) and Kafka's Java
perf tools can be added with --generators. Start-up time is measured on fresh instances. The
result is a JSON file with every run and a Markdown table of each metric's median with its
minimum and maximum over the runs, the ratio moldau / Kafka, and per run the CPU the broker, the
generator and the rest of the machine used — from which the table names the bottleneck. It is
printed and written next to the JSON (build/benchmarks/ by default). Every number comes from a
run of this script.

What is measured is in bench/workloads.py (the workloads), bench/systems.py (how each system is
started, RSS, start-up probe), bench/generators.py (the generators), bench/loopback.py (the
physical reference: a trivial Python sender/receiver pair over loopback).

`--brokers 3` runs the replicated variant: a 3-node KRaft Kafka against a 3-node moldau
(`moldau cluster up`), topics with replication factor 3 and min.insync.replicas 2, and the
failover workload (bench/failover.py: a partition leader killed while writing → the first write
acknowledged by the new leader).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT / "src")]

from bench import loopback  # noqa: E402
from bench.environment import environment  # noqa: E402
from bench.formatting import number as _fmt  # noqa: E402
from bench.systems import Unavailable, make_runner  # noqa: E402
from bench.workloads import (  # noqa: E402
    ALL_GENERATORS, DEFAULT_GENERATORS, WORKLOADS, WORKLOADS_BY_NAME, Scale, delete_topic, prepare, run_once)

IDLE_SETTLE_S = 3.0
# The replicated comparison (issue 9's "Measured"): RF 3, acks=all, and a leader's failure.
REPLICATED_DEFAULT = ("produce-100B-acksall", "produce-100B-acks1", "consume-100B", "failover")
STARTUP = "startup"
MEMORY = "memory"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small runs, one repetition (CI smoke test)")
    parser.add_argument("--repetitions", type=int, help="runs per workload, system and generator (default 10)")
    parser.add_argument("--records", type=int, help="records per throughput run (default 1,000,000)")
    parser.add_argument("--systems", default="kafka,moldau", help="comma-separated (default kafka,moldau)")
    parser.add_argument("--workloads", help="comma-separated; known: " + ", ".join([w.name for w in WORKLOADS] + [STARTUP])
                        + f" (default with one broker: all but failover; with --brokers 3: {','.join(REPLICATED_DEFAULT)})")
    parser.add_argument("--generators", default=",".join(DEFAULT_GENERATORS),
                        help=f"comma-separated, of {', '.join(ALL_GENERATORS)} (default {','.join(DEFAULT_GENERATORS)}; "
                             "go and franz mean franz-go)")
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--brokers", type=int, default=1, help="1 (default), or 3 for the replicated variant")
    parser.add_argument("--security", default="plaintext", choices=("plaintext", "ssl", "sasl_ssl"),
                        help="the client listener's protocol, the same certificates for both systems "
                             "(SASL_SSL: SCRAM-SHA-512); see bench/security.py")
    parser.add_argument("--drain-writeback", action="store_true",
                        help="sync the page cache's dirty backlog to disk before every run, so no run "
                             "inherits the previous runs' writeback (each run records the backlog it began with)")
    parser.add_argument("--no-warmup", action="store_true", help="skip the unrecorded warm-up runs")

    parser.add_argument("--output-dir", default=str(ROOT / "build" / "benchmarks"))
    args = parser.parse_args(argv)
    args.repetitions = args.repetitions or (1 if args.quick else 10)
    if args.workloads is None:
        args.workloads = ",".join(REPLICATED_DEFAULT if args.brokers > 1 else
                                  [w.name for w in WORKLOADS if w.kind != "failover"] + [STARTUP])
    names = [_GENERATOR_ALIASES.get(g.strip(), g.strip()) for g in args.generators.split(",") if g.strip()]
    unknown = [g for g in names if g not in ALL_GENERATORS]
    if unknown:
        parser.error(f"unknown generators: {', '.join(unknown)} (known: {', '.join(ALL_GENERATORS)})")
    args.generators = ",".join(names)
    return args


_GENERATOR_ALIASES = {"go": "franz-go", "franz": "franz-go", "franzgo": "franz-go", "kafkacat": "kcat",
                      "confluent-kafka": "librdkafka", "python": "librdkafka"}


class Run:
    """Starts the systems, runs the workloads, collects rows; stops everything it started."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.scale = Scale.quick(args.partitions) if args.quick else Scale(partitions=args.partitions)
        if args.records:
            self.scale = Scale(**{**self.scale.__dict__, "records": args.records})
        self.kinds = [kind.strip() for kind in args.systems.split(",") if kind.strip()]
        self.generators = [g.strip() for g in args.generators.split(",") if g.strip()]
        self.rows: list[dict] = []
        self.skipped: list[dict] = []
        self.systems: dict = {}
        self.runners: dict = {}

    def log(self, text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)

    def order(self, repetition: int) -> list[str]:
        kinds = [kind for kind in self.kinds if kind in self.systems]
        return kinds if repetition % 2 == 0 else kinds[::-1]

    def check_generators(self) -> None:
        """Drop (and report) the generators whose program is missing: Go for franz-go, kcat."""
        from bench.generators import GeneratorUnavailable, available

        for generator in list(self.generators):
            try:
                available(generator)
            except GeneratorUnavailable as error:
                self.skip("all", f"generator {generator}", str(error))
                self.generators.remove(generator)

    def start_systems(self) -> None:
        for kind in self.kinds:
            try:
                runner = make_runner(kind, self.scale.partitions, self.args.brokers)
                self.log(f"starting {kind}")
                system = runner.start()
            except Unavailable as error:
                self.skip(kind, "all", str(error))
                continue
            except Exception as error:  # a system that cannot start is reported, the other still runs
                self.skip(kind, "all", f"did not start: {type(error).__name__}: {error}")
                runner.stop()
                continue
            self.runners[kind], self.systems[kind] = runner, system
        time.sleep(IDLE_SETTLE_S)
        for kind, system in self.systems.items():
            self.add(MEMORY, "-", kind, 0, {"idle_rss_mb": round(system.rss_bytes() / 2**20, 1)})

    def stop_systems(self) -> None:
        for kind, runner in self.runners.items():
            try:
                runner.stop()
            except Exception as error:
                self.log(f"stopping {kind}: {error}")

    def add(self, workload: str, generator: str, kind: str, repetition: int, metrics: dict) -> None:
        self.rows.append({"workload": workload, "generator": generator, "system": kind,
                          "repetition": repetition, **metrics})

    def skip(self, kind: str, workload: str, reason: str) -> None:
        self.log(f"SKIPPED {kind} {workload}: {reason}")
        self.skipped.append({"system": kind, "workload": workload, "reason": reason})

    def run_workload(self, name: str) -> None:
        workload = WORKLOADS_BY_NAME[name]
        prepared = {}
        for kind, system in list(self.systems.items()):
            try:
                prepared[kind] = prepare(workload, system, self.scale)
            except Exception as error:
                self.skip(kind, name, f"preparing: {type(error).__name__}: {error}")
        for repetition in range(self.args.repetitions):
            for kind in self.order(repetition):
                if kind not in prepared:
                    continue
                # failover brings its own client (bench/failover.py); the others use the chosen generators
                chosen = workload.generators if workload.kind == "failover" else self.generators
                for generator in [g for g in workload.generators if g in chosen]:
                    self.log(f"{name} {kind} {generator} run {repetition + 1}/{self.args.repetitions}")
                    try:
                        result = run_once(workload, self.systems[kind], generator, self.scale, prepared[kind],
                                          drain=self.args.drain_writeback)
                    except Exception as error:
                        self.skip(kind, f"{name}/{generator}#{repetition}", f"{type(error).__name__}: {error}")
                        continue
                    result["loadavg_1m"] = round(os.getloadavg()[0], 2)  # how busy the machine was
                    self.add(name, generator, kind, repetition, result)
        for kind, topic in [(kind, p["topic"]) for kind, p in prepared.items() if "topic" in p]:
            try:
                delete_topic(self.systems[kind], topic)
            except Exception as error:
                self.log(f"deleting {kind}'s {topic}: {type(error).__name__}: {error}")

    def warm_up(self) -> None:
        """One unrecorded produce and consume per system and generator: Kafka's JIT compiles its hot
        paths during the first seconds of load, and neither system should be measured cold."""
        workload, consume = WORKLOADS_BY_NAME["produce-100B-acks1"], WORKLOADS_BY_NAME["consume-100B"]
        scale = Scale(**{**self.scale.__dict__, "records": max(1, self.scale.records // 2)})
        for kind, system in self.systems.items():
            self.log(f"warm-up {kind} ({scale.records} records per generator, not recorded)")
            try:
                prepared = prepare(consume, system, scale)
                for generator in self.generators:
                    run_once(workload, system, generator, scale, {})
                    run_once(consume, system, generator, scale, prepared)
                delete_topic(system, prepared["topic"])
            except Exception as error:
                self.log(f"warm-up {kind}: {type(error).__name__}: {error}")

    def run_startup(self) -> None:
        for repetition in range(self.args.repetitions):
            kinds = self.kinds if repetition % 2 == 0 else self.kinds[::-1]
            for kind in kinds:
                self.log(f"startup {kind} run {repetition + 1}/{self.args.repetitions}")
                try:
                    result = make_runner(kind, self.scale.partitions, self.args.brokers).measure_startup()
                except Exception as error:
                    self.skip(kind, f"startup#{repetition}", f"{type(error).__name__}: {error}")
                    continue
                self.add(STARTUP, "librdkafka", kind, repetition,
                         {key: round(value, 3) for key, value in result.items() if value is not None})

    def run(self) -> None:
        names = [name.strip() for name in self.args.workloads.split(",") if name.strip()]
        unknown = [name for name in names if name not in WORKLOADS_BY_NAME and name != STARTUP]
        if unknown:
            raise SystemExit(f"unknown workloads: {', '.join(unknown)}")
        self.check_generators()
        try:
            self.start_systems()
            if not self.args.quick and not self.args.no_warmup:
                self.warm_up()
            for name in names:
                if name != STARTUP:
                    self.run_workload(name)
            for kind, system in self.systems.items():
                self.add(MEMORY, "-", kind, 0, {"after_load_rss_mb": round(system.rss_bytes() / 2**20, 1)})
        finally:
            self.stop_systems()
        if STARTUP in names:
            self.run_startup()


def summarize(rows: list[dict]) -> list[dict]:
    """Per (workload, generator, metric, system): the median, minimum and maximum over the runs,
    and the ratio of the medians moldau / kafka. The bottleneck (a word per run) is counted."""
    groups: dict = {}
    for row in rows:
        for metric, value in row.items():
            if metric in ("workload", "generator", "system", "repetition"):
                continue
            if isinstance(value, (int, float)) and not isinstance(value, bool) or metric == "bottleneck":
                groups.setdefault((row["workload"], row["generator"], metric), {}).setdefault(row["system"], []).append(value)
    summary = []
    for (workload, generator, metric), by_system in groups.items():
        entry = {"workload": workload, "generator": generator, "metric": metric}
        for kind, values in by_system.items():
            entry[f"{kind}_runs"] = len(values)
            if metric == "bottleneck":
                counts = {word: values.count(word) for word in sorted(set(values))}
                entry[kind] = ", ".join(f"{word} {n}/{len(values)}" for word, n in
                                        sorted(counts.items(), key=lambda item: -item[1]))
                continue
            entry[kind] = statistics.median(values)
            entry[f"{kind}_min"], entry[f"{kind}_max"] = min(values), max(values)
        if metric != "bottleneck" and entry.get("kafka") and "moldau" in entry:
            entry["ratio"] = entry["moldau"] / entry["kafka"]
        summary.append(entry)
    return summary


REPORTED = {  # the metrics the Markdown table shows, per workload kind
    "produce": ("records_per_sec", "mb_per_sec", "p50_ms", "p99_ms", "p999_ms", "max_latency_ms", "longest_gap_ms"),
    "consume": ("records_per_sec", "mb_per_sec", "fetch_response_p50_ms", "fetch_response_p99_ms",
                "fetch_response_mean_bytes"),
    "end_to_end": ("p50_ms", "p99_ms", "p999_ms"),
    "failover": ("failover_s", "longest_ack_gap_s"),
    STARTUP: ("first_ack_s", "listening_s", "format_s"),
    MEMORY: ("idle_rss_mb", "after_load_rss_mb"),
}
COSTS = ("broker_cpu_us_per_record", "broker_cpu_util", "broker_runqueue_s", "client_cpu_util", "others_cpu_util",
         "broker_peak_rss_mb")


def _spread(entry: dict, kind: str) -> str:
    """median (min–max), or the median alone for a single run."""
    if kind not in entry:
        return "–"
    if entry.get(f"{kind}_runs", 1) > 1 and f"{kind}_min" in entry:
        return f"{_fmt(entry[kind])} ({_fmt(entry[f'{kind}_min'])}–{_fmt(entry[f'{kind}_max'])})"
    return _fmt(entry[kind])


def _kinds(summary: list[dict]) -> list[str]:
    """The systems in the summary, Kafka first."""
    kinds = ("kafka", "moldau", "moldau-asyncio", "moldau-sendfile")
    found = {key for entry in summary for key in entry if key in kinds}
    return [kind for kind in kinds if kind in found]


def markdown(summary: list[dict]) -> str:
    """Two tables: each metric's median (min–max) per system with the ratio of the medians; then
    per workload and generator what each run cost the broker and who set the pace."""
    kinds = _kinds(summary) or ["kafka", "moldau"]
    order = [w.name for w in WORKLOADS] + [STARTUP, MEMORY]
    kind_of = {w.name: w.kind for w in WORKLOADS} | {STARTUP: STARTUP, MEMORY: MEMORY}
    names = {"kafka": "Kafka", "moldau": "moldau", "moldau-asyncio": "moldau (asyncio loop)",
             "moldau-sendfile": "moldau (sendfile)"}
    lines = ["| workload | generator | metric | " + " | ".join(f"{names[k]} median (min–max)" for k in kinds)
             + " | moldau/Kafka | runs |", "|---|---|---|" + "---:|" * len(kinds) + "---:|---|"]

    def key(entry):
        return (order.index(entry["workload"]), entry["generator"], REPORTED[kind_of[entry["workload"]]].index(entry["metric"]))

    shown = [e for e in summary if e["workload"] in kind_of and e["metric"] in REPORTED[kind_of[e["workload"]]]]
    for entry in sorted(shown, key=key):
        ratio = f"{entry['ratio']:.2f}×" if "ratio" in entry else "–"
        runs = "/".join(str(entry.get(f"{k}_runs", 0)) for k in kinds)
        lines.append(f"| {entry['workload']} | {entry['generator']} | {entry['metric']} | "
                     + " | ".join(_spread(entry, k) for k in kinds) + f" | {ratio} | {runs} |")
    lines += ["", "| workload | generator | system | broker CPU µs/record | broker cores | broker waited for a CPU, s | "
              "generator cores | other processes, cores | broker peak RSS MiB | bottleneck (runs) |",
              "|---|---|---|---:|---:|---:|---:|---:|---:|---|"]
    index = {(e["workload"], e["generator"], e["metric"]): e for e in summary}
    pairs = sorted({(e["workload"], e["generator"]) for e in summary if kind_of.get(e["workload"]) in ("produce", "consume")},
                   key=lambda pair: (order.index(pair[0]), pair[1]))
    for workload, generator in pairs:
        for kind in kinds:
            cells = [_fmt(index.get((workload, generator, metric), {}).get(kind)) for metric in COSTS]
            verdict = index.get((workload, generator, "bottleneck"), {}).get(kind, "–")
            lines.append(f"| {workload} | {generator} | {names[kind]} | " + " | ".join(cells) + f" | {verdict} |")
    return "\n".join(lines)


def client_ceiling(records: int, repetitions: int) -> dict:
    """How fast `moldau perf produce` goes with no broker at all (median of the runs)."""
    from bench.generators import librdkafka_produce_mock
    from bench.workloads import producer_props

    runs = [librdkafka_produce_mock(records, 100, producer_props("1")) for _ in range(repetitions)]
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]} | {"runs": runs}


def _exit_on_sigterm() -> None:
    """SIGTERM unwinds like Ctrl-C, so the `finally` that stops both systems runs."""
    import signal

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def main(argv=None) -> int:
    args = parse_args(argv)
    _exit_on_sigterm()

    from moldau.testing.kafka_dist import kafka_available

    if "kafka" in args.systems and not kafka_available():
        print("compare: Kafka's jars are missing; run scripts/fetch-kafka.sh first", file=sys.stderr)
        return 2
    from bench.security import configure

    configure(args.security)
    run = Run(args)
    env = environment()
    env["security"] = args.security.upper()
    run.log(f"loopback reference; machine: {env['cpu_model']}, {env['cpus']} CPUs, load {env['loadavg_before']}")
    reference = loopback.measure(quick=args.quick)
    ceiling = client_ceiling(run.scale.records, 1 if args.quick else min(3, args.repetitions))
    began = time.monotonic()
    try:
        run.run()
    except Exception:
        traceback.print_exc()
        return 1
    env["loadavg_after"] = os.getloadavg()
    env["duration_s"] = round(time.monotonic() - began, 1)
    summary = summarize(run.rows)
    table = markdown(summary)
    output = Path(args.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    result = {"command": " ".join(["python", "benchmarks/compare.py", *(argv if argv is not None else sys.argv[1:])]),
              "environment": env, "scale": run.scale.__dict__, "repetitions": args.repetitions,
              "loopback": reference, "client_ceiling": ceiling, "rows": run.rows, "summary": summary, "skipped": run.skipped}
    (output / f"compare-{stamp}.json").write_text(json.dumps(result, indent=2))
    (output / f"compare-{stamp}.md").write_text(table + "\n")
    print(table)
    print("\nloopback reference: " + ", ".join(f"{r['chunk_bytes']} B sends {r['mb_per_sec']} MB/s" for r in reference))
    print("client ceiling (moldau perf produce, 100 B, acks=1, librdkafka mock cluster): "
          f"{ceiling['records_per_sec']:,.0f} records/s, {ceiling['mb_per_sec']:.1f} MB/s")
    for skipped in run.skipped:
        print(f"skipped: {skipped['system']} {skipped['workload']}: {skipped['reason']}")
    print(f"\nwritten: {output / f'compare-{stamp}.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
