"""KafkaJS (Node.js) against moldau: admin, produce, group consume and resume, offsets, gzip.

The client side is tests/clients/kafkajs/workload.js (KafkaJS pinned in its package.json and
installed by scripts/test.sh with `npm ci`); it prints what it consumed as JSON lines, which are
checked here with the same workload check as every other client.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import workload
from moldau.testing.tools import need, need_executable

pytestmark = pytest.mark.integration

CLIENT_DIR = Path(__file__).resolve().parents[1] / "clients" / "kafkajs"


@pytest.fixture(scope="module")
def kafkajs():
    node = need_executable("node")
    need((CLIENT_DIR / "node_modules" / "kafkajs" / "package.json").exists(),
         "KafkaJS (npm ci --prefix tests/clients/kafkajs)")

    return lambda bootstrap, *argv: workload.run_client(node, str(CLIENT_DIR / "workload.js"), bootstrap, *argv)


def test_produce_and_group_consume_10000_keyed_messages_then_resume(moldau_broker, kafkajs):
    bootstrap = moldau_broker.bootstrap_servers
    kafkajs(bootstrap, "create", "js-orders", str(workload.PARTITIONS))
    kafkajs(bootstrap, "produce", "js-orders", "0", str(workload.MESSAGES))
    workload.check(workload.from_json_lines(kafkajs(bootstrap, "consume", "js-orders", str(workload.MESSAGES), "js-group")))

    # The group committed on disconnect: a new member resumes after the last message read.
    kafkajs(bootstrap, "produce", "js-orders", str(workload.MESSAGES), "5")
    resumed = workload.from_json_lines(kafkajs(bootstrap, "consume", "js-orders", "5", "js-group"))
    assert sorted(int(dict(r.headers)["seq"]) for r in resumed) == list(range(workload.MESSAGES, workload.MESSAGES + 5))


def test_offsets_latest_and_by_timestamp(moldau_broker, kafkajs):
    bootstrap = moldau_broker.bootstrap_servers
    kafkajs(bootstrap, "create", "js-offsets", "1")
    kafkajs(bootstrap, "produce", "js-offsets", "0", "1000")
    answer = json.loads(kafkajs(bootstrap, "offsets", "js-offsets", str(workload.BASE_TIMESTAMP_MS + 321)))
    assert answer["latest"] == [{"partition": 0, "offset": 1000, "low": 0}]
    assert [p["offset"] for p in answer["by_time"]] == [321]


def test_gzip_round_trip(moldau_broker, kafkajs):
    bootstrap = moldau_broker.bootstrap_servers
    kafkajs(bootstrap, "create", "js-gzip", str(workload.PARTITIONS))
    kafkajs(bootstrap, "produce", "js-gzip", "0", "1000", "gzip")
    workload.check(workload.from_json_lines(kafkajs(bootstrap, "consume", "js-gzip", "1000", "js-gzip-group")), 1000)
