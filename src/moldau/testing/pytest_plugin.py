"""pytest plugin (registered as the `moldau` entry point): an embedded Kafka-compatible broker.

    def test_roundtrip(moldau_broker):
        producer = confluent_kafka.Producer({"bootstrap.servers": moldau_broker.bootstrap_servers})

`moldau_broker` is one broker per test (fresh data directory, free port, started in
milliseconds); `moldau_broker_session` is shared by a whole test session.

Secured brokers: `moldau_secure_broker` listens on SASL_SSL with SCRAM users `admin` (a super
user) and `alice`, ACLs enforced; `moldau_secure_broker.client_config("alice")` is what a
confluent-kafka client needs. Any `moldau.Broker` arguments can also be given to `moldau_broker`
by indirect parametrization:

    @pytest.mark.parametrize("moldau_broker", [{"security": "SSL"}], indirect=True)
    def test_mutual_tls(moldau_broker): ...
"""

from __future__ import annotations

import pytest


SECURE_USERS = {"admin": "admin-secret", "alice": "alice-secret"}


@pytest.fixture
def moldau_broker(request, tmp_path):
    from moldau.runtime.embedded import Broker

    options = dict(getattr(request, "param", None) or {})
    with Broker(data_dir=str(tmp_path / "moldau-data"), **options) as broker:
        yield broker


@pytest.fixture
def moldau_secure_broker(tmp_path):
    from moldau.runtime.embedded import Broker

    with Broker(data_dir=str(tmp_path / "moldau-data"), security="SASL_SSL", users=SECURE_USERS,
                authorizer=True, super_users=["admin"]) as broker:
        yield broker


@pytest.fixture(scope="session")
def moldau_broker_session(tmp_path_factory):
    from moldau.runtime.embedded import Broker

    with Broker(data_dir=str(tmp_path_factory.mktemp("moldau-session"))) as broker:
        yield broker


# --- the compatibility matrix ---------------------------------------------------------------
# Each embedded broker counts which API versions each client software used. With
# MOLDAU_COMPAT_REPORT=path set, the session writes the union as JSON at the end, and
# `python -m moldau.testing.compat_report path` renders docs/compatibility.md's table.
_usage: dict[str, dict[int, set[int]]] = {}


def collect_usage(broker) -> None:
    try:
        usage = broker.call(lambda core: {k: {a: set(v) for a, v in apis.items()} for k, apis in core.api_usage.items()})
    except Exception:  # the broker was stopped by the test itself
        return
    for label, apis in usage.items():
        for api_key, versions in apis.items():
            _usage.setdefault(label, {}).setdefault(api_key, set()).update(versions)


def pytest_configure(config):
    from moldau.runtime import embedded

    if collect_usage not in embedded.STOP_HOOKS:
        embedded.STOP_HOOKS.append(collect_usage)


def pytest_sessionfinish(session, exitstatus):
    import json
    import os

    path = os.environ.get("MOLDAU_COMPAT_REPORT")
    if not path or not _usage:
        return
    existing = {}
    if os.path.exists(path):
        with open(path, encoding="utf-8") as handle:
            existing = json.load(handle)
    for label, apis in _usage.items():
        for api_key, versions in apis.items():
            merged = set(existing.setdefault(label, {}).get(str(api_key), [])) | versions
            existing[label][str(api_key)] = sorted(merged)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(existing, handle, indent=1, sort_keys=True)
