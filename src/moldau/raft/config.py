"""The quorum's settings, under Kafka's own configuration keys, and `controller.quorum.voters`.

Theory of operation
-------------------
`QuorumConfig.from_kafka_configs(configs)` reads the keys a Kafka 4.1 controller reads for its
Raft client (defaults are Kafka's): the election timeout (randomized per use to [T, 2T)), the
fetch timeout (a follower that has not fetched from its leader for this long starts an
election; a leader that has not heard from a majority for 1.5 times this long resigns), the
cap on the election backoff, the request timeout and the retry backoff. Kafka's fixed
constants ride along: a follower's Fetch waits at most 500 ms at the leader (Kafka's
`MAX_FETCH_WAIT_MS`; here a quarter of the fetch timeout when that is shorter, so a scaled-down
quorum in tests keeps Kafka's proportions) and a batch or fetch carries at most 8 MiB.

`parse_voters("1@host:9093,2@[::1]:9093")` turns `controller.quorum.voters` into
`{node id: (host, port)}`; a malformed list raises ValueError with a one-line message naming
the bad entry (the runtime prints it and exits).
"""

from __future__ import annotations

from dataclasses import dataclass

# Kafka's KafkaRaftClient constants.
FETCH_MAX_WAIT_MS = 500
BATCH_BYTES_MAX = 8 * 1024 * 1024
# The leader resigns when a majority of voters has not fetched for this many fetch timeouts
# (Kafka's LeaderState.CHECK_QUORUM_TIMEOUT_FACTOR).
CHECK_QUORUM_TIMEOUT_FACTOR = 1.5
# Base of the election backoffs (Kafka's KafkaRaftClient.RETRY_BACKOFF_BASE_MS).
ELECTION_BACKOFF_BASE_MS = 100

_KEYS = {
    "controller.quorum.election.timeout.ms": "election_timeout_ms",
    "controller.quorum.fetch.timeout.ms": "fetch_timeout_ms",
    "controller.quorum.election.backoff.max.ms": "election_backoff_max_ms",
    "controller.quorum.request.timeout.ms": "request_timeout_ms",
    "controller.quorum.retry.backoff.ms": "retry_backoff_ms",
    "metadata.log.segment.bytes": "segment_bytes",
}


@dataclass(frozen=True, slots=True)
class QuorumConfig:
    election_timeout_ms: int = 1000
    fetch_timeout_ms: int = 2000
    election_backoff_max_ms: int = 1000
    request_timeout_ms: int = 2000
    retry_backoff_ms: int = 20
    segment_bytes: int = 1024 * 1024 * 1024
    listener_name: str = "CONTROLLER"  # the first of controller.listener.names

    @classmethod
    def from_kafka_configs(cls, configs: dict[str, str]) -> "QuorumConfig":
        values: dict[str, object] = {}
        for key in sorted(configs):
            name = _KEYS.get(key)
            if name is not None:
                try:
                    values[name] = int(str(configs[key]).strip())
                except ValueError:
                    raise ValueError(f"{key}={configs[key]!r} is not an integer") from None
                if values[name] < (1 if name == "segment_bytes" else 0):  # type: ignore[operator]
                    raise ValueError(f"{key}={configs[key]!r} must not be negative")
        listeners = str(configs.get("controller.listener.names", "")).strip()
        if listeners:
            values["listener_name"] = listeners.split(",")[0].strip()
        return cls(**values)  # type: ignore[arg-type]

    @property
    def fetch_max_wait_ms(self) -> int:
        return max(1, min(FETCH_MAX_WAIT_MS, self.fetch_timeout_ms // 4))

    @property
    def check_quorum_timeout_ms(self) -> int:
        return int(self.fetch_timeout_ms * CHECK_QUORUM_TIMEOUT_FACTOR)


def parse_voters(text: str) -> dict[int, tuple[str, int]]:
    """`controller.quorum.voters` ("id@host:port,...") as {id: (host, port)}."""
    voters: dict[int, tuple[str, int]] = {}
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        node, at, address = entry.partition("@")
        host, colon, port = address.rpartition(":")
        host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
        if not at or not colon or not host or not node.strip().isdigit() or not port.isdigit():
            raise ValueError(f"controller.quorum.voters: {entry!r} is not of the form id@host:port")
        node_id = int(node)
        if node_id in voters:
            raise ValueError(f"controller.quorum.voters: node id {node_id} appears twice")
        if not 0 < int(port) < 65536:
            raise ValueError(f"controller.quorum.voters: port {port} of {entry!r} is out of range")
        voters[node_id] = (host, int(port))
    if not voters:
        raise ValueError("controller.quorum.voters is empty")
    return voters
