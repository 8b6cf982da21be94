"""Moldau: a Kafka-compatible messaging system in Python.

`moldau.Broker` is the embedded broker for tests and scripts:

    with moldau.Broker() as broker:
        producer = confluent_kafka.Producer({"bootstrap.servers": broker.bootstrap_servers})
"""

__version__ = "0.1.0"

from moldau.runtime.embedded import Broker  # noqa: E402

__all__ = ["Broker", "__version__"]
