"""The controller's side of security: SCRAM credentials, ACLs and client quotas as metadata
records, validated against the image with Kafka's errors.

Theory of operation. Each function takes the current image and a request's items and returns
(records to commit, per-item results); the handler commits the records through the controller,
so the change reaches every node's image through the metadata log (in the cluster, the
replicated one) exactly like a topic does. Nothing here mutates the image.
"""

from __future__ import annotations

import hashlib
import hmac

from kio.schema.errors import ErrorCode

from moldau.controller import records as r
from moldau.controller.image import MetadataImage
from moldau.security.sasl import SCRAM_ITERATIONS_MAX, SCRAM_ITERATIONS_MIN, SCRAM_MECHANISM_CODES, SCRAM_MECHANISM_NAMES

_HASHES = {1: hashlib.sha256, 2: hashlib.sha512}


def scram_keys(mechanism: int, salted_password: bytes) -> tuple[bytes, bytes]:
    """(stored key, server key) of RFC 5802 from a salted password (what clients send in
    AlterUserScramCredentials: the password itself never reaches the broker)."""
    digest = _HASHES[mechanism]
    client_key = hmac.new(salted_password, b"Client Key", digest).digest()
    return digest(client_key).digest(), hmac.new(salted_password, b"Server Key", digest).digest()


def scram_credential_record(name: str, mechanism: int, password: str, salt: bytes,
                            iterations: int = SCRAM_ITERATIONS_MIN) -> r.UserScramCredentialRecord:
    """The record of a credential made from a password on this node (kafka-storage's
    --add-scram, `moldau server --add-scram`, secured test brokers)."""
    salted = hashlib.pbkdf2_hmac(_HASHES[mechanism]().name, password.encode(), salt, iterations)
    stored_key, server_key = scram_keys(mechanism, salted)
    return r.UserScramCredentialRecord(name=name, mechanism=mechanism, salt=salt, stored_key=stored_key,
                                       server_key=server_key, iterations=iterations)


def parse_add_scram(value: str) -> tuple[str, int, str]:
    """kafka-storage's `SCRAM-SHA-512=[name=alice,password=alice-secret]` → (name, mechanism, password)."""
    mechanism, sep, rest = value.partition("=")
    code = SCRAM_MECHANISM_CODES.get(mechanism.strip().upper())
    fields = {}
    if sep and rest.strip().startswith("[") and rest.strip().endswith("]"):
        for item in rest.strip()[1:-1].split(","):
            key, _, val = item.partition("=")
            fields[key.strip()] = val.strip().strip('"')
    if code is None or not fields.get("name") or "password" not in fields:
        raise ValueError(f"invalid SCRAM credential {value!r}: expected SCRAM-SHA-256|SCRAM-SHA-512=[name=USER,password=SECRET]")
    return fields["name"], code, fields["password"]


def alter_scram_credentials(image: MetadataImage, deletions, upsertions) -> tuple[list, dict[str, tuple]]:
    """Records for AlterUserScramCredentials and {user: (error code, message)}."""
    counts: dict[str, int] = {}
    for item in [*deletions, *upsertions]:
        counts[item.name] = counts.get(item.name, 0) + 1
    results: dict[str, tuple] = {}
    records: list = []
    for item in deletions:
        error = _check(item.name, item.mechanism, counts)
        if error is None and (item.name, item.mechanism) not in image.scram_credentials:
            error = (ErrorCode.resource_not_found, "Attempt to delete a user credential that does not exist")
        if error is None:
            records.append(r.RemoveUserScramCredentialRecord(name=item.name, mechanism=item.mechanism))
        results.setdefault(item.name, error or (ErrorCode.none, None))
    for item in upsertions:
        error = _check(item.name, item.mechanism, counts)
        if error is None and item.iterations < SCRAM_ITERATIONS_MIN:
            error = (ErrorCode.unacceptable_credential, f"Too few iterations: at least {SCRAM_ITERATIONS_MIN}")
        if error is None and item.iterations > SCRAM_ITERATIONS_MAX:
            error = (ErrorCode.unacceptable_credential, f"Too many iterations: at most {SCRAM_ITERATIONS_MAX}")
        if error is None and (not item.salt or not item.salted_password):
            error = (ErrorCode.unacceptable_credential, "Salt and salted password must not be empty")
        if error is None:
            stored_key, server_key = scram_keys(item.mechanism, bytes(item.salted_password))
            records.append(r.UserScramCredentialRecord(name=item.name, mechanism=item.mechanism, salt=bytes(item.salt),
                                                       stored_key=stored_key, server_key=server_key,
                                                       iterations=item.iterations))
        results.setdefault(item.name, error or (ErrorCode.none, None))
    # A user whose any item failed changes nothing (Kafka applies a user's alterations together).
    failed = {user for user, (code, _m) in results.items() if code != ErrorCode.none}
    return [rec for rec in records if rec.name not in failed], results


def _check(name: str, mechanism: int, counts: dict[str, int]) -> tuple | None:
    if not name:
        return ErrorCode.unacceptable_credential, "Username must not be empty"
    if counts[name] > 1:
        return ErrorCode.duplicate_resource, "A user credential cannot be altered twice in the same request"
    if mechanism not in SCRAM_MECHANISM_NAMES:
        return ErrorCode.unsupported_sasl_mechanism, "Unknown SCRAM mechanism"
    return None


def describe_scram_credentials(image: MetadataImage, users: list[str] | None) -> list[dict]:
    by_user: dict[str, list[dict]] = {}
    for (name, mechanism) in sorted(image.scram_credentials):
        record = image.scram_credentials[(name, mechanism)]
        by_user.setdefault(name, []).append({"mechanism": mechanism, "iterations": record.iterations})
    if not users:
        return [{"user": u, "error_code": ErrorCode.none, "error_message": None, "credential_infos": infos}
                for u, infos in sorted(by_user.items())]
    results = []
    for user in users:
        if users.count(user) > 1:
            results.append({"user": user, "error_code": ErrorCode.duplicate_resource, "credential_infos": [],
                            "error_message": "Cannot describe SCRAM credentials for the same user twice in a single request"})
        elif user not in by_user:
            results.append({"user": user, "error_code": ErrorCode.resource_not_found, "credential_infos": [],
                            "error_message": "Attempt to describe a user credential that does not exist"})
        else:
            results.append({"user": user, "error_code": ErrorCode.none, "error_message": None,
                            "credential_infos": by_user[user]})
    return results
