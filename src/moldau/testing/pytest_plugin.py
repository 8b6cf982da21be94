"""pytest plugin (registered as the `moldau` entry point): an embedded Kafka-compatible broker.

    def test_roundtrip(moldau_broker):
        producer = confluent_kafka.Producer({"bootstrap.servers": moldau_broker.bootstrap_servers})

`moldau_broker` is one broker per test (fresh data directory, free port, started in
milliseconds); `moldau_broker_session` is shared by a whole test session.
"""

from __future__ import annotations

import pytest


@pytest.fixture
def moldau_broker(tmp_path):
    from moldau.runtime.embedded import Broker

    with Broker(data_dir=str(tmp_path / "moldau-data")) as broker:
        yield broker


@pytest.fixture(scope="session")
def moldau_broker_session(tmp_path_factory):
    from moldau.runtime.embedded import Broker

    with Broker(data_dir=str(tmp_path_factory.mktemp("moldau-session"))) as broker:
        yield broker
