"""A small synchronous Kafka client for the admin APIs librdkafka does not offer.

Theory of operation. `moldau transactions` needs ListTransactions, DescribeTransactions,
DescribeProducers and WriteTxnMarkers, `moldau cluster status` DescribeQuorum, `moldau topics
reassign` AlterPartitionReassignments and ListPartitionReassignments — none of which
confluent-kafka's AdminClient has. This
client speaks them directly with kio's codecs, the way Kafka's own admin client does: it asks
each broker its API versions and sends the newest version both sides know, learns the brokers
and partition leaders from Metadata, and sends each request to the broker that must answer it
(every broker for ListTransactions, a transactional id's coordinator, a partition's leader).
It works against Apache Kafka as well as Moldau. Secured listeners are supported with the
same client properties as every other command (Java's keys translated, cli/common.py): TLS,
then a SASL login (PLAIN, SCRAM-SHA-256/512) with the sans-IO security/sasl_client.SaslExchange.
"""

from __future__ import annotations

import datetime
import importlib
import io
import socket
import ssl
import struct
from dataclasses import dataclass
from typing import Any

from kio.index import load_request_schema, load_response_schema
from kio.serial import entity_reader, entity_writer

from moldau.cli.common import CONNECT_TIMEOUT_S, REQUEST_TIMEOUT_S, Settings, check_reachable, split_address
from moldau.cli.main import CliError
from moldau.protocol import codec

_CLIENT_ID = b"moldau-cli"
DESCRIBE_TRANSACTIONS = 65


class Connection:
    def __init__(self, host: str, port: int, current: Settings):
        self.address = f"{host}:{port}"
        try:
            raw = socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S)
        except OSError as error:
            raise CliError(f"cannot reach {self.address}: {error.strerror or error}") from None
        raw.settimeout(REQUEST_TIMEOUT_S)
        from moldau.cli.common import java_client_properties

        config = java_client_properties(current.client_config)
        self.sock = _secure(raw, host, config)
        self._login(config)
        self.correlation_id = 0
        self.versions: dict[int, tuple[int, int]] = {}
        self._api_versions()

    def close(self) -> None:
        self.sock.close()

    def _login(self, config: dict[str, str]) -> None:
        """SASL, when security.protocol asks for it: SaslHandshake and SaslAuthenticate frames."""
        if not config.get("security.protocol", "PLAINTEXT").upper().startswith("SASL"):
            return
        from moldau.security.sasl_client import SaslClient, SaslClientError, SaslExchange

        mechanism = config.get("sasl.mechanism", "GSSAPI").upper()
        try:
            client = SaslClient(mechanism, config.get("sasl.username", ""), config.get("sasl.password", ""))
            exchange = SaslExchange(client, _CLIENT_ID.decode())
            frame = exchange.first_frame()
            while frame is not None:
                self.sock.sendall(frame)
                (size,) = struct.unpack(">i", self._recv(4))
                frame = exchange.receive(self._recv(size))
        except SaslClientError as error:
            raise CliError(f"cannot log in to {self.address}: {error}") from None
        except OSError as error:
            raise CliError(f"{self.address}: connection failed during the SASL login: {error}") from None

    def _api_versions(self) -> None:
        from kio.schema.api_versions.v3.request import ApiVersionsRequest

        response = self._send(18, 3, ApiVersionsRequest(client_software_name="moldau-cli", client_software_version="1"),
                              header_flexible=False)
        self.versions = {k.api_key: (k.min_version, k.max_version) for k in response.api_keys}

    def request(self, api_key: int, build: Any) -> Any:
        """Send `build(version)` (a kio request of that version) at the newest version both
        sides serve; the parsed response."""
        ours = codec_versions(api_key)
        theirs = self.versions.get(api_key)
        if theirs is None:
            raise CliError(f"{self.address} does not serve API {api_key}")
        usable = [v for v in ours if theirs[0] <= v <= theirs[1]]
        if not usable:
            raise CliError(f"{self.address} serves API {api_key} only in versions {theirs[0]}–{theirs[1]}")
        version = max(usable)
        return self._send(api_key, version, build(version))

    def _send(self, api_key: int, version: int, body: Any, header_flexible: bool | None = None) -> Any:
        self.correlation_id += 1
        flexible = type(body).__flexible__
        out = io.BytesIO()
        entity_writer(type(body))(out, body)
        header = struct.pack(">hhih", api_key, version, self.correlation_id, len(_CLIENT_ID)) + _CLIENT_ID
        if flexible:
            header += b"\x00"
        payload = header + out.getvalue()
        try:
            self.sock.sendall(struct.pack(">i", len(payload)) + payload)
            (size,) = struct.unpack(">i", self._recv(4))
            frame = self._recv(size)
        except (OSError, struct.error) as error:
            raise CliError(f"{self.address}: connection failed: {error}") from None
        response_flexible = codec.response_header_flexible(api_key, version) if header_flexible is None \
            else header_flexible
        offset = 4
        if response_flexible:
            offset = codec.skip_tagged_fields(frame, offset)
        if api_key == DESCRIBE_TRANSACTIONS:
            return _describe_transactions_response(frame, offset)
        return entity_reader(load_response_schema(api_key, version))(memoryview(frame), offset)[0]

    def _recv(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = self.sock.recv(size - len(data))
            if not chunk:
                raise OSError("closed by the broker")
            data += chunk
        return data


def codec_versions(api_key: int) -> list[int]:
    """The versions of an API kio can encode."""
    versions = []
    for version in range(0, 32):
        try:
            load_request_schema(api_key, version)
        except Exception:
            continue
        versions.append(version)
    return versions


def _secure(sock: socket.socket, host: str, config: dict[str, str]) -> socket.socket:
    protocol = config.get("security.protocol", "PLAINTEXT").upper()
    if protocol not in ("SSL", "SASL_SSL"):
        return sock
    context = ssl.create_default_context(cafile=config.get("ssl.ca.location"), cadata=config.get("ssl.ca.pem"))
    if config.get("ssl.endpoint.identification.algorithm", "https").lower() in ("", "none"):
        context.check_hostname = False
    if config.get("ssl.certificate.location"):
        context.load_cert_chain(config["ssl.certificate.location"], config.get("ssl.key.location"),
                                config.get("ssl.key.password"))
    elif config.get("ssl.certificate.pem"):  # a Java PEM keystore, translated (cli/common.py)
        from moldau.runtime.tls import _load_cert_chain

        _load_cert_chain(context, config["ssl.certificate.pem"].encode(), config["ssl.key.pem"].encode())
    return context.wrap_socket(sock, server_hostname=host)


class Cluster:
    """Connections to the brokers of one cluster, opened as needed."""

    def __init__(self, current: Settings):
        self.current = current
        check_reachable(current.bootstrap_servers)
        self.connections: dict[int | str, Connection] = {}
        self.brokers: dict[int, tuple[str, int]] = {}
        self.leaders: dict[tuple[str, int], int] = {}
        self._metadata()

    def close(self) -> None:
        for connection in self.connections.values():
            connection.close()

    def bootstrap(self) -> Connection:
        if "bootstrap" not in self.connections:
            error: CliError | None = None
            for address in self.current.bootstrap_servers.split(","):
                try:
                    self.connections["bootstrap"] = Connection(*split_address(address.strip()), self.current)
                    break
                except CliError as failure:
                    error = failure
            else:
                raise error or CliError("no bootstrap server")
        return self.connections["bootstrap"]

    def broker(self, node_id: int) -> Connection:
        if node_id not in self.connections:
            if node_id not in self.brokers:
                raise CliError(f"broker {node_id} is not in the cluster's metadata")
            self.connections[node_id] = Connection(*self.brokers[node_id], self.current)
        return self.connections[node_id]

    def _metadata(self, topics: list[str] | None = None) -> None:
        def build(version: int) -> Any:
            module = importlib.import_module(f"kio.schema.metadata.v{version}.request")
            names = None if topics is None else tuple(
                module.MetadataRequestTopic(**({"topic_id": None} if version >= 10 else {}), name=t) for t in topics)
            fields = {"topics": names, "allow_auto_topic_creation": False,
                      "include_cluster_authorized_operations": False, "include_topic_authorized_operations": False}
            schema = module.MetadataRequest
            return schema(**{k: v for k, v in fields.items() if k in schema.__dataclass_fields__})

        response = self.bootstrap().request(3, build)
        self.brokers = {b.node_id: (b.host, b.port) for b in response.brokers}
        for topic in response.topics:
            for partition in topic.partitions:
                self.leaders[(topic.name, partition.partition_index)] = partition.leader_id

    def leader(self, topic: str, partition: int) -> int:
        if (topic, partition) not in self.leaders:
            self._metadata([topic])
        leader = self.leaders.get((topic, partition), -1)
        if leader < 0:
            raise CliError(f"no leader for {topic}-{partition} (does the topic exist?)")
        return leader


# --- the metadata quorum, partitions and reassignments (moldau cluster, moldau topics reassign) ---

def connect(address: tuple[str, int], current: Settings | None = None) -> Connection:
    """A connection to one node (plaintext unless `current` says otherwise)."""
    return Connection(address[0], address[1], current or Settings(f"{address[0]}:{address[1]}", {}, "table"))


def active_controller(connection: Connection) -> int:
    """The metadata quorum's leader (the active controller), -1 when it has none."""
    def build(version: int) -> Any:
        module = importlib.import_module(f"kio.schema.describe_quorum.v{version}.request")
        return module.DescribeQuorumRequest(topics=(module.TopicData(
            topic_name="__cluster_metadata", partitions=(module.PartitionData(partition_index=0),)),))

    response = connection.request(55, build)
    for topic in response.topics:
        for partition in topic.partitions:
            return partition.leader_id
    return -1


def partitions(connection: Connection) -> list[tuple[str, int, int, list[int], list[int]]]:
    """(topic, partition, leader, replicas, isr) of every partition, internal topics included."""
    def build(version: int) -> Any:
        module = importlib.import_module(f"kio.schema.metadata.v{version}.request")
        fields = {"topics": None, "allow_auto_topic_creation": False,
                  "include_cluster_authorized_operations": False, "include_topic_authorized_operations": False}
        schema = module.MetadataRequest
        return schema(**{k: v for k, v in fields.items() if k in schema.__dataclass_fields__})

    response = connection.request(3, build)
    found = []
    for topic in sorted(response.topics, key=lambda t: t.name or ""):
        for p in sorted(topic.partitions, key=lambda p: p.partition_index):
            found.append((topic.name, p.partition_index, p.leader_id, list(p.replica_nodes), list(p.isr_nodes)))
    return found


def reassign(connection: Connection, topic: str, targets: dict[int, list[int] | None]) -> list[tuple[int, str, str]]:
    """AlterPartitionReassignments: partition -> new replicas (None cancels). Returns
    (partition, error name, message) for each partition the controller refused."""
    def build(version: int) -> Any:
        module = importlib.import_module(f"kio.schema.alter_partition_reassignments.v{version}.request")
        fields = {"timeout": datetime.timedelta(seconds=30), "allow_replication_factor_change": True,
                  "topics": (module.ReassignableTopic(name=topic, partitions=tuple(
                      module.ReassignablePartition(partition_index=p, replicas=None if r is None else tuple(r))
                      for p, r in sorted(targets.items()))),)}
        schema = module.AlterPartitionReassignmentsRequest
        return schema(**{k: v for k, v in fields.items() if k in schema.__dataclass_fields__})

    response = connection.request(45, build)
    if response.error_code != 0:
        return [(-1, response.error_code.name, response.error_message or "")]
    return [(p.partition_index, p.error_code.name, p.error_message or "")
            for t in response.responses for p in t.partitions if p.error_code != 0]


def reassignments(connection: Connection) -> list[tuple[str, int, list[int], list[int], list[int]]]:
    """(topic, partition, replicas, adding, removing) of every reassignment in progress."""
    def build(version: int) -> Any:
        module = importlib.import_module(f"kio.schema.list_partition_reassignments.v{version}.request")
        return module.ListPartitionReassignmentsRequest(timeout=datetime.timedelta(seconds=30), topics=None)

    response = connection.request(46, build)
    return [(t.name, p.partition_index, list(p.replicas), list(p.adding_replicas), list(p.removing_replicas))
            for t in response.topics for p in t.partitions]


# --- DescribeTransactions v0, read by hand -----------------------------------------------------
# kio refuses the start time -1 that Kafka (and Moldau) send for an id with no open transaction
# or an error, so this one response is read here: the v0 layout, flexible.

@dataclass
class TopicData:
    topic: str
    partitions: tuple[int, ...]


@dataclass
class TransactionState:
    error_code: int
    transactional_id: str
    transaction_state: str
    transaction_timeout_ms: int
    transaction_start_time_ms: int
    producer_id: int
    producer_epoch: int
    topics: tuple[TopicData, ...]


@dataclass
class DescribeTransactionsResponse:
    throttle_time_ms: int
    transaction_states: tuple[TransactionState, ...]


class _Reader:
    def __init__(self, data: bytes, position: int):
        self.data, self.position = data, position

    def take(self, fmt: str) -> int:
        (value,) = struct.unpack_from(fmt, self.data, self.position)
        self.position += struct.calcsize(fmt)
        return value

    def uvarint(self) -> int:
        shift = value = 0
        while True:
            byte = self.data[self.position]
            self.position += 1
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value
            shift += 7

    def string(self) -> str:
        length = self.uvarint() - 1
        text = self.data[self.position:self.position + max(length, 0)].decode("utf-8")
        self.position += max(length, 0)
        return text

    def skip_tags(self) -> None:
        for _ in range(self.uvarint()):
            self.uvarint()
            self.position += self.uvarint()


def _describe_transactions_response(frame: bytes, offset: int) -> DescribeTransactionsResponse:
    reader = _Reader(frame, offset)
    throttle = reader.take(">i")
    states = []
    for _ in range(reader.uvarint() - 1):
        error, txn_id, state = reader.take(">h"), reader.string(), reader.string()
        timeout_ms, start_ms = reader.take(">i"), reader.take(">q")
        producer_id, epoch = reader.take(">q"), reader.take(">h")
        topics = []
        for _ in range(reader.uvarint() - 1):
            topic = reader.string()
            partitions = tuple(reader.take(">i") for _ in range(reader.uvarint() - 1))
            reader.skip_tags()
            topics.append(TopicData(topic, partitions))
        reader.skip_tags()
        states.append(TransactionState(error, txn_id, state, timeout_ms, start_ms, producer_id, epoch, tuple(topics)))
    return DescribeTransactionsResponse(throttle, tuple(states))
