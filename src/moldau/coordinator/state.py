"""The classic group states and the transitions between them, as a literal table.

Theory of operation. A classic consumer group moves through five states (Kafka's names):

    Empty ──join──▶ PreparingRebalance ──all joined / rebalance timeout──▶ CompletingRebalance
      ▲                  ▲        │                                           │
      │                  │        └──no member rejoined──▶ Empty              │ leader's SyncGroup
      │                  └────── member joins, leaves, changes or expires ◀── Stable ◀┘
    (any state) ──DeleteGroups / group unloaded──▶ Dead

`TRANSITIONS[old]` lists the states a group may enter from `old`; `check_transition` raises
`InvalidTransition` for anything else — a missing entry is our bug, never the peer's. Kafka
allows exactly these moves (GroupMetadata.validPreviousStates): CompletingRebalance only from
PreparingRebalance, Stable only from CompletingRebalance, Empty only from PreparingRebalance.
"""

from __future__ import annotations

import enum


class GroupState(enum.Enum):
    EMPTY = "Empty"
    PREPARING_REBALANCE = "PreparingRebalance"
    COMPLETING_REBALANCE = "CompletingRebalance"
    STABLE = "Stable"
    DEAD = "Dead"


EMPTY = GroupState.EMPTY
PREPARING_REBALANCE = GroupState.PREPARING_REBALANCE
COMPLETING_REBALANCE = GroupState.COMPLETING_REBALANCE
STABLE = GroupState.STABLE
DEAD = GroupState.DEAD

TRANSITIONS: dict[GroupState, frozenset[GroupState]] = {
    EMPTY: frozenset({PREPARING_REBALANCE, DEAD}),
    PREPARING_REBALANCE: frozenset({COMPLETING_REBALANCE, EMPTY, DEAD}),
    COMPLETING_REBALANCE: frozenset({PREPARING_REBALANCE, STABLE, DEAD}),
    STABLE: frozenset({PREPARING_REBALANCE, DEAD}),
    DEAD: frozenset({DEAD}),
}


class InvalidTransition(AssertionError):
    """A transition the table does not allow: a coordinator bug, not a client error."""


def check_transition(old: GroupState, new: GroupState) -> None:
    if new not in TRANSITIONS[old]:
        raise InvalidTransition(f"group cannot go from {old.value} to {new.value}")


def parse_state(name: str) -> GroupState | None:
    """The state named `name` (ListGroups filters; case-insensitive as Kafka's parser)."""
    for state in GroupState:
        if state.value.lower() == name.lower():
            return state
    return None
