"""The execution fee, docs/mechanics.md section 4 (fee table, "execution" row) with sections 5.1 to 5.4 and
5.6 and the chain profiles of section 12: 0.50 USD on bnb, 0.20 USD on arbitrum, taken from
the amount sent and paid to the keeper that executes the open, on accepted and rejected opens
alike; never charged on closes; a request that does not cover it reverts."""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction

import pytest

from alpsim import errors
from alpsim.client import OrderRejected

WAD = 10**18
TRADER = 1
PROFILE_FEE_USD = {"bnb": Decimal("0.50"), "arbitrum": Decimal("0.20")}


def execution_fee_tokens(sim) -> int:
    """The profile's USD fee in collateral units, rounded up (exact for both profiles)."""
    return math.ceil(Fraction(PROFILE_FEE_USD[sim.profile.name]) * 10**sim.decimals)


def units_to_amount(sim, units: int) -> Decimal:
    return Decimal(units).scaleb(-sim.decimals)


def last_receipt(sim) -> dict:
    w3 = sim.devnet.w3
    return w3.eth.get_transaction_receipt(w3.eth.get_block("latest")["transactions"][-1])


def balances(sim) -> dict[str, int]:
    return {
        "trader": sim.collateral_units(TRADER),
        "keeper": sim.collateral_units(sim.keeper.address),
        "escrow": sim.collateral_units(sim.contracts["trading"].address),
        "pool": sim.collateral_units(sim.contracts["pool"].address),
        "treasury": sim.collateral_units(sim.deployment.treasury),
    }


def delta(before: dict, after: dict) -> dict:
    return {k: after[k] - before[k] for k in before}


def test_execution_fee_is_the_chain_profiles(sim):
    assert sim.profile.execution_fee_usd == PROFILE_FEE_USD[sim.profile.name]
    x = execution_fee_tokens(sim)
    assert x == {"bnb": 5 * 10**17, "arbitrum": 200_000}[sim.profile.name]
    assert sim.contracts["trading"].call("executionFeeTokens") == x
    assert sim.settings.execution_fee_usd == int(PROFILE_FEE_USD[sim.profile.name] * WAD)


def test_accepted_open_pays_the_keeper_out_of_the_amount(mirror):
    sim = mirror.sim
    x = execution_fee_tokens(sim)
    mirror.fund(TRADER, 1000)
    before = balances(sim)
    opened = mirror.open(TRADER, "BTC/USD", "long", 1000, 10)
    receipt = last_receipt(sim)
    p = opened.position
    (paid,) = sim.session.events(receipt, "ExecutionFeePaid")
    assert paid["requestId"] == opened.request_id
    assert paid["keeper"] == sim.keeper.address
    assert paid["amountTokens"] == x
    assert opened.execution_fee_tokens == x
    # the fee comes out of A before sizing: M = (A - X) / (1 + L f)
    net = sim.to_units(1000) - x
    assert p.margin_tokens == math.floor(net / (1 + 10 * Fraction(8, 10_000)))
    assert p.margin_tokens + opened.open_fee_tokens == net
    d = delta(before, balances(sim))
    assert d["trader"] == -sim.to_units(1000)
    assert d["keeper"] == x
    assert d["escrow"] == p.margin_tokens
    assert d["pool"] + d["treasury"] == opened.open_fee_tokens


@pytest.mark.parametrize("pair, leverage, amount, reason", [
    ("BTC/USD", 1002, 1000, "LeverageOutOfRange"),
    ("SOL/USD", 500, 1000, "ExtremeLeverageNotOffered"),
    ("ETH/USD", 5, 10, "NotionalTooSmall"),
])
def test_rejected_open_still_pays_the_keeper(mirror, pair, leverage, amount, reason):
    sim = mirror.sim
    x = execution_fee_tokens(sim)
    mirror.fund(TRADER, amount)
    before = balances(sim)
    with pytest.raises(OrderRejected) as rejected:
        mirror.open(TRADER, pair, "long", amount, leverage)
    err = rejected.value
    assert err.reason == reason
    assert err.execution_fee_tokens == x
    assert err.refund_tokens == sim.to_units(amount) - x
    receipt = last_receipt(sim)
    (paid,) = sim.session.events(receipt, "ExecutionFeePaid")
    assert paid["keeper"] == sim.keeper.address and paid["amountTokens"] == x
    (event,) = sim.session.events(receipt, "OpenRejected")
    assert event["refundTokens"] == sim.to_units(amount) - x and event["executionFeeTokens"] == x
    assert sim.session.events(receipt, "PositionOpened") == []
    d = delta(before, balances(sim))
    assert d == {"trader": -x, "keeper": x, "escrow": 0, "pool": 0, "treasury": 0}


def test_fee_goes_to_whichever_keeper_executes(mirror):
    """A second account given the KEEPER role executes: the fee is paid to it (msg.sender),
    not to the bundled keeper."""
    sim = mirror.sim
    x = execution_fee_tokens(sim)
    trading = sim.contracts["trading"]
    other = sim.address(5)
    trading.transact("grantRole", trading.call("KEEPER_ROLE"), other, sender=sim.deployment.deployer)
    mirror.fund(TRADER, 1000)
    pending = sim.request_open(TRADER, "BTC/USD", "long", 1000, 10)
    bundled_before = sim.collateral_units(sim.keeper.address)
    other_before = sim.collateral_units(other)
    o = pending.order
    order = (o.pair_id, o.is_long, o.leverage, o.take_profit, o.stop_loss, o.acceptable_price)
    receipt = trading.transact("executeOpen", pending.request_id, order, pending.salt,
                               [(0, 60_000 * WAD)], sender=other)
    assert len(sim.session.events(receipt, "PositionOpened")) == 1
    (paid,) = sim.session.events(receipt, "ExecutionFeePaid")
    assert paid["keeper"] == other and paid["amountTokens"] == x
    assert sim.collateral_units(other) - other_before == x
    assert sim.collateral_units(sim.keeper.address) == bundled_before


def test_closes_and_triggers_charge_no_execution_fee(mirror):
    sim = mirror.sim
    mirror.fund(TRADER, 2000)
    a = mirror.open(TRADER, "BTC/USD", "long", 1000, 10).position
    b = mirror.open(TRADER, "ETH/USD", "short", 1000, 10, stop_loss=3_050).position
    mirror.set_prices({"BTC/USD": 60_600, "ETH/USD": 3_060})
    before = balances(sim)
    closed = mirror.close(TRADER, a.id)
    d = delta(before, balances(sim))
    assert d["keeper"] == 0
    assert d["trader"] == closed.payout_tokens
    assert closed.payout_wad == a.margin_wad + closed.pnl_wad - closed.close_fee_wad - closed.holding_wad \
        - closed.funding_wad  # no execution fee in the settlement
    assert d["trader"] + d["pool"] + d["treasury"] == a.margin_tokens == -d["escrow"]
    before = balances(sim)
    (stopped,) = mirror.run_triggers([b.id])
    assert stopped.reason == "stop_loss"
    d = delta(before, balances(sim))
    assert d["keeper"] == 0
    assert d["trader"] == stopped.payout_tokens
    assert d["trader"] + d["pool"] + d["treasury"] == b.margin_tokens == -d["escrow"]


def test_request_open_at_or_below_the_fee_reverts_and_changes_nothing(mirror):
    sim = mirror.sim
    x = execution_fee_tokens(sim)
    mirror.fund(TRADER, 10)
    trading = sim.contracts["trading"]
    next_id = trading.call("nextRequestId")
    before = balances(sim)
    for units in (x, x - 1, 1):
        with pytest.raises(errors.AmountBelowExecutionFee) as refused:
            mirror.request_open(TRADER, "BTC/USD", "long", units_to_amount(sim, units), 10)
        assert refused.value.amountIn == units
        assert refused.value.executionFee == x
        assert balances(sim) == before
        assert trading.call("nextRequestId") == next_id
    mirror.check()
    # one unit above the fee is accepted; executed, the single unit left is too small a
    # notional: rejected, the unit refunded and the fee kept by the keeper
    pending = mirror.request_open(TRADER, "BTC/USD", "long", units_to_amount(sim, x + 1), 10)
    assert pending.request_id == next_id
    with pytest.raises(OrderRejected) as rejected:
        mirror.execute_open(pending)
    assert rejected.value.reason == "NotionalTooSmall"
    assert rejected.value.refund_tokens == 1
    d = delta(before, balances(sim))
    assert d == {"trader": -x, "keeper": x, "escrow": 0, "pool": 0, "treasury": 0}


def test_cancelled_request_is_refunded_in_full(mirror):
    """docs/mechanics.md §5.6: an open no keeper executed is cancelled after 10 blocks and A comes back in
    full: no keeper executed it, so no execution fee."""
    sim = mirror.sim
    mirror.fund(TRADER, 1000)
    before = balances(sim)
    pending = mirror.request_open(TRADER, "BTC/USD", "long", 1000, 10)
    assert delta(before, balances(sim))["escrow"] == sim.to_units(1000)
    mirror.mine(11)
    mirror.cancel(TRADER, pending.request_id)
    assert balances(sim) == before
