"""Planted bugs, for proving that the simulation catches them. Test-only; off unless a test
turns one on with `planted("name")`.

- "vote-without-log-check": voters grant (pre-)votes without the log-up-to-date check, so a
  stale node can win an election and a committed entry can be lost.
- "commit-without-majority": the leader advances the high watermark to its own log end
  without waiting for a majority.
- "skip-follower-flush": followers fetch again without fsyncing what they appended, so a
  crash can lose an entry the leader counted as replicated.
- "skip-follower-truncation": a follower told that its log diverges truncates only to the
  leader's end offset for the epoch, ignoring where its own epoch ends, so it can keep
  records the leader never had.
Partition replication (replication/) has its own, caught by the cluster simulation:
- "follower-skips-truncation": a partition follower ignores the leader's diverging epoch and
  keeps its unreplicated tail, so replicas diverge.
- "high-watermark-ignores-isr": a partition leader advances its high watermark to its own log
  end without waiting for the ISR, so acks=all answers before the followers have the batch.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

RAFT = frozenset({"vote-without-log-check", "commit-without-majority", "skip-follower-flush",
                  "skip-follower-truncation"})
REPLICATION = frozenset({"follower-skips-truncation", "high-watermark-ignores-isr"})
KNOWN = RAFT | REPLICATION
_active: set[str] = set()


def active(name: str) -> bool:
    return bool(_active) and name in _active


@contextmanager
def planted(name: str) -> Iterator[None]:
    assert name in KNOWN or name in TRANSACTIONS, f"unknown planted bug {name!r}"
    _active.add(name)
    try:
        yield
    finally:
        _active.discard(name)


# Transactions (log/, coordinator/) have theirs, caught by the transactional cluster simulation
# (tests/sim/txn_sim.py):
# - "lso-ignores-open-transactions": the last stable offset is the high watermark, so
#   read_committed consumers read transactions still open (and perhaps aborted later).
# - "aborted-transactions-not-returned": read_committed fetches name no aborted transactions,
#   so consumers cannot drop the records of aborted ones.
# - "coordinator-flips-prepared-commit": a coordinator that takes over a transaction decided
#   as commit (PrepareCommit) writes ABORT markers, so its partitions disagree.
# (Kept out of KNOWN: other simulations iterate over it, and need not catch these.)
TRANSACTIONS = frozenset({"lso-ignores-open-transactions", "aborted-transactions-not-returned",
                          "coordinator-flips-prepared-commit"})
