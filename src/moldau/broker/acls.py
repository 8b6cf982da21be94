"""DescribeAcls (29), CreateAcls (30), DeleteAcls (31), versions 1–3: no authorizer here.

Moldau has no authentication or authorization yet, so it answers every ACL request as a Kafka
broker without `authorizer.class.name` does: SECURITY_DISABLED, with a message saying why. Admin
tools then print a clear line (kafka-acls: "Security features are disabled") instead of failing
on an API the broker does not know.
"""

from kio.schema.errors import ErrorCode

from moldau.broker import apis

NO_AUTHORIZER = "No authorizer is configured: moldau has no ACLs (every client may do everything)"


@apis.api(29, 1, 3)
def describe_acls(core, ctx: apis.RequestContext, request) -> dict:
    return {"throttle_time": 0, "error_code": ErrorCode.security_disabled, "error_message": NO_AUTHORIZER,
            "resources": []}


@apis.api(30, 1, 3)
def create_acls(core, ctx: apis.RequestContext, request) -> dict:
    return {"throttle_time": 0, "results": [
        {"error_code": ErrorCode.security_disabled, "error_message": NO_AUTHORIZER} for _ in request.creations]}


@apis.api(31, 1, 3)
def delete_acls(core, ctx: apis.RequestContext, request) -> dict:
    return {"throttle_time": 0, "filter_results": [
        {"error_code": ErrorCode.security_disabled, "error_message": NO_AUTHORIZER, "matching_acls": []}
        for _ in request.filters]}
