"""BeginQuorumEpoch (key 53), versions 0–1: a new metadata quorum leader announces its epoch."""

from moldau.broker import apis


@apis.api(53, 0, 1, listeners=apis.CONTROLLER_ONLY)
def handle(core, ctx: apis.RequestContext, request):
    return core.raft_request(ctx, request)
