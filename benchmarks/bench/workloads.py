"""The workloads of issue 6, as data, and how one run of each is done.

Theory of operation. A `Workload` names what it measures and which generators apply; `run_once`
gives it a fresh topic on one system (so every run writes to an empty log of the same shape),
runs one generator as a subprocess, and samples the broker's resident memory and CPU time while
it runs. Consume runs read a topic filled once per system before the repetitions (`prepare`).

Producer settings are the same for both generators: acks as the workload says, linger.ms=5,
no compression, idempotence off (the Java producer turns it on by default with acks=all;
librdkafka does not). Everything else is each client's default.
"""

from __future__ import annotations

import os
import resource
import threading
import time
import uuid
from dataclasses import dataclass, field

from bench import generators
from bench.security import SECURITY
from bench.systems import System

TOPIC_TIMEOUT_S = 60.0
# franz-go and kcat first: they are not the bottleneck on two cores (bench/generators.py).
ALL_GENERATORS = ("franz-go", "kcat", "librdkafka", "java")
DEFAULT_GENERATORS = ("franz-go", "kcat")


@dataclass(frozen=True)
class Workload:
    name: str
    title: str
    kind: str  # produce | consume | end_to_end
    record_size: int = 100
    acks: str = "1"
    generators: tuple[str, ...] = ALL_GENERATORS
    # metric -> True when higher is better
    metrics: dict = field(default_factory=dict)
    producers: int = 1  # producer clients (franz-go) or processes (kcat) at once
    new_topic: bool = False  # produce into a topic that does not exist yet (auto-created)
    same_topic: bool = False  # every run appends to one topic (the log grows, segments roll)
    # Transactions (issue 10): a transactional producer committing every `txn_records` records;
    # consume runs read such a topic with isolation level read_committed.
    transactional: bool = False
    txn_records: int = 100


THROUGHPUT = {"records_per_sec": True, "mb_per_sec": True, "p50_ms": False, "p99_ms": False}
WORKLOADS = (
    Workload("produce-100B-acks1", "1. produce 100 B, acks=1", "produce", 100, "1", metrics=THROUGHPUT),
    Workload("produce-100B-acksall", "2. produce 100 B, acks=all", "produce", 100, "all", metrics=THROUGHPUT),
    Workload("produce-1KiB-acks1", "3. produce 1 KiB, acks=1", "produce", 1024, "1", metrics=THROUGHPUT),
    Workload("consume-100B", "4. consume from the beginning, 100 B", "consume", 100,
             metrics={"records_per_sec": True, "mb_per_sec": True}),
    Workload("end-to-end", "5. end-to-end latency", "end_to_end", 100, "1", generators=("librdkafka", "java"),
             metrics={"p50_ms": False, "p99_ms": False}),
    Workload("produce-100B-2producers", "8. produce 100 B, acks=1, two producers at once", "produce", 100, "1",
             generators=("franz-go", "kcat"), metrics=THROUGHPUT, producers=2),
    Workload("produce-100B-same-topic", "8b. produce 100 B, acks=1, every run into the same topic (issue 16's kcat runs)",
             "produce", 100, "1", generators=("franz-go", "kcat"), metrics=THROUGHPUT, same_topic=True),
    Workload("produce-100B-new-topic", "9. produce 100 B, acks=1, into a topic that does not exist yet", "produce",
             100, "1", generators=("franz-go", "kcat"), metrics=THROUGHPUT, new_topic=True),
    Workload("produce-100B-transactional", "10. produce 100 B in transactions of 100 records (commit each)",
             "produce", 100, "all", generators=("franz-go",), metrics=THROUGHPUT, transactional=True),
    Workload("consume-100B-read-committed", "11. consume transactional records from the beginning, read_committed",
             "consume", 100, generators=("franz-go",), metrics={"records_per_sec": True, "mb_per_sec": True},
             transactional=True),
    # Replicated clusters only (--brokers 3): kill a partition leader while writing (bench/failover.py).
    Workload("failover", "12. leader killed → first acknowledged write on the new leader", "failover", 100, "all",
             generators=("librdkafka",), metrics={"failover_s": False}),
)
WORKLOADS_BY_NAME = {workload.name: workload for workload in WORKLOADS}


@dataclass(frozen=True)
class Scale:
    """How big each run is: the full run for the report, or the quick smoke run."""

    records: int = 1_000_000
    e2e_rate: float = 2000.0
    e2e_records: int = 20_000
    java_e2e_records: int = 5_000
    partitions: int = 3

    @staticmethod
    def quick(partitions: int = 3) -> "Scale":
        return Scale(records=20_000, e2e_rate=500.0, e2e_records=500, java_e2e_records=200, partitions=partitions)


def producer_props(acks: str) -> dict:
    return {"acks": acks, "linger.ms": 5, "compression.type": "none", "enable.idempotence": "false"}


def create_topic(system: System, topic: str, partitions: int) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": system.bootstrap_servers, "log_level": 0, **SECURITY.librdkafka()})
    futures = admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=system.replication_factor,
                                            config=dict(system.topic_configs or {}))])
    futures[topic].result(TOPIC_TIMEOUT_S)
    deadline = time.monotonic() + TOPIC_TIMEOUT_S
    while time.monotonic() < deadline:  # until every partition has a leader
        described = admin.list_topics(topic, timeout=10).topics.get(topic)
        if described and described.error is None and len(described.partitions) == partitions and all(
                p.leader >= 0 for p in described.partitions.values()):
            return
        time.sleep(0.05)
    raise RuntimeError(f"topic {topic} has no leaders after {TOPIC_TIMEOUT_S:g}s")


def delete_topic(system: System, topic: str) -> None:
    """Drop a finished run's topic: a series of runs would otherwise fill the disk (5,000,000-record
    runs did here), and its dirty pages would be written back during the runs that follow."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": system.bootstrap_servers, "log_level": 0, **SECURITY.librdkafka()})
    admin.delete_topics([topic], operation_timeout=TOPIC_TIMEOUT_S)[topic].result(TOPIC_TIMEOUT_S)


def page_cache_backlog_mb() -> float:
    """Dirty and under-writeback page cache, machine-wide (MB): what the kernel still has to
    write, which slows every writer once it passes the dirty thresholds."""
    fields = {}
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            name, value = line.split(":", 1)
            fields[name] = int(value.split()[0])
    return round((fields.get("Dirty", 0) + fields.get("Writeback", 0)) / 1024, 1)


def drain_writeback() -> float:
    """Write the page cache's backlog to disk now (sync), so a run does not inherit the previous
    runs' writeback; returns the seconds it took."""
    began = time.monotonic()
    os.sync()
    return round(time.monotonic() - began, 3)


def fresh_topic(workload: Workload, system: System, generator: str) -> str:
    return f"bench-{workload.name}-{generator}-{uuid.uuid4().hex[:8]}"


class ResourceSampler(threading.Thread):
    """Samples the system's broker RSS every 100 ms; peak RSS and CPU seconds over the run."""

    def __init__(self, system: System):
        super().__init__(daemon=True, name="rss-sampler")
        self.system = system
        self.peak_rss = system.rss_bytes()
        self.peak_backlog_mb = page_cache_backlog_mb()
        self.cpu_began = system.cpu_seconds()
        self.runqueue_began = system.runqueue_seconds()
        self.cpu_s = 0.0
        self.runqueue_s = 0.0
        self.wall_began = time.monotonic()
        self.wall_s = 0.0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.wait(0.1):
            self.peak_rss = max(self.peak_rss, self.system.rss_bytes())
            self.peak_backlog_mb = max(self.peak_backlog_mb, page_cache_backlog_mb())

    def __enter__(self) -> "ResourceSampler":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self._halt.set()
        self.join()
        self.peak_rss = max(self.peak_rss, self.system.rss_bytes())
        self.cpu_s = self.system.cpu_seconds() - self.cpu_began
        self.runqueue_s = self.system.runqueue_seconds() - self.runqueue_began
        self.wall_s = time.monotonic() - self.wall_began


def prepare(workload: Workload, system: System, scale: Scale) -> dict:
    """Per system, once before the repetitions: the topic consume runs read, or the one topic
    every run of a same-topic produce workload appends to."""
    if workload.kind == "produce" and workload.same_topic:
        topic = f"bench-{workload.name}-{uuid.uuid4().hex[:8]}"
        create_topic(system, topic, scale.partitions)
        return {"topic": topic}
    if workload.kind != "consume":
        return {}
    topic = f"bench-{workload.name}-{uuid.uuid4().hex[:8]}"
    create_topic(system, topic, scale.partitions)
    if workload.transactional:  # committed in transactions: what a read_committed consumer reads
        generators.franz_produce(system.bootstrap_servers, topic, scale.records, workload.record_size,
                                 producer_props("all"), transactional_id=f"fill-{topic}",
                                 txn_records=workload.txn_records)
    else:
        generators.librdkafka_produce(system.bootstrap_servers, topic, scale.records, workload.record_size,
                                      producer_props("1"))
    return {"topic": topic}


def run_once(workload: Workload, system: System, generator: str, scale: Scale, prepared: dict,
             drain: bool = False) -> dict:
    """One generator run of one workload on one system: the generator's numbers plus the broker's,
    and the CPU each process used (who was the bottleneck). A produce run's own topic is deleted
    after it. `drain`: sync the page cache's backlog to disk first."""
    if workload.kind == "failover":
        from bench.failover import measure_failover

        if system.brokers < 3:
            raise ValueError("the failover workload needs a replicated cluster (--brokers 3)")
        return measure_failover(system)
    bootstrap = system.bootstrap_servers
    if "topic" in prepared:  # consume, or produce into the same topic run after run
        topic = prepared["topic"]
    else:
        topic = fresh_topic(workload, system, generator)
        if not workload.new_topic:
            create_topic(system, topic, scale.partitions if workload.kind == "produce" else 1)
    drained_s = drain_writeback() if drain else None
    backlog_mb = page_cache_backlog_mb()
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    machine_before = machine_cpu_seconds()
    with ResourceSampler(system) as sampler:
        result = _generate(workload, generator, bootstrap, topic, scale)
    if drained_s is not None:
        result["drain_writeback_s"] = drained_s
    # Dirty + writeback page cache when the run began, and its peak during the run (sampled every 100 ms).
    result["page_cache_backlog_mb_at_start"] = backlog_mb
    result["page_cache_backlog_mb_peak"] = sampler.peak_backlog_mb
    machine_after = machine_cpu_seconds()
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # The generator process's CPU (user + system), the same way for every generator (JVM included).
    client_cpu_s = (children_after.ru_utime + children_after.ru_stime
                    - children_before.ru_utime - children_before.ru_stime)
    result["client_cpu_s"] = round(client_cpu_s, 3)
    result["broker_peak_rss_mb"] = round(sampler.peak_rss / 2**20, 1)
    result["broker_cpu_s"] = round(sampler.cpu_s, 2)
    wall_s = sampler.wall_s or 1e-9
    result["wall_s"] = round(sampler.wall_s, 3)
    result["broker_cpu_util"] = round(sampler.cpu_s / wall_s, 2)
    # The broker's threads waited this long for a CPU other processes held (summed over threads).
    result["broker_runqueue_s"] = round(sampler.runqueue_s, 3)
    result["client_cpu_util"] = round(client_cpu_s / wall_s, 2)
    # Everything the machine ran meanwhile (other engineers' tests included), in cores.
    result["machine_cpu_util"] = round((machine_after - machine_before) / wall_s, 2)
    result["others_cpu_util"] = round(max(0.0, result["machine_cpu_util"] - result["broker_cpu_util"]
                                          - result["client_cpu_util"]), 2)
    result["bottleneck"] = bottleneck(system.kind, result["broker_cpu_util"], result["client_cpu_util"],
                                      result["machine_cpu_util"], len(system.pids))
    if workload.kind in ("produce", "consume"):
        # The broker's cost per record, whoever limits the rate: CPU time over records moved.
        result["broker_cpu_us_per_record"] = round(sampler.cpu_s / scale.records * 1e6, 3)
    if "topic" not in prepared:
        delete_topic(system, topic)
    return result


def machine_cpu_seconds() -> float:
    """CPU seconds all processes on the machine have used (the busy ticks of /proc/stat)."""
    with open("/proc/stat") as stat:
        fields = [int(value) for value in stat.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


BUSY = 0.85  # a process (or the machine) using this share of what it can use is the limit


def bottleneck(kind: str, broker: float, client: float, machine: float, brokers: int) -> str:
    """Which process set the pace, from the CPU each used (in cores) over the run. A moldau node
    runs its requests on one thread, so one busy core is its limit; Kafka's threads can use them
    all. When the machine's cores were all busy, nobody got what it asked for: that is the limit."""
    cpus = os.cpu_count() or 1
    broker_limit = brokers * 1.0 if kind.startswith("moldau") else float(cpus)
    if broker >= BUSY * broker_limit:
        return "broker"
    if machine >= BUSY * cpus:
        return "machine (all cores busy)"
    if client >= BUSY * (cpus - min(broker, cpus - 1)):
        return "generator"
    return "neither (waiting)"


def _generate(workload: Workload, generator: str, bootstrap: str, topic: str, scale: Scale) -> dict:
    props = producer_props(workload.acks)
    if workload.kind == "produce":
        if generator == "franz-go":
            return generators.franz_produce(bootstrap, topic, scale.records, workload.record_size, props,
                                            producers=workload.producers, auto_create=workload.new_topic,
                                            transactional_id=f"bench-{topic}" if workload.transactional else None,
                                            txn_records=workload.txn_records)
        if generator == "kcat":
            return generators.kcat_produce(bootstrap, topic, scale.records, workload.record_size, props,
                                           producers=workload.producers)
        run = generators.librdkafka_produce if generator == "librdkafka" else generators.java_produce
        return run(bootstrap, topic, scale.records, workload.record_size, props)
    if workload.kind == "consume":
        if generator == "franz-go":
            return generators.franz_consume(bootstrap, topic, scale.records, read_committed=workload.transactional)
        if generator == "kcat":
            return generators.kcat_consume(bootstrap, topic, scale.records, workload.record_size)
        if generator == "librdkafka":
            return generators.librdkafka_consume(bootstrap, topic, scale.records)
        return generators.java_consume(bootstrap, topic, scale.records, f"bench-{uuid.uuid4().hex[:8]}")
    if generator == "librdkafka":
        return generators.librdkafka_end_to_end(bootstrap, topic, scale.e2e_records, workload.record_size,
                                                scale.e2e_rate, {**props, "linger.ms": 0})
    return generators.java_end_to_end(bootstrap, topic, scale.java_e2e_records, workload.record_size)
