"""Kafka Connect for moldau: a standalone worker, the file connectors, converters, a REST API,
and a Python API for your own connectors (`moldau.connect.api`). See docs/connect.md.

Theory of operation: `standalone.StandaloneWorker` reads the worker settings, opens the offsets
file and starts `herder.StandaloneHerder`, which validates each connector config in full and
runs the connector's tasks, one thread each (`worker.py`): source tasks poll → convert → produce
and commit source offsets only after the producer acknowledged; sink tasks consume → convert →
put and commit consumer offsets only after the task flushed. `rest.py` serves Kafka Connect's
REST API over the herder; `cli/connect.py` is the `moldau connect standalone` command. It is a
client of the cluster (confluent-kafka), so it runs against moldau and Apache Kafka alike.
"""
