"""DescribeUserScramCredentials (key 50) and AlterUserScramCredentials (key 51), version 0.

What `kafka-configs.sh --entity-type users --alter --add-config 'SCRAM-SHA-512=[password=…]'`
sends: the client salts and hashes the password itself (salted password, salt, iterations);
the controller derives the stored and server keys (RFC 5802) and commits them as
UserScramCredentialRecords, so every node can check SCRAM logins. Describe lists mechanisms and
iterations, never keys. Authorization: DESCRIBE / ALTER on the cluster.
"""

from kio.schema.errors import ErrorCode

from moldau.broker import apis
from moldau.controller import security_records
from moldau.security import acls as a


@apis.api(50, 0, 0)
def describe(core, ctx: apis.RequestContext, request) -> dict:
    users = None if request.users is None else [user.name for user in request.users]
    if not core.authorize(ctx, a.DESCRIBE, a.CLUSTER, a.CLUSTER_NAME):
        return {"throttle_time": 0, "error_code": ErrorCode.cluster_authorization_failed,
                "error_message": None, "results": []}
    return {"throttle_time": 0, "error_code": ErrorCode.none, "error_message": None,
            "results": security_records.describe_scram_credentials(core.image, users)}


@apis.api(51, 0, 0)
def alter(core, ctx: apis.RequestContext, request) -> dict:
    if not core.authorize(ctx, a.ALTER, a.CLUSTER, a.CLUSTER_NAME):
        users = dict.fromkeys(item.name for item in [*request.deletions, *request.upsertions])
        return {"throttle_time": 0, "results": [
            {"user": user, "error_code": ErrorCode.cluster_authorization_failed, "error_message": None} for user in users]}
    records, results = security_records.alter_scram_credentials(core.image, request.deletions, request.upsertions)
    core.controller.commit(records)
    return {"throttle_time": 0, "results": [
        {"user": user, "error_code": code, "error_message": message} for user, (code, message) in results.items()]}
