"""Vote (key 52), versions 0–2: a candidate asks for this voter's vote (KRaft, raft/).

Served on the controller listener; the metadata quorum's client (core.raft) decides.
"""

from moldau.broker import apis


@apis.api(52, 0, 2, listeners=apis.CONTROLLER_ONLY)
def handle(core, ctx: apis.RequestContext, request):
    return core.raft_request(ctx, request)
