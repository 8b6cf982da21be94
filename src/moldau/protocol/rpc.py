"""Requests one node sends another: the core's outbound messages, as data.

Theory of operation. The core never opens a connection. When it must ask another node
something — a Raft vote, a follower's Fetch, a broker heartbeat to the active controller,
WriteTxnMarkers to a partition leader — it appends an `OutboundRequest` to `core.outbox`.
After every call into the core the runtime (or the simulation) drains the outbox, sends each
request over its connection to `destination` on the named listener, and later calls
`on_response(response, now_ms)` with the parsed kio response object; on a failure (no
connection, disconnect, `timeout_ms` passed) it calls `on_response(None, now_ms)` instead.
Callbacks run synchronously inside the core's owner, like every other core call, so no state
change spans an await.

`listener` says which of the destination's endpoints: CONTROLLER (Raft, broker
registration/heartbeat, AlterPartition, forwarded admin requests) or BROKER (replica fetches,
transaction markers).

`channel` says which connection: the runtime keeps one per (destination, listener, channel).
A broker answers a connection's requests in the order they came, so a request whose answer
waits (a replica Fetch held for replica.fetch.wait.max.ms, WriteTxnMarkers held until its
markers are replicated) holds up every request behind it on the same connection. Kafka gives
each sender its own network client (the replica fetchers, the transaction marker channel, the
AddPartitionsToTxn verifier); so do we. On one link WriteTxnMarkers from node A to node B
waits for A's replica Fetch from B to replicate the markers, and that Fetch waits behind the
WriteTxnMarkers: stuck until the ISR drops A (replica.lag.time.max.ms).

The same holds towards the controller, which answers a registration, a heartbeat, an
AlterPartition, a forwarded admin request or a producer-id block only once its records commit,
and a commit waits for the followers' metadata Fetches: a follower's Fetch behind its own held
heartbeat never gets the answer that would let it acknowledge the record, and with one follower
left (or both doing the same) the quorum stalls until its fetch timeout, then elects anew — a
controller election after every broker failure under load. So each sender to the controller has
its own channel too, as in Kafka: the quorum's, the lifecycle's, AlterPartition's, forwarding's
and the producer-id manager's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

CONTROLLER = "controller"
BROKER = "broker"

# Channels (connections) of the requests to the controller listener, one per sender.
RAFT_CHANNEL = "raft"
LIFECYCLE_CHANNEL = "heartbeat"  # BrokerRegistration and BrokerHeartbeat
ALTER_PARTITION_CHANNEL = "alter-partition"
FORWARDING_CHANNEL = "forwarding"  # Envelope, and the CreateTopics of auto-creation
PRODUCER_IDS_CHANNEL = "producer-ids"


@dataclass(slots=True, eq=False)
class OutboundRequest:
    destination: int  # node id
    listener: str  # CONTROLLER or BROKER
    api_key: int
    api_version: int
    body: Any  # the kio request object of `api_version`
    timeout_ms: int
    on_response: Callable[[Any, int], None]  # (kio response or None on failure, now_ms)
    channel: str = ""  # requests of one channel share a connection (see above)
