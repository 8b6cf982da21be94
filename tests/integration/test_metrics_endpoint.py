"""A node's /metrics and /health/* (runtime/metrics.py) against real clients: counters match
the workload, the page parses with prometheus_client's parser and passes promtool's check,
and /health/ready turns ready only once the broker serves requests."""

import asyncio
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request

import pytest
from confluent_kafka import Consumer, Producer
from prometheus_client.parser import text_string_to_metric_families

from moldau.broker.config import BrokerConfig
from moldau.runtime.embedded import Broker
from moldau.runtime.server import Server
from moldau.testing.server_process import ServerProcess, free_port
from moldau.testing.tools import need_executable

pytestmark = pytest.mark.integration


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def _samples(text: str) -> dict[tuple[str, tuple], float]:
    """(sample name, sorted labels) -> value, from prometheus_client's own parser."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def _produce(broker: Broker, topic: str, count: int, size: int) -> None:
    producer = Producer({"bootstrap.servers": broker.bootstrap_servers, "linger.ms": 2})
    for i in range(count):
        producer.produce(topic, key=str(i).encode(), value=bytes([65 + i % 26]) * (size + i % 7))
        if i % 50 == 0:
            producer.poll(0)
    assert producer.flush(30) == 0


def _consume(broker: Broker, topic: str, count: int) -> None:
    consumer = Consumer({"bootstrap.servers": broker.bootstrap_servers, "group.id": f"metrics-{topic}",
                         "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    seen = 0
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            message = consumer.poll(0.1)
            if message is not None and message.error() is None:
                seen += 1
                if seen == count:
                    break
    finally:
        consumer.close()
    assert seen == count


def test_counters_match_the_workload_scraped_while_it_runs():
    with Broker(config={"metrics.port": "0", "num.partitions": "3"}) as broker:
        scrapes: list[str] = []
        stop = threading.Event()

        def scrape_forever():
            while not stop.is_set():
                scrapes.append(_get(broker.metrics_url + "/metrics")[1])
                stop.wait(0.05)

        scraper = threading.Thread(target=scrape_forever)
        scraper.start()
        try:
            _produce(broker, "orders", 700, 120)
            _produce(broker, "audit", 300, 40)
            _consume(broker, "orders", 700)
        finally:
            stop.set()
            scraper.join(10)
        assert len(scrapes) >= 2
        # Counters never go back between scrapes.
        previous = 0.0
        for text in scrapes:
            value = _samples(text).get(("moldau_topic_records_in_total", (("topic", "orders"),)), 0.0)
            assert value >= previous
            previous = value
        final = _samples(_get(broker.metrics_url + "/metrics")[1])
        log_bytes = broker.call(lambda core: {t: sum(p.log.size_bytes for k, p in core.partitions.items() if k[0] == t)
                                              for t in ("orders", "audit")})
        for topic, records in (("orders", 700), ("audit", 300)):
            labels = (("topic", topic),)
            assert final[("moldau_topic_records_in_total", labels)] == records
            # The log stores the batches exactly as received: bytes in == bytes on disk.
            assert final[("moldau_topic_bytes_in_total", labels)] == log_bytes[topic]
            sizes = sum(v for (name, lab), v in final.items()
                        if name == "moldau_log_size_bytes" and ("topic", topic) in lab)
            assert sizes == log_bytes[topic]
        assert final[("moldau_topic_records_out_total", (("topic", "orders"),))] == 700
        assert final[("moldau_topic_bytes_out_total", (("topic", "orders"),))] >= log_bytes["orders"]
        assert final[("moldau_requests_total", (("request", "Produce"),))] >= 1
        assert final[("moldau_request_duration_seconds_count", (("request", "Produce"),))] >= 1
        assert final[("moldau_partitions", ())] >= 6 and final[("moldau_leader_partitions", ())] >= 6
        assert final[("moldau_under_replicated_partitions", ())] == 0
        assert final[("moldau_offline_partitions", ())] == 0
        assert final[("moldau_group_rebalances_total", ())] >= 1
        assert final[("moldau_connections_accepted_total", (("listener", "PLAINTEXT"),))] >= 3
        assert final[("process_resident_memory_bytes", ())] > 0


def test_page_passes_prometheus_text_format_check():
    promtool = need_executable("promtool")
    with Broker(config={"metrics.port": "0"}) as broker:
        _produce(broker, "checked", 20, 10)
        status, text = _get(broker.metrics_url + "/metrics")
        assert status == 200
        families = {f.name for f in text_string_to_metric_families(text)}
        assert {"moldau_requests", "moldau_request_duration_seconds", "moldau_topic_bytes_in"} <= families
        result = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True,
                                timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr


def test_ready_only_once_the_broker_serves_requests():
    async def scenario(data_dir: str):
        config = BrokerConfig()
        config.data_dir, config.port, config.metrics_port = data_dir, 0, 0
        server = Server(config)
        await server.start_metrics()
        base = f"http://127.0.0.1:{config.metrics_port}"
        loop = asyncio.get_running_loop()
        before = await loop.run_in_executor(None, _get, base + "/health/ready")
        live = await loop.run_in_executor(None, _get, base + "/health/live")
        await server.start()
        # listening is not serving yet: the node registers with its (own) controller first,
        # as `moldau server` waits for before it says it runs
        assert await server.wait_running(30)
        after = await loop.run_in_executor(None, _get, base + "/health/ready")
        await server.stop()
        return before, live, after

    with tempfile.TemporaryDirectory() as data_dir:
        before, live, after = asyncio.run(scenario(data_dir))
    assert before[0] == 503 and "not ready" in before[1]
    assert live[0] == 200
    assert after[0] == 200 and '"ready"' in after[1]


def test_moldau_server_metrics_port(tmp_path):
    port = free_port()
    process = ServerProcess(str(tmp_path / "data"), overrides={"metrics.port": str(port)})
    try:
        process.start()
        assert _get(f"http://127.0.0.1:{port}/health/live")[0] == 200
        assert _get(f"http://127.0.0.1:{port}/health/ready")[0] == 200
        status, text = _get(f"http://127.0.0.1:{port}/metrics")
        assert status == 200 and "moldau_broker_info" in text
    finally:
        process.close()


def test_metrics_are_off_by_default():
    with Broker() as broker:
        assert broker.metrics_url is None and broker.config.metrics_port is None


def test_grafana_dashboard_uses_only_metrics_a_node_serves():
    import json
    import re
    from pathlib import Path

    dashboard = json.loads((Path(__file__).resolve().parents[2] / "config" / "grafana-dashboard.json").read_text())
    used = {name for panel in dashboard["panels"] for target in panel["targets"]
            for name in re.findall(r"\b((?:moldau|process)_[a-z_]+)", target["expr"])}
    with Broker(config={"metrics.port": "0"}) as broker:
        _produce(broker, "dash", 5, 10)
        _consume(broker, "dash", 5)
        served = set(_samples(_get(broker.metrics_url + "/metrics")[1]))
    served_names = {name for name, _ in served}
    assert used and used <= served_names, sorted(used - served_names)
