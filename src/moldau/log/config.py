"""`LogConfig`: the per-topic settings a partition log obeys, under Kafka's topic config names.

Theory of operation
-------------------
Kafka topics carry string configs (`segment.bytes`, `retention.ms`, ...); the broker merges
broker defaults and topic overrides and hands the log a `LogConfig` built by
`LogConfig.from_kafka_configs`. Unknown keys are ignored here (other layers own them); a
malformed value raises ValueError (the broker answers INVALID_CONFIG). -1 means "infinite"
for retention and "never" for flush settings, as in Kafka (whose own default for
flush.messages/flush.ms is Long.MAX_VALUE, i.e. leave durability to replication and the OS).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from moldau import limits

_KAFKA_NAMES = {
    "segment.bytes": "segment_bytes",
    "segment.ms": "segment_ms",
    "segment.index.bytes": "segment_index_bytes",
    "retention.ms": "retention_ms",
    "retention.bytes": "retention_bytes",
    "index.interval.bytes": "index_interval_bytes",
    "max.message.bytes": "max_message_bytes",
    "message.timestamp.type": "message_timestamp_type",
    "flush.messages": "flush_messages",
    "flush.ms": "flush_ms",
    "cleanup.policy": "cleanup_policy",
    "delete.retention.ms": "delete_retention_ms",
    "min.compaction.lag.ms": "min_compaction_lag_ms",
    "max.compaction.lag.ms": "max_compaction_lag_ms",
    "min.cleanable.dirty.ratio": "min_cleanable_dirty_ratio",
    "file.delete.delay.ms": "file_delete_delay_ms",
}
_LONG_MAX = 2**63 - 1


@dataclass(frozen=True, slots=True)
class LogConfig:
    segment_bytes: int = limits.segment_bytes_default
    segment_ms: int = 7 * 24 * 3600 * 1000
    segment_index_bytes: int = limits.index_bytes_max_default
    retention_ms: int = limits.retention_ms_default
    retention_bytes: int = -1
    index_interval_bytes: int = limits.index_interval_bytes_default
    max_message_bytes: int = limits.message_bytes_max_default
    message_timestamp_type: str = "CreateTime"
    flush_messages: int = -1  # -1: never force (Kafka's Long.MAX_VALUE)
    flush_ms: int = -1
    cleanup_policy: str = "delete"
    delete_retention_ms: int = 24 * 3600 * 1000
    min_compaction_lag_ms: int = 0
    max_compaction_lag_ms: int = _LONG_MAX
    # Compact when dirty bytes / cleanable bytes reach this (log/cleaner.py).
    min_cleanable_dirty_ratio: float = 0.5
    file_delete_delay_ms: int = 60_000

    @classmethod
    def from_kafka_configs(cls, configs: dict[str, str], base: "LogConfig | None" = None) -> "LogConfig":
        """Apply Kafka topic configs (string values) over `base` (or the defaults)."""
        changes: dict[str, object] = {}
        for key in sorted(configs):
            name = _KAFKA_NAMES.get(key)
            if name is None:
                continue
            raw = configs[key].strip()
            if name in ("message_timestamp_type", "cleanup_policy"):
                changes[name] = _parse_choice(key, raw)
            elif name == "min_cleanable_dirty_ratio":
                changes[name] = float(raw)
            else:
                value = int(raw)
                changes[name] = -1 if value == _LONG_MAX and name.startswith("flush") else value
        config = replace(base or cls(), **changes)
        config.check()
        return config

    def check(self) -> None:
        if self.segment_bytes < limits.segment_bytes_min:
            raise ValueError(f"segment.bytes {self.segment_bytes} < {limits.segment_bytes_min}")
        if self.index_interval_bytes < 0 or self.max_message_bytes < 0:
            raise ValueError("index.interval.bytes and max.message.bytes must be >= 0")
        if self.segment_ms < 1:
            raise ValueError("segment.ms must be >= 1")
        if not 0 <= self.min_cleanable_dirty_ratio <= 1:
            raise ValueError(f"min.cleanable.dirty.ratio {self.min_cleanable_dirty_ratio} "
                             "outside [0, 1]")
        if self.max_compaction_lag_ms < 1 or self.min_compaction_lag_ms < 0:
            raise ValueError("max.compaction.lag.ms must be >= 1, min.compaction.lag.ms >= 0")

    @property
    def log_append_time(self) -> bool:
        return self.message_timestamp_type == "LogAppendTime"

    @property
    def compact(self) -> bool:
        return "compact" in self.cleanup_policy.split(",")

    @property
    def delete(self) -> bool:
        return "delete" in self.cleanup_policy.split(",")

    def to_kafka_configs(self) -> dict[str, str]:
        by_name = {name: key for key, name in _KAFKA_NAMES.items()}
        return {by_name[f.name]: str(getattr(self, f.name)) for f in fields(self)}


def _parse_choice(key: str, raw: str) -> str:
    if key == "message.timestamp.type":
        if raw not in ("CreateTime", "LogAppendTime"):
            raise ValueError(f"{key}={raw!r}: expected CreateTime or LogAppendTime")
        return raw
    parts = sorted(p.strip() for p in raw.replace("[", "").replace("]", "").split(",") if p.strip())
    if not parts or any(p not in ("compact", "delete") for p in parts):
        raise ValueError(f"{key}={raw!r}: expected delete, compact or compact,delete")
    return ",".join(parts)
