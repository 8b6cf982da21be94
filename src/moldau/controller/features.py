"""Feature flags (KIP-584), as Kafka 4.1's KRaft keeps them.

Each feature has a range of levels this software supports (reported by ApiVersions as
`supported_features` and by BrokerRegistration) and one finalized level, which is cluster
state: a `FeatureLevelRecord` in the metadata log. The first active controller of a new
cluster writes the levels a fresh Kafka 4.1 cluster is formatted with; ApiVersions reports the
finalized ones from the metadata image, with the image's offset as the epoch (as Kafka's
broker does), so clients that cache features see later changes.

- `metadata.version` 27 (4.1-IV1): the metadata records' versions.
- `transaction.version` 2: Transactions V2 (KIP-890); Kafka 4 clients use it when finalized.
- `group.version` 1: KIP-848 consumer groups.
"""

from __future__ import annotations

SUPPORTED: dict[str, tuple[int, int]] = {
    "metadata.version": (21, 27),
    "transaction.version": (0, 2),
    "group.version": (0, 1),
}
BOOTSTRAP_LEVELS: dict[str, int] = {"metadata.version": 27, "transaction.version": 2, "group.version": 1}
