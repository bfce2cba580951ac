"""The split of trading fees, docs/mechanics.md section 4 ("Trading fees are split: 50% to the pool, 50% to
the protocol treasury"), with the settlement flows of section 6: open and close fees, in
collateral and in the platform token, go half to the pool and half to the treasury (the pool
gets the odd unit); the FeeSplit events, the treasury's and the pool's balances agree; and
every collateral unit is accounted for over an open and a close."""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction

import pytest

WAD = 10**18
TRADER = 1
LEVERAGE = 10
FEE_RATE = Fraction(8, 10_000)
TOKEN_DISCOUNT = Fraction(95, 100)
BTC_SPREAD, BTC_DEPTH = Fraction(1, 10_000), 100_000_000  # docs/mechanics.md section 3


def scale_of(sim) -> int:
    return 10 ** (18 - sim.decimals)


def execution_fee_tokens(sim) -> int:
    return math.ceil(Fraction(sim.profile.execution_fee_usd) * 10**sim.decimals)


def last_receipt(sim) -> dict:
    w3 = sim.devnet.w3
    return w3.eth.get_transaction_receipt(w3.eth.get_block("latest")["transactions"][-1])


def fee_splits(sim) -> list[dict]:
    return sim.session.events(last_receipt(sim), "FeeSplit")


def collateral(sim) -> dict[str, int]:
    return {
        "trader": sim.collateral_units(TRADER),
        "treasury": sim.collateral_units(sim.deployment.treasury),
        "pool": sim.collateral_units(sim.contracts["pool"].address),
        "keeper": sim.collateral_units(sim.keeper.address),
        "escrow": sim.collateral_units(sim.contracts["trading"].address),
        "pool_balance": sim.contracts["pool"].call("poolBalance"),
    }


def platform(sim) -> dict[str, int]:
    token = sim.contracts["platform_token"]
    return {
        "trader": token.call("balanceOf", sim.address(TRADER)),
        "treasury": token.call("balanceOf", sim.deployment.treasury),
        "pool": token.call("balanceOf", sim.contracts["pool"].address),
        "escrow": token.call("balanceOf", sim.contracts["trading"].address),
    }


def delta(before: dict, after: dict) -> dict:
    return {k: after[k] - before[k] for k in before}


def _amount(sim, units: int) -> Decimal:
    return Decimal(units).scaleb(-sim.decimals)


def open_fee_units(sim, amount_units: int) -> int:
    """docs/mechanics.md §5.3 in collateral: fee = (A - X) - floor((A - X) / (1 + L f))."""
    net = amount_units - execution_fee_tokens(sim)
    return net - math.floor(net / (1 + LEVERAGE * FEE_RATE))


def amount_with_odd_open_fee(sim) -> int:
    """An amount near 1000 USD whose open fee is an odd number of token units."""
    base = sim.to_units(1000)
    for k in range(1000):
        units = base + k * sim.to_units("0.01")
        if open_fee_units(sim, units) % 2 == 1:
            return units
    raise AssertionError("no amount with an odd fee found")


def lone_long_close_fee_units(sim, p, oracle_usd: int) -> int:
    """Close fee of a lone BTC long closed at `oracle_usd`, in collateral units: exit =
    oracle x (1 - s) rounded down (docs/mechanics.md §7), fee = 8 bp of qty x exit rounded up, in tokens
    rounded up."""
    s = BTC_SPREAD + Fraction(math.ceil(Fraction(p.notional_wad * 10**16, BTC_DEPTH * WAD)), WAD)
    exit_wad = math.floor(oracle_usd * WAD * (1 - s))
    fee_wad = math.ceil(p.qty_wad * exit_wad // WAD * FEE_RATE)
    return math.ceil(Fraction(fee_wad, scale_of(sim)))


def _check_split(event: dict, total: int, *, position_id: int, is_open: bool, in_token: bool) -> None:
    assert event["positionId"] == position_id
    assert event["isOpen"] is is_open
    assert event["inPlatformToken"] is in_token
    assert event["totalAmount"] == total
    assert event["treasuryAmount"] == total // 2
    assert event["poolAmount"] == total - total // 2  # the pool gets the odd unit
    assert event["poolAmount"] + event["treasuryAmount"] == total


def test_collateral_open_fee_split_half_half_pool_gets_the_odd_unit(mirror):
    sim = mirror.sim
    units = amount_with_odd_open_fee(sim)
    sim_amount = _amount(sim, units)
    mirror.fund(TRADER, sim_amount)
    before = collateral(sim)
    opened = mirror.open(TRADER, "BTC/USD", "long", sim_amount, LEVERAGE)
    fee = opened.open_fee_tokens
    assert fee == open_fee_units(sim, units)
    assert fee % 2 == 1
    (split,) = fee_splits(sim)
    _check_split(split, fee, position_id=opened.position.id, is_open=True, in_token=False)
    d = delta(before, collateral(sim))
    assert d["treasury"] == (fee - 1) // 2
    assert d["pool"] == d["pool_balance"] == (fee + 1) // 2
    assert d["escrow"] == opened.position.margin_tokens


def test_collateral_close_fee_split_half_half(mirror):
    sim = mirror.sim
    mirror.fund(TRADER, 1000)
    opened = mirror.open(TRADER, "BTC/USD", "long", 1000, LEVERAGE)
    p = opened.position
    price = next(q for q in range(60_300, 60_400) if lone_long_close_fee_units(sim, p, q) % 2 == 1)
    mirror.set_prices({"BTC/USD": price})
    before = collateral(sim)
    closed = mirror.close(TRADER, p.id)
    total = lone_long_close_fee_units(sim, p, price)
    assert total == math.ceil(Fraction(closed.close_fee_wad, scale_of(sim)))
    assert total % 2 == 1
    (split,) = fee_splits(sim)
    _check_split(split, total, position_id=p.id, is_open=False, in_token=False)
    d = delta(before, collateral(sim))
    assert d["treasury"] == total // 2
    assert d["trader"] == closed.payout_tokens
    # the pool takes the margin less payout and the treasury's half (here it pays the profit)
    assert d["pool"] == d["pool_balance"] == p.margin_tokens - closed.payout_tokens - total // 2
    assert d["pool"] == closed.pool_delta_tokens
    assert closed.pnl_wad > 0 and d["pool"] < 0
    assert d["escrow"] == -p.margin_tokens


def test_platform_token_fees_split_half_half(mirror):
    sim = mirror.sim
    x = execution_fee_tokens(sim)
    notional_wad = LEVERAGE * (sim.to_units(1000) - x) * scale_of(sim)  # M = A - X in token
    fee_usd = math.ceil(notional_wad * FEE_RATE * TOKEN_DISCOUNT)
    # a token price (in cents) that makes the open fee an odd number of token units
    cents = next(c for c in range(37, 200) if math.ceil(Fraction(fee_usd * 100, c)) % 2 == 1)
    mirror.set_platform_token_price(Decimal(cents).scaleb(-2))
    mirror.fund_platform_token(TRADER, 1000)
    mirror.set_fee_in_token(TRADER)
    mirror.fund(TRADER, 1000)
    before, before_tok = collateral(sim), platform(sim)
    opened = mirror.open(TRADER, "BTC/USD", "long", 1000, LEVERAGE)
    p = opened.position
    assert opened.fee_in_token
    open_tokens = math.ceil(Fraction(fee_usd * 100, cents))
    assert opened.open_fee_tokens == open_tokens
    assert open_tokens % 2 == 1
    (split,) = fee_splits(sim)
    _check_split(split, open_tokens, position_id=p.id, is_open=True, in_token=True)
    d, dt = delta(before, collateral(sim)), delta(before_tok, platform(sim))
    assert dt == {"trader": -open_tokens, "treasury": open_tokens // 2, "pool": open_tokens - open_tokens // 2,
                  "escrow": 0}
    # no collateral fee: the treasury and the pool's collateral are untouched
    assert d["treasury"] == d["pool"] == d["pool_balance"] == 0
    assert d["escrow"] == p.margin_tokens == sim.to_units(1000) - x

    mirror.set_prices({"BTC/USD": 59_800})
    before, before_tok = collateral(sim), platform(sim)
    closed = mirror.close(TRADER, p.id)
    assert closed.fee_in_token
    close_tokens = math.ceil(Fraction(closed.close_fee_wad * 100, cents))
    (split,) = fee_splits(sim)
    _check_split(split, close_tokens, position_id=p.id, is_open=False, in_token=True)
    d, dt = delta(before, collateral(sim)), delta(before_tok, platform(sim))
    assert dt == {"trader": -close_tokens, "treasury": close_tokens // 2,
                  "pool": close_tokens - close_tokens // 2, "escrow": 0}
    assert d["treasury"] == 0
    assert d["trader"] == closed.payout_tokens
    assert d["pool"] == d["pool_balance"] == p.margin_tokens - closed.payout_tokens  # the loss
    assert closed.pnl_wad < 0 and d["pool"] > 0


@pytest.mark.parametrize("close_price", [59_400, 60_900])
def test_collateral_is_conserved_over_open_and_close(mirror, close_price):
    sim = mirror.sim
    x = execution_fee_tokens(sim)
    mirror.fund(TRADER, 1000)
    before = collateral(sim)
    opened = mirror.open(TRADER, "BTC/USD", "long", 1000, LEVERAGE)
    p = opened.position
    mirror.set_prices({"BTC/USD": close_price})
    closed = mirror.close(TRADER, p.id)
    close_total = math.ceil(Fraction(closed.close_fee_wad, scale_of(sim)))
    d = delta(before, collateral(sim))
    assert d["trader"] == -sim.to_units(1000) + closed.payout_tokens
    assert d["keeper"] == x
    assert d["treasury"] == opened.open_fee_tokens // 2 + close_total // 2
    assert d["escrow"] == 0
    assert d["pool"] == d["pool_balance"] == \
        (opened.open_fee_tokens - opened.open_fee_tokens // 2) + closed.pool_delta_tokens
    assert d["trader"] + d["treasury"] + d["pool"] + d["keeper"] + d["escrow"] == 0
    # the pool's side of the trade: it receives the trader's loss or pays the profit, plus
    # its halves of both fees (to within the token rounding of pnl and payout)
    pool_fees = opened.open_fee_tokens - opened.open_fee_tokens // 2 + close_total - close_total // 2
    pnl_units = Fraction(closed.pnl_wad - closed.holding_wad - closed.funding_wad, scale_of(sim))
    assert abs(d["pool"] - pool_fees + pnl_units) <= 1


def test_platform_token_is_conserved_over_open_and_close(mirror):
    sim = mirror.sim
    mirror.set_platform_token_price("0.37")
    mirror.fund_platform_token(TRADER, 1000)
    mirror.set_fee_in_token(TRADER)
    mirror.fund(TRADER, 1000)
    before, before_tok = collateral(sim), platform(sim)
    opened = mirror.open(TRADER, "BTC/USD", "long", 1000, LEVERAGE)
    mirror.set_prices({"BTC/USD": 60_500})
    closed = mirror.close(TRADER, opened.position.id)
    d, dt = delta(before, collateral(sim)), delta(before_tok, platform(sim))
    assert sum(dt.values()) == 0
    assert -dt["trader"] == opened.open_fee_tokens + math.ceil(Fraction(closed.close_fee_wad * 100, 37))
    assert dt["pool"] - dt["treasury"] in (0, 1, 2)  # each split gives the pool at most one more unit
    d.pop("pool_balance")
    assert sum(d.values()) == 0
    assert d["treasury"] == 0
