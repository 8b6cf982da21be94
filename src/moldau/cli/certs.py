"""`moldau certs create`: a CA, server certificates and a client certificate for local use.

Writes the files of `security.certs.make_bundle` into --out (created, mode 0700; keys 0600)
and prints what to put in server.properties and in a client's config. Refuses to overwrite an
existing CA so that certificates already handed out stay valid.
"""

from __future__ import annotations

import datetime
import os
import secrets

from moldau.cli.common import integer
from moldau.cli.main import CliError


def register(subparsers) -> None:
    parser = subparsers.add_parser("certs", help="make TLS certificates for local use",
                                   description="Make a CA, server and client certificates for local TLS.")
    actions = parser.add_subparsers(dest="certs_action", metavar="ACTION")
    create = actions.add_parser("create", help="make a CA, a server certificate per node and a client certificate")
    create.add_argument("--out", required=True, metavar="DIR", help="directory to write the files to")
    create.add_argument("--hosts", default="localhost,127.0.0.1",
                        help="comma-separated host names and addresses the servers answer on "
                             "(default localhost,127.0.0.1)")
    create.add_argument("--nodes", type=integer(1, 1000), default=1,
                        help="server certificates to make (node-1..N; default 1: server)")
    create.add_argument("--days", type=integer(1, 36500), default=365, help="validity in days (default 365)")
    create.add_argument("--password", help="password of the keystores (default: random, written to DIR/password)")
    create.set_defaults(func=run)
    parser.set_defaults(func=lambda args: parser.print_help() or 2)


def run(args) -> int:
    from moldau.security.certs import make_bundle

    if args.nodes < 1 or args.days < 1:
        raise CliError("--nodes and --days must be at least 1")
    hosts = [h.strip() for h in args.hosts.split(",") if h.strip()]
    if not hosts:
        raise CliError("--hosts needs at least one host name or address")
    out = os.path.abspath(args.out)
    if os.path.exists(os.path.join(out, "ca.crt")):
        raise CliError(f"{out} already holds a CA (ca.crt): choose another --out or remove it")
    password = args.password or secrets.token_urlsafe(12)
    files = make_bundle(out, hosts, args.nodes, password, datetime.datetime.now(datetime.timezone.utc), args.days)
    try:
        os.makedirs(out, mode=0o700, exist_ok=True)
        for name, data in files.items():
            path = os.path.join(out, name)
            secret = name.endswith((".key", ".p12", ".pem")) or name == "password" or name.endswith(".properties")
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if secret else 0o644)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
    except OSError as error:
        raise CliError(f"cannot write to {out}: {error.strerror}") from None
    server = "server" if args.nodes == 1 else "node-N"
    print(f"wrote a CA, {args.nodes} server certificate(s) for {', '.join(hosts)} and a client certificate to {out}")
    print(f"server.properties: add the lines of {out}/{server}-ssl.properties")
    print(f"clients: --command-config {out}/client-ssl.properties (Java/Kafka tools: the same file)")
    return 0
