"""Rejected opens (docs/mechanics.md section 5.4, with 3, 5.5, 7, 8 and 10 for the limits checked): every
check an open can fail is a rejection, not a revert. The request is marked Rejected, the
amount less the execution fee goes back to the trader, the execution fee stays with the
keeper, and the event names the reason; the reference model agrees (the mirror compares the
chain's reason with the model's on every execution, and the whole state at the end of each
test). Only a reveal that does not match the commitment reverts. Runs on both chain profiles."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from alpsim import errors
from alpsim.client import OrderRejected, PendingOpen
from alpsim.mirror import Mirror
from alpsim.orders import commitment, seal
from alpsim.protocol import Order
from conftest import funded_mirror

TRADER = 1
OTHER = 2
TRADERS = (TRADER, OTHER)
TRADER_FUNDS = 1_000_000
EXECUTION_FEE_USD = {"bnb": Decimal("0.50"), "arbitrum": Decimal("0.20")}  # docs/mechanics.md section 4 / 12
WAD = 10**18
BTC = 0
PENDING, EXECUTED, REJECTED = 1, 2, 3  # RequestStatus in Types.sol


mirror = pytest.fixture(name="mirror")(funded_mirror)
"""conftest's `funded_pool` (TRADERS funded and approved). The whole chain state is compared with the model
at the end of each test (`check()`) rather than after every step, to keep the table fast; the chain's
reject reason is compared with the model's on every execution."""


def _fee_usd(sim) -> Decimal:
    return EXECUTION_FEE_USD[sim.profile.name]


# ---------------------------------------------------------------- case set-ups
# Each takes the mirror, changes what the case needs, sends the request (trader TRADER) and
# returns it pending.

def _req(pair, side, amount, leverage, **kw):
    def make(m: Mirror) -> PendingOpen:
        return m.request_open(TRADER, pair, side, amount, leverage, **kw)
    return make


def _unlisted_pair(m: Mirror) -> PendingOpen:
    """Pair id 4 does not exist: the client refuses the name, so build the order by hand."""
    sim = m.sim
    assert sim.contracts["pairs"].call("pairCount") == 4
    trader = sim.address(TRADER)
    order = Order(4, True, 10)
    salt = bytes(range(32))
    ciphertext = seal(order, salt, sim.keeper_public_key)
    trading = sim.contracts["trading"]
    amount = sim.to_units(1000)
    receipt = trading.transact("requestOpen", commitment(trader, order, salt), ciphertext, amount, sender=trader)
    rid = sim.session.events(receipt, "OpenRequested")[0]["requestId"]
    assert m.model.request_open(trader, amount, b"", receipt["blockNumber"]) == rid
    return PendingOpen(rid, trader, order, salt, ciphertext, amount, receipt)


def _paused(m: Mirror) -> PendingOpen:
    sim = m.sim
    sim.contracts["pairs"].transact("setPaused", BTC, True, sender=sim.deployment.deployer)
    assert sim.contracts["pairs"].call("pair", BTC)["paused"] is True
    m.model.pairs[BTC] = replace(m.model.pairs[BTC], paused=True)
    return m.request_open(TRADER, "BTC/USD", "long", 1000, 10)


def _set_btc_depth(m: Mirror, depth_usd: int) -> None:
    sim = m.sim
    pairs = sim.contracts["pairs"]
    p = pairs.call("pair", BTC)
    pairs.transact("updatePair", BTC, (p["name"], True, False, p["tiered"], p["maxLeverage"], p["spreadBps"],
                                       depth_usd * WAD, p["maxOiPerSideUsd"]), sender=sim.deployment.deployer)
    assert pairs.call("pair", BTC)["depth1PctUsd"] == depth_usd * WAD
    m.model.pairs[BTC] = replace(m.model.pairs[BTC], depth_1pct_usd=depth_usd * WAD)


def _open_loss_too_high(side: str, depth_usd: int):
    def make(m: Mirror) -> PendingOpen:
        _set_btc_depth(m, depth_usd)
        # docs/mechanics.md §5.3 / 7: M = (A - X) / (1 + 100 x 8bp), N = 100 M, s = 1bp + N / depth x 1%
        margin = (Decimal(1000) - _fee_usd(m.sim)) / Decimal("1.08")
        notional = 100 * margin
        s = Decimal("0.0001") + notional / depth_usd / 100
        if side == "long":  # open loss |fill - oracle| x qty = N s / (1 + s) >= 80% of M
            assert notional * s / (1 + s) >= Decimal("0.8") * margin
        else:  # oracle x (1 - s) <= 0: there is no price to sell at
            assert s >= 1
        return m.request_open(TRADER, "BTC/USD", side, 1000, 100)
    return make


def _oi_already_near_cap(m: Mirror) -> PendingOpen:
    """OTHER holds 1.92M of AAPL longs; 240k more passes the 2M cap (docs/mechanics.md §3)."""
    first = m.open(OTHER, "AAPL/USD", "long", 40_000, 50)
    assert first.position.notional_wad > 1_900_000 * WAD
    return _req("AAPL/USD", "long", 5_000, 50)(m)


def _notional_just_below_minimum(m: Mirror) -> PendingOpen:
    """500x (no open fee, M = A - X): A = 0.2 USD + X - one token unit gives N just under 100."""
    sim = m.sim
    amount = Decimal("0.2") + _fee_usd(sim) - Decimal(1).scaleb(-sim.decimals)
    return m.request_open(TRADER, "BTC/USD", "long", amount, 500)


def _stale(m: Mirror) -> PendingOpen:
    m.sim.keeper.auto_refresh_reference = False  # restored by the test's monkeypatch
    m.wait(61)
    return _req("BTC/USD", "long", 1000, 10)(m)


def _breaker(reference):
    def make(m: Mirror) -> PendingOpen:
        m.set_reference("BTC/USD", reference)
        return _req("BTC/USD", "long", 1000, 10)(m)
    return make


def _reserve_after_others(m: Mirror) -> PendingOpen:
    """OTHER's 10x BTC long of ~873k margin reserves ~7.86M (9 x M) of the 8M the 10M pool can
    reserve (docs/mechanics.md §10); TRADER's ~178k more does not fit."""
    first = m.open(OTHER, "BTC/USD", "long", 880_000, 10)
    assert first.position.max_profit_wad == 9 * first.position.margin_wad
    assert 7_800_000 * WAD < m.sim.pool().reserve_wad < 8_000_000 * WAD
    return _req("BTC/USD", "long", 20_000, 10)(m)


# expected reason -> set-up
CASES = {
    "pair-not-listed": ("PairNotListed", _unlisted_pair),
    "pair-paused": ("PairPaused", _paused),
    "leverage-0": ("LeverageOutOfRange", _req("BTC/USD", "long", 1000, 0)),
    "leverage-1002-btc": ("LeverageOutOfRange", _req("BTC/USD", "short", 1000, 1002)),
    "leverage-51-aapl": ("LeverageOutOfRange", _req("AAPL/USD", "long", 1000, 51)),
    "extreme-500-sol": ("ExtremeLeverageNotOffered", _req("SOL/USD", "long", 1000, 500)),
    # N = 300 x 5000/1.24 ~ 1.21M: the tier up to 5M caps at 250x
    "tier-300x-1.2M-btc": ("LeverageAboveNotionalTier", _req("BTC/USD", "long", 5_000, 300)),
    # N = 150 x 40000/1.12 ~ 5.36M: the tier up to 20M caps at 100x
    "tier-150x-5.4M-eth": ("LeverageAboveNotionalTier", _req("ETH/USD", "short", 40_000, 150)),
    # N = 100 x 250000/1.08 ~ 23.1M > 20M
    "notional-23M-btc": ("NotionalTooLarge", _req("BTC/USD", "long", 250_000, 100)),
    "notional-100-minus-a-unit": ("NotionalTooSmall", _notional_just_below_minimum),
    # N = 50 x 50000/1.04 ~ 2.4M > 2M per side
    "oi-cap-aapl": ("OpenInterestCapExceeded", _req("AAPL/USD", "long", 50_000, 50)),
    "oi-cap-aapl-with-existing": ("OpenInterestCapExceeded", _oi_already_near_cap),
    # max profit 9 x 900000/1.008 ~ 8.04M > 80% of the 10M pool
    "reserve-one-order": ("ReserveExceeded", _req("BTC/USD", "long", 900_000, 10)),
    "reserve-after-others": ("ReserveExceeded", _reserve_after_others),
    "slippage-long": ("SlippageExceeded", _req("BTC/USD", "long", 1000, 10, acceptable_price=60_000)),
    "slippage-short": ("SlippageExceeded", _req("BTC/USD", "short", 1000, 10, acceptable_price=60_000)),
    # 10x: the cap price is about entry x (1 +- 0.9); 1001x: about entry x (1 + 0.3%)
    "tp-beyond-cap-long": ("TakeProfitBeyondCap", _req("BTC/USD", "long", 1000, 10, take_profit=120_000)),
    "tp-beyond-cap-short": ("TakeProfitBeyondCap", _req("BTC/USD", "short", 1000, 10, take_profit=5_000)),
    "tp-beyond-cap-1001x": ("TakeProfitBeyondCap", _req("ETH/USD", "long", 100, 1001, take_profit=3_020)),
    "tp-wrong-side-long": ("TakeProfitWrongSide", _req("BTC/USD", "long", 1000, 10, take_profit=59_000)),
    "tp-wrong-side-short": ("TakeProfitWrongSide", _req("BTC/USD", "short", 1000, 10, take_profit=61_000)),
    "sl-wrong-side-long": ("StopLossWrongSide", _req("BTC/USD", "long", 1000, 10, stop_loss=61_000)),
    "sl-wrong-side-short": ("StopLossWrongSide", _req("BTC/USD", "short", 1000, 10, stop_loss=59_000)),
    "open-loss-long": ("OpenLossTooHigh", _open_loss_too_high("long", 100_000)),
    "open-loss-short-zero-fill": ("OpenLossTooHigh", _open_loss_too_high("short", 500)),
    "price-stale": ("PriceStale", _stale),
    "breaker-above": ("CircuitBreaker", _breaker(60_700)),
    "breaker-below": ("CircuitBreaker", _breaker(59_300)),
}


@pytest.mark.parametrize("reason, make", list(CASES.values()), ids=list(CASES))
def test_failed_check_rejects_and_refunds_less_the_execution_fee(mirror, monkeypatch, reason, make):
    sim = mirror.sim
    monkeypatch.setattr(sim.keeper, "auto_refresh_reference", sim.keeper.auto_refresh_reference)
    trading = sim.contracts["trading"]
    keeper, treasury = sim.deployment.keeper, sim.deployment.treasury

    pending = make(mirror)

    amount = pending.amount_units
    trader_before = sim.collateral_units(TRADER) + amount  # before the amount was escrowed
    assert trading.call("request", pending.request_id)["status"] == PENDING
    keeper_before, treasury_before = sim.collateral_units(keeper), sim.collateral_units(treasury)
    escrow_before = sim.collateral_units(trading.address)
    pool = sim.contracts["pool"]
    pool_before = (pool.call("poolBalance"), pool.call("reserveUsd"))
    fee = sim.to_units(_fee_usd(sim))

    with pytest.raises(OrderRejected) as info:
        mirror.execute_open(pending)  # the mirror compares the chain's reason with the model's

    rejected = info.value
    assert rejected.reason == reason
    assert rejected.request_id == pending.request_id
    assert rejected.execution_fee_tokens == fee
    assert rejected.refund_tokens == amount - fee
    # on chain: the trader has everything back but the fee, the keeper has the fee
    assert sim.collateral_units(TRADER) == trader_before - fee
    assert sim.collateral_units(keeper) == keeper_before + fee
    assert sim.collateral_units(treasury) == treasury_before
    assert sim.collateral_units(trading.address) == escrow_before - amount
    assert trading.call("request", pending.request_id)["status"] == REJECTED
    # nothing opened: no position, no reserve, no pool movement
    assert trading.call("position", pending.request_id)["trader"] == "0x" + "00" * 20
    assert (pool.call("poolBalance"), pool.call("reserveUsd")) == pool_before
    assert mirror.model.requests[pending.request_id].status == "rejected"
    mirror.check()  # the whole state, chain against model


def test_notional_of_exactly_the_minimum_opens(mirror):
    """The control of `notional-100-minus-a-unit`: N = 100 USD is allowed (docs/mechanics.md §3: minimum 100)."""
    sim = mirror.sim
    opened = mirror.open(TRADER, "BTC/USD", "long", Decimal("0.2") + _fee_usd(sim), 500)
    assert opened.position.notional_wad == 100 * WAD
    mirror.check()


def test_leverage_at_the_tier_cap_opens(mirror):
    """The control of `tier-300x-1.2M-btc`: 250x at the same ~1.2M notional is within its tier."""
    # M = (A - X) / (1 + 250 x 8bp) ~ 4000, N ~ 1.0M .. 5M
    opened = mirror.open(TRADER, "BTC/USD", "long", 4_900, 250)
    assert 1_000_000 * WAD < opened.position.notional_wad <= 5_000_000 * WAD
    assert opened.position.leverage == 250
    mirror.check()


# ---------------------------------------------------------------- a reveal that does not match

def _tampered(order: Order, salt: bytes, what: str) -> tuple[Order, bytes]:
    if what == "salt":
        return order, bytes([salt[0] ^ 1]) + salt[1:]
    if what == "side":
        return replace(order, is_long=not order.is_long), salt
    if what == "leverage":
        return replace(order, leverage=order.leverage + 1), salt
    if what == "pair":
        return replace(order, pair_id=1), salt
    if what == "take_profit":
        return replace(order, take_profit=order.take_profit + 1), salt
    if what == "stop_loss":
        return replace(order, stop_loss=order.stop_loss - 1), salt
    if what == "acceptable_price":
        return replace(order, acceptable_price=order.acceptable_price + 1), salt
    raise AssertionError(what)


@pytest.mark.parametrize("what", ["salt", "side", "leverage", "take_profit", "acceptable_price"])
def test_reveal_not_matching_the_commitment_reverts_and_changes_nothing(mirror, what):
    sim = mirror.sim
    trading = sim.contracts["trading"]
    pending = mirror.request_open(TRADER, "BTC/USD", "long", 1000, 10, take_profit=70_000, stop_loss=55_000,
                                  acceptable_price=61_000)
    stored = trading.call("request", pending.request_id)["commitment"]
    assert stored == commitment(pending.trader, pending.order, pending.salt)
    watched = [sim.address(TRADER), sim.deployment.keeper, sim.deployment.treasury, trading.address,
               sim.contracts["pool"].address]
    balances = [sim.collateral_units(a) for a in watched]
    keeper_price = sim.contracts["oracle"].call("keeperPrice", BTC)

    order, salt = _tampered(pending.order, pending.salt, what)
    order_tuple = (order.pair_id, order.is_long, order.leverage, order.take_profit, order.stop_loss,
                   order.acceptable_price)
    with pytest.raises(errors.CommitmentMismatch) as info:
        trading.transact("executeOpen", pending.request_id, order_tuple, salt, [(BTC, 61_000 * WAD)],
                         sender=sim.deployment.keeper)
    assert info.value.requestId == pending.request_id
    assert info.value.commitment == stored
    assert info.value.revealed == commitment(pending.trader, order, salt)
    assert info.value.revealed != stored

    assert [sim.collateral_units(a) for a in watched] == balances
    assert trading.call("request", pending.request_id)["status"] == PENDING
    assert sim.contracts["oracle"].call("keeperPrice", BTC) == keeper_price  # the price was not recorded
    mirror.check()
    # the true reveal still executes, within the request window
    opened = mirror.execute_open(pending)
    assert opened.position.take_profit_wad == 70_000 * WAD
    assert trading.call("request", pending.request_id)["status"] == EXECUTED
    mirror.check()


def test_a_zero_margin_is_refused_even_with_no_minimum_notional(mirror):
    """A stored position is open while its margin is not zero (it lives in its request's
    slots), so no open may have a zero margin: one unit above the execution fee, less the open
    fee, is no margin, and is refused as NotionalTooSmall even with the minimum notional at 0."""
    sim = mirror.sim
    trading = sim.contracts["trading"]
    settings = {**trading.call("settings"), "minNotionalUsd": 0}
    trading.transact("setSettings", tuple(settings.values()), sender=sim.deployment.deployer)
    mirror.model.settings = replace(mirror.model.settings, min_notional_usd=0)
    with pytest.raises(OrderRejected) as info:
        mirror.open(TRADER, "BTC/USD", "long", _fee_usd(sim) + Decimal(1).scaleb(-sim.decimals), 10)
    assert info.value.reason == "NotionalTooSmall"
    assert trading.call("position", info.value.request_id)["trader"] == "0x" + "00" * 20
    mirror.check()
