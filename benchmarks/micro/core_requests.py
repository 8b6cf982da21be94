#!/usr/bin/env python3
"""The broker core's own time per request, without sockets: small produces and fetches of many
partitions (sessionless and in a fetch session), on this checkout's code.

    python benchmarks/micro/core_requests.py [--partitions 100] [--requests 2000]

Theory of operation. One `BrokerCore` on a temporary directory (the real disk layer,
`OsFileSystem`), one topic of `--partitions` partitions of which only partition 0 receives
records. Requests are kio-encoded frames handed to `core.handle_request` exactly as the
runtime does, and timed with `time.perf_counter_ns` over `--requests` calls after a warm-up:

- `produce-1`: a Produce v9 of one 100-byte record to partition 0 (the per-request path:
  header, parse, append, response — what small-batch producers and end-to-end latency pay);
- `fetch-sessionless`: a Fetch v11 (librdkafka's way: no session) of every partition, with
  partition 0 at its log end: every partition is answered, all but one with nothing;
- `fetch-incremental`: a Fetch v12 session (franz-go's and Java's way) after the full request
  that opened it: an empty incremental request, answered with the partitions that changed.

It measures the core's per-request work (parsing, per-partition Python, encoding) — what the
runtime adds (socket reads and writes) and what a busy machine adds are left out. Medians of
five rounds, in µs per request.
"""

from __future__ import annotations

import argparse
import datetime
import io
import statistics
import struct
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))

from kio.serial import entity_writer  # noqa: E402

from moldau.broker.config import BrokerConfig  # noqa: E402
from moldau.broker.core import BrokerCore  # noqa: E402
from moldau.records.record import Record, build_batch  # noqa: E402
from moldau.runtime.disk import OsFileSystem  # noqa: E402

TOPIC = "micro"


def frame(api_key: int, version: int, request, flexible_header: bool, correlation_id: int = 1) -> bytes:
    buffer = io.BytesIO()
    entity_writer(type(request))(buffer, request)
    header = struct.pack(">hhih", api_key, version, correlation_id, 5) + b"micro" + (b"\x00" if flexible_header else b"")
    return header + buffer.getvalue()


def produce_frame() -> bytes:
    from kio.schema.produce.v9.request import PartitionProduceData, ProduceRequest, TopicProduceData

    batch = build_batch([Record(offset=0, timestamp=int(time.time() * 1000), key=None, value=b"v" * 100, headers=[])])
    request = ProduceRequest(transactional_id=None, acks=1, timeout=datetime.timedelta(seconds=30), topic_data=(
        TopicProduceData(name=TOPIC, partition_data=(PartitionProduceData(index=0, records=bytes(batch)),)),))
    return frame(0, 9, request, True)


def fetch_frame(version: int, partitions: int, offsets: dict, session_id: int = 0, epoch: int = -1,
                include: bool = True) -> bytes:
    module = __import__(f"kio.schema.fetch.v{version}.request", fromlist=["FetchRequest"])
    extra = {"last_fetched_epoch": -1} if version >= 12 else {}
    parts = tuple(module.FetchPartition(partition=p, current_leader_epoch=-1, fetch_offset=offsets.get(p, 0),
                                        log_start_offset=-1, partition_max_bytes=1 << 20, **extra)
                  for p in range(partitions)) if include else ()
    topics = (module.FetchTopic(topic=TOPIC, partitions=parts),) if parts else ()
    fields = dict(replica_id=-1, max_wait=datetime.timedelta(0), min_bytes=1, max_bytes=50 << 20, isolation_level=0,
                  session_id=session_id, session_epoch=epoch, topics=topics, forgotten_topics_data=(), rack_id="")
    if version >= 12:
        fields["cluster_id"] = None
    import dataclasses

    names = {f.name for f in dataclasses.fields(module.FetchRequest)}
    fields = {key: value for key, value in fields.items() if key in names}
    return frame(1, version, module.FetchRequest(**fields), version >= 12)


def timed(core: BrokerCore, payload: bytes, count: int) -> float:
    clock = time.perf_counter_ns
    began = clock()
    for _ in range(count):
        core.handle_request(payload, 1, "127.0.0.1", int(time.time() * 1000))
    return (clock() - began) / count / 1000


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--partitions", type=int, default=100)
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args(argv)
    directory = tempfile.mkdtemp(prefix="moldau-micro-")
    config = BrokerConfig()
    config.data_dir = directory
    core = BrokerCore(config, OsFileSystem(), uuid.uuid4, int(time.time() * 1000))
    create = getattr(core, "create_topic_internally", None)
    (create or core.controller.create_topic)(TOPIC, args.partitions)
    produce = produce_frame()
    for _ in range(100):
        core.handle_request(produce, 1, "127.0.0.1", int(time.time() * 1000))
    end = core.partitions[(TOPIC, 0)].log_end_offset
    sessionless = fetch_frame(11, args.partitions, {0: end})
    opened = core.handle_request(fetch_frame(12, args.partitions, {0: end}, 0, 0), 2, "127.0.0.1",
                                 int(time.time() * 1000))
    session_id = struct.unpack_from(">i", b"".join(opened), 4 + 4 + 1 + 4 + 2)[0]
    results: dict[str, list[float]] = {"produce-1": [], "fetch-sessionless": [], "fetch-incremental": []}
    epoch = 1
    for _ in range(5):
        results["produce-1"].append(timed(core, produce, args.requests))
        end = core.partitions[(TOPIC, 0)].log_end_offset
        results["fetch-sessionless"].append(timed(core, fetch_frame(11, args.partitions, {0: end}), args.requests))
        began = time.perf_counter_ns()
        for _ in range(args.requests):
            core.handle_request(fetch_frame(12, args.partitions, {}, session_id, epoch, include=False), 2,
                                "127.0.0.1", int(time.time() * 1000))
            epoch += 1
        results["fetch-incremental"].append((time.perf_counter_ns() - began) / args.requests / 1000)
    core.close()
    print(f"{args.partitions} partitions, {args.requests} requests per round, median of 5 rounds (µs per request; "
          f"fetch-incremental includes encoding its request frame):")
    for name, values in results.items():
        print(f"  {name:18s} {statistics.median(values):8.1f}  (min {min(values):.1f}, max {max(values):.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
