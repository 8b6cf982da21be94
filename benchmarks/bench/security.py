"""The security protocol a benchmark run uses (`compare.py --security plaintext|ssl|sasl_ssl`).

Both systems get the same certificates (made once with moldau's `security.certs`): a PEM
keystore file for the server (PBE-SHA1-3DES, which Kafka on Java 17 reads) and the CA as
truststore; TLS is one-way (no client certificates), SASL is SCRAM-SHA-512 for the user
`bench`. Every client — the librdkafka generator (`moldau perf --command-config`), Kafka's
Java perf tools (`--producer.config`, `--consumer.config`, EndToEndLatency's properties file)
and the harness's own admin clients — reads the same Java-style client properties file.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field

USER, PASSWORD = "bench", "bench-secret"
_SCRAM_JAAS = ('org.apache.kafka.common.security.scram.ScramLoginModule required '
               f'username="{USER}" password="{PASSWORD}";')


@dataclass
class Security:
    protocol: str = "PLAINTEXT"  # PLAINTEXT, SSL or SASL_SSL
    directory: str | None = None
    certs: object | None = None
    client_file: str | None = None
    _librdkafka: dict = field(default_factory=dict)

    @property
    def enabled(self) -> bool:
        return self.protocol != "PLAINTEXT"

    def server_properties(self, listener: str) -> dict[str, str]:
        """Settings of a listener named after the protocol, for Kafka and Moldau alike."""
        if not self.enabled:
            return {}
        props = dict(self.certs.server_properties())
        if self.protocol == "SASL_SSL":
            props.update({"sasl.enabled.mechanisms": "SCRAM-SHA-512",
                          "sasl.mechanism.inter.broker.protocol": "SCRAM-SHA-512",
                          f"listener.name.{listener.lower()}.scram-sha-512.sasl.jaas.config": _SCRAM_JAAS})
        return props

    def java_client(self) -> dict[str, str]:
        if not self.enabled:
            return {}
        props = {"security.protocol": self.protocol, "ssl.truststore.type": "PEM",
                 "ssl.truststore.location": self.certs.ca, "ssl.endpoint.identification.algorithm": ""}
        if self.protocol == "SASL_SSL":
            props.update({"sasl.mechanism": "SCRAM-SHA-512", "sasl.jaas.config": _SCRAM_JAAS})
        return props

    def librdkafka(self) -> dict[str, str]:
        """The same for confluent-kafka (the harness's admin clients and probes)."""
        if not self.enabled:
            return {}
        props = {"security.protocol": self.protocol, "ssl.ca.location": self.certs.ca,
                 "ssl.endpoint.identification.algorithm": "none"}
        if self.protocol == "SASL_SSL":
            props.update({"sasl.mechanism": "SCRAM-SHA-512", "sasl.username": USER, "sasl.password": PASSWORD})
        return props

    def add_scram(self) -> str:
        """kafka-storage's / moldau server's --add-scram value for the bench user."""
        return f"SCRAM-SHA-512=[name={USER},password={PASSWORD}]"


SECURITY = Security()


def configure(protocol: str) -> Security:
    """Set the run's protocol; makes the certificates and the client file once."""
    protocol = protocol.upper()
    if protocol not in ("PLAINTEXT", "SSL", "SASL_SSL"):
        raise ValueError(f"--security takes plaintext, ssl or sasl_ssl, not {protocol}")
    SECURITY.protocol = protocol
    if SECURITY.enabled and SECURITY.certs is None:
        from moldau.testing.security import make_certs

        SECURITY.directory = tempfile.mkdtemp(prefix="moldau-bench-certs-")
        SECURITY.certs = make_certs(SECURITY.directory)
        SECURITY.client_file = os.path.join(SECURITY.directory, "client.properties")
    if SECURITY.enabled:
        with open(SECURITY.client_file, "w") as handle:
            handle.writelines(f"{key}={value}\n" for key, value in SECURITY.java_client().items())
    return SECURITY
