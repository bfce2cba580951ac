"""Trading-fee discounts, docs/mechanics.md section 4 (with 5.3 for the open sizing and 11 for the
liquidation fee): 5% with a bound referral code, 5% when the fee is paid in the platform token
at its oracle price (then M = A - X), both stacked (10%); a platform-token fee that cannot be
pulled (balance or allowance) falls back to collateral without the token discount; discounts
apply to open and close fees, never to the execution fee; the liquidation fee never uses the
token. Expectations are exact rational arithmetic (fractions.Fraction) from the docs/mechanics.md."""

from __future__ import annotations

import math
from fractions import Fraction

WAD = 10**18
TRADER, REFERRER, OTHER = 1, 2, 3
AMOUNT = 1000
LEVERAGE = 10
OPEN_RATE = CLOSE_RATE = Fraction(8, 10_000)  # standard tier, docs/mechanics.md §4
EXTREME_MIN_RATE = Fraction(3, 10_000)
TOKEN_PRICE = "0.37"  # USD per platform token: fee tokens = fee USD / 0.37, rounded up
TOKEN_PRICE_WAD = 37 * 10**16


def after(discount_pct: int) -> Fraction:
    return Fraction(100 - discount_pct, 100)


def scale_of(sim) -> int:
    return 10 ** (18 - sim.decimals)


def execution_fee_tokens(sim) -> int:
    return math.ceil(Fraction(sim.profile.execution_fee_usd) * WAD / scale_of(sim))


def platform_tokens_for(fee_wad: int) -> int:
    """A USD fee in platform-token units (18 decimals) at TOKEN_PRICE, rounded up."""
    return math.ceil(Fraction(fee_wad) / Fraction(TOKEN_PRICE))


def collateral_margin(sim, rate: Fraction, leverage: int = LEVERAGE) -> int:
    """docs/mechanics.md §5.3, fee in collateral: M = (A - X) / (1 + L f), in token units, rounded down."""
    net = sim.to_units(AMOUNT) - execution_fee_tokens(sim)
    return math.floor(net / (1 + leverage * rate))


def close_fee(closed, rate: Fraction) -> int:
    """Standard-tier close fee: rate x close notional (qty x exit), rounded up."""
    close_notional = closed.position.qty_wad * closed.exit_price_wad // WAD
    return math.ceil(close_notional * rate)


def _token_trader(mirror, who=TRADER, tokens=1000) -> None:
    mirror.set_platform_token_price(TOKEN_PRICE)
    mirror.fund_platform_token(who, tokens)
    mirror.set_fee_in_token(who)


def _open_close(mirror, who=TRADER, close_price=60_300):
    mirror.fund(who, AMOUNT)
    opened = mirror.open(who, "BTC/USD", "long", AMOUNT, LEVERAGE)
    mirror.set_prices({"BTC/USD": close_price})
    closed = mirror.close(who, opened.position.id)
    return opened, closed


def test_referral_discount_alone_is_5pct_of_open_and_close_fee(mirror):
    sim = mirror.sim
    mirror.bind_referral(TRADER, REFERRER)
    assert sim.has_referral(TRADER)
    opened, closed = _open_close(mirror)
    p = opened.position
    rate = OPEN_RATE * after(5)  # 7.6 bp
    assert opened.fee_discount_bps == 500
    assert not opened.fee_in_token
    assert p.margin_tokens == collateral_margin(sim, rate)
    net = sim.to_units(AMOUNT) - execution_fee_tokens(sim)
    assert opened.open_fee_tokens == net - p.margin_tokens
    # the fee is 7.6 bp of N (to within the rounding of M to a token unit), not 8 bp
    assert 0 <= opened.open_fee_wad - p.notional_wad * rate < (1 + LEVERAGE * rate) * scale_of(sim)
    assert opened.open_fee_wad < math.ceil(p.notional_wad * OPEN_RATE)
    assert not closed.fee_in_token
    assert closed.close_fee_wad == close_fee(closed, CLOSE_RATE * after(5))
    assert closed.close_fee_wad < close_fee(closed, CLOSE_RATE)


def test_platform_token_discount_alone(mirror):
    sim = mirror.sim
    _token_trader(mirror)
    assert sim.contracts["oracle"].call("platformTokenPriceUsd") == TOKEN_PRICE_WAD
    tokens_before = sim.platform_token_units(TRADER)
    mirror.fund(TRADER, AMOUNT)
    collateral_before = sim.collateral_units(TRADER)
    opened = mirror.open(TRADER, "BTC/USD", "long", AMOUNT, LEVERAGE)
    p = opened.position
    rate = OPEN_RATE * after(5)
    # paid in the platform token: M = A - X, the fee is 7.6 bp of N at the token's price
    assert opened.fee_in_token and p.fee_in_token
    assert opened.fee_discount_bps == 500
    assert p.margin_tokens == sim.to_units(AMOUNT) - execution_fee_tokens(sim)
    assert p.notional_wad == LEVERAGE * p.margin_tokens * scale_of(sim)
    assert opened.open_fee_wad == math.ceil(p.notional_wad * rate)
    assert opened.open_fee_tokens == platform_tokens_for(opened.open_fee_wad)
    assert tokens_before - sim.platform_token_units(TRADER) == opened.open_fee_tokens
    assert collateral_before - sim.collateral_units(TRADER) == sim.to_units(AMOUNT)

    mirror.set_prices({"BTC/USD": 60_300})
    tokens_before = sim.platform_token_units(TRADER)
    collateral_before = sim.collateral_units(TRADER)
    closed = mirror.close(TRADER, p.id)
    assert closed.fee_in_token
    assert closed.close_fee_wad == close_fee(closed, CLOSE_RATE * after(5))
    assert tokens_before - sim.platform_token_units(TRADER) == platform_tokens_for(closed.close_fee_wad)
    # the fee left in tokens, so the collateral payout is M + pnl - holding - funding
    payout = p.margin_wad + closed.pnl_wad - closed.holding_wad - closed.funding_wad
    assert closed.payout_wad == payout
    assert sim.collateral_units(TRADER) - collateral_before == payout // scale_of(sim)


def test_referral_and_platform_token_stack_to_10pct(mirror):
    sim = mirror.sim
    mirror.bind_referral(TRADER, REFERRER)
    _token_trader(mirror)
    tokens_before = sim.platform_token_units(TRADER)
    opened, closed = _open_close(mirror)
    p = opened.position
    rate = OPEN_RATE * after(10)  # 7.2 bp
    assert opened.fee_in_token
    assert opened.fee_discount_bps == 1000
    assert p.margin_tokens == sim.to_units(AMOUNT) - execution_fee_tokens(sim)
    assert opened.open_fee_wad == math.ceil(p.notional_wad * rate)
    assert opened.open_fee_tokens == platform_tokens_for(opened.open_fee_wad)
    assert closed.fee_in_token
    assert closed.close_fee_wad == close_fee(closed, CLOSE_RATE * after(10))
    assert tokens_before - sim.platform_token_units(TRADER) == \
        opened.open_fee_tokens + platform_tokens_for(closed.close_fee_wad)


def test_fee_in_token_without_token_balance_falls_back_to_collateral(mirror):
    """Preferred but not payable (no tokens; too few tokens): charged in collateral, without
    the token's 5% (the referral's 5% still applies)."""
    sim = mirror.sim
    mirror.set_platform_token_price(TOKEN_PRICE)
    mirror.set_fee_in_token(TRADER)  # no platform tokens at all
    mirror.bind_referral(OTHER, REFERRER)
    mirror.fund_platform_token(OTHER, "0.5")  # far below a fee of about 21 tokens
    mirror.set_fee_in_token(OTHER)
    for who, discount in [(TRADER, 0), (OTHER, 5)]:
        tokens_before = sim.platform_token_units(who)
        opened, closed = _open_close(mirror, who)
        p = opened.position
        assert not opened.fee_in_token and not p.fee_in_token
        assert opened.fee_discount_bps == discount * 100
        assert p.margin_tokens == collateral_margin(sim, OPEN_RATE * after(discount))
        assert opened.open_fee_tokens == sim.to_units(AMOUNT) - execution_fee_tokens(sim) - p.margin_tokens
        assert not closed.fee_in_token
        assert closed.close_fee_wad == close_fee(closed, CLOSE_RATE * after(discount))
        assert closed.payout_wad == p.margin_wad + closed.pnl_wad - closed.close_fee_wad - closed.holding_wad \
            - closed.funding_wad
        assert sim.platform_token_units(who) == tokens_before


def test_fee_in_token_without_allowance_falls_back_to_collateral(mirror):
    """Tokens held but not approved to the trading engine: not pullable, so collateral."""
    sim = mirror.sim
    mirror.set_platform_token_price(TOKEN_PRICE)
    trader = sim.address(TRADER)
    sim.contracts["platform_token"].transact("mint", trader, 1000 * WAD, sender=sim.deployment.deployer)
    assert sim.contracts["platform_token"].call("allowance", trader, sim.contracts["trading"].address) == 0
    mirror.set_fee_in_token(TRADER)
    opened, closed = _open_close(mirror)
    assert not opened.fee_in_token
    assert opened.fee_discount_bps == 0
    assert opened.position.margin_tokens == collateral_margin(sim, OPEN_RATE)
    assert not closed.fee_in_token
    assert closed.close_fee_wad == close_fee(closed, CLOSE_RATE)
    assert sim.platform_token_units(TRADER) == 1000 * WAD


def test_discounts_never_apply_to_the_execution_fee(mirror):
    sim = mirror.sim
    mirror.bind_referral(TRADER, REFERRER)
    _token_trader(mirror)
    x = execution_fee_tokens(sim)
    keeper_before = sim.collateral_units(sim.keeper.address)
    mirror.fund(TRADER, AMOUNT)
    opened = mirror.open(TRADER, "BTC/USD", "long", AMOUNT, LEVERAGE)
    assert opened.fee_discount_bps == 1000
    assert opened.execution_fee_tokens == x  # 0.50 / 0.20 USD in full
    assert sim.collateral_units(sim.keeper.address) - keeper_before == x
    assert opened.position.margin_tokens == sim.to_units(AMOUNT) - x


def test_liquidation_fee_never_uses_the_platform_token(mirror):
    """docs/mechanics.md §11: the liquidation close fee is charged in collateral from the margin, with the
    referral discount only (3 bp x 95% at 1001x), even for a trader paying fees in the token."""
    sim = mirror.sim
    mirror.bind_referral(TRADER, REFERRER)
    _token_trader(mirror)
    mirror.fund(TRADER, 100)
    opened = mirror.open(TRADER, "BTC/USD", "long", 100, 1001)
    p = opened.position
    tokens_before = sim.platform_token_units(TRADER)
    collateral_before = sim.collateral_units(TRADER)
    treasury_before = sim.collateral_units(sim.deployment.treasury)
    mirror.set_prices({"BTC/USD": 59_970})  # about -0.06% from entry: liquidatable, margin left for the fee
    (closed,) = mirror.run_triggers([p.id])
    assert closed.reason == "liquidation"
    assert not closed.fee_in_token
    assert closed.exit_price_wad == 59_970 * WAD  # at the oracle price, no slippage
    pnl = (closed.exit_price_wad - p.entry_price_wad) * p.qty_wad // WAD
    assert closed.pnl_wad == pnl
    fee = math.ceil(p.qty_wad * closed.exit_price_wad // WAD * EXTREME_MIN_RATE * after(5))
    assert p.margin_wad + pnl - closed.holding_wad - closed.funding_wad > fee  # the fee is not cut
    assert closed.close_fee_wad == fee
    assert closed.close_fee_wad != math.ceil(p.qty_wad * closed.exit_price_wad // WAD * EXTREME_MIN_RATE * after(10))
    assert closed.payout_wad == 0 and closed.payout_tokens == 0
    assert sim.platform_token_units(TRADER) == tokens_before
    assert sim.collateral_units(TRADER) == collateral_before
    fee_tokens = math.ceil(Fraction(fee, scale_of(sim)))
    assert sim.collateral_units(sim.deployment.treasury) - treasury_before == fee_tokens // 2
