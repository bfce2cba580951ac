"""The keeper as the adversary (alpsim.mev.keeper_adversary, docs/mev.md): the price guard refuses
a keeper price beyond its band with the guard's reason, and inside the band the shaded
execution costs the trader what the fill arithmetic of docs/mechanics.md sections 7 and 8 says."""

from __future__ import annotations

from decimal import Decimal

import pytest

from alpsim.errors import ConfigError
from alpsim.mev import keeper_adversary as ka
from alpsim.protocol import RejectReason

WAD = 10**18
P = 60_000 * WAD
"""BTC's start price, the reference feed's answer all along."""
BREAKER_BPS = 100
LONG = {"account": 10, "pair": "BTC/USD", "is_long": True, "leverage": 10, "amount_usd": Decimal(1000),
        "take_profit": Decimal(0), "stop_loss": Decimal(0)}
SHORT = {**LONG, "is_long": False}


@pytest.fixture(scope="module")
def system(build):
    sim = ka.launch_system("bnb", 1, build)
    yield sim
    sim.stop()


def _execute_at(sim, spec: dict, keeper_price_wad: int) -> dict:
    snap = sim.snapshot()
    try:
        ka.keep_price(sim, spec["pair"], P)
        pending = ka.request_order(sim, spec)
        before = sim.collateral_units(spec["account"])
        ka.keep_price(sim, spec["pair"], keeper_price_wad)
        receipt = sim.keeper.execute_open(pending.request_id, pending.ciphertext)
        return {"events": {e["event"]: e for e in sim.session.events(receipt)},
                "refund": sim.collateral_units(spec["account"]) - before, "amount": pending.amount_units}
    finally:
        sim.revert(snap)


@pytest.mark.parametrize("spec", [LONG, SHORT], ids=["long", "short"])
def test_a_shaded_price_beyond_the_band_is_refused_with_the_guard_error(system, spec):
    assert ka.guard_settings(system)["circuit_breaker_bps"] == BREAKER_BPS
    # the breaker's edge against the trader: 1% above the reference for a buyer, below for a seller
    edge = ka.shaded_price_wad(P, spec["is_long"], 0, BREAKER_BPS)
    assert edge == (P * 101 // 100 if spec["is_long"] else P * 99 // 100)
    at_edge = _execute_at(system, spec, edge)
    assert "PositionOpened" in at_edge["events"]
    assert at_edge["events"]["PositionOpened"]["charges"]["oraclePrice"] == edge  # the keeper's price, not the reference
    one_wei_beyond = edge + 1 if spec["is_long"] else edge - 1
    beyond = _execute_at(system, spec, one_wei_beyond)
    rejected = beyond["events"]["OpenRejected"]
    assert RejectReason(rejected["reason"]) == RejectReason.CIRCUIT_BREAKER
    fee = system.contracts["trading"].call("executionFeeTokens")
    assert beyond["refund"] == beyond["amount"] - fee == rejected["refundTokens"]


def test_inside_the_band_the_traders_extra_cost_is_the_hand_arithmetic(system):
    edge = P * (10_000 + BREAKER_BPS) // 10_000
    honest = ka.open_and_close(system, LONG, P, P)
    shaded = ka.open_and_close(system, LONG, edge, P)
    assert honest["rejected"] is None and shaded["rejected"] is None
    assert (honest["oracle_wad"], shaded["oracle_wad"]) == (P, edge)
    # section 7: the slippage does not depend on the price; a buyer fills at ceil(oracle x (1 + s))
    s = honest["slippage_wad"]
    assert shaded["slippage_wad"] == s
    fill_h, fill_s = -(-P * (WAD + s) // WAD), -(-edge * (WAD + s) // WAD)
    assert (honest["fill_wad"], shaded["fill_wad"]) == (fill_h, fill_s)
    notional = honest["notional_wad"]
    assert shaded["notional_wad"] == notional
    qty_h, qty_s = notional * WAD // fill_h, notional * WAD // fill_s
    assert (honest["qty"], shaded["qty"]) == (qty_h, qty_s)
    # both closed at the same price: the trader's extra cost is the lost pnl, qty x (exit - entry)
    exit_wad = honest["exit_wad"]
    assert shaded["exit_wad"] == exit_wad
    extra_wad = (qty_h * (exit_wad - fill_h) - qty_s * (exit_wad - fill_s)) // WAD
    assert abs((honest["pnl_wad"] - shaded["pnl_wad"]) - extra_wad) <= 1
    # about 1% of the notional: the entry is 1% higher on the same notional, (1 - 1/1.01) = 99.01 bp
    extra_bps = Decimal(extra_wad) / Decimal(notional) * 10_000
    assert Decimal("98.9") < extra_bps < Decimal("99.1")
    # the pool keeps what the trader loses (less the treasury's half of the smaller close fee)
    pool_gain = shaded["pool_after"] - honest["pool_after"]
    payout_loss = honest["payout_tokens"] - shaded["payout_tokens"]
    assert 0 < payout_loss and abs(pool_gain - payout_loss) < payout_loss // 100


def test_measure_keeper_adversary_keys_and_refusals():
    with pytest.raises(ConfigError, match="unknown chain"):
        ka.measure_keeper_adversary("solana")
    for orders in (0, True, 2.5, ka.MAX_ORDERS + 1):
        with pytest.raises(ConfigError, match="orders must be"):
            ka.measure_keeper_adversary("bnb", orders)
    with pytest.raises(ConfigError, match="seed must be"):
        ka.measure_keeper_adversary("bnb", 2, -1)
    result = ka.measure_keeper_adversary("bnb", 2, 1)
    assert set(result) == {"chain", "orders", "seed", "backend", "guard", "execution_fee_usd", "lp_stake", "rows",
                           "cannot"}
    assert [r["take"].split(" ")[0] for r in result["rows"]] == ["shade", "shade", "the", "shade", "wait",
                                                                 "front-run", "refuse"]
    for row in result["rows"]:
        assert {"take", "orders", "per_1000_orders_usd", "bp_of_notional", "gainer", "bound"} <= set(row)
        assert "." in row["bound"] or "slippage" in row["bound"]  # a contract's function or the rule
    outcomes = " ".join(r["outcome"] for r in result["cannot"])
    for error in ("CommitmentMismatch", "CircuitBreaker", "PriceStale", "UndecryptableOrder", "RequestNotExecutable"):
        assert error in outcomes
    expired = result["cannot"][-1]
    assert expired["trader_refund_usd"] == expired["escrow_usd"] and Decimal(expired["keeper_keeps_usd"]) == 0
