"""`moldau server --log-level info`: the broker says what happens, in Kafka's words."""

import signal
import subprocess
import sys
import time

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from moldau.cli.testing import cli_environment
from moldau.testing.server_process import free_port


def test_info_log_tells_topics_configs_and_rebalances(tmp_path):
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "moldau", "server", "--port", str(port), "--data-dir",
                                str(tmp_path / "data"), "--log-level", "info",
                                "--override", "group.initial.rebalance.delay.ms=0"],
                               env=cli_environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline() == f"moldau server listening on 127.0.0.1:{port}\n"
        bootstrap = f"127.0.0.1:{port}"
        admin = AdminClient({"bootstrap.servers": bootstrap})
        admin.create_topics([NewTopic("logged", 2, 1, config={"retention.ms": "60000"})])["logged"].result(30)
        producer = Producer({"bootstrap.servers": bootstrap})
        producer.produce("logged", b"x")
        assert producer.flush(30) == 0
        consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "logged-group", "auto.offset.reset": "earliest"})
        consumer.subscribe(["logged"])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not [m for m in consumer.consume(10, 0.5) if m.error() is None]:
            pass
        consumer.close()
        admin.delete_topics(["logged"])["logged"].result(30)
        time.sleep(0.5)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    log = process.stderr.read()
    assert "moldau.controller: Created topic logged with topic id " in log
    assert "Set config retention.ms=60000 on topic logged" in log
    assert "Created partition logged-1: replicas [1], ISR [1], leader 1, leader epoch 0" in log
    assert "moldau.group: Group logged-group: CompletingRebalance -> Stable (generation 1, 1 member(s), protocol" in log
    assert "moldau.controller: Deleted topic logged" in log
    assert "Traceback" not in log
