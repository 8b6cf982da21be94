"""The machine, its load and the versions of everything measured: the header of every result."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def environment() -> dict:
    """Machine, load and versions, for the report's header."""
    import confluent_kafka

    from moldau.testing.kafka_dist import java_executable, kafka_version

    def run(command):
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=30)
            return (done.stdout + done.stderr).strip()
        except (OSError, subprocess.TimeoutExpired):
            return ""

    lscpu = run(["lscpu"])
    fields = {line.split(":", 1)[0].strip(): line.split(":", 1)[1].strip() for line in lscpu.splitlines() if ":" in line}
    model = " ".join(filter(None, [fields.get("Model name", ""), f"(family {fields.get('CPU family', '?')} model "
                                   f"{fields.get('Model', '?')}, {fields.get('BogoMIPS', '?')} BogoMIPS)",
                                   fields.get("Hypervisor vendor", "") and f"on {fields['Hypervisor vendor']}"]))
    with open("/proc/meminfo") as meminfo:
        mem_kb = int(meminfo.readline().split()[1])
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cpu_model": model, "cpus": os.cpu_count(), "ram_gib": round(mem_kb / 2**20, 1),
        "loadavg_before": os.getloadavg(), "kernel": platform.release(),
        "python": platform.python_version(), "confluent_kafka": confluent_kafka.version(),
        "librdkafka": confluent_kafka.libversion()[0], "kafka": kafka_version(),
        "java": run([java_executable() or "java", "-version"]).splitlines()[0:1],
        "moldau_commit": run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"]),
    }
