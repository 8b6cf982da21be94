"""Key material and client settings for secured test brokers.

`make_certs(directory)` writes a CA, a server keystore (PEM and PKCS12) and a client
certificate with `security.certs`, and returns their paths; `librdkafka_tls(certs)` and
`java_tls(certs)` are the client settings that trust the CA (and present the client
certificate for mutual TLS).
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

PASSWORD = "moldau-test-secret"


@dataclass(frozen=True)
class Certs:
    directory: str
    password: str

    def path(self, name: str) -> str:
        return os.path.join(self.directory, name)

    @property
    def ca(self) -> str:
        return self.path("ca.crt")

    def server_properties(self, prefix: str = "") -> dict[str, str]:
        """A PEM-file keystore and the CA as truststore, optionally per listener."""
        return {prefix + "ssl.keystore.type": "PEM", prefix + "ssl.keystore.location": self.path("server.keystore.pem"),
                prefix + "ssl.key.password": self.password, prefix + "ssl.truststore.type": "PEM",
                prefix + "ssl.truststore.location": self.ca}

    def librdkafka(self, mutual: bool = True) -> dict[str, str]:
        settings = {"ssl.ca.location": self.ca, "ssl.endpoint.identification.algorithm": "none"}
        if mutual:
            settings.update({"ssl.certificate.location": self.path("client.crt"),
                             "ssl.key.location": self.path("client.key")})
        return settings

    def java(self, mutual: bool = True) -> dict[str, str]:
        settings = {"ssl.truststore.type": "PEM", "ssl.truststore.location": self.ca,
                    "ssl.endpoint.identification.algorithm": ""}
        if mutual:
            settings.update({"ssl.keystore.type": "PEM", "ssl.keystore.location": self.path("client.keystore.pem"),
                             "ssl.key.password": self.password})
        return settings


def make_certs(directory: str, hosts: tuple[str, ...] = ("localhost", "127.0.0.1"), nodes: int = 1,
               days: int = 30, password: str = PASSWORD) -> Certs:
    from moldau.security.certs import make_bundle

    os.makedirs(directory, exist_ok=True)
    if not os.path.exists(os.path.join(directory, "ca.crt")):
        now = datetime.datetime.now(datetime.timezone.utc)
        for name, data in make_bundle(directory, list(hosts), nodes, password, now, days).items():
            with open(os.path.join(directory, name), "wb") as handle:
                handle.write(data)
    return Certs(directory, password)
