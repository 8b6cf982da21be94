"""Moldau: a Kafka-compatible messaging system in Python.

`moldau.Broker` is the embedded broker for tests and scripts:

    with moldau.Broker() as broker:
        producer = confluent_kafka.Producer({"bootstrap.servers": broker.bootstrap_servers})
"""

__version__ = "0.1.0"

__all__ = ["Broker", "Cluster", "__version__"]


def __getattr__(name: str):
    # Imported lazily so that `moldau topics ...` does not pay for the broker runtime.
    if name == "Broker":
        from moldau.runtime.embedded import Broker

        return Broker
    if name == "Cluster":
        from moldau.runtime.cluster import Cluster

        return Cluster
    raise AttributeError(name)
