"""Seeded simulations of the whole cluster (cluster_sim.py), and proof that they catch planted bugs.

MOLDAU_SIM_SEEDS=N runs N seeds of the cluster (default 2000; CI runs the default);
MOLDAU_SIM_SEED=S runs only seed S (a failure prints that command).
"""

from __future__ import annotations

import logging
import os
import traceback

import pytest

from moldau.raft import faults

from cluster_sim import ClusterSimulation, SimulationFailure, quorum_changes_after_a_broker_dies
from sim_harness import forked_pool

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


def _run_seeds(seeds: list[int]) -> list[str]:
    logging.getLogger("moldau").setLevel(logging.CRITICAL)
    failures = []
    for seed in seeds:
        simulation = ClusterSimulation(seed)
        try:
            simulation.run()
        except SimulationFailure as failure:
            failures.append(f"seed {seed} ({simulation.describe()}): {failure}\n"
                            f"  replay: {_replay(seed, 'test_cluster_simulation')}")
        except Exception:  # a crash of the code under test is a failure of its seed, reported as text
            failures.append(f"seed {seed} ({simulation.describe()}) crashed:\n{traceback.format_exc(limit=-8)}"
                            f"  replay: {_replay(seed, 'test_cluster_simulation')}")
    return failures


def test_cluster_simulation():
    """Every seed is independent and deterministic, so they run in one process per core."""
    seeds = _seeds()
    workers = max(1, min(os.cpu_count() or 1, len(seeds) // 50 or 1))
    if workers == 1:
        failures = _run_seeds(seeds)
    else:
        with forked_pool(workers) as pool:
            failures = [f for chunk in pool.map(_run_seeds, [seeds[i::workers] for i in range(workers)]) for f in chunk]
    assert not failures, f"{len(failures)} of {len(seeds)} seeds failed:\n" + "\n".join(sorted(failures)[:5])


@pytest.mark.parametrize("bug", sorted(faults.REPLICATION))
def test_simulation_catches_planted_bug(bug):
    """With a bug planted in replication, some seed among the first 300 must fail."""
    with faults.planted(bug):
        for seed in range(300):
            try:
                ClusterSimulation(seed).run()
            except SimulationFailure:
                return
    pytest.fail(f"no seed in 0..299 detected the planted bug {bug!r}")


def test_a_dead_broker_does_not_interrupt_the_metadata_quorum():
    """Found under load on a real 3-node cluster: after a broker died, the quorum's leader
    resigned ("no majority fetched") again and again, because a survivor's metadata Fetch shared
    a connection with its AlterPartition and heartbeats, which the controller answers only once
    committed — and the commit waited for that Fetch's answer. The simulated network answers a
    connection's requests in order, as real brokers do; the quorum's leader must not change."""
    seeds = [int(_ONE)] if _ONE else list(range(12))
    failures = []
    for seed in seeds:
        changes = quorum_changes_after_a_broker_dies(seed)
        if changes:
            failures.append(f"seed {seed}: {changes[0]}\n  replay: "
                            f"{_replay(seed, 'test_a_dead_broker_does_not_interrupt_the_metadata_quorum')}")
    assert not failures, f"{len(failures)} of {len(seeds)} seeds saw the quorum change:\n" + "\n".join(failures[:5])
