"""DescribeAcls (29), CreateAcls (30), DeleteAcls (31), versions 1–3: ACLs in the metadata log.

Without an authorizer (`authorizer.class.name` unset) every request is answered as Kafka does:
SECURITY_DISABLED, with a message saying why. With one, CreateAcls validates each binding as
Kafka's AclControlManager does (INVALID_REQUEST naming the problem) and commits an
AccessControlEntryRecord per new ACL (an identical existing ACL is not added twice);
DescribeAcls and DeleteAcls match filters with Kafka's semantics (ANY matches everything;
pattern type MATCH finds every ACL whose pattern covers the name: the literal name, the "*"
wildcard and prefixes of it); DeleteAcls commits a RemoveAccessControlEntryRecord per match.
Describe needs DESCRIBE on the cluster, Create and Delete need ALTER (else
CLUSTER_AUTHORIZATION_FAILED). Since ACLs are metadata records, every node of a cluster
enforces the same ones.
"""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from moldau.broker import apis
from moldau.controller import records as r
from moldau.security import acls as a

_BINDING_FIELDS = ("resource_type", "resource_name", "pattern_type", "principal", "host", "operation",
                   "permission_type")
NO_AUTHORIZER = "No Authorizer is configured on the broker (set authorizer.class.name)"


@apis.api(29, 1, 3)
def describe_acls(core, ctx: apis.RequestContext, request) -> dict:
    if core.authorizer is None:
        return _describe_error(ErrorCode.security_disabled, NO_AUTHORIZER)
    if not core.authorize(ctx, a.DESCRIBE, a.CLUSTER, a.CLUSTER_NAME):
        return _describe_error(ErrorCode.cluster_authorization_failed, None)
    error = _filter_error(request)
    if error:
        return _describe_error(ErrorCode.invalid_request, error)
    groups: dict[tuple, list] = {}
    for acl in sorted(core.image.acls.values(), key=_sort_key):
        if matches(request, acl):
            groups.setdefault((acl.resource_type, acl.resource_name, acl.pattern_type), []).append(
                {"principal": acl.principal, "host": acl.host, "operation": acl.operation,
                 "permission_type": acl.permission_type})
    return {"throttle_time": 0, "error_code": ErrorCode.none, "error_message": None, "resources": [
        {"resource_type": rt, "resource_name": name, "pattern_type": pt, "acls": entries}
        for (rt, name, pt), entries in groups.items()]}


def _describe_error(code: ErrorCode, message: str | None) -> dict:
    return {"throttle_time": 0, "error_code": code, "error_message": message, "resources": []}


@apis.api(30, 1, 3)
def create_acls(core, ctx: apis.RequestContext, request) -> dict:
    if core.authorizer is None:
        return _each(request.creations, ErrorCode.security_disabled, NO_AUTHORIZER)
    if not core.authorize(ctx, a.ALTER, a.CLUSTER, a.CLUSTER_NAME):
        return _each(request.creations, ErrorCode.cluster_authorization_failed, None)
    existing = {_binding(acl) for acl in core.image.acls.values()}
    records, results = [], []
    for creation in request.creations:
        binding = (creation.resource_type, creation.resource_name, creation.resource_pattern_type,
                   creation.principal, creation.host, creation.operation, creation.permission_type)
        error = validate_binding(*binding)
        if error is None and binding not in existing:
            existing.add(binding)
            records.append(r.AccessControlEntryRecord(id=core.new_uuid(), **dict(zip(_BINDING_FIELDS, binding))))
        results.append({"error_code": ErrorCode.invalid_request if error else ErrorCode.none, "error_message": error})
    core.controller.commit(records)
    return {"throttle_time": 0, "results": results}


def _each(items, code: ErrorCode, message: str | None) -> dict:
    return {"throttle_time": 0, "results": [{"error_code": code, "error_message": message} for _ in items]}


@apis.api(31, 1, 3)
def delete_acls(core, ctx: apis.RequestContext, request) -> dict:
    if core.authorizer is None or not core.authorize(ctx, a.ALTER, a.CLUSTER, a.CLUSTER_NAME):
        code, message = ((ErrorCode.security_disabled, NO_AUTHORIZER) if core.authorizer is None
                         else (ErrorCode.cluster_authorization_failed, None))
        return {"throttle_time": 0, "filter_results": [
            {"error_code": code, "error_message": message, "matching_acls": []} for _ in request.filters]}
    records, results, removed = [], [], set()
    for item in request.filters:
        error = _filter_error(item)
        if error:
            results.append({"error_code": ErrorCode.invalid_request, "error_message": error, "matching_acls": []})
            continue
        matching = [acl for acl in sorted(core.image.acls.values(), key=_sort_key) if matches(item, acl)]
        for acl in matching:
            if str(acl.id) not in removed:
                removed.add(str(acl.id))
                records.append(r.RemoveAccessControlEntryRecord(id=acl.id))
        results.append({"error_code": ErrorCode.none, "error_message": None, "matching_acls": [
            {"error_code": ErrorCode.none, "error_message": None, "resource_type": acl.resource_type,
             "resource_name": acl.resource_name, "pattern_type": acl.pattern_type, "principal": acl.principal,
             "host": acl.host, "operation": acl.operation, "permission_type": acl.permission_type}
            for acl in matching]})
    core.controller.commit(records)
    return {"throttle_time": 0, "filter_results": results}


# --- validation and matching ------------------------------------------------------------------
def validate_binding(resource_type, name, pattern_type, principal, host, operation, permission) -> str | None:
    """Kafka's reasons to refuse an ACL (AclControlManager.validateNewAcl), or None."""
    if resource_type not in a.RESOURCE_OPERATIONS:
        return f"Invalid resourceType {resource_type}"
    if pattern_type not in (a.LITERAL, a.PREFIXED):
        return f"Invalid patternType {pattern_type}"
    if operation in (a.UNKNOWN_OP, a.ANY_OP) or operation not in a.OPERATION_NAMES:
        return f"Invalid operation {operation}"
    if permission not in (a.ALLOW, a.DENY):
        return f"Invalid permissionType {permission}"
    if not name:
        return "Resource name should not be empty"
    if resource_type == a.CLUSTER and name != a.CLUSTER_NAME:
        return f"The only valid name for the CLUSTER resource is {a.CLUSTER_NAME}"
    if ":" not in principal or principal.startswith(":"):
        return f"Could not parse principal from `{principal}` (no colon is present separating the principal type from the principal name)"
    if not host:
        return "Host should not be empty (use * for every host)"
    return None


def _filter_error(item) -> str | None:
    if item.resource_type_filter in (0,) or item.pattern_type_filter == 0:
        return "Invalid ACL filter: UNKNOWN resource or pattern type"
    if item.operation == a.UNKNOWN_OP or item.permission_type == 0:
        return "Invalid ACL filter: UNKNOWN operation or permission type"
    return None


def matches(item, acl) -> bool:
    """Whether a Describe/Delete filter matches a stored ACL (Kafka's AclBindingFilter)."""
    if item.resource_type_filter != a.ANY_RESOURCE and item.resource_type_filter != acl.resource_type:
        return False
    name, pattern = item.resource_name_filter, item.pattern_type_filter
    if pattern == a.PATTERN_MATCH:
        if name is not None and not (
                (acl.pattern_type == a.LITERAL and acl.resource_name in (name, a.WILDCARD))
                or (acl.pattern_type == a.PREFIXED and name.startswith(acl.resource_name))):
            return False
    else:
        if pattern != a.PATTERN_ANY and pattern != acl.pattern_type:
            return False
        if name is not None and name != acl.resource_name:
            return False
    if item.principal_filter is not None and item.principal_filter != acl.principal:
        return False
    if item.host_filter is not None and item.host_filter != acl.host:
        return False
    if item.operation != a.ANY_OP and item.operation != acl.operation:
        return False
    return item.permission_type == a.PERMISSION_ANY or item.permission_type == acl.permission_type


def _binding(acl) -> tuple:
    return (acl.resource_type, acl.resource_name, acl.pattern_type, acl.principal, acl.host, acl.operation,
            acl.permission_type)


def _sort_key(acl) -> tuple:
    return (acl.resource_type, acl.resource_name, acl.pattern_type, acl.principal, acl.host, acl.operation,
            acl.permission_type)
