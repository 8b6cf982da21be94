"""ApiVersions (key 18), versions 0–4: the table of what this broker serves.

Built from the handler table (broker/apis.py), so nothing is advertised without a handler.
Produce is advertised from v0 as Kafka 4 does (librdkafka looks for Produce v0 to decide that
the broker supports compression) although v0–v2 are answered with UNSUPPORTED_VERSION.

The v3+ response reports feature flags as Kafka 4.1 does (tagged fields 0-2): supported and
finalized `transaction.version` 2, which tells Kafka 4 clients to use Transactions V2
(KIP-890: Produce v12, EndTxn v5, an epoch bump per transaction). Debian's kcat (librdkafka
2.0.2) reads this response from Kafka 4.1.1 and from Moldau alike
(tests/integration/test_client_kcat.py). A request with a version above 4 gets a v0 response
with UNSUPPORTED_VERSION and the table, so the client can pick a version and retry (KIP-511).
"""

from kio.schema.errors import ErrorCode

from moldau.broker import apis
from moldau.protocol import codec
from moldau.protocol.build import build


# Feature flags (KIP-584) and their finalized levels. Clients only pick up finalized features
# whose epoch is newer than one they saw, so the epoch is fixed and positive (Kafka's is the
# metadata offset of the last feature change).
FINALIZED_FEATURES = {"transaction.version": 2}
FINALIZED_FEATURES_EPOCH = 1


def api_keys(core=None) -> list[dict]:
    hidden = _disabled(core) if core is not None else set()
    return [
        {"api_key": e.key, "min_version": e.advertised_min_version, "max_version": e.max_version}
        for e in sorted(apis.REGISTRY.values(), key=lambda e: e.key) if e.key not in hidden
    ]


def _disabled(core) -> set[int]:
    """APIs switched off by configuration: ConsumerGroupHeartbeat/Describe when
    group.coordinator.rebalance.protocols leaves out `consumer` (clients then use the classic
    protocol, as with a Kafka configured so)."""
    consumer = core.extensions.get("consumer_group_coordinator")
    if consumer is not None and "consumer" not in consumer.settings.rebalance_protocols:
        return {68, 69}
    return set()


@apis.api(18, 0, 4)
def handle(core, ctx: apis.RequestContext, request) -> object:
    if request is None:  # a version we do not serve: answer in v0 with the table
        response = build(codec.response_schema(18, 0), {"error_code": ErrorCode.unsupported_version,
                                                        "api_keys": api_keys(core)})
        return codec.encode_response(ctx.header.correlation_id, False, response)
    software = getattr(request, "client_software_name", None)
    if software:
        version = getattr(request, "client_software_version", "")
        core.connection_software[ctx.connection_id] = f"{software} {version}".strip()
    core.record_usage(ctx.connection_id, ctx.header.client_id, 18, ctx.version)
    return {"error_code": 0, "api_keys": api_keys(core), "throttle_time": 0,
            "supported_features": [{"name": name, "min_version": 0, "max_version": level}
                                   for name, level in sorted(FINALIZED_FEATURES.items())],
            "finalized_features_epoch": FINALIZED_FEATURES_EPOCH,
            "finalized_features": [{"name": name, "max_version_level": level, "min_version_level": level}
                                   for name, level in sorted(FINALIZED_FEATURES.items())]}
