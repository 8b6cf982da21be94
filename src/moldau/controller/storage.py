"""A node's identity on disk (`meta.properties`) and the conversion of old metadata logs.

Theory of operation. As in Kafka, each data directory holds `meta.properties` naming the
cluster id and node id it belongs to (Kafka writes it with `kafka-storage format`; Moldau
formats on first start). A directory of another node or another cluster is refused with one
line that says which, so a misconfigured node can never mix two clusters' data. The cluster
id comes from `cluster.id` when configured; otherwise a single node makes a random one, and
the nodes of a quorum (several `controller.quorum.voters`) derive the same id from the voter
list, so hand-started nodes of one cluster agree without a format step.

Moldau's first metadata log stored JSON records. `read_legacy_log` recognises such a log and
returns its records in today's format (the cluster id moves to meta.properties); the caller
sets the old directory aside and has the first active controller write the records as
bootstrap records, so an old single-node data directory keeps every topic.
"""

from __future__ import annotations

import base64
import logging
import uuid
from typing import Any, Callable

from moldau.controller import records as r

META_PROPERTIES = "meta.properties"
METADATA_DIR = "__cluster_metadata-0"
LEGACY_SUFFIX = ".legacy"
_PRODUCER_ID_BLOCK_FILE = "producer-id-block"  # the single-node producer id file

log = logging.getLogger("moldau.storage")


class StorageError(Exception):
    """A data directory that this node must not use (one line for the operator)."""


def cluster_id_text(value: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(value.bytes).decode().rstrip("=")


def derived_cluster_id(voters: dict[int, tuple[str, int]]) -> str:
    text = ",".join(f"{node}@{host}:{port}" for node, (host, port) in sorted(voters.items()))
    return cluster_id_text(uuid.uuid5(uuid.NAMESPACE_URL, "moldau-quorum:" + text))


def _path(data_dir: str, name: str) -> str:
    return data_dir.rstrip("/") + "/" + name


def read_meta(fs: Any, data_dir: str) -> dict[str, str] | None:
    path = _path(data_dir, META_PROPERTIES)
    if not fs.exists(path):
        return None
    values = {}
    for line in fs.read_file(path).decode("utf-8", "replace").splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def load_or_format(fs: Any, data_dir: str, node_id: int, configured_cluster_id: str | None,
                   voters: dict[int, tuple[str, int]], new_uuid: Callable[[], uuid.UUID],
                   legacy_cluster_id: str | None = None) -> str:
    """The cluster id of this data directory, writing meta.properties on first use."""
    meta = read_meta(fs, data_dir)
    if meta is not None:
        stored_node = meta.get("node.id", meta.get("broker.id"))
        if stored_node is not None and stored_node != str(node_id):
            raise StorageError(f"{data_dir} belongs to node {stored_node}, not node.id {node_id} "
                               f"(see {_path(data_dir, META_PROPERTIES)})")
        stored_cluster = meta.get("cluster.id", "")
        if configured_cluster_id and stored_cluster and stored_cluster != configured_cluster_id:
            raise StorageError(f"{data_dir} belongs to cluster {stored_cluster}, not cluster.id {configured_cluster_id} "
                               f"(see {_path(data_dir, META_PROPERTIES)})")
        if stored_cluster:
            return stored_cluster
    if configured_cluster_id:
        cluster_id = configured_cluster_id
    elif legacy_cluster_id:
        cluster_id = legacy_cluster_id
    elif len(voters) > 1:
        cluster_id = derived_cluster_id(voters)
    else:
        cluster_id = cluster_id_text(new_uuid())
    directory_id = cluster_id_text(new_uuid())
    text = f"#Written by Moldau\nversion=1\ncluster.id={cluster_id}\nnode.id={node_id}\ndirectory.id={directory_id}\n"
    fs.makedirs(data_dir)
    fs.write_atomic(_path(data_dir, META_PROPERTIES), text.encode())
    return cluster_id


def pending_legacy_conversion(fs: Any, data_dir: str, now_ms: int) -> tuple[list, str | None] | None:
    """(records, cluster id) to write as bootstrap records when this data directory holds a
    metadata log in Moldau's old JSON format — found in place (it is then set aside) or set
    aside by an earlier start that stopped before the converted records were committed."""
    current = read_legacy_log(fs, _path(data_dir, METADATA_DIR), data_dir, now_ms)
    if current is not None:
        set_legacy_log_aside(fs, data_dir)
        return current
    return read_legacy_log(fs, _path(data_dir, METADATA_DIR) + LEGACY_SUFFIX, data_dir, now_ms)


def read_legacy_log(fs: Any, directory: str, data_dir: str, now_ms: int) -> tuple[list, str | None] | None:
    """(records, cluster id) of a metadata log written in Moldau's old JSON format, or None."""
    from moldau.log.config import LogConfig
    from moldau.log.partition_log import PartitionLog

    if not fs.exists(directory) or not any(n.endswith(".log") for n in fs.listdir(directory)):
        return None
    plog = PartitionLog.open(fs, directory, LogConfig.from_kafka_configs({}), now_ms)
    try:
        values = [record.value for record in plog.records() if record.value is not None]
    finally:
        plog.close()
    if not values or not r.is_legacy_json(values[0]):
        return None
    records: list = []
    cluster_id = None
    for value in values:
        converted = r.decode_legacy_json(value)
        if isinstance(converted, str):
            cluster_id = converted
        else:
            records.append(converted)
    block_file = _path(data_dir, _PRODUCER_ID_BLOCK_FILE)
    if fs.exists(block_file):
        try:
            next_id = int(fs.read_file(block_file).decode().strip() or 0)
            records.append(r.ProducerIdsRecord(broker_id=-1, broker_epoch=-1, next_producer_id=next_id))
        except ValueError:
            pass
    return records, cluster_id


def set_legacy_log_aside(fs: Any, data_dir: str) -> None:
    directory = _path(data_dir, METADATA_DIR)
    aside = directory + LEGACY_SUFFIX
    fs.remove_tree(aside)
    fs.rename(directory, aside)
    log.warning("Converting the metadata log of %s from Moldau's old format; the old log is kept in %s "
                "until the conversion is committed", data_dir, aside)


def remove_legacy_log(fs: Any, data_dir: str) -> None:
    fs.remove_tree(_path(data_dir, METADATA_DIR) + LEGACY_SUFFIX)


CLEAN_SHUTDOWN_FILE = ".kafka_cleanshutdown"  # Kafka's name and JSON shape (KIP-966)


def write_clean_shutdown_epoch(fs: Any, data_dir: str, broker_epoch: int) -> None:
    fs.write_atomic(_path(data_dir, CLEAN_SHUTDOWN_FILE), ('{"version":0,"brokerEpoch":%d}' % broker_epoch).encode())


def take_clean_shutdown_epoch(fs: Any, data_dir: str) -> int:
    """The broker epoch a clean shutdown left (-1 after a crash); the file is removed, so a
    crash after this start does not reuse it."""
    import json

    path = _path(data_dir, CLEAN_SHUTDOWN_FILE)
    if not fs.exists(path):
        return -1
    try:
        epoch = int(json.loads(fs.read_file(path)).get("brokerEpoch", -1))
    except (ValueError, AttributeError):
        epoch = -1
    fs.remove(path)
    return epoch
