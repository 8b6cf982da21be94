"""The moldau commands against a secured broker: --command-config with Java's keys (a JAAS
login, PEM stores), -X, `moldau acls`, `moldau server --add-scram`, `moldau certs create`."""

import json
import os
import signal
import subprocess
import sys

import pytest

from moldau import Broker
from moldau.testing.server_process import free_port

pytestmark = pytest.mark.integration
SRC = os.path.join(os.path.dirname(__file__), "..", "..", "src")
USERS = {"admin": "admin-secret", "alice": "alice-secret"}


def _moldau(*args, timeout=60):
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "moldau", *args], capture_output=True, text=True, timeout=timeout,
                          env=env)


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    with Broker(data_dir=str(tmp_path_factory.mktemp("data")), security="SASL_SSL", users=USERS,
                authorizer=True, super_users=["admin"]) as broker:
        yield broker


def _properties(broker, user, path) -> str:
    with open(path, "w") as handle:
        for key, value in broker.java_client_config(user).items():
            if key != "bootstrap.servers":
                handle.write(f"{key}={value}\n")
    return str(path)


def test_acls_and_topics_with_a_java_command_config(broker, tmp_path):
    admin = _properties(broker, "admin", tmp_path / "admin.properties")
    common = ["--bootstrap-server", broker.bootstrap_servers, "--command-config", admin]
    assert _moldau("topics", "create", "cli-orders", *common).returncode == 0
    added = _moldau("acls", "add", "--allow-principal", "User:alice", "--operation", "Read", "--operation", "Describe",
                    "--topic", "cli-", "--resource-pattern-type", "prefixed", *common)
    assert added.returncode == 0, added.stderr
    listed = _moldau("acls", "list", "-o", "json", *common)
    rows = json.loads(listed.stdout)
    assert {(r["resource_name"], r["pattern_type"], r["operation"]) for r in rows} >= {
        ("cli-", "PREFIXED", "READ"), ("cli-", "PREFIXED", "DESCRIBE")}
    # alice sees the topic her ACL covers; -X passes the same settings without a file
    alice = broker.client_config("alice")
    x = [f"-X{key}={value}" for key, value in alice.items() if key != "bootstrap.servers" and "pem" not in key]
    topics = _moldau("topics", "list", "--bootstrap-server", broker.bootstrap_servers, *x)
    assert topics.returncode == 0 and topics.stdout.split() == ["cli-orders"], topics.stderr
    # she may not add ACLs
    refused = _moldau("acls", "add", "--allow-principal", "User:alice", "--operation", "All", "--cluster",
                      "--bootstrap-server", broker.bootstrap_servers, *x)
    assert refused.returncode != 0 and "CLUSTER_AUTHORIZATION_FAILED" in refused.stderr.upper().replace(" ", "_")
    removed = _moldau("acls", "remove", "--topic", "cli-", "--resource-pattern-type", "prefixed", *common)
    assert removed.returncode == 0 and "removed 2 ACL(s)" in removed.stdout


def test_server_add_scram_and_certs_create(tmp_path):
    certs = _moldau("certs", "create", "--out", str(tmp_path / "certs"))
    assert certs.returncode == 0, certs.stderr
    port = free_port()
    properties = tmp_path / "server.properties"
    properties.write_text(
        f"listeners=SASL_SSL://127.0.0.1:{port}\nsasl.enabled.mechanisms=SCRAM-SHA-512\n"
        f"log.dirs={tmp_path / 'data'}\n" + (tmp_path / "certs" / "server-ssl.properties").read_text())
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    server = subprocess.Popen([sys.executable, "-m", "moldau", "server", str(properties),
                               "--add-scram", "SCRAM-SHA-512=[name=admin,password=admin-secret]"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert server.stdout.readline().startswith(f"moldau server listening on 127.0.0.1:{port}")
        client = tmp_path / "client.properties"
        client.write_text((tmp_path / "certs" / "client-ssl.properties").read_text().replace(
            "security.protocol=SSL", "security.protocol=SASL_SSL") + "sasl.mechanism=SCRAM-SHA-512\n"
            'sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required '
            'username="admin" password="admin-secret";\n')
        created = _moldau("topics", "create", "secured", "--bootstrap-server", f"127.0.0.1:{port}",
                          "--command-config", str(client))
        assert created.returncode == 0, created.stderr
        wrong = client.read_text().replace("admin-secret", "nope")
        client.write_text(wrong)
        failed = _moldau("topics", "list", "--bootstrap-server", f"127.0.0.1:{port}", "--command-config", str(client))
        assert failed.returncode != 0 and "authentication" in failed.stderr.lower()
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(20)


def test_a_secured_kafka_kraft_server_properties_starts_unchanged(tmp_path):
    """Kafka 4.1's single-node KRaft layout, secured: a CONTROLLER listener that is not
    advertised, controller.quorum.voters, per-listener JAAS configs, an authorizer."""
    import socket
    import struct

    certs = _moldau("certs", "create", "--out", str(tmp_path / "certs"), "--password", "store-secret")
    assert certs.returncode == 0, certs.stderr
    port, controller_port = free_port(), free_port()
    jaas_scram = ('org.apache.kafka.common.security.scram.ScramLoginModule required '
                  'username="admin" password="admin-secret";')
    jaas_plain = ('org.apache.kafka.common.security.plain.PlainLoginModule required '
                  'username="admin" password="admin-secret" user_admin="admin-secret" user_alice="alice-secret";')
    (tmp_path / "server.properties").write_text(f"""process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{controller_port}
listeners=SASL_SSL://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners=SASL_SSL://127.0.0.1:{port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=SASL_SSL
listener.security.protocol.map=CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL
sasl.enabled.mechanisms=SCRAM-SHA-512,PLAIN
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config={jaas_scram}
listener.name.sasl_ssl.plain.sasl.jaas.config={jaas_plain}
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:admin
allow.everyone.if.no.acl.found=false
log.dirs={tmp_path / 'data'}
""" + (tmp_path / "certs" / "server-ssl.properties").read_text())
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    server = subprocess.Popen([sys.executable, "-m", "moldau", "server", str(tmp_path / "server.properties")],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = server.stdout.readline()
        assert line.startswith(f"moldau server listening on 127.0.0.1:{port}"), server.stderr.read()[-2000:]
        login = ('org.apache.kafka.common.security.plain.PlainLoginModule required '
                 'username="admin" password="admin-secret";')
        client = tmp_path / "admin.properties"
        client.write_text((tmp_path / "certs" / "client-ssl.properties").read_text().replace(
            "security.protocol=SSL", "security.protocol=SASL_SSL") + "sasl.mechanism=PLAIN\n"
            f"sasl.jaas.config={login}\n")
        common = ["--bootstrap-server", f"127.0.0.1:{port}", "--command-config", str(client)]
        assert _moldau("topics", "create", "kraft-style", *common).returncode == 0
        topics = _moldau("topics", "list", *common)
        assert topics.returncode == 0 and "kraft-style" in topics.stdout.split()
        # the controller listener answers too (PLAINTEXT, as the map says)
        with socket.create_connection(("127.0.0.1", controller_port), timeout=10) as sock:
            body = struct.pack(">hhih", 18, 0, 1, 4) + b"test"
            sock.sendall(struct.pack(">i", len(body)) + body)
            assert len(sock.recv(4)) == 4
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(20)


def test_wire_client_commands_log_in(broker, tmp_path):
    """`moldau transactions` speaks Kafka's wire itself (APIs librdkafka lacks): over SASL_SSL it
    logs in with the same --command-config, and a wrong password is one line."""
    admin = _properties(broker, "admin", tmp_path / "admin.properties")
    listed = _moldau("transactions", "list", "--bootstrap-server", broker.bootstrap_servers, "--command-config", admin)
    assert listed.returncode == 0, listed.stderr
    wrong = tmp_path / "wrong.properties"
    wrong.write_text(open(admin).read().replace("admin-secret", "nope"))
    failed = _moldau("transactions", "list", "--bootstrap-server", broker.bootstrap_servers, "--command-config", str(wrong))
    assert failed.returncode == 1 and "cannot log in" in failed.stderr and len(failed.stderr.splitlines()) == 1
