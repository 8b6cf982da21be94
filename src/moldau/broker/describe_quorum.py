"""DescribeQuorum (key 55), versions 0–2: the metadata quorum as its leader sees it.

`kafka-metadata-quorum.sh describe --status|--replication` sends it to any broker; only the
quorum's leader knows how far every voter and observer has replicated, so another node
forwards it there (as Kafka's brokers do) and relays the answer.
"""

from moldau.broker import apis


@apis.api(55, 0, 2)
def handle(core, ctx: apis.RequestContext, request):
    if core.raft.is_leader or ctx.forwarded or core.controller_id() < 0:
        return core.raft_request(ctx, request)
    return core.channel.forward(ctx, request, lambda core, ctx, request: core.raft_request(ctx, request))
