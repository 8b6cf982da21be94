"""`moldau cluster up --tls`: three processes whose every listener (clients, between brokers,
the controllers') speaks mutual TLS with certificates made by `moldau certs create`'s code; the
cluster replicates, fails over and reports its status over TLS."""

from __future__ import annotations

import pytest

from moldau.testing.cluster_process import ProcessCluster

pytestmark = pytest.mark.integration


def test_tls_cluster_replicates_and_fails_over(tmp_path):
    from confluent_kafka import Consumer, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic

    with ProcessCluster(tmp_path / "cluster", brokers=3, tls=True) as cluster:
        assert (tmp_path / "cluster" / "certs" / "client-ssl.properties").exists()
        config = cluster.client_config()
        admin = AdminClient(config)
        admin.create_topics([NewTopic("tls", 1, 3, config={"min.insync.replicas": "2"})])["tls"].result(30)
        cluster.wait_for(lambda: len(cluster.partition_state("tls", 0)[2]) == 3, what="a full ISR over TLS")
        status = cluster.status()
        assert status["active_controller"] in (1, 2, 3)  # `status` reads the cluster over TLS too
        producer = Producer({**config, "acks": "all"})
        for i in range(100):
            producer.produce("tls", str(i).encode())
        assert producer.flush(30) == 0
        leader = cluster.partition_state("tls", 0)[0]
        cluster.kill(leader)
        cluster.wait_for(lambda: cluster.partition_state("tls", 0)[0] not in (-1, leader), what="a new leader")
        for i in range(100, 200):
            producer.produce("tls", str(i).encode())
        assert producer.flush(60) == 0
        consumer = Consumer({**config, "group.id": "tls-check", "enable.auto.commit": False})
        consumer.assign([TopicPartition("tls", 0, 0)])
        seen = []
        while len(seen) < 200:
            message = consumer.poll(10)
            assert message is not None, f"only {len(seen)} of 200 records"
            if message.error() is None:
                seen.append(int(message.value()))
        consumer.close()
        assert seen == list(range(200))
