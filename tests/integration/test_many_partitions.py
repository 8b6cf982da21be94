"""Issue 13, 5.3 and 6: `moldau topics create big -p 10000` on a running server. The broker
once hit MESSAGE_TOO_LARGE on its own metadata log, dropped the connection and the CLI blamed
the network; creating thousands of partitions also stalled every other client. Now the topic
is created, the CLI says so in one line, and the broker answers others meanwhile."""

from __future__ import annotations

import threading
import time

import pytest

from moldau.cli.testing import run_cli_process

pytestmark = pytest.mark.integration

PARTITIONS = 10_000


def test_a_topic_of_ten_thousand_partitions_is_created_while_others_are_served(tmp_path):
    from confluent_kafka.admin import AdminClient

    from moldau import Broker

    with Broker(data_dir=str(tmp_path / "data")) as broker:
        admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
        slowest: list[float] = []
        done = threading.Event()

        def others() -> None:  # another client lists topics all along
            while not done.is_set():
                began = time.monotonic()
                admin.list_topics(timeout=30)
                slowest.append(time.monotonic() - began)
                time.sleep(0.1)

        watcher = threading.Thread(target=others)
        watcher.start()
        try:
            result = run_cli_process(["topics", "create", "big", "-p", str(PARTITIONS),
                                      "--bootstrap-server", broker.bootstrap_servers], timeout_s=300)
        finally:
            done.set()
            watcher.join()
        assert result.code == 0, result.err
        assert "Traceback" not in result.err and "big" in result.out
        described = admin.list_topics("big", timeout=30).topics["big"]
        assert described.error is None and len(described.partitions) == PARTITIONS
        assert all(p.leader >= 0 for p in described.partitions.values())
        # generous: a whole-broker stall took 20 s before
        assert max(slowest) < 10, f"a Metadata request waited {max(slowest):.1f} s during the creation"
