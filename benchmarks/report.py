#!/usr/bin/env python3
"""Render a compare.py result (JSON) as the compact tables docs/benchmarks.md shows.

    python benchmarks/report.py build/benchmarks/compare-<stamp>.json [build/benchmarks/issue2-moldau-<stamp>.json]

Every cell is computed from the runs in that file (compare.py's own summary: the median with the
minimum and maximum of the runs, and who was the bottleneck); nothing else is added.
"""

from __future__ import annotations

import json
import sys

from bench.formatting import number as _fmt
from compare import markdown, summarize

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
    print(markdown(summarize(result["rows"])))
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
