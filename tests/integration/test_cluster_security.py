"""A secured 3-node cluster: the brokers replicate to each other over the secured listener
(TLS, and a SCRAM login as the inter-broker user whose credential is bootstrapped into the
metadata log), the controllers elect and replicate over their own secured listener (TLS, PLAIN)
— and an acks=all workload survives the leader's death as on a plaintext cluster."""

from __future__ import annotations

import time

import pytest

import moldau

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("security", ["SASL_SSL", "SSL"])
def test_secured_cluster_replicates_and_fails_over(security):
    from confluent_kafka import Consumer, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic

    with moldau.Cluster(brokers=3, security=security, users={"alice": "alice-secret"}) as cluster:
        config = cluster.client_config("alice")
        admin = AdminClient(config)
        admin.create_topics([NewTopic("secret", 1, 3, config={"min.insync.replicas": "2"})])["secret"].result(30)
        cluster.wait_for(lambda: len(cluster.isr("secret")) == 3, what="a full ISR over secured links")

        # Followers fetch over the secured broker listener, logged in as the broker user.
        leader = cluster.leader("secret")
        expected_principal = "User:broker" if "SASL" in security else None

        def logged_in(core, listener: str) -> list[str]:
            """Principals of the connections on a listener that completed their login (not the
            node's own in-process requests to its controller, which run as Internal:node)."""
            return [s.principal for s in core.sessions.values() if s.listener is not None and s.listener.name == listener
                    and (s.sasl is None or s.sasl.state == "complete") and not s.principal.startswith("Internal:")]

        def peers(core):
            return [p for p in logged_in(core, security) if p not in ("User:alice", "User:ANONYMOUS")]

        cluster.wait_for(lambda: len(cluster.call(leader, peers)) >= 2, what="both followers connected")
        principals = cluster.call(leader, peers)
        if expected_principal:
            assert set(principals) == {expected_principal}, principals
            controllers = cluster.call(cluster.controller_id(), lambda core: logged_in(core, "CONTROLLER"))
            assert controllers and set(controllers) == {"User:broker"}, controllers
        else:  # mutual TLS: the node's certificate names it
            assert all(p.startswith("User:CN=") for p in principals), principals

        acked: list[int] = []
        producer = Producer({**config, "acks": "all", "enable.idempotence": True})
        for i in range(200):
            producer.produce("secret", str(i).encode(), on_delivery=lambda err, msg: err is None and acked.append(
                int(msg.value())))
        producer.flush(30)
        cluster.kill(leader)
        cluster.wait_for(lambda: cluster.leader("secret") not in (-1, leader), what="a new leader")
        for i in range(200, 400):
            producer.produce("secret", str(i).encode(), on_delivery=lambda err, msg: err is None and acked.append(
                int(msg.value())))
        assert producer.flush(60) == 0
        cluster.restart(leader)
        cluster.wait_for(lambda: len(cluster.isr("secret")) == 3, timeout_s=60, what="the restarted node back in sync")

        consumer = Consumer({**config, "group.id": "check", "enable.auto.commit": False})
        consumer.assign([TopicPartition("secret", 0, 0)])
        seen: list[int] = []
        deadline = time.monotonic() + 30
        while len(seen) < len(acked) and time.monotonic() < deadline:
            message = consumer.poll(1)
            if message is not None and message.error() is None:
                seen.append(int(message.value()))
        consumer.close()
        assert sorted(acked) == list(range(400))
        assert seen == list(range(400))
