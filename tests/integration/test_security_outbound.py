"""What the cluster's inter-node connections use: outbound_security() from a node's own
settings, and open_connection() through TLS and SASL to another node's listener."""

import asyncio

import pytest

from moldau import Broker
from moldau.broker.config import BrokerConfig
from moldau.runtime.outbound import OutboundSecurityError, open_connection, outbound_security
from moldau.security.sasl_client import SaslClientError

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    with Broker(data_dir=str(tmp_path_factory.mktemp("data")), security="SASL_SSL",
                users={"admin": "admin-secret"}) as broker:
        yield broker


def _node_config(broker, password: str) -> BrokerConfig:
    """The settings of a second node whose inter-broker listener is the broker's SASL_SSL one."""
    return BrokerConfig.from_properties({
        "listeners": "SASL_SSL://127.0.0.1:0", "security.inter.broker.protocol": "SASL_SSL",
        "sasl.enabled.mechanisms": "SCRAM-SHA-512", "sasl.mechanism.inter.broker.protocol": "SCRAM-SHA-512",
        "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config":
            f'org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="{password}";',
        **broker.certs.server_properties(),
    })


def test_outbound_connection_authenticates_over_tls(broker):
    security = outbound_security(_node_config(broker, "admin-secret"))
    assert (security.listener_name, security.sasl_mechanism, security.username) == ("SASL_SSL", "SCRAM-SHA-512", "admin")

    async def run():
        reader, writer, _lifetime = await open_connection("127.0.0.1", broker.port, security)
        try:  # while the connection is open, the broker knows who it is
            # (the node's own in-process requests to its controller run as Internal:node)
            return broker.call(lambda core: [s.principal for s in core.sessions.values()
                                             if s.authenticated and not s.principal.startswith("Internal:")])
        finally:
            writer.close()

    assert asyncio.run(run()) == ["User:admin"]


def test_wrong_node_password_is_refused(broker):
    security = outbound_security(_node_config(broker, "wrong"))
    with pytest.raises(SaslClientError, match="failed"):
        asyncio.run(open_connection("127.0.0.1", broker.port, security))


def test_a_secured_inter_broker_listener_without_credentials_is_a_clear_error():
    config = BrokerConfig.from_properties({"listeners": "SASL_PLAINTEXT://127.0.0.1:0",
                                           "sasl.enabled.mechanisms": "SCRAM-SHA-512"})
    with pytest.raises(OutboundSecurityError, match="sasl.mechanism.inter.broker.protocol"):
        outbound_security(config)
