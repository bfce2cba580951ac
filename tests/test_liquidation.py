"""Liquidation (docs/mechanics.md section 11): the threshold (loss >= 85% of margin in the extreme tier,
90% in the standard tier) to the wad, the closed-form liquidation price, and the settlement
(nothing to the trader, the close fee from the margin and cut when the margin cannot cover
it, the rest to the pool, no bounty to the keeper), long and short, on both chain profiles."""

from __future__ import annotations

from fractions import Fraction

import pytest

from alpsim import errors

TRADER = 1
REFERRER = 2
WAD = 10**18
BPS = 10_000
REFERRAL = Fraction(5, 100)
TOKEN = Fraction(5, 100)


@pytest.fixture
def mirror(mirror):
    """The conftest mirror, compared with the model once at the end of the test rather than
    after every action (settlements and rejections are still compared as they happen)."""
    mirror.check_every_step = False
    yield mirror
    mirror.check()


# (pair, side, leverage, amount sent)
CASES = [
    ("BTC/USD", "long", 1001, 100),
    ("BTC/USD", "short", 1001, 100),
    ("BTC/USD", "long", 100, 1000),
    ("BTC/USD", "short", 100, 1000),
]
IDS = ["1001x-long", "1001x-short", "100x-long", "100x-short"]


def _wad_str(wad: int) -> str:
    """An 18-decimal integer as an exact decimal string for set_prices."""
    return f"{wad // WAD}.{wad % WAD:018d}"


def _theta(leverage: int) -> Fraction:
    return Fraction(85, 100) if leverage >= 500 else Fraction(90, 100)


def _min_close_rate(leverage: int, discount: Fraction = Fraction(0)) -> Fraction:
    """c of docs/mechanics.md §11: 3 bp (extreme) or 8 bp (standard), less a discount."""
    return Fraction(3 if leverage >= 500 else 8, BPS) * (1 - discount)


def _closed_form(p, discount: Fraction = Fraction(0)) -> Fraction:
    """docs/mechanics.md §11: long (entry - theta M / qty) / (1 - c), short (entry + theta M / qty) / (1 + c),
    in wad (M and qty in wad: theta M / qty x WAD is a price in wad)."""
    theta, c = _theta(p.leverage), _min_close_rate(p.leverage, discount)
    move = theta * p.margin_wad * WAD / p.qty_wad
    if p.is_long:
        return (p.entry_price_wad - move) / (1 - c)
    return (p.entry_price_wad + move) / (1 + c)


def _spec_loss(p, price: int) -> Fraction:
    """docs/mechanics.md §11 loss with no holding or funding: close fee (minimum rate, as pnl <= 0) - pnl."""
    move = (price - p.entry_price_wad) if p.is_long else (p.entry_price_wad - price)
    pnl = Fraction(move * p.qty_wad, WAD)
    fee = Fraction(p.qty_wad * price, WAD) * _min_close_rate(p.leverage)
    return fee - pnl


def _better(p, price: int, step: int) -> int:
    """`step` wad better for the trader: higher for a long, lower for a short."""
    return price + step if p.is_long else price - step


def _align_next_blocks(mirror, blocks_ahead: int) -> None:
    """Waits so that the block `blocks_ahead` from now is stamped at a whole second: the
    next block after it then shares its timestamp (block times are below one second)."""
    clock = mirror.sim.devnet.clock
    target = clock.head_ms + blocks_ahead * clock.block_time_ms
    delay = (-target) % 1000 or 1000
    mirror.wait(delay / 1000)


def _balances(sim) -> dict:
    token = sim.contracts["collateral"]
    return {
        "trader": sim.collateral_units(TRADER),
        "keeper": token.call("balanceOf", sim.keeper.address),
        "treasury": token.call("balanceOf", sim.deployment.treasury),
        "pool": sim.pool().balance_units,
    }


@pytest.mark.parametrize("pair,side,leverage,amount", CASES, ids=IDS)
def test_liquidation_price_is_the_threshold_to_the_wad_and_the_spec_closed_form(mirror, pair, side, leverage, amount):
    """At the opening block (no holding yet) the liquidation price is the last liquidatable
    price and the neighbouring wad is not; it is docs/mechanics.md §11's closed form within rounding."""
    mirror.fund(TRADER, amount)
    p = mirror.open(TRADER, pair, side, amount, leverage).position
    trading = mirror.sim.contracts["trading"]
    assert mirror.sim.session.block().timestamp == p.opened_at
    liq = p.liquidation_price_wad
    assert trading.call("isLiquidatable", p.id, liq)
    assert trading.call("isLiquidatable", p.id, _better(p, liq, -1000))  # worse for the trader
    assert not trading.call("isLiquidatable", p.id, _better(p, liq, 1))
    assert not trading.call("isLiquidatable", p.id, p.entry_price_wad)
    # docs/mechanics.md §11 loss on either side of it (up to the rounding of the closed form)
    theta_m = _theta(leverage) * p.margin_wad
    assert _spec_loss(p, _better(p, liq, -2)) >= theta_m
    assert _spec_loss(p, _better(p, liq, 2)) < theta_m
    # the closed form: the integer boundary (pnl floored, fee rounded up) is within 2 wad of it
    expected = _closed_form(p)
    assert abs(liq - expected) <= 2, (liq, float(expected))
    distance = abs(Fraction(liq, p.entry_price_wad) - 1)
    if leverage >= 500:
        # docs/mechanics.md §11: "At 1001x that is about a 0.055% move from entry"
        assert Fraction(54, 100_000) < distance < Fraction(56, 100_000)
    else:
        # 100x standard: 90% of a 1% move, less the 8 bp fee: about 0.82%
        assert Fraction(80, 10_000) < distance < Fraction(84, 10_000)


@pytest.mark.parametrize("leverage,side", [(1001, "long"), (100, "short")])
def test_liquidation_price_carries_the_referral_discount_only(mirror, leverage, side):
    mirror.bind_referral(TRADER, REFERRER)
    mirror.set_platform_token_price(1)
    mirror.fund_platform_token(TRADER, 1000)
    mirror.set_fee_in_token(TRADER)  # the platform-token discount never applies to liquidation
    amount = 100 if leverage >= 500 else 1000
    mirror.fund(TRADER, amount)
    p = mirror.open(TRADER, "BTC/USD", side, amount, leverage).position
    with_referral = _closed_form(p, REFERRAL)
    assert abs(p.liquidation_price_wad - with_referral) <= 2, (p.liquidation_price_wad, float(with_referral))
    # not with the token discount as well, nor with no discount: those are far off
    assert abs(p.liquidation_price_wad - _closed_form(p, REFERRAL + TOKEN)) > 1000
    assert abs(p.liquidation_price_wad - _closed_form(p)) > 1000
    # and the chain's rule agrees to the wad (the position is marked as paying fees in token)
    trading = mirror.sim.contracts["trading"]
    assert mirror.sim.session.block().timestamp == p.opened_at
    assert trading.call("isLiquidatable", p.id, p.liquidation_price_wad)
    assert not trading.call("isLiquidatable", p.id, _better(p, p.liquidation_price_wad, 1))


@pytest.mark.parametrize("pair,side,leverage,amount", CASES, ids=IDS)
def test_keeper_liquidates_at_the_liquidation_price_not_one_wad_better(mirror, pair, side, leverage, amount):
    sim = mirror.sim
    mirror.fund(TRADER, amount)
    # the open executes at a whole second, so the keeper's next block shares its timestamp
    pending = mirror.request_open(TRADER, pair, side, amount, leverage)
    _align_next_blocks(mirror, 1)
    p = mirror.execute_open(pending).position
    liq = p.liquidation_price_wad

    # one wad better for the trader, in the same second as the open (no holding accrued): kept
    mirror.set_prices({pair: _wad_str(_better(p, liq, 1))}, reference=False)
    assert mirror.run_triggers() == []
    assert sim.session.block().timestamp == p.opened_at
    assert sim.position(p.id) is not None

    # 0.0001% better, a little later: still kept
    mirror.set_prices({pair: _wad_str(_better(p, liq, liq // 10**6))}, reference=False)
    assert mirror.run_triggers() == []
    assert sim.position(p.id) is not None

    # at the liquidation price: liquidated by the keeper, at the oracle price
    mirror.set_prices({pair: _wad_str(liq)}, reference=False)
    before = _balances(sim)
    closed = mirror.run_triggers()
    after = _balances(sim)
    assert [c.position.id for c in closed] == [p.id]
    c = closed[0]
    assert c.reason == "liquidation"
    assert c.oracle_price_wad == liq and c.exit_price_wad == liq  # no slippage on liquidation
    assert sim.position(p.id) is None
    # docs/mechanics.md §11 rule on the settled numbers: loss >= theta x M
    loss = c.close_fee_wad + c.holding_wad + c.funding_wad - c.pnl_wad
    assert loss * BPS >= int(_theta(leverage) * BPS) * p.margin_wad
    # the trader receives nothing, the keeper no bounty
    assert c.payout_wad == 0 and c.payout_tokens == 0
    assert after["trader"] == before["trader"]
    assert after["keeper"] == before["keeper"]
    # the full close fee at the minimum rate (pnl < 0), from the margin: it is covered here
    close_notional = p.qty_wad * liq // WAD
    rate_bps = 3 if leverage >= 500 else 8
    assert c.pnl_wad < 0
    assert c.close_fee_wad == -(-close_notional * rate_bps // BPS)
    assert p.margin_wad + c.pnl_wad - c.holding_wad - c.funding_wad > c.close_fee_wad
    # the fee splits 50/50; the rest of the margin goes to the pool
    scale = 10 ** (18 - sim.decimals)
    fee_tokens = -(-c.close_fee_wad // scale)
    treasury_tokens = fee_tokens // 2
    assert after["treasury"] - before["treasury"] == treasury_tokens
    assert after["pool"] - before["pool"] == p.margin_tokens - treasury_tokens == c.pool_delta_tokens


# (leverage, side, margin left after pnl, as a fraction of M): a price that gapped past the
# liquidation price before the keeper saw it
GAPS = [
    (1001, "long", Fraction(1, 10)),  # 0 < left < fee (about 30% of M): the fee is cut to it
    (1001, "short", Fraction(-1, 2)),  # nothing left: no fee at all
    (100, "short", Fraction(1, 20)),  # standard: fee 8% of M, 5% left
    (100, "long", Fraction(-1, 5)),
]


@pytest.mark.parametrize("leverage,side,left", GAPS, ids=[f"{l}x-{s}-{float(f)}" for l, s, f in GAPS])
def test_gap_past_the_threshold_cuts_the_close_fee(mirror, leverage, side, left):
    sim = mirror.sim
    amount = 100 if leverage >= 500 else 1000
    mirror.fund(TRADER, amount)
    p = mirror.open(TRADER, "BTC/USD", side, amount, leverage).position
    # price where M + pnl = left x M: move = (1 - left) x M / qty
    move = int((1 - left) * p.margin_wad * WAD / p.qty_wad)
    price = p.entry_price_wad - move if p.is_long else p.entry_price_wad + move
    price -= price % 10**10  # on the reference feed's 8 decimals: keeper and reference agree
    mirror.set_prices({"BTC/USD": _wad_str(price)})
    before = _balances(sim)
    closed = mirror.run_triggers()
    after = _balances(sim)
    assert len(closed) == 1
    c = closed[0]
    assert c.reason == "liquidation" and c.exit_price_wad == price
    full_fee = -(-(p.qty_wad * price // WAD) * (3 if leverage >= 500 else 8) // BPS)
    available = p.margin_wad + c.pnl_wad - c.holding_wad - c.funding_wad
    if left > 0:
        assert 0 < available < full_fee
        assert c.close_fee_wad == available  # cut to what the margin still holds
    else:
        assert available < 0
        assert c.close_fee_wad == 0
    assert c.payout_wad == 0 and c.payout_tokens == 0
    assert after["trader"] == before["trader"]
    assert after["keeper"] == before["keeper"]
    scale = 10 ** (18 - sim.decimals)
    treasury_tokens = -(-c.close_fee_wad // scale) // 2
    assert after["treasury"] - before["treasury"] == treasury_tokens
    # the pool gets the whole margin but the treasury's half of the fee, never less
    assert after["pool"] - before["pool"] == p.margin_tokens - treasury_tokens
    assert sim.pool().reserve_wad == 0


def test_liquidation_only_by_the_keeper_and_not_before_the_threshold(mirror):
    """A losing position short of the threshold is left alone; run by anyone else than the
    keeper the trigger reverts."""
    sim = mirror.sim
    mirror.fund(TRADER, 100)
    p = mirror.open(TRADER, "ETH/USD", "long", 100, 1001).position
    mirror.set_prices({"ETH/USD": _wad_str(_better(p, p.liquidation_price_wad, p.liquidation_price_wad // 10**4))})
    assert mirror.run_triggers() == []
    with pytest.raises(errors.AccessControlUnauthorizedAccount):
        sim.contracts["trading"].transact("runTriggers", [p.id], [], sender=sim.address(TRADER))
    assert sim.position(p.id) is not None
