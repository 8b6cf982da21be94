#!/usr/bin/env python3
"""Issue 12's measurements: the broker's cost of metrics, and `moldau console`'s own cost.

    python benchmarks/console_cost.py                 # both, 3 alternating repetitions
    python benchmarks/console_cost.py --quick         # 100,000 records, 1 repetition, 10 s windows

Metrics overhead: `moldau server` with and without `--metrics-port`, alternating, each round a
fresh server and topic; the produce benchmark (`moldau perf produce`, librdkafka, 100-byte
records, acks=1, linger.ms=5) measures records/s. With metrics on, /metrics is scraped every
second during the run (Prometheus usually scrapes every 15 s: this is 15 times its load).

Console cost: `moldau console` against a `moldau server` with metrics on; its CPU time and
resident memory (from /proc) while idle (no browser), and with headless Chromium showing the
message browser of a topic that a producer keeps busy (~2,000 records/s), following live.

Writes build/benchmarks/console-cost-<stamp>.json and prints a summary.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "src")]

from moldau.testing.browser import ConsoleProcess, chromium  # noqa: E402
from moldau.testing.server_process import ServerProcess, free_port  # noqa: E402

_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime + stime


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def perf_produce(bootstrap: str, topic: str, records: int) -> float:
    command = [sys.executable, "-m", "moldau", "perf", "produce", "--bootstrap-server", bootstrap, "--topic", topic,
               "--num-records", str(records), "--record-size", "100", "--producer-prop", "acks=1", "linger.ms=5",
               "-o", "json"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])["records_per_sec"]


def produce_round(metrics: bool, records: int) -> tuple[float, float]:
    """(records/s, broker CPU seconds per million records) of one run on a fresh server."""
    with tempfile.TemporaryDirectory() as data_dir:
        port = free_port()
        overrides = {"metrics.port": str(port)} if metrics else {}
        server = ServerProcess(data_dir + "/d", overrides=overrides).start()
        stop = threading.Event()
        scraper = None
        if metrics:
            def scrape():
                while not stop.wait(1.0):
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
            scraper = threading.Thread(target=scrape, daemon=True)
            scraper.start()
        try:
            cpu_before = cpu_seconds(server.process.pid)
            rate = perf_produce(server.bootstrap_servers, f"bench-{uuid.uuid4().hex[:8]}", records)
            return rate, (cpu_seconds(server.process.pid) - cpu_before) * 1_000_000 / records
        finally:
            stop.set()
            if scraper:
                scraper.join(5)
            server.close()


def metrics_overhead(records: int, repetitions: int) -> dict:
    runs = {"off": [], "on": []}
    cpu = {"off": [], "on": []}
    for _ in range(repetitions):
        for mode in ("off", "on"):
            rate, cpu_per_million = produce_round(mode == "on", records)
            runs[mode].append(rate)
            cpu[mode].append(cpu_per_million)
            print(f"  produce, metrics {mode}: {rate:,.0f} records/s, broker CPU {cpu_per_million:.2f} s "
                  f"per million records", flush=True)
    off, on = statistics.median(runs["off"]), statistics.median(runs["on"])
    cpu_off, cpu_on = statistics.median(cpu["off"]), statistics.median(cpu["on"])
    return {"records": records, "runs": runs, "broker_cpu_s_per_million": cpu, "median_off": off, "median_on": on,
            "overhead_percent": round(100 * (off - on) / off, 2),
            "cpu_overhead_percent": round(100 * (cpu_on - cpu_off) / cpu_off, 2)}


def window(pid: int, seconds: float) -> dict:
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    peak = 0
    while time.monotonic() - t0 < seconds:
        peak = max(peak, rss_bytes(pid))
        time.sleep(0.5)
    elapsed = time.monotonic() - t0
    return {"cpu_percent": round(100 * (cpu_seconds(pid) - cpu0) / elapsed, 2), "rss_peak_bytes": peak,
            "rss_end_bytes": rss_bytes(pid), "seconds": round(elapsed, 1)}


def console_cost(seconds: float) -> dict:
    with tempfile.TemporaryDirectory() as data_dir:
        server = ServerProcess(data_dir + "/d", overrides={"metrics.port": str(free_port())}).start()
        try:
            with ConsoleProcess(server.bootstrap_servers) as console:
                pid = console.process.pid
                time.sleep(3)  # first sampler steps
                idle = window(pid, seconds)
                print(f"  console idle: {idle}", flush=True)
                stop = threading.Event()
                busy = threading.Thread(target=_keep_busy, args=(server.bootstrap_servers, "busy", stop), daemon=True)
                busy.start()
                driver = chromium()
                try:
                    driver.get(console.url + "/messages?topic=busy")
                    time.sleep(2)
                    driver.execute_script("const f = document.querySelector(\"#browse-form [name='follow']\");"
                                          "f.checked = true; f.dispatchEvent(new Event('change'));")
                    with_browser = window(pid, seconds)
                    shown = driver.execute_script("return document.querySelectorAll('#messages-table tr[data-offset]').length;")
                finally:
                    driver.quit()
                    stop.set()
                    busy.join(10)
                with_browser["messages_on_page"] = shown
                print(f"  console with the browser following a busy topic: {with_browser}", flush=True)
                return {"idle": idle, "browser_following_busy_topic": with_browser}
        finally:
            server.close()


def _keep_busy(bootstrap: str, topic: str, stop: threading.Event) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    sent = 0
    started = time.monotonic()
    while not stop.is_set():
        producer.produce(topic, value=b'{"event": "click", "n": %d}' % sent)
        sent += 1
        producer.poll(0)
        ahead = sent / 2000 - (time.monotonic() - started)  # ~2,000 records/s
        if ahead > 0:
            time.sleep(ahead)
    producer.flush(10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--skip", choices=("metrics", "console"), action="append", default=[])
    args = parser.parse_args()
    if args.quick:
        args.records, args.repetitions, args.seconds = 100_000, 1, 10.0
    result = {"when": time.strftime("%Y-%m-%d %H:%M:%S"), "load_average": os.getloadavg(), "cpus": os.cpu_count()}
    if "metrics" not in args.skip:
        print("metrics overhead under the produce benchmark:", flush=True)
        result["metrics_overhead"] = metrics_overhead(args.records, args.repetitions)
        print(f"  overhead: throughput {result['metrics_overhead']['overhead_percent']}%, broker CPU "
              f"{result['metrics_overhead']['cpu_overhead_percent']}% (medians, on vs off)", flush=True)
    if "console" not in args.skip:
        print("console cost:", flush=True)
        result["console"] = console_cost(args.seconds)
    result["load_average_after"] = os.getloadavg()
    out = HERE.parent / "build" / "benchmarks" / f"console-cost-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
