"""EndQuorumEpoch (key 54), versions 0–1: a resigning metadata quorum leader asks for a quick election."""

from moldau.broker import apis


@apis.api(54, 0, 1, listeners=apis.CONTROLLER_ONLY)
def handle(core, ctx: apis.RequestContext, request):
    return core.raft_request(ctx, request)
