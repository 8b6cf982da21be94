"""Client quotas as Kafka enforces them: a producer over its byte rate is throttled to it
(throttle_time_ms and muting, KIP-219) while another client goes on at full speed; quotas are
managed with AlterClientQuotas/DescribeClientQuotas."""

import threading
import time

import pytest
from confluent_kafka import Producer
from kio.schema.alter_client_quotas.v1.request import AlterClientQuotasRequest, EntityData, EntryData, OpData
from kio.schema.describe_client_quotas.v1.request import ComponentData, DescribeClientQuotasRequest
from kio.static.primitive import f64, i8

from moldau import Broker
from tests.integration.rawclient import call

pytestmark = pytest.mark.integration
QUOTA_BYTES_PER_S = 200_000


def _alter(broker, entity: dict, key: str, value: float | None):
    request = AlterClientQuotasRequest(entries=(EntryData(
        entity=tuple(EntityData(entity_type=t, entity_name=n) for t, n in entity.items()),
        ops=(OpData(key=key, value=f64(float(value or 0.0)), remove=value is None),)),), validate_only=False)
    return call(broker, 49, 1, request)


def test_alter_and_describe_client_quotas(tmp_path):
    with Broker(data_dir=str(tmp_path / "d")) as broker:
        assert _alter(broker, {"user": "alice", "client-id": "app"}, "producer_byte_rate", 1024).entries[0].error_code.value == 0
        assert _alter(broker, {"client-id": None}, "consumer_byte_rate", 2048).entries[0].error_code.value == 0
        bad = _alter(broker, {"ip": "10.0.0.1"}, "producer_byte_rate", 5)
        assert bad.entries[0].error_code.value == 42  # INVALID_REQUEST: an ip has only connection_creation_rate
        described = call(broker, 48, 1, DescribeClientQuotasRequest(components=(
            ComponentData(entity_type="user", match_type=i8(0), match="alice"),), strict=False))
        assert [(tuple((e.entity_type, e.entity_name) for e in entry.entity), [(v.key, v.value) for v in entry.values])
                for entry in described.entries] == [((("user", "alice"), ("client-id", "app")), [("producer_byte_rate", 1024.0)])]
        assert _alter(broker, {"client-id": None}, "consumer_byte_rate", None).entries[0].error_code.value == 0
        everything = call(broker, 48, 1, DescribeClientQuotasRequest(components=(), strict=False))
        assert len(everything.entries) == 1


def _produce_for(broker, client_id: str, seconds: float, results: dict) -> None:
    delivered = [0]
    throttled = [0]

    def on_delivery(err, msg):
        if err is None:
            delivered[0] += len(msg.value())

    def on_stats(_json):
        pass

    producer = Producer({"bootstrap.servers": broker.bootstrap_servers, "client.id": client_id, "linger.ms": 5,
                         "queue.buffering.max.kbytes": 2048, "acks": 1})
    value = b"x" * 1000
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        try:
            producer.produce("quota-topic", value, on_delivery=on_delivery)
        except BufferError:
            producer.poll(0.05)
            continue
        producer.poll(0)
    elapsed = time.monotonic() - started
    producer.purge()  # what is still queued was not acknowledged within the time
    producer.flush(5)
    results[client_id] = (delivered[0] / elapsed, throttled[0])


def test_producer_over_its_byte_rate_is_throttled_to_it_and_others_are_not(tmp_path):
    with Broker(data_dir=str(tmp_path / "d"), config={"num.partitions": "1"}) as broker:
        assert _alter(broker, {"client-id": "slow"}, "producer_byte_rate", QUOTA_BYTES_PER_S).entries[0].error_code.value == 0
        results: dict = {}
        fast = threading.Thread(target=_produce_for, args=(broker, "fast", 10, results))
        fast.start()
        _produce_for(broker, "slow", 30, results)
        fast.join()
        slow_rate, fast_rate = results["slow"][0], results["fast"][0]
        print(f"slow {slow_rate:.0f} B/s, fast {fast_rate:.0f} B/s")
        assert 0.9 * QUOTA_BYTES_PER_S <= slow_rate <= 1.1 * QUOTA_BYTES_PER_S, slow_rate
        assert fast_rate > 3 * QUOTA_BYTES_PER_S, fast_rate  # unaffected by the other client's quota


def test_connections_over_max_connections_per_ip_are_closed(tmp_path):
    import socket

    with Broker(data_dir=str(tmp_path / "d"), config={"max.connections.per.ip": "2"}) as broker:
        kept = [socket.create_connection((broker.host, broker.port), timeout=10) for _ in range(2)]
        try:
            time.sleep(0.3)
            with socket.create_connection((broker.host, broker.port), timeout=10) as third:
                third.settimeout(10)
                try:
                    assert third.recv(1) == b""  # closed by the broker
                except ConnectionResetError:
                    pass
        finally:
            for sock in kept:
                sock.close()
        time.sleep(0.3)
        with socket.create_connection((broker.host, broker.port), timeout=10) as again:  # slots freed
            again.sendall(b"\x00\x00\x00\x0e\x00\x12\x00\x00\x00\x00\x00\x01\x00\x04test")
            assert len(again.recv(4)) == 4
