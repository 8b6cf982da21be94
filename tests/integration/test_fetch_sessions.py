"""Fetch sessions (KIP-227) from the wire: open, incremental requests and responses, forgetting
partitions, epochs, closing; and the Java consumer and franz-go really using them."""

import datetime
import uuid

import pytest
from kio.index import load_request_schema

import rawclient
from moldau.records import Record, build_batch


def _request(version, session_id, epoch, partitions=(), forgotten=(), topic="s", topic_id=None, max_wait_ms=0,
             max_bytes=50_000_000):
    """A Fetch request; partitions are (index, fetch_offset), forgotten are indexes."""
    schema = load_request_schema(1, version)
    mod = __import__(schema.__module__, fromlist=["x"])
    parts = tuple(mod.FetchPartition(partition=p, current_leader_epoch=-1, fetch_offset=offset, last_fetched_epoch=-1,
                                     log_start_offset=-1, partition_max_bytes=1_000_000) for p, offset in partitions)
    by_id = version >= 13
    name = {"topic_id": uuid.UUID(topic_id)} if by_id else {"topic": topic}
    topics = (mod.FetchTopic(**name, partitions=parts),) if parts else ()
    forgotten_topics = (mod.ForgottenTopic(**name, partitions=tuple(forgotten)),) if forgotten else ()
    replica = {"replica_state": mod.ReplicaState(replica_id=-1, replica_epoch=-1)} if version >= 15 else {"replica_id": -1}
    request = schema(cluster_id=None, **replica, max_wait=datetime.timedelta(milliseconds=max_wait_ms),
                     min_bytes=1, max_bytes=max_bytes, isolation_level=0, session_id=session_id,
                     session_epoch=epoch, topics=topics, forgotten_topics_data=forgotten_topics, rack_id="")
    return request


def _fetch(broker, version, *args, **kwargs):
    response = rawclient.call(broker, 1, version, _request(version, *args, **kwargs))
    partitions = {p.partition_index: p for topic in response.responses for p in topic.partitions}
    return response, partitions


def _append(broker, partition, count=1):
    def append(core):
        records = [Record(i, 1_700_000_000_000, None, b"x") for i in range(count)]
        info = core.partition("s", partition).append(build_batch(records), 1, 1)
        core.partition_appended(("s", partition), 1)
        return info

    broker.call(append)


@pytest.fixture
def broker(moldau_broker):
    moldau_broker.create_topic("s", 3, 1)
    return moldau_broker


@pytest.mark.parametrize("version", [12, 13, 17])
def test_incremental_fetches_carry_only_what_changed(broker, version):
    topic_id = broker.call(lambda core: core.image.topic("s").topic_id)
    ask = {"topic_id": topic_id}
    _append(broker, 0, 2)

    # A full fetch opening a session: every partition comes back, and a session id.
    response, got = _fetch(broker, version, 0, 0, [(0, 0), (1, 0), (2, 0)], **ask)
    session = response.session_id
    assert session != 0 and sorted(got) == [0, 1, 2] and got[0].records and got[0].high_watermark == 2

    # Incremental, the client moved partition 0 on: nothing changed anywhere, nothing comes back.
    response, got = _fetch(broker, version, session, 1, [(0, 2)], **ask)
    assert response.error_code.name == "none" and response.session_id == session and got == {}

    # New data on partition 1 only: only partition 1, from the offset the session remembers.
    _append(broker, 1, 3)
    response, got = _fetch(broker, version, session, 2, **ask)
    assert sorted(got) == [1] and got[1].high_watermark == 3 and got[1].records

    # The same epoch again (a replayed request) is refused; the right one still works.
    response, _ = _fetch(broker, version, session, 2, **ask)
    assert response.error_code.name == "invalid_fetch_session_epoch"
    response, got = _fetch(broker, version, session, 3, [(1, 3)], **ask)
    assert response.error_code.name == "none" and got == {}

    # Forget partition 2: its new data is no longer sent.
    response, got = _fetch(broker, version, session, 4, forgotten=[2], **ask)
    _append(broker, 2)
    _append(broker, 0)
    response, got = _fetch(broker, version, session, 5, **ask)
    assert sorted(got) == [0]

    # Epoch -1 closes the session: the request is answered in full and without a session.
    response, got = _fetch(broker, version, session, -1, [(0, 0)], **ask)
    assert response.session_id == 0 and sorted(got) == [0]
    response, _ = _fetch(broker, version, session, 6, **ask)
    assert response.error_code.name == "fetch_session_id_not_found"


def test_a_busy_partition_does_not_starve_the_others(broker):
    for _ in range(5):
        _append(broker, 0)
        _append(broker, 1)
    response, got = _fetch(broker, 12, 0, 0, [(0, 0), (1, 0)], max_bytes=1)
    session = response.session_id
    assert sorted(got) == [0, 1] and got[0].records and not got[1].records  # max_bytes: one batch
    offsets, served = {0: 1, 1: 0}, []
    for epoch in range(1, 7):  # the client moves the partition it was served on
        response, got = _fetch(broker, 12, session, epoch, [(p, offsets[p]) for p in sorted(offsets)], max_bytes=1)
        with_records = [p for p, data in got.items() if data.records]
        assert len(with_records) == 1
        served.append(with_records[0])
        offsets[with_records[0]] += 1
    # Without the turn-taking partition 0 would be served until it ran dry.
    assert served == [0, 1, 0, 1, 0, 1], "partitions take turns once one returned records"


def test_sessionless_fetch_opens_nothing(broker):
    response, got = _fetch(broker, 12, 0, -1, [(0, 0), (1, 0)])
    assert response.session_id == 0 and sorted(got) == [0, 1]
    assert broker.call(lambda core: len(core.extensions["fetch_sessions"].sessions)) == 0


def test_a_long_poll_reports_a_change_it_waited_for(broker):
    _, _ = _fetch(broker, 12, 0, 0, [(0, 0)])
    session = broker.call(lambda core: next(iter(core.extensions["fetch_sessions"].sessions)))
    # Nothing new: the long-poll expires empty, and the session still expects the next epoch.
    response, got = _fetch(broker, 12, session, 1, max_wait_ms=200)
    assert response.error_code.name == "none" and got == {}
    _append(broker, 0)
    response, got = _fetch(broker, 12, session, 2, max_wait_ms=5000)
    assert sorted(got) == [0] and got[0].high_watermark == 1


def test_unknown_topic_id_is_reported_in_every_response(broker):
    ghost = str(uuid.uuid4())
    response, got = _fetch(broker, 13, 0, 0, [(0, 0)], topic_id=ghost)
    assert got[0].error_code.name == "unknown_topic_id"
    response, got = _fetch(broker, 13, response.session_id, 1, topic_id=ghost)
    assert got[0].error_code.name == "unknown_topic_id"


def _fill(bootstrap, topic, count, size):
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, 3, 1)])[topic].result(30)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for i in range(count):
        producer.produce(topic, key=str(i).encode(), value=f"{i:08d}".encode().ljust(size, b"."))
        if i % 10_000 == 0:
            producer.poll(0)
    assert producer.flush(60) == 0


def test_the_java_consumer_reads_everything_through_incremental_fetches(moldau_broker):
    from moldau.testing.kafka_dist import kafka_tool, need_kafka

    need_kafka()
    bootstrap = moldau_broker.bootstrap_servers
    count = 20_000
    _fill(bootstrap, "java-sessions", count, 1000)  # ~20 MB: many 1 MiB partition fetches
    consumed = kafka_tool("kafka-console-consumer", ["--bootstrap-server", bootstrap, "--topic", "java-sessions",
                                                     "--from-beginning", "--max-messages", str(count),
                                                     "--timeout-ms", "60000"], timeout=180)
    assert consumed.returncode == 0, consumed.stderr[-2000:]
    values = [int(line[:8]) for line in consumed.stdout.splitlines()]
    assert sorted(values) == list(range(count))
    created, incremental = moldau_broker.call(
        lambda core: (core.extensions["fetch_sessions"].created, core.extensions["fetch_sessions"].incremental_fetches))
    assert created >= 1 and incremental >= 3  # ~20 MB in at most 3 MiB per fetch
