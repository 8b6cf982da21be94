#!/usr/bin/env python3
"""Render a compare.py result (JSON) as the compact tables docs/benchmarks.md shows.

    python benchmarks/report.py build/benchmarks/compare-<stamp>.json [build/benchmarks/issue2-moldau-<stamp>.json]

Every cell is a median over the runs in that file; nothing is computed that the file does not hold.
"""

from __future__ import annotations

import json
import sys

from bench.formatting import number as _fmt

ROWS = (  # (workload, generator, metric, label)
    ("produce-100B-acks1", "librdkafka", "records_per_sec", "1. produce 100 B, acks=1 — records/s"),
    ("produce-100B-acks1", "java", "records_per_sec", "1. produce 100 B, acks=1 — records/s"),
    ("produce-100B-acksall", "librdkafka", "records_per_sec", "2. produce 100 B, acks=all — records/s"),
    ("produce-100B-acksall", "java", "records_per_sec", "2. produce 100 B, acks=all — records/s"),
    ("produce-1KiB-acks1", "librdkafka", "mb_per_sec", "3. produce 1 KiB, acks=1 — MB/s"),
    ("produce-1KiB-acks1", "java", "mb_per_sec", "3. produce 1 KiB, acks=1 — MB/s"),
    ("consume-100B", "librdkafka", "records_per_sec", "4. consume from the beginning — records/s"),
    ("consume-100B", "java", "records_per_sec", "4. consume from the beginning — records/s"),
    ("end-to-end", "librdkafka", "p50_ms", "5. end-to-end p50 ms (fixed rate)"),
    ("end-to-end", "librdkafka", "p99_ms", "5. end-to-end p99 ms (fixed rate)"),
    ("end-to-end", "java", "p50_ms", "5. end-to-end p50 ms (ping-pong)"),
    ("end-to-end", "java", "p99_ms", "5. end-to-end p99 ms (ping-pong)"),
    ("startup", "librdkafka", "first_ack_s", "6. launch → first acknowledged record, s"),
    ("memory", "-", "idle_rss_mb", "7. RSS idle, MiB"),
    ("memory", "-", "after_load_rss_mb", "7. RSS after all workloads, MiB"),
)
COST_ROWS = (
    ("produce-100B-acks1", "librdkafka"), ("produce-100B-acks1", "java"), ("produce-100B-acksall", "librdkafka"),
    ("produce-100B-acksall", "java"), ("produce-1KiB-acks1", "librdkafka"), ("produce-1KiB-acks1", "java"),
    ("consume-100B", "librdkafka"), ("consume-100B", "java"),
)


def _index(result: dict) -> dict:
    return {(e["workload"], e["generator"], e["metric"]): e for e in result["summary"]}


def _runs(result: dict, workload: str, generator: str, metric: str, kind: str) -> str:
    values = [row[metric] for row in result["rows"] if row["workload"] == workload and row["generator"] == generator
              and row["system"] == kind and metric in row]
    return "/".join(_fmt(v) for v in values)


def main_table(result: dict) -> str:
    index = _index(result)
    lines = ["| workload — metric | generator | Kafka | moldau | moldau/Kafka | runs Kafka · moldau |",
             "|---|---|---:|---:|---:|---|"]
    for workload, generator, metric, label in ROWS:
        entry = index.get((workload, generator, metric), {})
        ratio = f"{entry['ratio']:.2f}×" if "ratio" in entry else "–"
        runs = f"{_runs(result, workload, generator, metric, 'kafka')} · {_runs(result, workload, generator, metric, 'moldau')}"
        lines.append(f"| {label} | {generator} | {_fmt(entry.get('kafka'))} | {_fmt(entry.get('moldau'))} | {ratio} | {runs} |")
    return "\n".join(lines)


def cost_table(result: dict) -> str:
    index = _index(result)
    lines = ["| workload | generator | broker CPU µs/record Kafka | moldau | broker CPU (cores) Kafka | moldau | "
             "peak RSS MiB Kafka | moldau | client CPU s Kafka | moldau |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for workload, generator in COST_ROWS:
        cells = []
        for metric in ("broker_cpu_us_per_record", "broker_cpu_util", "broker_peak_rss_mb", "client_cpu_s"):
            entry = index.get((workload, generator, metric), {})
            cells += [_fmt(entry.get("kafka")), _fmt(entry.get("moldau"))]
        lines.append(f"| {workload} | {generator} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def issue2_table(result: dict) -> str:
    median = result["median"]
    return "\n".join([
        "| metric | median | all runs |", "|---|---:|---|",
        f"| produce msgs/s | {_fmt(median['produce_msgs_per_sec'])} | "
        + "/".join(_fmt(r["produce_msgs_per_sec"]) for r in result["rounds"]) + " |",
        f"| produce MB/s | {_fmt(median['produce_mb_per_sec'])} | "
        + "/".join(_fmt(r["produce_mb_per_sec"]) for r in result["rounds"]) + " |",
        f"| consume msgs/s | {_fmt(median['consume_msgs_per_sec'])} | "
        + "/".join(_fmt(r["consume_msgs_per_sec"]) for r in result["rounds"]) + " |",
        f"| consume MB/s | {_fmt(median['consume_mb_per_sec'])} | "
        + "/".join(_fmt(r["consume_mb_per_sec"]) for r in result["rounds"]) + " |",
        f"| broker RSS idle, MiB | {_fmt(result['idle_rss_mb'])} | |",
        f"| broker peak RSS producing / consuming, MiB | {_fmt(median['broker_peak_rss_produce_mb'])} / "
        f"{_fmt(median['broker_peak_rss_consume_mb'])} | |",
        f"| broker CPU producing / consuming, cores | {_fmt(median['broker_cpu_util_produce'])} / "
        f"{_fmt(median['broker_cpu_util_consume'])} | |",
        f"| producer / consumer process CPU, s | {_fmt(median['producer_cpu_s'])} / {_fmt(median['consumer_cpu_s'])} | |",
        f"| launch → first acknowledged message, s | {_fmt(result['first_ack_s_median'])} | "
        + "/".join(_fmt(v) for v in result["first_ack_s"]) + " |",
    ])


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    result = json.loads(open(argv[0]).read())
    env = result["environment"]
    print(f"Command: `{result['command']}` · {env['date']} · {env['cpu_model']}, {env['cpus']} CPUs, "
          f"{env['ram_gib']} GiB · load average before {env['loadavg_before'][0]:.1f}, after "
          f"{env['loadavg_after'][0]:.1f} · {result.get('repetitions')} repetitions · {env.get('duration_s')} s\n")
    print(main_table(result))
    print()
    print(cost_table(result))
    loop = ", ".join(f"{r['chunk_bytes']} B writes {r['mb_per_sec']:,.0f} MB/s" for r in result["loopback"])
    print(f"\nLoopback reference: {loop}.")
    if "client_ceiling" in result:
        ceiling = result["client_ceiling"]
        print(f"Client ceiling (moldau perf produce → librdkafka mock cluster, 100 B, acks=1): "
              f"{ceiling['records_per_sec']:,.0f} records/s (runs: "
              + "/".join(_fmt(r["records_per_sec"]) for r in ceiling["runs"]) + ").")
    for skipped in result.get("skipped", []):
        print(f"Skipped: {skipped}")
    if len(argv) > 1:
        issue2 = json.loads(open(argv[1]).read())
        print(f"\nIssue 2: `{issue2['command']}` · {issue2['environment']['date']} · {issue2['system']}\n")
        print(issue2_table(issue2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
