"""The states of a transaction and the transitions between them, as a literal table.

Theory of operation. A transactional id's metadata moves through Kafka's eight states (their
ids are what `__transaction_state` stores, their names what DescribeTransactions and
ListTransactions report):

    Empty ──AddPartitions/AddOffsets──▶ Ongoing ──EndTxn(commit)──▶ PrepareCommit ──markers──▶ CompleteCommit
      ▲  ╲                               │  │ ╲                                                  │
      │   ╲ EndTxn(abort), V2            │  │  ╲─EndTxn(abort) / timeout──▶ PrepareAbort ──markers──▶ CompleteAbort
      │    ╲─────────────────────────────┼──┼───────────────────────────────▲                    │
      │                                  │  └─InitProducerId (fence)──▶ PrepareEpochFence ──▶ PrepareAbort
      └──InitProducerId (new epoch)──────┴──── from Empty, CompleteCommit, CompleteAbort ◀─────────┘
    Empty / CompleteCommit / CompleteAbort ──transactional.id.expiration.ms──▶ Dead

`TRANSITIONS[old]` lists the states a transaction may enter from `old` (Kafka's
validPreviousStates, read the other way round; Transactions V2 adds Empty / CompleteCommit /
CompleteAbort → PrepareAbort, because a V2 client that is unsure of the server's state may
always abort). `check_transition` raises `InvalidTransition` for anything else: a missing
entry is our bug, never the client's — clients get error codes from the coordinator's checks
before any transition is prepared.
"""

from __future__ import annotations

import enum


class TxnState(enum.Enum):
    EMPTY = 0
    ONGOING = 1
    PREPARE_COMMIT = 2
    PREPARE_ABORT = 3
    COMPLETE_COMMIT = 4
    COMPLETE_ABORT = 5
    DEAD = 6
    PREPARE_EPOCH_FENCE = 7

    @property
    def kafka_name(self) -> str:
        return _NAMES[self]


_NAMES = {
    TxnState.EMPTY: "Empty",
    TxnState.ONGOING: "Ongoing",
    TxnState.PREPARE_COMMIT: "PrepareCommit",
    TxnState.PREPARE_ABORT: "PrepareAbort",
    TxnState.COMPLETE_COMMIT: "CompleteCommit",
    TxnState.COMPLETE_ABORT: "CompleteAbort",
    TxnState.DEAD: "Dead",
    TxnState.PREPARE_EPOCH_FENCE: "PrepareEpochFence",
}

EMPTY = TxnState.EMPTY
ONGOING = TxnState.ONGOING
PREPARE_COMMIT = TxnState.PREPARE_COMMIT
PREPARE_ABORT = TxnState.PREPARE_ABORT
COMPLETE_COMMIT = TxnState.COMPLETE_COMMIT
COMPLETE_ABORT = TxnState.COMPLETE_ABORT
DEAD = TxnState.DEAD
PREPARE_EPOCH_FENCE = TxnState.PREPARE_EPOCH_FENCE

TRANSITIONS: dict[TxnState, frozenset[TxnState]] = {
    EMPTY: frozenset({EMPTY, ONGOING, PREPARE_ABORT, DEAD}),
    ONGOING: frozenset({ONGOING, PREPARE_COMMIT, PREPARE_ABORT, PREPARE_EPOCH_FENCE}),
    PREPARE_COMMIT: frozenset({COMPLETE_COMMIT}),
    PREPARE_ABORT: frozenset({COMPLETE_ABORT}),
    COMPLETE_COMMIT: frozenset({EMPTY, ONGOING, PREPARE_ABORT, DEAD}),
    COMPLETE_ABORT: frozenset({EMPTY, ONGOING, PREPARE_ABORT, DEAD}),
    DEAD: frozenset(),
    PREPARE_EPOCH_FENCE: frozenset({PREPARE_ABORT}),
}

# States in which an idle transactional id may expire (transactional.id.expiration.ms).
EXPIRATION_ALLOWED = frozenset({EMPTY, COMPLETE_COMMIT, COMPLETE_ABORT})
# States with a transaction whose outcome is not written to every partition yet.
PENDING_STATES = frozenset({ONGOING, PREPARE_COMMIT, PREPARE_ABORT})


class InvalidTransition(AssertionError):
    """A transition the table does not allow: a coordinator bug, not a client error."""


def check_transition(old: TxnState, new: TxnState) -> None:
    if new not in TRANSITIONS[old]:
        raise InvalidTransition(f"transaction cannot go from {old.kafka_name} to {new.kafka_name}")


def parse_state(name: str) -> TxnState | None:
    """The state named `name` (Kafka's names, exact; ListTransactions filters)."""
    for state, kafka_name in _NAMES.items():
        if kafka_name == name:
            return state
    return None
