"""Client quotas (byte rates, request time) and connection limits, as Kafka enforces them.

Theory of operation. Quotas are metadata (ClientQuotaRecord): values per entity, an entity
being a user, a client id, both, or an IP, each possibly the default (name None). For a request
from user U with client id C the quota of a kind (producer_byte_rate, consumer_byte_rate,
request_percentage) is the first one set in Kafka's order:
  (U, C), (U, default C), (U), (default U, C), (default U, default C), (default U), (C), (default C).
The matched entity also names the meter: a quota set for user U is shared by all of U's
clients; a default quota gives each user (or client id) its own meter.

A meter is a token bucket (Kafka's own for controller mutations, KIP-599): it fills at the
quota's rate up to one `quota.window.size.seconds` (1 s) of credit; each request takes its
bytes out. A request that leaves the bucket in debt is throttled until the debt is repaid,
`debt / quota` — the client is told `throttle_time_ms` and the broker stops reading from the
connection for that long (KIP-219: muting), so a producer converges on its quota whether or not
its client backs off by itself. (Kafka's byte-rate meters are sampled windows,
`quota.window.num` × `quota.window.size.seconds`; measured here, a saturating producer got
30% over its quota through them over 30 s, because each expiring sample lets a burst through;
the bucket keeps it within a few percent.) Throttle times are capped at
`quota.window.num × quota.window.size.seconds`. Fetches that would be throttled are answered
empty (and not counted), as Kafka does.

Connection limits (`max.connections`, `max.connections.per.ip`, `max.connections.per.ip.overrides`,
`max.connection.creation.rate`, and the IP quota `connection_creation_rate`) are decided by
`ConnectionLimits.admit` when a connection is accepted; a refused one is closed at once.
Everything here is pure: time arrives as now_ms.
"""

from __future__ import annotations

from dataclasses import dataclass, field

PRODUCER_BYTE_RATE, CONSUMER_BYTE_RATE = "producer_byte_rate", "consumer_byte_rate"
REQUEST_PERCENTAGE, CONTROLLER_MUTATION_RATE = "request_percentage", "controller_mutation_rate"
CONNECTION_CREATION_RATE = "connection_creation_rate"
USER, CLIENT_ID, IP = "user", "client-id", "ip"
CLIENT_KEYS = (PRODUCER_BYTE_RATE, CONSUMER_BYTE_RATE, REQUEST_PERCENTAGE, CONTROLLER_MUTATION_RATE)
INTEGER_KEYS = (PRODUCER_BYTE_RATE, CONSUMER_BYTE_RATE, CONNECTION_CREATION_RATE)


def quota_entity_error(entity: dict[str, str | None], key: str, value: float | None, remove: bool) -> str | None:
    """Kafka's reason to refuse one AlterClientQuotas operation, or None."""
    types = set(entity)
    if not types or not types <= {USER, CLIENT_ID, IP}:
        return f"Invalid quota entity types {sorted(types)}: expected user, client-id (or both), or ip"
    if IP in types and len(types) > 1:
        return "An ip quota entity cannot be combined with user or client-id"
    allowed = (CONNECTION_CREATION_RATE,) if IP in types else CLIENT_KEYS
    if key not in allowed:
        return f"Invalid configuration key {key} for entity types {sorted(types)}: expected one of {', '.join(allowed)}"
    if not remove and value is not None:
        if value <= 0:
            return f"Quota {key} must be positive"
        if key in INTEGER_KEYS and value != int(value):
            return f"Quota {key} must be a whole number"
    return None


def resolve(quotas: dict, user: str, client_id: str, key: str) -> tuple[float, tuple[str, str]] | None:
    """(quota, meter key) of the first quota of `key` in Kafka's precedence, or None."""
    order = (
        (((USER, user), (CLIENT_ID, client_id)), (user, client_id)),
        (((USER, user), (CLIENT_ID, None)), (user, client_id)),
        (((USER, user),), (user, "")),
        (((USER, None), (CLIENT_ID, client_id)), (user, client_id)),
        (((USER, None), (CLIENT_ID, None)), (user, client_id)),
        (((USER, None),), (user, "")),
        (((CLIENT_ID, client_id),), ("", client_id)),
        (((CLIENT_ID, None),), ("", client_id)),
    )
    for entity, meter in order:
        values = quotas.get(entity)
        if values is not None and key in values:
            return values[key], meter
    return None


@dataclass
class Rate:
    """Kafka's SampledStat Rate: `samples` windows of `window_ms`."""

    samples: int = 11
    window_ms: int = 1000
    starts: list[int] = field(default_factory=list)
    totals: list[float] = field(default_factory=list)

    def _purge(self, now_ms: int) -> None:
        horizon = now_ms - self.samples * self.window_ms
        while self.starts and self.starts[0] + self.window_ms <= horizon:
            self.starts.pop(0)
            self.totals.pop(0)

    def record(self, value: float, now_ms: int) -> None:
        self._purge(now_ms)
        if not self.starts or now_ms >= self.starts[-1] + self.window_ms:
            self.starts.append(now_ms)
            self.totals.append(0.0)
        self.totals[-1] += value

    def rate_per_s(self, now_ms: int, extra: float = 0.0) -> float:
        self._purge(now_ms)
        elapsed = now_ms - self.starts[0] if self.starts else 0
        elapsed = max(elapsed, (self.samples - 1) * self.window_ms)
        return (sum(self.totals) + extra) * 1000.0 / elapsed

    @property
    def full_window_ms(self) -> int:
        return self.samples * self.window_ms


@dataclass
class TokenBucket:
    """Credit in quota units: fills at `rate_per_s` up to `burst`; requests take from it."""

    tokens: float
    last_ms: int

    def refill(self, rate_per_s: float, burst: float, now_ms: int) -> None:
        elapsed_ms = max(0, now_ms - self.last_ms)
        self.tokens = min(burst, self.tokens + rate_per_s * elapsed_ms / 1000)
        self.last_ms = now_ms


class QuotaManager:
    """Meters of one kind of quota, keyed by the matched entity (see the module docstring)."""

    def __init__(self, key: str, samples: int = 11, window_ms: int = 1000):
        self.key = key
        self.samples, self.window_ms = samples, window_ms
        self.meters: dict[tuple[str, str], TokenBucket] = {}

    def throttle_ms(self, quotas: dict, user: str, client_id: str, value: float, now_ms: int,
                    record: bool = True) -> int:
        """Take `value` from the client's bucket (record=False: only ask what taking it would
        mean) and return how long the client must wait."""
        found = resolve(quotas, user, client_id, self.key)
        if found is None:
            return 0
        bound, meter_key = found
        burst = bound * self.window_ms / 1000
        meter = self.meters.get(meter_key)
        if meter is None:
            meter = self.meters[meter_key] = TokenBucket(burst, now_ms)
        meter.refill(bound, burst, now_ms)
        left = meter.tokens - value
        if record:
            meter.tokens = left
        if left >= 0:
            return 0
        return min(int(-left / bound * 1000 + 0.5), self.samples * self.window_ms)

    def forget_idle(self, now_ms: int) -> None:
        """Drop meters untouched for a whole window (clients that went away)."""
        horizon = now_ms - self.samples * self.window_ms
        for key in [k for k, m in self.meters.items() if m.last_ms < horizon and m.tokens >= 0]:
            del self.meters[key]


def quota_principal_name(principal: str) -> str:
    """Quotas name users without the principal type: User:alice → alice."""
    return principal.split(":", 1)[1] if ":" in principal else principal


# --- connections -----------------------------------------------------------------------------
@dataclass
class ConnectionLimits:
    max_connections: int = 2**31 - 1
    per_ip: int = 2**31 - 1
    per_ip_overrides: dict[str, int] = field(default_factory=dict)
    creation_rate_per_s: float | None = None
    open_by_ip: dict[str, int] = field(default_factory=dict)
    open_total: int = 0
    _accepts: Rate = field(default_factory=Rate)
    _ip_accepts: dict[str, Rate] = field(default_factory=dict)
    # listener name -> its own (max connections, creation rate) from listener-prefixed keys
    listener_limits: dict[str, tuple[int, float | None]] = field(default_factory=dict)
    open_by_listener: dict[str, int] = field(default_factory=dict)
    _listener_accepts: dict[str, Rate] = field(default_factory=dict)

    @classmethod
    def from_security(cls, security: dict[str, str]) -> "ConnectionLimits":
        def number(key: str, default):
            value = security.get(key)
            return default if value is None else type(default)(float(value)) if default is not None else float(value)
        overrides = {}
        for item in (security.get("max.connections.per.ip.overrides") or "").split(","):
            host, sep, count = item.strip().rpartition(":")
            if sep and host:
                overrides[host] = int(count)
        limits = cls(number("max.connections", 2**31 - 1), number("max.connections.per.ip", 2**31 - 1), overrides,
                     number("max.connection.creation.rate", None))
        for key in sorted(security):  # Kafka: both may be set per listener, listener.name.<l>.<key>
            for suffix in (".max.connections", ".max.connection.creation.rate"):
                if key.startswith("listener.name.") and key.endswith(suffix):
                    name = key[len("listener.name."):-len(suffix)].upper()
                    count, rate = limits.listener_limits.get(name, (2**31 - 1, None))
                    value = float(security[key])
                    limits.listener_limits[name] = (int(value), rate) if suffix == ".max.connections" else (count, value)
        return limits

    def reconfigure(self, security: dict[str, str]) -> None:
        """New limits (a dynamic broker config changed); the connections counted so far stay."""
        fresh = ConnectionLimits.from_security(security)
        self.max_connections, self.per_ip = fresh.max_connections, fresh.per_ip
        self.per_ip_overrides, self.creation_rate_per_s = fresh.per_ip_overrides, fresh.creation_rate_per_s
        self.listener_limits = fresh.listener_limits

    def admit(self, ip: str, now_ms: int, ip_rate_quota: float | None = None, listener: str = "") -> str | None:
        """None if the connection may stay (and is counted), else why it is refused."""
        if self.open_total >= self.max_connections:
            return f"max.connections ({self.max_connections}) reached"
        refused = self._admit_listener(listener, now_ms)
        if refused is not None:
            return refused
        limit = self.per_ip_overrides.get(ip, self.per_ip)
        if self.open_by_ip.get(ip, 0) >= limit:
            return f"max.connections.per.ip ({limit}) reached for {ip}"
        if self.creation_rate_per_s is not None and self._accepts.rate_per_s(now_ms, 1) > self.creation_rate_per_s:
            return f"max.connection.creation.rate ({self.creation_rate_per_s:g}/s) exceeded"
        if ip_rate_quota is not None:
            rate = self._ip_accepts.setdefault(ip, Rate())
            if rate.rate_per_s(now_ms, 1) > ip_rate_quota:
                return f"connection_creation_rate ({ip_rate_quota:g}/s) exceeded for {ip}"
            rate.record(1, now_ms)
        self._accepts.record(1, now_ms)
        self.open_by_ip[ip] = self.open_by_ip.get(ip, 0) + 1
        self.open_by_listener[listener] = self.open_by_listener.get(listener, 0) + 1
        self.open_total += 1
        return None

    def _admit_listener(self, listener: str, now_ms: int) -> str | None:
        if listener not in self.listener_limits:
            return None
        count, rate = self.listener_limits[listener]
        if self.open_by_listener.get(listener, 0) >= count:
            return f"listener.name.{listener.lower()}.max.connections ({count}) reached"
        if rate is not None:
            accepts = self._listener_accepts.setdefault(listener, Rate())
            if accepts.rate_per_s(now_ms, 1) > rate:
                return f"listener.name.{listener.lower()}.max.connection.creation.rate ({rate:g}/s) exceeded"
            accepts.record(1, now_ms)
        return None

    def closed(self, ip: str, listener: str = "") -> None:
        left = self.open_by_listener.get(listener, 0) - 1
        if left > 0:
            self.open_by_listener[listener] = left
        else:
            self.open_by_listener.pop(listener, None)
        count = self.open_by_ip.get(ip, 0) - 1
        if count > 0:
            self.open_by_ip[ip] = count
        else:
            self.open_by_ip.pop(ip, None)
        self.open_total = max(0, self.open_total - 1)
