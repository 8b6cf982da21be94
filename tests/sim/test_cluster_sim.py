"""Seeded simulations of the whole cluster (cluster_sim.py), and proof that they catch planted bugs.

MOLDAU_SIM_SEEDS=N runs N seeds of the cluster (default 2000; CI runs the default);
MOLDAU_SIM_SEED=S runs only seed S (a failure prints that command).
"""

from __future__ import annotations

import logging
import os

import pytest

from moldau.raft import faults

from cluster_sim import ClusterSimulation, SimulationFailure

_SEEDS = int(os.environ.get("MOLDAU_SIM_SEEDS", "2000"))
_ONE = os.environ.get("MOLDAU_SIM_SEED")


def _seeds() -> list[int]:
    return [int(_ONE)] if _ONE else list(range(_SEEDS))


def _replay(seed: int, test: str) -> str:
    return f"MOLDAU_SIM_SEED={seed} python -m pytest tests/sim/test_cluster_sim.py -k {test}"


@pytest.fixture(autouse=True)
def _quiet_logs():
    # Thousands of elections, fencings and ISR changes: their log lines are noise here.
    logger = logging.getLogger("moldau")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    yield
    logger.setLevel(level)


def test_cluster_simulation():
    failures = []
    for seed in _seeds():
        simulation = ClusterSimulation(seed)
        try:
            simulation.run()
        except SimulationFailure as failure:
            failures.append(f"seed {seed} ({simulation.describe()}): {failure}\n"
                            f"  replay: {_replay(seed, 'test_cluster_simulation')}")
    assert not failures, f"{len(failures)} of {len(_seeds())} seeds failed:\n" + "\n".join(failures[:5])


@pytest.mark.parametrize("bug", ["follower-skips-truncation", "high-watermark-ignores-isr"])
def test_simulation_catches_planted_bug(bug):
    """With a bug planted in replication, some seed among the first 300 must fail."""
    with faults.planted(bug):
        for seed in range(300):
            try:
                ClusterSimulation(seed).run()
            except SimulationFailure:
                return
    pytest.fail(f"no seed in 0..299 detected the planted bug {bug!r}")
