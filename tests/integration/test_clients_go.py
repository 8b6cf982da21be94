"""Go clients against moldau: admin, produce, group consume and resume, offsets, codecs.

Three clients, each a small program in tests/clients/go/<name>/main.go over the shared package
tests/clients/go/workload (one module; versions pinned by its go.sum; modules fetched by
scripts/test.sh), built once per session into build/clients/:
- franz-go negotiates the newest version of every API the broker advertises and is idempotent
  by default, so it drives the top of each version range;
- IBM Sarama does not negotiate: it sends the versions of the Kafka release in its config
  (2.1.0, its default), as many Go services in production still do;
- segmentio/kafka-go is a third implementation, with its own encoder and group member.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

import workload
from moldau.testing.tools import need_executable

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
_built: dict[str, Path] = {}


def _binary(name: str) -> Path:
    if name not in _built:
        go = need_executable("go")
        binary = ROOT / "build" / "clients" / f"{name}-workload"
        binary.parent.mkdir(parents=True, exist_ok=True)
        built = subprocess.run([go, "build", "-o", str(binary), f"./{name}"], cwd=ROOT / "tests" / "clients" / "go",
                               capture_output=True, text=True, timeout=600)
        assert built.returncode == 0, built.stderr[-3000:]
        _built[name] = binary
    return _built[name]


@pytest.fixture(params=["franz", "sarama", "kafkago"])
def client(request):
    binary = _binary(request.param)

    def run(bootstrap: str, *argv: str) -> str:
        return workload.run_client(str(binary), bootstrap, *argv)

    run.prefix = request.param
    return run


def test_produce_and_group_consume_10000_keyed_messages_then_resume(moldau_broker, client):
    bootstrap, topic, group = moldau_broker.bootstrap_servers, f"{client.prefix}-orders", f"{client.prefix}-group"
    client(bootstrap, "create", topic, str(workload.PARTITIONS))
    client(bootstrap, "produce", topic, "0", str(workload.MESSAGES), "none")
    workload.check(workload.from_json_lines(client(bootstrap, "consume", topic, str(workload.MESSAGES), group)))

    # What was printed was committed: a new member of the group starts after it.
    client(bootstrap, "produce", topic, str(workload.MESSAGES), "5", "none")
    resumed = workload.from_json_lines(client(bootstrap, "consume", topic, "5", group))
    assert sorted(int(dict(r.headers)["seq"]) for r in resumed) == list(range(workload.MESSAGES, workload.MESSAGES + 5))


def test_offsets_latest_and_by_timestamp(moldau_broker, client):
    bootstrap, topic = moldau_broker.bootstrap_servers, f"{client.prefix}-offsets"
    client(bootstrap, "create", topic, "1")
    client(bootstrap, "produce", topic, "0", "1000", "none")
    answer = json.loads(client(bootstrap, "offsets", topic, str(workload.BASE_TIMESTAMP_MS + 321)))
    assert answer == {"latest": [{"partition": 0, "offset": 1000}], "by_time": [{"partition": 0, "offset": 321}]}


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_compression_round_trip(moldau_broker, client, codec):
    bootstrap, topic = moldau_broker.bootstrap_servers, f"{client.prefix}-{codec}"
    client(bootstrap, "create", topic, str(workload.PARTITIONS))
    client(bootstrap, "produce", topic, "0", "1000", codec)
    workload.check(workload.from_json_lines(client(bootstrap, "consume", topic, "1000", f"{topic}-group")), 1000)
