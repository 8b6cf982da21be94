"""Fetch semantics seen from the wire: KIP-74 (at least one batch), per-partition and
per-response max bytes, long-poll completed by a produce or by its deadline, and
OFFSET_OUT_OF_RANGE."""

import datetime
import threading
import time

import pytest
from kio.index import load_request_schema

import rawclient
from moldau.records import Record, build_batch

VERSION = 11


def _fetch(broker, partitions, max_bytes=50_000_000, max_wait_ms=0, min_bytes=1):
    schema = load_request_schema(1, VERSION)
    mod = __import__(schema.__module__, fromlist=["x"])
    parts = tuple(mod.FetchPartition(partition=p, current_leader_epoch=-1, fetch_offset=offset,
                                     log_start_offset=-1, partition_max_bytes=limit)
                  for p, offset, limit in partitions)
    request = schema(replica_id=-1, max_wait=datetime.timedelta(milliseconds=max_wait_ms), min_bytes=min_bytes,
                     max_bytes=max_bytes, isolation_level=0, session_id=0, session_epoch=-1,
                     topics=(mod.FetchTopic(topic="f", partitions=parts),), forgotten_topics_data=(), rack_id="")
    response = rawclient.call(broker, 1, VERSION, request)
    return {p.partition_index: p for p in response.responses[0].partitions}


def _append(broker, partition, size, count=1):
    def append(core):
        records = [Record(i, 1_700_000_000_000, None, b"x" * size) for i in range(count)]
        return core.partition("f", partition).append(build_batch(records), 1, 1)

    info = broker.call(append)
    broker.call(lambda core: core.partition_appended(("f", partition), 1))
    return info


@pytest.fixture
def broker(moldau_broker):
    moldau_broker.create_topic("f", 2, 1)
    return moldau_broker


def test_first_batch_even_if_larger_than_limits(broker):
    _append(broker, 0, 5000)
    _append(broker, 0, 5000)
    _append(broker, 1, 5000)
    got = _fetch(broker, [(0, 0, 100), (1, 0, 100)], max_bytes=100)
    assert 5000 < len(got[0].records) < 10_000  # exactly the first batch
    assert got[1].records == b""  # the response is already over max_bytes
    got = _fetch(broker, [(0, 0, 1_000_000), (1, 0, 1_000_000)], max_bytes=12_000)
    assert len(got[0].records) > 10_000 and got[1].records == b""  # second partition: no room left


def test_long_poll_completes_on_append_or_deadline(broker):
    started = time.monotonic()
    got = _fetch(broker, [(0, 0, 1_000_000)], max_wait_ms=300)
    assert got[0].records == b"" and time.monotonic() - started >= 0.28
    timer = threading.Timer(0.3, _append, args=(broker, 0, 10))
    timer.start()
    started = time.monotonic()
    got = _fetch(broker, [(0, 0, 1_000_000)], max_wait_ms=10_000)
    timer.join()
    assert got[0].records != b"" and time.monotonic() - started < 5


def test_offset_out_of_range(broker):
    _append(broker, 0, 10, count=5)
    got = _fetch(broker, [(0, 6, 1000)])
    assert got[0].error_code.name == "offset_out_of_range" and got[0].high_watermark == 5
    got = _fetch(broker, [(0, 5, 1000)])
    assert got[0].error_code.name == "none" and got[0].records == b""


@pytest.mark.parametrize("sendfile", [True, False])
def test_record_sets_arrive_whole_by_sendfile_or_copied(tmp_path, sendfile):
    # socket.sendfile.enable=true: a consumer's record sets leave a plain listener by sendfile
    # from the segment file (runtime/transmit.py), not through Python; the default reads and
    # writes them. Either way the bytes must be exactly the batches.
    from moldau.records import iterate_batches, iterate_records
    from moldau.runtime import transmit
    from moldau.runtime.embedded import Broker

    config = {"socket.sendfile.enable": "true"} if sendfile else {}
    with Broker(data_dir=str(tmp_path / "data"), config=config) as broker:
        broker.create_topic("f", 2, 1)
        for i in range(20):
            _append(broker, 0, 1000, count=50)  # 20 batches of ~50 KB
        before = dict(transmit.TOTALS)
        got = _fetch(broker, [(0, 0, 50_000_000)])[0]
    sent = {path: transmit.TOTALS[path] - before[path] for path in before}
    if sendfile:
        assert sent["sendfile"] > 500_000, f"sendfile carried {sent} bytes"
    else:
        assert sent["sendfile"] == 0 and sent["copied"] >= len(got.records), sent
    values = [r.value for _, raw in iterate_batches(got.records) for r in iterate_records(raw)]
    assert len(values) == 1000 and set(values) == {b"x" * 1000}
    assert got.high_watermark == 1000
