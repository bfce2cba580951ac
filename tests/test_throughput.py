"""The throughput workload of `make bench`: seeded, and the same work on both paths (fast:
batched keeper, requests sharing blocks; naive: plain web3 transact with gas estimation, one
keeper transaction per request) and every backend (embedded, revm, anvil). No timing is asserted."""

from __future__ import annotations

import pytest

from alpsim.client import Alpsim
from alpsim.throughput import FIRST_TRADER, make_workload, measure, prepare, run_workload


@pytest.fixture(scope="module")
def small(build):
    """10 traders, 20 round trips (in rounds of 10), on a fresh revm bnb devnet (the last test
    checks that the embedded devnet and anvil end in the same state)."""
    workload = make_workload(seed=3, traders=10, round_trips=20, per_round=10)
    sim = Alpsim.launch("bnb", "revm", build=build, seed=3, accounts=workload.accounts)
    prepare(sim, workload)
    yield sim, workload
    sim.stop()


def test_the_workload_is_seeded():
    a, b = make_workload(seed=5, traders=20, round_trips=60), make_workload(seed=5, traders=20, round_trips=60)
    assert a == b
    assert a != make_workload(seed=6, traders=20, round_trips=60)
    trips = [t for r in a.rounds for t in r.trips]
    assert len(trips) == 60 and a.accounts == FIRST_TRADER + 20
    assert a.rounds[-1].trips == []  # the last round only closes
    assert {t.pair for t in trips} > {"BTC/USD"} and max(t.leverage for t in trips) >= 500
    # within a round every trader holds at most one position
    assert all(len({t.trader for t in r.trips}) == len(r.trips) for r in a.rounds)


def test_fast_and_naive_paths_do_the_same_work(small):
    sim, workload = small
    snap = sim.snapshot()
    try:
        fast = run_workload(sim, workload, "fast")
        fast_positions = sim.positions()
    finally:
        sim.revert(snap)
    snap = sim.snapshot()  # a revert consumes its snapshot
    try:
        naive = run_workload(sim, workload, "naive")
    finally:
        sim.revert(snap)
    assert fast.summary() == naive.summary()
    assert fast.opened + fast.rejected == 20
    assert fast.round_trips == fast.opened == fast.closed_by_trader + fast.liquidations + fast.other_triggers
    assert fast.liquidations > 0  # high leverage and price moves between rounds
    assert fast_positions == []
    assert fast.final["final_nav_wad"] != 0
    # the fast path sends fewer transactions and reads nothing position by position
    assert fast.transactions < naive.transactions and fast.reads == 0 < naive.reads


def test_the_fast_path_is_deterministic(small):
    sim, workload = small
    outcomes = []
    for _ in range(2):
        snap = sim.snapshot()
        try:
            outcomes.append(run_workload(sim, workload, "fast").summary())
        finally:
            sim.revert(snap)
    assert outcomes[0] == outcomes[1]


def test_measure_reports_both_paths_and_their_ratio(small):
    sim, workload = small
    result = measure(sim, workload)
    assert result["round_trips"] == result["outcome"]["round_trips"] > 0
    assert result["liquidations"] == result["outcome"]["liquidations"]
    for path in ("fast", "naive"):
        assert result[path]["seconds"] > 0 and result[path]["round_trips_per_s"] > 0
    assert result["ratio"] == pytest.approx(result["fast"]["round_trips_per_s"] / result["naive"]["round_trips_per_s"],
                                            rel=0.02)


def test_revm_and_anvil_end_where_the_embedded_devnet_does(build):
    workload = make_workload(seed=4, traders=4, round_trips=8, per_round=4)
    outcomes = {}
    for backend in ("embedded", "revm", "anvil"):
        with Alpsim.launch("bnb", backend, build=build, seed=4, accounts=workload.accounts) as sim:
            prepare(sim, workload)
            snap = sim.snapshot()
            fast = run_workload(sim, workload, "fast").summary()
            sim.revert(snap)
            naive = run_workload(sim, workload, "naive").summary()
            assert fast == naive
            outcomes[backend] = fast
    assert outcomes["embedded"] == outcomes["revm"] == outcomes["anvil"]
