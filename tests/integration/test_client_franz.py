"""franz-go (Go) against moldau: admin, produce, group consume and resume, offsets, codecs.

franz-go negotiates the newest version of every API the broker advertises and is idempotent by
default, so it drives the top of each version range. The client side is
tests/clients/franz/main.go (versions pinned by its go.mod/go.sum; modules fetched by
scripts/test.sh), built once per session into build/clients/.
"""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

import pytest

import workload
from moldau.testing.tools import need_executable

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "tests" / "clients" / "franz"


@pytest.fixture(scope="session")
def franz_binary() -> Path:
    go = need_executable("go")
    binary = ROOT / "build" / "clients" / "franz-workload"
    binary.parent.mkdir(parents=True, exist_ok=True)
    built = subprocess.run([go, "build", "-o", str(binary), "."], cwd=SOURCE, capture_output=True,
                           text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-3000:]
    return binary


@pytest.fixture
def franz(franz_binary):
    def run(bootstrap: str, *argv: str) -> str:
        result = subprocess.run([str(franz_binary), bootstrap, *argv], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr[-3000:]
        return result.stdout

    return run


def consumed(output: str) -> list[workload.Consumed]:
    records = []
    for line in output.splitlines():
        r = json.loads(line)
        records.append(workload.Consumed(
            r["partition"], r["offset"], base64.b64decode(r["key"]), base64.b64decode(r["value"]),
            tuple((h["key"], base64.b64decode(h["value"])) for h in r["headers"]), r["timestamp"]))
    return records


def test_produce_and_group_consume_10000_keyed_messages_then_resume(moldau_broker, franz):
    bootstrap = moldau_broker.bootstrap_servers
    franz(bootstrap, "create", "go-orders", str(workload.PARTITIONS))
    franz(bootstrap, "produce", "go-orders", "0", str(workload.MESSAGES), "none")
    workload.check(consumed(franz(bootstrap, "consume", "go-orders", str(workload.MESSAGES), "go-group")))

    # What was printed was committed: a new member of the group starts after it.
    franz(bootstrap, "produce", "go-orders", str(workload.MESSAGES), "5", "none")
    resumed = consumed(franz(bootstrap, "consume", "go-orders", "5", "go-group"))
    assert sorted(int(dict(r.headers)["seq"]) for r in resumed) == list(range(workload.MESSAGES, workload.MESSAGES + 5))


def test_offsets_latest_and_by_timestamp(moldau_broker, franz):
    bootstrap = moldau_broker.bootstrap_servers
    franz(bootstrap, "create", "go-offsets", "1")
    franz(bootstrap, "produce", "go-offsets", "0", "1000", "none")
    answer = json.loads(franz(bootstrap, "offsets", "go-offsets", str(workload.BASE_TIMESTAMP_MS + 321)))
    assert answer == {"latest": [{"partition": 0, "offset": 1000}], "by_time": [{"partition": 0, "offset": 321}]}


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_compression_round_trip(moldau_broker, franz, codec):
    bootstrap = moldau_broker.bootstrap_servers
    topic = f"go-{codec}"
    franz(bootstrap, "create", topic, str(workload.PARTITIONS))
    franz(bootstrap, "produce", topic, "0", "1000", codec)
    workload.check(consumed(franz(bootstrap, "consume", topic, "1000", f"go-{codec}-group")), 1000)
