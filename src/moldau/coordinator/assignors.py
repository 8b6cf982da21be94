"""The server-side assignors of KIP-848 consumer groups: `uniform` and `range`.

Theory of operation. An assignor is a pure function from the group's members (each with the
topics it subscribes to, by topic id), the subscribed topics' partition counts and the current
target assignment, to the new target assignment (member id -> topic id -> partitions). The
coordinator calls it whenever the group epoch moved past the target assignment epoch; the
members then converge on the result through reconciliation (reconciliation.py).

`uniform` (Kafka's default) spreads partitions evenly over the members subscribed to them and
is sticky: a partition stays with its current owner while that owner is subscribed to its
topic and not above its fair share, so a member joining or leaving moves as few partitions as
possible. With identical subscriptions every member ends with floor(P/M) or ceil(P/M)
partitions; with different subscriptions each partition goes to the least loaded member that
subscribes to its topic.

`range` assigns each topic separately: the members subscribed to the topic, sorted by member
id, each take a contiguous range of partitions, the first (P mod M) one more. Members that
subscribe to the same topics therefore get the same partition numbers of co-partitioned
topics (what joins in stream processing rely on). Stickiness: a member keeps its range as long
as the member set of the topic does not change.

Both iterate in sorted order only, so the result is deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass

UNIFORM = "uniform"
RANGE = "range"
ASSIGNORS = (UNIFORM, RANGE)

Assignment = dict[str, frozenset[int]]  # topic id -> partitions


@dataclass(frozen=True, slots=True)
class MemberSpec:
    member_id: str
    topic_ids: frozenset[str]  # subscribed topics that exist
    current: Assignment  # its current target assignment


def assign(name: str, members: list[MemberSpec], partition_counts: dict[str, int]) -> dict[str, Assignment]:
    if name == RANGE:
        return range_assign(members, partition_counts)
    return uniform_assign(members, partition_counts)


def range_assign(members: list[MemberSpec], partition_counts: dict[str, int]) -> dict[str, Assignment]:
    result: dict[str, dict[str, frozenset[int]]] = {m.member_id: {} for m in members}
    for topic_id in sorted(partition_counts):
        subscribers = sorted(m.member_id for m in members if topic_id in m.topic_ids)
        if not subscribers:
            continue
        count = partition_counts[topic_id]
        quota, extra = divmod(count, len(subscribers))
        start = 0
        for index, member_id in enumerate(subscribers):
            size = quota + (1 if index < extra else 0)
            if size:
                result[member_id][topic_id] = frozenset(range(start, start + size))
            start += size
    return result


def uniform_assign(members: list[MemberSpec], partition_counts: dict[str, int]) -> dict[str, Assignment]:
    """Sticky, balanced: keep what each member may keep, then hand out the rest least-loaded first."""
    by_id = {m.member_id: m for m in members}
    subscribed_total = {m.member_id: sum(partition_counts.get(t, 0) for t in m.topic_ids) for m in members}
    quota = _quotas(members, partition_counts)
    kept: dict[str, set[tuple[str, int]]] = {m.member_id: set() for m in members}
    taken: set[tuple[str, int]] = set()
    for member_id in sorted(by_id):
        spec = by_id[member_id]
        for topic_id in sorted(spec.current):
            if topic_id not in spec.topic_ids:
                continue
            for partition in sorted(spec.current[topic_id]):
                key = (topic_id, partition)
                if partition < partition_counts.get(topic_id, 0) and key not in taken \
                        and len(kept[member_id]) < quota[member_id]:
                    kept[member_id].add(key)
                    taken.add(key)
    for topic_id in sorted(partition_counts):
        subscribers = [m for m in sorted(by_id) if topic_id in by_id[m].topic_ids]
        if not subscribers:
            continue
        for partition in range(partition_counts[topic_id]):
            key = (topic_id, partition)
            if key in taken:
                continue
            # Least loaded relative to its quota; ties to the member with fewer options, then by id.
            owner = min(subscribers, key=lambda m: (len(kept[m]) - quota[m], len(kept[m]), subscribed_total[m], m))
            kept[owner].add(key)
            taken.add(key)
    return {member_id: _as_assignment(keys) for member_id, keys in kept.items()}


def _quotas(members: list[MemberSpec], partition_counts: dict[str, int]) -> dict[str, int]:
    """How many partitions each member may keep: its fair share of the partitions of its topics
    (rounded up), computed as if every member subscribing to a topic shared it evenly."""
    share: dict[str, float] = {m.member_id: 0.0 for m in members}
    for topic_id, count in partition_counts.items():
        subscribers = [m.member_id for m in members if topic_id in m.topic_ids]
        for member_id in subscribers:
            share[member_id] += count / len(subscribers)
    identical = len({m.topic_ids for m in members}) <= 1
    if identical and members:
        total = sum(partition_counts.get(t, 0) for t in members[0].topic_ids)
        base, extra = divmod(total, len(members))
        # Exactly `extra` members may hold base + 1: the ones already holding the most keep it.
        ordered = sorted(members, key=lambda m: (-sum(len(p) for t, p in m.current.items() if t in m.topic_ids),
                                                 m.member_id))
        return {m.member_id: base + (1 if i < extra else 0) for i, m in enumerate(ordered)}
    return {member_id: int(-(-value // 1)) for member_id, value in share.items()}


def _as_assignment(keys: set[tuple[str, int]]) -> Assignment:
    result: dict[str, set[int]] = {}
    for topic_id, partition in keys:
        result.setdefault(topic_id, set()).add(partition)
    return {topic_id: frozenset(parts) for topic_id, parts in result.items()}
