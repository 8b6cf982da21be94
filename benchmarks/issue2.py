#!/usr/bin/env python3
"""Issue 2's benchmark: 1,000,000 × 100-byte messages through one `moldau server`.

    python benchmarks/issue2.py                   # moldau, 3 repetitions
    python benchmarks/issue2.py --system kafka    # the same against Apache Kafka, for reference
    python benchmarks/issue2.py --quick           # 20,000 messages, 1 repetition

Produced with confluent-kafka (`moldau perf produce`, linger.ms=5, acks=1) into a fresh topic,
then consumed from the beginning (`moldau perf consume`, no group). Reports msgs/s and MB/s for
both, the broker's resident memory (idle, and peak while producing and consuming), and the time
from launching the server process to the first acknowledged message (measured on fresh
instances: bench/systems.py FirstAck). Aims (issue 2): ≥ 500,000 msgs/s produce, ≥ 1,000,000
msgs/s consume on a two-core machine, under 1 s to the first acknowledgement.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "src")]

from bench import generators  # noqa: E402
from bench.environment import environment  # noqa: E402
from bench.systems import make_runner  # noqa: E402
from bench.workloads import ResourceSampler, create_topic, producer_props  # noqa: E402


def one_round(system, records: int, partitions: int) -> dict:
    topic = f"issue2-{uuid.uuid4().hex[:8]}"
    create_topic(system, topic, partitions)
    with ResourceSampler(system) as produce_sampler:
        produced = generators.librdkafka_produce(system.bootstrap_servers, topic, records, 100, producer_props("1"))
    with ResourceSampler(system) as consume_sampler:
        consumed = generators.librdkafka_consume(system.bootstrap_servers, topic, records)
    return {
        "produce_msgs_per_sec": produced["records_per_sec"], "produce_mb_per_sec": produced["mb_per_sec"],
        "produce_p99_ms": produced["p99_ms"], "producer_cpu_s": produced["client_cpu_s"],
        "consume_msgs_per_sec": consumed["records_per_sec"], "consume_mb_per_sec": consumed["mb_per_sec"],
        "consumer_cpu_s": consumed["client_cpu_s"],
        "broker_peak_rss_produce_mb": round(produce_sampler.peak_rss / 2**20, 1),
        "broker_peak_rss_consume_mb": round(consume_sampler.peak_rss / 2**20, 1),
        "broker_cpu_util_produce": round(produce_sampler.cpu_s / produce_sampler.wall_s, 2),
        "broker_cpu_util_consume": round(consume_sampler.cpu_s / consume_sampler.wall_s, 2),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--system", default="moldau", choices=("moldau", "kafka"))
    parser.add_argument("--records", type=int)
    parser.add_argument("--repetitions", type=int)
    parser.add_argument("--partitions", type=int, default=1)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    records = args.records or (20_000 if args.quick else 1_000_000)
    repetitions = args.repetitions or (1 if args.quick else 3)
    runner = make_runner(args.system, args.partitions)
    startups = [runner.measure_startup()["first_ack_s"] for _ in range(repetitions)]
    system = runner.start()
    try:
        time.sleep(2)
        idle_rss_mb = round(system.rss_bytes() / 2**20, 1)
        rounds = []
        for repetition in range(repetitions):
            rounds.append(one_round(system, records, args.partitions))
            print(json.dumps(rounds[-1]), file=sys.stderr, flush=True)
    finally:
        runner.stop()
    medians = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
    result = {"command": " ".join(["python", "benchmarks/issue2.py", *(argv if argv is not None else sys.argv[1:])]),
              "environment": environment(), "system": system.version, "records": records, "record_size": 100, "partitions": args.partitions,
              "repetitions": repetitions, "first_ack_s": sorted(startups), "first_ack_s_median": statistics.median(startups),
              "idle_rss_mb": idle_rss_mb, "median": medians, "rounds": rounds}
    output = HERE.parent / "build" / "benchmarks"
    output.mkdir(parents=True, exist_ok=True)
    (output / f"issue2-{args.system}-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
