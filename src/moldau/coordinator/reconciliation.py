"""How one member of a KIP-848 group moves from its current assignment to its target assignment.

Theory of operation. The group has a target assignment at `target_epoch` (assignors.py); each
member has a current assignment at its `member_epoch`. Reconciliation moves a member towards
its target without ever letting two members own a partition at once:

1. Partitions the member owns but its target does not include are revoked first: the member
   stays in its epoch, in state UNREVOKED_PARTITIONS, and its heartbeat response carries the
   assignment without them. It leaves that state once a heartbeat's owned partitions no longer
   include any of them (or the coordinator fences it after its rebalance timeout).
2. Then the member moves to the target epoch and receives the partitions of its target that no
   other member still owns (assigned or pending revocation). If some are still owned elsewhere
   it is in state UNRELEASED_PARTITIONS and picks them up on a later heartbeat, after their
   previous owner revoked them; otherwise it is STABLE.

`MEMBER_TRANSITIONS` is the literal table of the member states (Kafka's MemberState, with its
byte values as stored in ConsumerGroupCurrentMemberAssignment records); `reconcile` is a pure
function of the member's current state, its target, the heartbeat's owned partitions and who
else owns what, so it is tested on its own.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Callable


class MemberState(enum.IntEnum):
    STABLE = 0
    UNREVOKED_PARTITIONS = 1
    UNRELEASED_PARTITIONS = 2
    UNKNOWN = 127


STABLE = MemberState.STABLE
UNREVOKED_PARTITIONS = MemberState.UNREVOKED_PARTITIONS
UNRELEASED_PARTITIONS = MemberState.UNRELEASED_PARTITIONS

# Every move a member's reconciliation may make (a state may always stay where it is).
MEMBER_TRANSITIONS: dict[MemberState, frozenset[MemberState]] = {
    STABLE: frozenset({STABLE, UNREVOKED_PARTITIONS, UNRELEASED_PARTITIONS}),
    UNREVOKED_PARTITIONS: frozenset({UNREVOKED_PARTITIONS, STABLE, UNRELEASED_PARTITIONS}),
    UNRELEASED_PARTITIONS: frozenset({UNRELEASED_PARTITIONS, STABLE, UNREVOKED_PARTITIONS}),
    MemberState.UNKNOWN: frozenset({STABLE, UNREVOKED_PARTITIONS, UNRELEASED_PARTITIONS}),
}

Assignment = dict[str, frozenset[int]]


@dataclass(frozen=True, slots=True)
class CurrentAssignment:
    member_epoch: int
    previous_member_epoch: int
    state: MemberState
    assigned: Assignment
    pending_revocation: Assignment


def reconcile(current: CurrentAssignment, target: Assignment, target_epoch: int,
              owned: Assignment | None, owned_elsewhere: Callable[[str, int], bool]) -> CurrentAssignment:
    """The member's next current assignment. `owned` is what the heartbeat says the member owns
    (None: the heartbeat did not say, so it is assumed to still own everything);
    `owned_elsewhere(topic_id, partition)` tells whether another member still owns a partition."""
    if current.state == UNREVOKED_PARTITIONS:
        if _still_owns(current.pending_revocation, owned):
            return current
        return _next(current, current.member_epoch, target, target_epoch, owned, owned_elsewhere)
    if current.state == STABLE and current.member_epoch == target_epoch:
        return current
    return _next(current, current.member_epoch, target, target_epoch, owned, owned_elsewhere)


def _next(current: CurrentAssignment, member_epoch: int, target: Assignment, target_epoch: int,
          owned: Assignment | None, owned_elsewhere: Callable[[str, int], bool]) -> CurrentAssignment:
    kept: dict[str, frozenset[int]] = {}
    revoking: dict[str, frozenset[int]] = {}
    free_new: dict[str, frozenset[int]] = {}
    unreleased = False
    for topic_id in sorted(set(target) | set(current.assigned)):
        wanted = target.get(topic_id, frozenset())
        have = current.assigned.get(topic_id, frozenset())
        _put(kept, topic_id, have & wanted)
        _put(revoking, topic_id, have - wanted)
        incoming = wanted - have
        available = frozenset(p for p in incoming if not owned_elsewhere(topic_id, p))
        unreleased = unreleased or len(available) < len(incoming)
        _put(free_new, topic_id, available)
    if revoking and _still_owns(revoking, owned):
        # Revoke first; new partitions come in the next epoch, once these are released.
        return _checked(current, CurrentAssignment(member_epoch, current.previous_member_epoch,
                                                   UNREVOKED_PARTITIONS, kept, revoking))
    assigned = _merge(kept, free_new)
    state = UNRELEASED_PARTITIONS if unreleased else STABLE
    previous = current.member_epoch if target_epoch != current.member_epoch else current.previous_member_epoch
    return _checked(current, CurrentAssignment(target_epoch, previous, state, assigned, {}))


def _still_owns(partitions: Assignment, owned: Assignment | None) -> bool:
    if owned is None:
        return bool(partitions)
    return any(partitions[t] & owned.get(t, frozenset()) for t in partitions)


def _put(into: dict[str, frozenset[int]], topic_id: str, partitions: frozenset[int]) -> None:
    if partitions:
        into[topic_id] = partitions


def _merge(a: Assignment, b: Assignment) -> Assignment:
    merged = dict(a)
    for topic_id, partitions in b.items():
        merged[topic_id] = merged.get(topic_id, frozenset()) | partitions
    return merged


def _checked(old: CurrentAssignment, new: CurrentAssignment) -> CurrentAssignment:
    if new.state not in MEMBER_TRANSITIONS[old.state]:
        raise AssertionError(f"member cannot go from {old.state.name} to {new.state.name}")
    return new


def owns_subset(owned: Assignment | None, assigned: Assignment) -> bool:
    """Whether the heartbeat's owned partitions are a subset of `assigned` (None counts as yes)."""
    if owned is None:
        return True
    return all(partitions <= assigned.get(t, frozenset()) for t, partitions in owned.items())
