"""Gas budgets (issue 6). Gas is deterministic, so a test fails the moment an operation's gas
passes its budget, and a regression shows in CI. Tests assert no times.

Where the issue's target is met, the budget is the target itself. Where it is not met yet
(see docs/performance.md for why and where the gas goes), the budget is today's figure plus
about 1%: it can only be lowered, never raised, as the work goes on.
"""

from __future__ import annotations

import pytest

from alpsim import bench
from alpsim.bench import TARGETS, measure_gas
from alpsim.client import OpenRequest
from conftest import PROFILES, embedded_system

# gas budgets: the exact (embedded) backend, not revm
deployed = pytest.fixture(scope="module", params=PROFILES, name="deployed")(embedded_system)

# operation -> budget in gas, on a fresh devnet (LP liquidity, prices set, no position open)
BUDGETS = {
    # targets met: the budget is the target
    "liquidate_batch_per_position": TARGETS["liquidate_batch_per_position"],
    # the basket (issue 28): a deposit or withdrawal values every holding at guarded oracle
    # prices, the payout stablecoin included (a depeg is a price), and walks the five listed
    # assets; the fresh devnet holds the stablecoin only. The 120,000 target was a one-asset
    # pool's (85,240 then): today's figure + ~1%
    "deposit": 139_000,  # 138,279 (bnb)
    "withdraw": 139_700,  # 138,217 (bnb)
    # targets not met yet by a lone execution: today's figure + ~1% (targets: open 300,000 in
    # all, close 200,000 in all, liquidation 120,000); batched, open and close meet theirs
    "request_open": 126_500,
    "execute_open": 242_700,  # 240,254 since the engine calls OpenPipeline (issue 27; was 235,254)
    "request_close": 63_000,
    "execute_close": 218_100,  # 215,947 since the engine calls ClosePipeline (issue 27; was 211,541)
    "liquidate": 190_700,  # 188,791 since the engine calls Triggers (issue 27; was 185,152)
    "execute_open_batch_per_request": 88_500,
    "execute_close_batch_per_request": 74_500,
    "price_update": 67_000,
    # the keeper's rejection of an order it cannot use (no target): today's figure + ~1%
    "reject_open": 79_300,
}


@pytest.fixture
def liquid(sim):
    """The deployed system with 50M of LP liquidity and a keeper price for every pair, as the
    bench's fresh devnet."""
    bench.prepare_fresh(sim)
    return sim


@pytest.fixture(scope="module")
def fresh_gas(deployed):
    """Every operation's gas on the bench's fresh devnet, measured once per profile for the
    module's tests that read it (gas is deterministic: the same state gives the same figures)."""
    snap = deployed.snapshot()
    bench.prepare_fresh(deployed)
    gas = measure_gas(deployed)
    deployed.revert(snap)
    return gas


def test_every_operation_is_within_its_gas_budget(fresh_gas):
    gas = fresh_gas
    over = {op: (gas[op], budget) for op, budget in BUDGETS.items()
            if budget is not None and gas[op] is not None and gas[op] > budget}
    assert not over, "over budget (gas, budget): " + ", ".join(f"{op} {g:,} > {b:,}" for op, (g, b) in over.items())


def test_batched_one_click_opens_and_closes_are_within_their_targets(fresh_gas):
    """Request plus its share of a 50-request keeper batch (one price update for all of them)
    meets the open and the close target; a lone execution does not yet (see BUDGETS)."""
    gas = fresh_gas
    assert gas["request_open"] + gas["execute_open_batch_per_request"] <= TARGETS["open_total"]
    assert gas["request_close"] + gas["execute_close_batch_per_request"] <= TARGETS["close_total"]
    assert gas["execute_open_batch_per_request"] < gas["execute_open"] / 2
    assert gas["execute_close_batch_per_request"] < gas["execute_close"] / 2
    assert gas["liquidate_batch_per_position"] < gas["liquidate"] / 2


def _open_on_both_sides(sim, rounds: int) -> None:
    """`rounds` x (a long and a short on each of the four pairs), from five traders, opened by
    one keeper batch."""
    for account in (1, 2, 3, 4, 5):
        sim.fund(account, 1_000_000)
    sim.approve_collateral(1, 2, 3, 4, 5)
    requests = [OpenRequest(1 + (r + i) % 5, pair, side, 200, 10)
                for r in range(rounds) for i, pair in enumerate(("BTC/USD", "ETH/USD", "SOL/USD", "AAPL/USD"))
                for side in ("long", "short")]
    pending = sim.request_opens(requests)
    receipt = sim.keeper.execute_open_batch([p.request_id for p in pending], [p.ciphertext for p in pending])
    opened = [e["requestId"] for e in sim.session.events(receipt, "PositionOpened")]
    assert sorted(opened) == sorted(p.request_id for p in pending) and len(opened) == 8 * rounds


def test_every_operation_costs_the_same_with_eight_positions_or_forty(liquid):
    """Every measured operation works on per-pair, per-side aggregates (NAV too, docs/mechanics.md §10): its
    gas depends on the pairs with open interest, never on the number of positions."""
    _open_on_both_sides(liquid, 1)
    few = measure_gas(liquid)
    _open_on_both_sides(liquid, 4)
    many = measure_gas(liquid)
    # within the 5% (the bench measures each operation in a new second, so each pays
    # its accrual); a loop over positions would add thousands of gas per position
    for op in bench.OPS:  # every operation the bench measures
        assert abs(many[op] - few[op]) <= few[op] * 5 // 100, (op, few[op], many[op])
