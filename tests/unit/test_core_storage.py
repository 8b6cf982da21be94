"""Storage faults seen from clients (issue 14), through BrokerCore.handle_request on the
in-memory file system: a damaged partition answers KAFKA_STORAGE_ERROR while the others
serve, a bad batch answers CORRUPT_MESSAGE, and a full disk refuses cleanly and recovers on
the next tick without a restart."""

from __future__ import annotations

import io
import struct
import uuid

from kio.schema.errors import ErrorCode
from kio.serial import entity_reader, entity_writer

from moldau.broker.config import BrokerConfig
from moldau.broker.core import BrokerCore
from moldau.log import MemoryFileSystem, faults
from moldau.protocol import codec
from moldau.protocol.build import build
from moldau.records import Record, build_batch, iterate_batches, iterate_records

NOW = 1_700_000_000_000


def make_core(fs: MemoryFileSystem, free_bytes_min: int = 0) -> BrokerCore:
    counter = iter(range(1, 1_000_000))
    config = BrokerConfig(data_dir="/data", offsets_topic_num_partitions=3,
                          group_initial_rebalance_delay_ms=0, log_dir_free_bytes_min=free_bytes_min)
    return BrokerCore(config, fs, lambda: uuid.UUID(int=next(counter)), NOW, fs.usage)


def call(core: BrokerCore, key: int, version: int, data: dict):
    schema = codec.request_schema(key, version)
    body = io.BytesIO()
    entity_writer(schema)(body, build(schema, data))
    header = struct.pack(">hhih", key, version, 7, 4) + b"test"
    if codec.is_flexible(key, version):
        header += b"\x00"
    result = core.handle_request(header + body.getvalue(), 1, "127.0.0.1", core.now_ms)
    if isinstance(result, list):
        result = b"".join(bytes(chunk) for chunk in result)
    assert isinstance(result, bytes), f"api {key} answered {result!r}"
    offset = 8
    if codec.response_header_flexible(key, version):
        offset = codec.skip_tagged_fields(result, offset)
    return entity_reader(codec.response_schema(key, version))(memoryview(result), offset)[0]


def produce(core: BrokerCore, topic: str, partition: int, value: bytes):
    records = build_batch([Record(0, NOW, None, value)])
    response = call(core, 0, 9, {"transactional_id": None, "acks": -1, "timeout": 5000, "topic_data": [
        {"name": topic, "partition_data": [{"index": partition, "records": records}]}]})
    return response.responses[0].partition_responses[0]


def fetch(core: BrokerCore, topic: str, partition: int, offset: int):
    response = call(core, 1, 12, {
        "cluster_id": None, "replica_id": -1, "replica_state": None, "max_wait": 0, "min_bytes": 1,
        "max_bytes": 1 << 20, "isolation_level": 0, "session_id": 0, "session_epoch": -1,
        "topics": [{"topic": topic, "topic_id": None, "partitions": [
            {"partition": partition, "current_leader_epoch": -1, "fetch_offset": offset,
             "last_fetched_epoch": -1, "log_start_offset": -1, "partition_max_bytes": 1 << 20,
             "replica_directory_id": None}]}],
        "forgotten_topics_data": [], "rack_id": ""})
    return response.responses[0].partitions[0]


def create_topic(core: BrokerCore, name: str, partitions: int = 1, configs: dict | None = None):
    response = call(core, 19, 5, {"topics": [{"name": name, "num_partitions": partitions, "replication_factor": 1,
                                              "assignments": [], "configs": [{"name": k, "value": v}
                                                                             for k, v in (configs or {}).items()]}],
                                  "timeout": 5000, "validate_only": False})
    return response.topics[0]


def values(records: bytes | None) -> list[bytes]:
    return [r.value for _, body in iterate_batches(records or b"") for r in iterate_records(body)]


def test_a_damaged_partition_is_offline_and_the_others_serve() -> None:
    fs = MemoryFileSystem()
    core = make_core(fs)
    assert create_topic(core, "hurt", configs={"segment.bytes": "400"}).error_code == ErrorCode.none
    assert create_topic(core, "fine").error_code == ErrorCode.none
    for i in range(30):
        assert produce(core, "hurt", 0, b"h%d" % i).error_code == ErrorCode.none
        assert produce(core, "fine", 0, b"f%d" % i).error_code == ErrorCode.none
    core.close()
    hurt = sorted(p for p in fs.files if "/hurt-0/" in p and p.endswith(".log"))
    assert len(hurt) >= 4
    data = fs.files[hurt[1]].data
    data[8 + 3] ^= 0x10  # the first batch's length field: the segment no longer adds up
    before = {p: bytes(f.data) for p, f in fs.files.items() if "/hurt-0/" in p}

    core = make_core(fs)  # restart
    assert core.partition("hurt", 0).log.offline is not None
    assert core.storage_status()["offline_partitions"] == 1
    assert produce(core, "hurt", 0, b"more").error_code == ErrorCode.kafka_storage_error
    assert fetch(core, "hurt", 0, 0).error_code == ErrorCode.kafka_storage_error
    assert produce(core, "fine", 0, b"f30").error_code == ErrorCode.none
    served = fetch(core, "fine", 0, 0)
    assert served.error_code == ErrorCode.none
    assert values(served.records) == [b"f%d" % i for i in range(31)]
    core.tick(NOW + 10**9)  # retention, flushes: an offline log is left alone
    core.close()
    assert {p: bytes(f.data) for p, f in fs.files.items() if "/hurt-0/" in p} == before


def test_a_corrupt_batch_answers_corrupt_message_instead_of_empty_fetches() -> None:
    fs = MemoryFileSystem()
    core = make_core(fs)
    create_topic(core, "t", configs={"segment.bytes": "600"})
    for i in range(30):
        produce(core, "t", 0, b"value-%d" % i)
    core.close()
    first = sorted(p for p in fs.files if "/t-0/" in p and p.endswith(".log"))[0]
    data = fs.files[first].data
    size = int.from_bytes(data[8:12], "big") + 12
    data[2 * size + 65] ^= 0xFF  # inside the records of the third batch (offset 2)
    core = make_core(fs)
    assert core.partition("t", 0).log.offline is None  # trusted below the recovery point
    head = fetch(core, "t", 0, 0)
    assert head.error_code == ErrorCode.none and values(head.records) == [b"value-0", b"value-1"]
    for _ in range(2):
        assert fetch(core, "t", 0, 2).error_code == ErrorCode.corrupt_message
    assert values(fetch(core, "t", 0, 3).records)[0] == b"value-3"
    assert produce(core, "t", 0, b"still").error_code == ErrorCode.none


def test_partitions_that_cannot_be_opened_are_retried_on_each_tick() -> None:
    """Finding 3: the metadata record is applied whole; the logs follow when space returns."""
    scratch = MemoryFileSystem()  # how many bytes the metadata records take
    probe = make_core(scratch)
    before = probe.controller.metadata_log.log.size_bytes
    create_topic(probe, "t", partitions=20)
    record_bytes = probe.controller.metadata_log.log.size_bytes - before
    fs = MemoryFileSystem()
    core = make_core(fs)
    fs.capacity_bytes = sum(len(f.data) for f in fs.files.values()) + record_bytes + 200
    counted = faults.COUNTERS.partition_open_failures
    created = create_topic(core, "t", partitions=20)
    assert created.error_code == ErrorCode.none
    assert sorted(core.image.topic("t").partitions) == list(range(20))
    waiting = sorted(core.log_dir.pending)
    assert waiting and faults.COUNTERS.partition_open_failures > counted
    topic, index = waiting[0]
    assert produce(core, topic, index, b"x").error_code == ErrorCode.kafka_storage_error
    assert fetch(core, topic, index, 0).error_code == ErrorCode.kafka_storage_error
    core.tick(NOW + 500)
    assert core.log_dir.pending, "still full"
    fs.capacity_bytes = None
    core.tick(NOW + 1000)
    assert not core.log_dir.pending
    assert sorted(i for (t, i) in core.partitions if t == "t") == list(range(20))
    assert produce(core, topic, index, b"x").error_code == ErrorCode.none


def test_below_the_reserve_produce_and_creates_are_refused_until_space_returns() -> None:
    fs = MemoryFileSystem()
    core = make_core(fs, free_bytes_min=10_000)
    create_topic(core, "t")
    fs.capacity_bytes = sum(len(f.data) for f in fs.files.values()) + 5_000  # below the reserve
    metadata_end = core.controller.metadata_log.log.log_end_offset
    refusals = faults.COUNTERS.free_space_refusals
    result = produce(core, "t", 0, b"x")
    assert result.error_code == ErrorCode.kafka_storage_error
    assert "log.dir.free.bytes.min" in result.error_message
    created = create_topic(core, "new", partitions=3)
    assert created.error_code == ErrorCode.kafka_storage_error
    assert core.image.topic("new") is None
    assert core.controller.metadata_log.log.log_end_offset == metadata_end, "nothing committed"
    coordinator = call(core, 10, 3, {"key": "g", "key_type": 0, "coordinator_keys": []})
    assert coordinator.error_code == ErrorCode.coordinator_not_available
    assert faults.COUNTERS.free_space_refusals >= refusals + 3
    fs.capacity_bytes = None  # space is back: no restart
    assert produce(core, "t", 0, b"x").error_code == ErrorCode.none
    assert create_topic(core, "new", partitions=3).error_code == ErrorCode.none
    coordinator = call(core, 10, 3, {"key": "g", "key_type": 0, "coordinator_keys": []})
    assert coordinator.error_code == ErrorCode.none


def test_a_metadata_log_that_cannot_be_written_fails_the_create_cleanly() -> None:
    fs = MemoryFileSystem()
    core = make_core(fs)  # no reserve: the metadata append itself fails
    fs.capacity_bytes = sum(len(f.data) for f in fs.files.values())
    created = create_topic(core, "t", partitions=2)
    assert created.error_code == ErrorCode.kafka_storage_error
    assert core.image.topic("t") is None
    fs.capacity_bytes = None
    assert create_topic(core, "t", partitions=2).error_code == ErrorCode.none
    assert produce(core, "t", 1, b"x").error_code == ErrorCode.none


def test_init_producer_id_on_a_full_disk_is_retriable() -> None:
    fs = MemoryFileSystem()
    core = make_core(fs)
    request = {"transactional_id": None, "transaction_timeout": 60_000, "producer_id": -1, "producer_epoch": -1,
               "enable2_pc": False, "keep_prepared_txn": False}
    fs.capacity_bytes = sum(len(f.data) for f in fs.files.values())
    assert call(core, 22, 4, request).error_code == ErrorCode.coordinator_not_available
    fs.capacity_bytes = None
    response = call(core, 22, 4, request)
    assert response.error_code == ErrorCode.none and response.producer_id >= 0


def test_a_damaged_metadata_log_stops_the_broker_with_the_file_named() -> None:
    import pytest

    fs = MemoryFileSystem()
    core = make_core(fs)
    for i in range(5):
        create_topic(core, f"t{i}")
    core.close()
    path = sorted(p for p in fs.files if "/__cluster_metadata-0/" in p and p.endswith(".log"))[0]
    del fs.files[path].data[-20:]  # flushed metadata records are gone
    with pytest.raises(OSError) as error:
        make_core(fs)
    assert "metadata log is damaged" in str(error.value) and error.value.filename == path
