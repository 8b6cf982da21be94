"""ElectLeaders (key 43), versions 0–2: preferred or unclean leader election.

Run by the active controller. PREFERRED (type 0) gives a partition to its first replica when
that replica is in the ISR and alive (ELECTION_NOT_NEEDED if it leads already,
PREFERRED_LEADER_NOT_AVAILABLE if it cannot); UNCLEAN (type 1) gives a partition without a
leader to an in-sync replica or, failing that, to any live replica — possibly losing what only
the missing replicas had, which is why only an operator may ask (ELECTION_NOT_NEEDED when it
has a leader, ELIGIBLE_LEADERS_NOT_AVAILABLE when no replica is alive). With
`topic_partitions` null every partition is considered and only the partitions an election
changed are listed, as Kafka does.
"""

from kio.schema.errors import ErrorCode

from moldau.broker import apis
from moldau.controller import partitions as pc
from moldau.controller.controller import ControllerError
from moldau.security import acls as a

PREFERRED, UNCLEAN = 0, 1


@apis.api(43, 0, 2)
def handle(core, ctx: apis.RequestContext, request):
    return core.on_controller(ctx, request, _run)


def _run(core, ctx: apis.RequestContext, request) -> dict:
    election_type = getattr(request, "election_type", PREFERRED)  # v0 has no type: preferred
    if not core.authorize(ctx, a.ALTER, a.CLUSTER, a.CLUSTER_NAME):
        return {"throttle_time": 0, "error_code": ErrorCode.cluster_authorization_failed, "replica_election_results": [
            {"topic": t.topic, "partition_result": [_result(i, ErrorCode.cluster_authorization_failed, None) for i in t.partitions]}
            for t in request.topic_partitions or ()]}
    if election_type not in (PREFERRED, UNCLEAN):
        return {"throttle_time": 0, "error_code": ErrorCode.invalid_request, "replica_election_results": []}
    election = pc.PREFERRED if election_type == PREFERRED else pc.UNCLEAN
    everything = request.topic_partitions is None
    if everything:
        image = core.controller.image
        wanted = [(name, sorted(image.topics_by_name[name].partitions)) for name in sorted(image.topics_by_name)]
    else:
        wanted = [(t.topic, list(t.partitions)) for t in request.topic_partitions]
    results = []
    for topic, indexes in wanted:
        partitions = []
        for index in indexes:
            code, message = _elect(core, topic, index, election, ctx.now_ms)
            if not everything or code == ErrorCode.none:
                partitions.append({"partition_id": index, "error_code": code, "error_message": message})
        if partitions:
            results.append({"topic": topic, "partition_result": partitions})
    return {"throttle_time": 0, "error_code": ErrorCode.none, "replica_election_results": results}


_MESSAGES = {
    ErrorCode.election_not_needed: "Leader election not needed for topic partition.",
    ErrorCode.preferred_leader_not_available: "Failed to elect leader: the preferred replica is not in the ISR or not alive.",
    ErrorCode.eligible_leaders_not_available: "Failed to elect leader: no replica is alive.",
}


def _elect(core, topic: str, index: int, election: str, now_ms: int) -> tuple[ErrorCode, str | None]:
    try:
        code = core.controller.elect_leaders(topic, index, election, now_ms)
    except ControllerError as error:
        return error.error_code, str(error)
    return code, _MESSAGES.get(code)


def _result(index: int, code: ErrorCode, message: str | None) -> dict:
    return {"partition_id": index, "error_code": code, "error_message": message}
