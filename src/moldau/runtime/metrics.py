"""A node's HTTP endpoints: Prometheus `/metrics`, `/health/live` and `/health/ready`.

Theory of operation. `MetricsServer` is an aiohttp application started inside the broker's
own event loop (asyncio or uvloop) on `metrics.port` / `moldau server --metrics-port`. It
never runs on the request path: the core and the runtime only bump plain ints
(broker/metrics.py), and a scrape turns them, plus what the core already knows (partitions,
leaders, ISR, log sizes, groups), into Prometheus families through `prometheus_client`'s
custom-collector interface. A scrape runs on the loop between two Kafka requests, so it reads
the core without locks and no state changes under it; its cost grows with the number of
partitions, and it is paid once per scrape, not per request.

Readiness: `/health/ready` answers 200 only once the broker's listener accepts connections and
its core has replayed the metadata log and opened its partitions (the core exists only after
that); before, and while the server stops, 503. `/health/live` answers 200 while the event
loop turns. On a cluster each node reports only what it hosts (its replicas and the partitions
it leads); cluster-wide gauges (topics, offline partitions) come from the node's metadata image,
so every node reports the same values for them and dashboards should take one node's, or max().
"""

from __future__ import annotations

import logging
import os
from typing import Any, Callable, Iterator

from aiohttp import web
from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from moldau import __version__
from moldau.broker import apis
from moldau.broker.metrics import LATENCY_BUCKETS_NS, BrokerMetrics
from moldau.protocol import codec

log = logging.getLogger("moldau.metrics")


def api_name(api_key: int) -> str:
    """Kafka's name of an API (the `request=` of its RequestMetrics MBeans): Produce, Fetch, ..."""
    entry = apis.REGISTRY.get(api_key)
    if entry is None:
        return f"Unknown{api_key}" if api_key >= 0 else "Unparsable"
    try:
        return codec.request_schema(api_key, entry.max_version).__name__.removesuffix("Request")
    except Exception:  # a version kio does not describe; the key still names it
        return f"Api{api_key}"


class BrokerCollector:
    """prometheus_client collector over one broker; `server()` returns the runtime Server
    (or None while it is not running)."""

    def __init__(self, server: Callable[[], Any]):
        self.server = server

    def collect(self) -> Iterator[Any]:
        server = self.server()
        core = server.core if server is not None else None
        if core is None:
            return
        yield from _info(core)
        yield from _requests(core.metrics)
        yield from _topics(core.metrics)
        yield from _connections(server, core.metrics)
        yield from _partitions(core)
        yield from _logs(core)
        yield from _groups(core)
        yield from _raft(core)
        yield from _loop_health(server)
        yield from _storage(server, core)


def _loop_health(server) -> Iterator[Any]:
    """Event-loop lag, tick and segment-write durations, GC pauses (runtime/loop_health.py)."""
    from moldau.runtime import loop_health as h
    from moldau.runtime.transmit import TOTALS

    bounds = [f"{b:g}" for b in h.BUCKETS_S] + ["+Inf"]

    def family(name: str, doc: str, histograms: dict, label: str | None = None):
        metric = HistogramMetricFamily(name, doc, labels=[label] if label else None)
        for key, histogram in histograms.items():
            metric.add_metric([key] if label else [], list(zip(bounds, histogram.cumulative())), histogram.sum_ns / 1e9)
        return metric

    health = getattr(server, "health", None)
    if health is not None:
        yield family("moldau_event_loop_lag_seconds", "How late the event loop's 50 ms heartbeat ran: time no "
                     "connection could be served", {"": health.lag})
        yield family("moldau_tick_duration_seconds", "Duration of the broker's periodic tick (retention, "
                     "compaction, flushes)", {"": health.ticks})
    yield family("moldau_segment_write_seconds", "Duration of each append to a segment file (os.writev), "
                 "this process", {"": h.DISK_WRITES})
    yield family("moldau_fsync_seconds", "Duration of each fsync (segments, indexes, checkpoints, directories), "
                 "this process, on the event loop's thread or the durability worker's",
                 {"loop": h.DISK_SYNCS, "background": h.BACKGROUND_SYNCS}, "thread")
    sent = CounterMetricFamily("moldau_fetch_record_bytes_sent", "Record bytes of Fetch responses sent by this "
                               "process, by how: sendfile from the segment file, or read and written (TLS, "
                               "small record sets, a full socket)", labels=["path"])
    for path, total in sorted(TOTALS.items()):
        sent.add_metric([path], total)
    yield sent
    yield family("moldau_gc_pause_seconds", "CPython garbage-collection pauses by generation, this process",
                 {str(g): hist for g, hist in sorted(h.GC_PAUSES.items())}, "generation")


def _info(core) -> Iterator[Any]:
    info = GaugeMetricFamily("moldau_broker_info", "This node: its id, cluster id and Moldau version (value 1)",
                             labels=["node_id", "cluster_id", "version"])
    info.add_metric([str(core.node_id), str(core.image.cluster_id or ""), __version__], 1)
    yield info


def _requests(metrics: BrokerMetrics) -> Iterator[Any]:
    total = CounterMetricFamily("moldau_requests", "Requests answered, by API", labels=["request"])
    errors = CounterMetricFamily("moldau_request_errors", "Requests whose response carries an error "
                                 "(or that closed the connection), by API", labels=["request"])
    latency = HistogramMetricFamily("moldau_request_duration_seconds",
                                    "Time from a request's arrival to its response, by API", labels=["request"])
    bounds = [f"{ns / 1e9:g}" for ns in LATENCY_BUCKETS_NS] + ["+Inf"]
    for api_key in sorted(metrics.requests):
        count, error_count, sum_ns, cumulative = BrokerMetrics.histogram(metrics.requests[api_key])
        name = api_name(api_key)
        total.add_metric([name], count)
        errors.add_metric([name], error_count)
        latency.add_metric([name], list(zip(bounds, cumulative)), sum_ns / 1e9)
    yield from (total, errors, latency)


def _topics(metrics: BrokerMetrics) -> Iterator[Any]:
    families = []
    for name, doc, table, index in (
        ("moldau_topic_bytes_in", "Bytes of record batches appended by producers, by topic", metrics.topic_in, 0),
        ("moldau_topic_records_in", "Records appended by producers, by topic", metrics.topic_in, 1),
        ("moldau_topic_bytes_out", "Bytes of record batches returned by Fetch, by topic", metrics.topic_out, 0),
        ("moldau_topic_records_out", "Records returned by Fetch, by topic", metrics.topic_out, 1),
    ):
        family = CounterMetricFamily(name, doc, labels=["topic"])
        for topic in sorted(table):
            family.add_metric([topic], table[topic][index])
        families.append(family)
    failed = CounterMetricFamily("moldau_topic_failed_produce", "Produce partition results with an error, by topic",
                                 labels=["topic"])
    for topic in sorted(metrics.produce_errors):
        failed.add_metric([topic], metrics.produce_errors[topic])
    families.append(failed)
    yield from families


def _connections(server, metrics: BrokerMetrics) -> Iterator[Any]:
    open_now: dict[str, int] = {}
    for connection in list(server.connections):
        listener = connection.listener.name
        open_now[listener] = open_now.get(listener, 0) + 1
    gauge = GaugeMetricFamily("moldau_connections", "Open client connections, by listener", labels=["listener"])
    accepted = CounterMetricFamily("moldau_connections_accepted", "Connections accepted, by listener",
                                   labels=["listener"])
    closed = CounterMetricFamily("moldau_connections_closed", "Connections closed, by listener", labels=["listener"])
    for listener in sorted(set(open_now) | set(metrics.connections_accepted)):
        gauge.add_metric([listener], open_now.get(listener, 0))
        accepted.add_metric([listener], metrics.connections_accepted.get(listener, 0))
        closed.add_metric([listener], metrics.connections_closed.get(listener, 0))
    yield from (gauge, accepted, closed)


def _partitions(core) -> Iterator[Any]:
    hosted = list(core.partitions.values())
    leading = [p for p in hosted if p.is_leader]
    under = sum(1 for p in leading if len(p.isr) < len(p.replicas))
    under_min = sum(1 for p in leading if len(p.isr) < p.min_insync_replicas)
    topics = core.image.topics_by_name
    global_partitions = offline = 0
    for name in sorted(topics):
        for image in topics[name].partitions.values():
            global_partitions += 1
            offline += image.leader < 0
    yield _gauge("moldau_partitions", "Partition replicas hosted by this node", len(hosted))
    yield _gauge("moldau_leader_partitions", "Partitions this node leads", len(leading))
    yield _gauge("moldau_under_replicated_partitions", "Partitions this node leads whose ISR is smaller "
                 "than their replica set", under)
    yield _gauge("moldau_under_min_isr_partitions", "Partitions this node leads whose ISR is below "
                 "min.insync.replicas", under_min)
    yield _gauge("moldau_offline_partitions", "Partitions of the cluster without a leader (metadata image)", offline)
    yield _gauge("moldau_topics", "Topics in the cluster (metadata image)", len(topics))
    yield _gauge("moldau_global_partitions", "Partitions in the cluster (metadata image)", global_partitions)
    shrinks = CounterMetricFamily("moldau_isr_shrinks", "In-sync replica sets shrunk by this node as leader")
    shrinks.add_metric([], core.metrics.isr_shrinks)
    expands = CounterMetricFamily("moldau_isr_expands", "In-sync replica sets expanded by this node as leader")
    expands.add_metric([], core.metrics.isr_expands)
    yield from (shrinks, expands)


def _logs(core) -> Iterator[Any]:
    size = GaugeMetricFamily("moldau_log_size_bytes", "Bytes of a partition's log segments on disk",
                             labels=["topic", "partition"])
    start = GaugeMetricFamily("moldau_log_start_offset", "A partition's log start offset", labels=["topic", "partition"])
    end = GaugeMetricFamily("moldau_log_end_offset", "A partition's log end offset", labels=["topic", "partition"])
    for key in sorted(core.partitions):
        partition = core.partitions[key]
        labels = [key[0], str(key[1])]
        size.add_metric(labels, partition.log.size_bytes)
        start.add_metric(labels, partition.log_start_offset)
        end.add_metric(labels, partition.log_end_offset)
    yield from (size, start, end)


def _storage(server, core) -> Iterator[Any]:
    """Storage faults (log/faults.py: counters per kind, process-wide), the log directory
    (broker/storage.py) and the memory of requests being received (runtime/memory.py)."""
    from moldau.log import faults

    counted = CounterMetricFamily("moldau_storage_faults", "Storage faults met, by kind (log/faults.py)",
                                  labels=["kind"])
    for kind, value in faults.counters().items():
        counted.add_metric([kind], value)
    yield counted
    status = core.storage_status()
    yield _gauge("moldau_offline_partitions_local", "Partitions of this node offline because their files are damaged",
                 status["offline_partitions"])
    yield _gauge("moldau_partitions_waiting_for_disk", "Partitions whose log could not be created or opened yet",
                 status["partitions_waiting_for_disk"])
    yield _gauge("moldau_log_dir_usable_bytes", "Free bytes of the data directory (-1: not known)",
                 status["log_dir_usable_bytes"])
    yield _gauge("moldau_log_dir_free_bytes_min", "log.dir.free.bytes.min: below it produce is refused",
                 status["log_dir_free_bytes_min"])
    pool = server.request_memory
    yield _gauge("moldau_request_memory_bytes", "Bytes held for requests being received", pool.used_bytes)
    yield _gauge("moldau_request_memory_max_bytes", "queued.max.request.bytes (-1: unbounded)", pool.bound_bytes)
    waits = CounterMetricFamily("moldau_request_memory_waits", "Times a connection stopped reading for memory")
    waits.add_metric([], pool.waits)
    yield waits


def _groups(core) -> Iterator[Any]:
    coordinator = core.extensions.get("group_coordinator")
    by_state: dict[str, int] = {}
    if coordinator is not None:
        for group_id in sorted(coordinator.groups):
            state = coordinator.groups[group_id].state
            state = getattr(state, "value", str(state))
            by_state[state] = by_state.get(state, 0) + 1
    groups = GaugeMetricFamily("moldau_groups", "Consumer groups this node coordinates, by state", labels=["state"])
    for state in sorted(by_state):
        groups.add_metric([state], by_state[state])
    yield groups
    rebalances = CounterMetricFamily("moldau_group_rebalances", "Group generations completed (rebalances) "
                                     "on this node's coordinator")
    rebalances.add_metric([], core.metrics.rebalances)
    yield rebalances


def _raft(core) -> Iterator[Any]:
    """The metadata quorum as this node sees it, where the core runs one (`core.raft`, a
    raft.RaftClient): Kafka's raft-metrics current-leader, current-epoch, high-watermark,
    log-end-offset, and the commit lag between them."""
    raft = getattr(core, "raft", None)
    if raft is None:
        return
    yield _gauge("moldau_raft_leader_id", "Node id of the metadata quorum's leader (-1: none known)", raft.leader_id)
    yield _gauge("moldau_raft_epoch", "Current epoch of the metadata quorum", raft.epoch)
    yield _gauge("moldau_raft_high_watermark", "Committed end of the metadata log", raft.high_watermark)
    yield _gauge("moldau_raft_log_end_offset", "End of this node's copy of the metadata log", raft.log_end_offset)
    yield _gauge("moldau_raft_commit_lag_records", "Metadata records this node holds that are not committed yet",
                 max(0, raft.log_end_offset - raft.high_watermark))
    yield _gauge("moldau_raft_is_leader", "1 if this node is the active controller (quorum leader)", int(raft.is_leader))


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation)
    family.add_metric([], value)
    return family


def registry_for(server: Callable[[], Any]) -> CollectorRegistry:
    """A registry of its own per broker (several embedded brokers share a process): the broker
    collector plus the process's CPU and memory (process_cpu_seconds_total,
    process_resident_memory_bytes, from /proc where there is one)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(BrokerCollector(server))
    ProcessCollector(registry=registry)
    return registry


class MetricsServer:
    """The HTTP endpoints of one node, on the broker's loop. `ready()` says whether the node
    serves Kafka requests."""

    def __init__(self, host: str, port: int, server: Callable[[], Any], ready: Callable[[], tuple[bool, str]]):
        self.host, self.port = host, port
        self.registry = registry_for(server)
        self.ready = ready
        self._runner: web.AppRunner | None = None

    async def start(self) -> int:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/health/live", self._live)
        app.router.add_get("/health/ready", self._ready)
        app.router.add_get("/", self._index)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # the port picked when asked for 0
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _metrics(self, request: web.Request) -> web.Response:
        body = generate_latest(self.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _live(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "live", "pid": os.getpid()})

    async def _ready(self, request: web.Request) -> web.Response:
        ready, reason = self.ready()
        return web.json_response({"status": "ready" if ready else "not ready", "reason": reason},
                                 status=200 if ready else 503)

    async def _index(self, request: web.Request) -> web.Response:
        return web.Response(text="moldau node: /metrics /health/live /health/ready\n")
