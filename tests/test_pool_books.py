"""The worked examples of the rules of issue 26 (docs/mechanics.md sections 5.1, 6, 8, 9 and 10):
settled prices, funding for the lighter side only while settled, LPs priced only at settled
prices, the deposit and withdrawal prices, the execution fee fixed at request, settings that
never apply backwards, and the payout cap. One test per rule, on both chain profiles, through
the Mirror (chain and reference model compared to the unit after every action), with the
figures computed here from the stated formulas.

Time is held (`Devnet.hold_time`): every transaction lands in the second of the block before
it and the clock moves only by `Mirror.wait`, so each example's seconds are exact. The
defaults: holding 0.001%/h (10**13 wad), funding 0.01%/h (10**14 wad), maximum price age 60 s,
circuit breaker 1%. A funding index moves by floor(rate x seconds x imbalance / (3600 x
heavier)) per accrual, in 18-decimal USD per USD of notional; a side's funding is its
notional x the index move."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import replace
from decimal import Decimal
from fractions import Fraction

import pytest

from alpsim import errors
from alpsim.mirror import Mirror
from conftest import LP, PRICES

WAD = 10**18
BPS = 10_000
HOUR = 3600
MINUTE = 60
HOLDING_RATE = 10**13  # 0.001% an hour, wad
FUNDING_RATE = 10**14  # 0.01% an hour, wad
MAX_AGE_S = 60
OPEN_FEE_BPS = CLOSE_FEE_BPS = 8
LP_BASE_BPS, LP_SPREAD_BPS = 25, 5
"""The pool holds only the payout stablecoin (target 50% on bnb, 60% on arbitrum): a deposit of
it moves it away from its target (25 + 5 bp), a withdrawal toward it (25 - 5 bp on the part that
moves it toward, which is all of a small one)."""
PAIR, PAIR_ID = "BTC/USD", 0
BTC = 60_000
COOLDOWN_S = 48 * HOUR
LONG, SHORT, NEW_LP = 1, 2, 6


# ----------------------------------------------------------------------- helpers

def _fee(sim) -> Decimal:
    """The profile's execution fee X in USD: 0.50 on bnb, 0.20 on arbitrum."""
    return sim.profile.execution_fee_usd


def _amount(sim, margin: int, leverage: int) -> Decimal:
    """The amount that opens exactly `margin` USD of margin: margin x (1 + L x 0.08%) + X below
    500x (the open fee comes out of A - X), margin + X from 500x (no open fee)."""
    fee_factor = 1 if leverage >= 500 else 1 + Decimal(leverage * OPEN_FEE_BPS) / BPS
    return margin * fee_factor + _fee(sim)


def _step(rate: int, seconds: int, imbalance: int, heavier: int) -> int:
    """One accrual's funding index move (Market `_accrued`): floor(rate x s x imbalance / (3600 x heavier))."""
    return rate * seconds * imbalance // (HOUR * heavier)


def _indexes(sim) -> tuple[int, int, int]:
    idx = sim.contracts["market"].call("indexesNow", PAIR_ID)
    return idx["holding"], idx["fundingLong"], idx["fundingShort"]


def _moved(before: tuple, after: tuple) -> tuple[int, int, int]:
    """(holding, longs' funding, shorts' funding) index moves."""
    return tuple(a - b for a, b in zip(after, before))


def _now(sim) -> int:
    return sim.devnet.timestamp


def _settled_until(sim) -> int:
    return sim.contracts["oracle"].call("settledUntil", PAIR_ID)


@contextmanager
def _no_reference_refresh(sim):
    """The keeper leaves the reference feeds alone (they age)."""
    previous = sim.keeper.auto_refresh_reference
    sim.keeper.auto_refresh_reference = False
    try:
        yield
    finally:
        sim.keeper.auto_refresh_reference = previous


def _book(mirror: Mirror, long_notional: int, short_notional: int, long_leverage: int = 10,
          short_leverage: int = 10) -> tuple:
    """A long and a short on BTC of exactly these notionals (entry notional = margin x L)."""
    sim = mirror.sim
    positions = []
    for trader, side, notional, leverage in ((LONG, "long", long_notional, long_leverage),
                                             (SHORT, "short", short_notional, short_leverage)):
        amount = _amount(sim, notional // leverage, leverage)
        mirror.fund(trader, amount)
        p = mirror.open(trader, PAIR, side, amount, leverage).position
        assert p.notional_wad == notional * WAD and p.margin_wad == notional // leverage * WAD
        positions.append(p)
    return tuple(positions)


# ----------------------------------------------------------------------- a. funding

def test_lighter_side_receives_funding_only_while_the_price_is_settled(mirror):
    """Longs 3,000,000 and shorts 1,000,000 notional on BTC (10x), the price fixed at 60,000.
    Longs pay 0.01%/h x (3M - 1M) / 3M on their notional for every second: 0.01% x 2,000,000
    = 200 USD an hour, 3.33 a minute (the funding index moves floor(10**14 x 60 x 2/3 / 3600) =
    1,111,111,111,111 a minute). Shorts receive at the same index rate on their own notional,
    1.11 a minute, but only for the seconds the price is settled: from a keeper trigger run
    (`runTriggers`) at it, with the guard passing, until its reference round is 60 s old.
    (i) A keeper round every 60 s for 10 minutes: shorts receive for all 600 s, 11.11 USD;
    longs pay 33.33; the pool keeps 22.22.
    (ii) The reference is no longer refreshed, the keeper's rounds go on every 60 s: shorts
    receive for the 60 s the last reference round covers, then nothing: over 5 minutes longs
    pay 16.67, shorts receive 1.11.
    (iii) The reference jumps 2% away (61,200: the breaker trips): the rounds no longer settle
    the price; over 4 minutes longs pay 13.33, shorts receive nothing.
    (iv) The keeper records a new price, 60,600, with a bare `updatePrices` (no triggers): not
    settled, so shorts receive nothing from then (another bare update changes nothing) until
    the next trigger run settles it; over 4 minutes (settled 1, unsettled 2, settled again 1)
    longs pay 13.33, shorts receive 2.22."""
    sim = mirror.sim
    market = sim.contracts["market"]
    assert (market.call("holdingRatePerHourWad"), market.call("fundingRatePerHourWad")) == (HOLDING_RATE, FUNDING_RATE)
    long_oi, short_oi = 3_000_000 * WAD, 1_000_000 * WAD
    minute = _step(FUNDING_RATE, MINUTE, long_oi - short_oi, long_oi)
    assert minute == 1_111_111_111_111

    def pays_and_receives(before: tuple, after: tuple) -> tuple[int, int]:
        """What longs paid and shorts received between two index readings (wad USD)."""
        _, fl, fs = _moved(before, after)
        return long_oi * fl // WAD, -(short_oi * fs) // WAD

    with sim.devnet.hold_time():
        mirror.set_prices(PRICES)  # the reference round of t0
        t0 = _now(sim)
        _book(mirror, 3_000_000, 1_000_000)
        assert _settled_until(sim) == 0  # an open's price is not settled
        mirror.keeper_round()
        assert _settled_until(sim) == t0 + MAX_AGE_S

        # (i) a round every minute for 10 minutes (each refreshes the reference, 60 s old)
        start = _indexes(sim)
        for k in range(1, 11):
            mirror.wait(MINUTE)
            mirror.keeper_round()
            assert _settled_until(sim) == t0 + MINUTE * k + MAX_AGE_S
        paid, received = pays_and_receives(start, _indexes(sim))
        assert _moved(start, _indexes(sim))[1:] == (10 * minute, -10 * minute)
        assert paid == 3_000_000 * 10 * minute == 33_333_333_333_330_000_000  # 33.33 USD
        assert received == 1_000_000 * 10 * minute == 11_111_111_111_110_000_000  # 11.11 USD
        # against rate x seconds / 3600 x imbalance (less each minute's flooring)
        exact_paid = Fraction(FUNDING_RATE * 600, HOUR * WAD) * (long_oi - short_oi)
        assert 0 <= exact_paid - paid < 10 * long_oi // WAD
        assert 0 <= exact_paid * short_oi / long_oi - received < 10 * short_oi // WAD

        # (ii) the reference ages: the round at +60 s still settles (60 s old: fresh), for 0 s
        start = _indexes(sim)
        with _no_reference_refresh(sim):
            for _ in range(5):
                mirror.wait(MINUTE)
                mirror.keeper_round()
            assert _settled_until(sim) == 0
        paid, received = pays_and_receives(start, _indexes(sim))
        assert _moved(start, _indexes(sim))[1:] == (5 * minute, -minute)
        assert (paid, received) == (3_000_000 * 5 * minute, 1_000_000 * minute)  # 16.67, 1.11 USD

        # (iii) a fresh reference round agrees, a round settles; a minute later the reference
        # jumps 2% and the round in that second no longer settles
        mirror.set_reference(PAIR, BTC)
        mirror.keeper_round()
        assert _settled_until(sim) == _now(sim) + MAX_AGE_S
        mirror.wait(MINUTE)
        mirror.set_reference(PAIR, 61_200)
        mirror.keeper_round()  # accrues the settled minute, then does not settle
        assert _settled_until(sim) == 0
        start = _indexes(sim)
        for _ in range(4):
            mirror.wait(MINUTE)
            mirror.keeper_round()
            assert _settled_until(sim) == 0
        paid, received = pays_and_receives(start, _indexes(sim))
        assert _moved(start, _indexes(sim))[1:] == (4 * minute, 0)
        assert (paid, received) == (3_000_000 * 4 * minute, 0)  # 13.33, 0 USD

        # (iv) the reference agrees again, a round settles; a minute later a bare price update
        mirror.set_reference(PAIR, BTC)
        mirror.keeper_round()
        start = _indexes(sim)
        mirror.wait(MINUTE)
        mirror.set_prices({PAIR: 60_600})  # the keeper's price and the reference round
        mirror.push_prices()  # updatePrices: accrues the settled minute, the new price is not settled
        assert _settled_until(sim) == 0
        pushed = _indexes(sim)
        mirror.wait(MINUTE)
        mirror.push_prices()  # the same price again, still without triggers: still not settled
        assert _settled_until(sim) == 0
        mirror.wait(MINUTE)
        assert _moved(pushed, _indexes(sim))[2] == 0  # two minutes, nothing received
        mirror.keeper_round()  # the triggers run at 60,600: settled from here
        assert _settled_until(sim) == _now(sim) + MAX_AGE_S  # the reference refreshed in this second
        mirror.wait(MINUTE)
        mirror.keeper_round()
        paid, received = pays_and_receives(start, _indexes(sim))
        assert _moved(start, _indexes(sim))[1:] == (4 * minute, -2 * minute)
        assert (paid, received) == (3_000_000 * 4 * minute, 1_000_000 * 2 * minute)  # 13.33, 2.22 USD


# ----------------------------------------------------------------------- b. LPs wait

def test_lps_are_priced_only_at_settled_prices(mirror):
    """With open interest on BTC (a 10x long of 10,000 notional), a deposit or a withdrawal
    reverts unless BTC's price is fresh and settled; when it is not settled, the error says what
    the guard finds now:
    - an open records 60,000 without triggers: PriceNotSettled(0, t0, settledUntil 0); the
      keeper's round (`runTriggers`) settles it until the reference round's time + 60 s: the
      deposit and the withdrawal go through;
    - 10 s later `updatePrices` at a new price, 60,600 (the reference moved with it): refused
      PriceNotSettled(0, t0+10, 0) until the keeper's triggers run at 60,600 (settled until
      t0+70);
    - at t0+71 a new reference round and a bare update at the same price: fresh but its
      settlement aged out: PriceNotSettled(0, t0+71, t0+70);
    - the reference not refreshed for 61 s (the keeper's price pushed at t0+132):
      ReferenceStale(0, t0+71, 60); a round then does not settle;
    - a fresh reference 2% away (61,812): CircuitBreakerTripped(0, 60,600, 61,812);
    - the reference back at 60,600 and a keeper round: deposits work again;
    - a reference round 2% away inside that settled window: the window stands (the deposit goes
      through) until the keeper's next round, which finds the breaker tripped and does not
      settle: CircuitBreakerTripped."""
    sim = mirror.sim
    mirror.wait(COOLDOWN_S + 1)  # the fixture LP's ALP unlocked: it may withdraw
    mirror.fund(NEW_LP, 10_000)

    def refused(error: type, *args: int) -> None:
        for action in (lambda: mirror.deposit(NEW_LP, 1_000), lambda: mirror.withdraw(LP, 1_000)):
            with pytest.raises(error) as info:
                action()
            assert tuple(info.value.error_args.values()) == args, (info.value, args)

    with sim.devnet.hold_time():
        mirror.set_prices(PRICES)  # the reference round of t0
        t0 = _now(sim)
        amount = _amount(sim, 1_000, 10)
        mirror.fund(LONG, amount)
        mirror.open(LONG, PAIR, "long", amount, 10)
        refused(errors.PriceNotSettled, PAIR_ID, t0, 0)
        mirror.keeper_round()
        assert _settled_until(sim) == t0 + 60
        assert mirror.deposit(NEW_LP, 1_000).alp_out_wad > 0
        assert mirror.withdraw(LP, 1_000).amount_out_units > 0

        mirror.wait(10)
        mirror.set_prices({PAIR: 60_600})
        mirror.push_prices()
        refused(errors.PriceNotSettled, PAIR_ID, t0 + 10, 0)
        mirror.keeper_round()
        assert _settled_until(sim) == t0 + 70
        assert mirror.deposit(NEW_LP, 1_000).alp_out_wad > 0

        mirror.wait(61)
        mirror.set_reference(PAIR, 60_600)  # a new reference round at t0+71
        mirror.push_prices()  # the same price: keeps its settlement, until t0+70
        refused(errors.PriceNotSettled, PAIR_ID, t0 + 71, t0 + 70)
        mirror.keeper_round()
        assert mirror.deposit(NEW_LP, 1_000).alp_out_wad > 0

        with _no_reference_refresh(sim):
            mirror.wait(61)
            mirror.push_prices()  # the keeper's price fresh at t0+132, the reference of t0+71 not
            refused(errors.ReferenceStale, PAIR_ID, t0 + 71, 60)
            mirror.keeper_round()  # the guard fails: not settled
            assert _settled_until(sim) == 0
            refused(errors.ReferenceStale, PAIR_ID, t0 + 71, 60)

        mirror.set_reference(PAIR, 61_812)  # 2% above the keeper's 60,600
        refused(errors.CircuitBreakerTripped, PAIR_ID, 60_600 * WAD, 61_812 * WAD)
        mirror.keeper_round()
        assert _settled_until(sim) == 0
        refused(errors.CircuitBreakerTripped, PAIR_ID, 60_600 * WAD, 61_812 * WAD)

        mirror.set_reference(PAIR, 60_600)
        mirror.keeper_round()
        assert mirror.deposit(NEW_LP, 1_000).alp_out_wad > 0
        assert mirror.withdraw(LP, 1_000).amount_out_units > 0

        # a window granted stands: a reference round past the breaker inside it stops LPs
        # from the keeper's next round on, not before (docs/mechanics.md section 8)
        until = _settled_until(sim)
        mirror.set_reference(PAIR, 61_812)
        assert _settled_until(sim) == until >= _now(sim)
        assert mirror.deposit(NEW_LP, 1_000).alp_out_wad > 0
        mirror.keeper_round()
        assert _settled_until(sim) == 0
        refused(errors.CircuitBreakerTripped, PAIR_ID, 60_600 * WAD, 61_812 * WAD)


# ----------------------------------------------------------------------- c. NAV

def test_deposits_price_at_fees_now_withdrawals_at_fees_as_of_the_last_price(sim):
    """A pool of 1,000,000; on BTC a long of 300,000 and a short of 100,000 notional (10x),
    the price fixed. Deposits price ALP at NAV with every side's holding and funding owed as of
    now (`alpPrice`); withdrawals leave out what a side came to owe since the pair's last price
    (`redeemAlpPrice`: redeemClaim = sum over sides of fees now - max(owed since, 0) - pnl,
    "owed since" its open interest times the indexes' steps since the last accrual).
    - Right after the keeper's trigger run the two prices are equal.
    - 54 s later the longs (the heavier side) owe 300,000 x 0.001%/h x 54/3600 = 0.045 holding
      and 300,000 x 0.01%/h x 2/3 x 54/3600 = 0.30 funding more: NAV - redemption NAV = 0.345
      USD exactly. The shorts' fees fell (they received 0.10 and owe 0.015 holding), so they
      count as of now in both (a side that came to owe less gives nothing back).
    - The next trigger run makes the prices equal again; 54 s on the gap is 0.345 again. A
      deposit and a withdrawal then are priced at NAV and at the redemption NAV.
    (Before, a withdrawal left out all the holding and funding owed to the pool since each
    position opened, min(fees, 0): a gap that grew for as long as the positions stayed open,
    0.69 USD at the second reading here; now only what accrued since the last price.)"""
    m = Mirror(sim)
    m.fund(LP, 1_000_000)
    m.deposit(LP, 1_000_000)
    m.set_prices(PRICES)
    m.wait(COOLDOWN_S + 1)
    pool = sim.contracts["pool"]
    scale = 10 ** (18 - sim.decimals)
    long_oi, short_oi = 300_000 * WAD, 100_000 * WAD
    hold_54 = HOLDING_RATE * 54 // HOUR
    fund_54 = _step(FUNDING_RATE, 54, long_oi - short_oi, long_oi)
    assert (hold_54, fund_54) == (150_000_000_000, 1_000_000_000_000)  # exact: no rounding
    gap = long_oi * (hold_54 + fund_54) // WAD
    assert gap == 345_000_000_000_000_000  # 0.345 USD

    def prices() -> tuple[int, int, int, int]:
        return pool.call("nav"), pool.call("redeemNav"), pool.call("alpPrice"), pool.call("redeemAlpPrice")

    with sim.devnet.hold_time():
        m.set_prices(PRICES)
        _book(m, 300_000, 100_000)
        m.keeper_round()
        nav, redeem_nav, price, redeem_price = prices()
        assert (nav, price) == (redeem_nav, redeem_price)

        m.wait(54)
        supply = sim.contracts["alp"].call("totalSupply")
        nav, redeem_nav, price, redeem_price = prices()
        assert nav - redeem_nav == gap
        assert price - redeem_price == nav * WAD // supply - redeem_nav * WAD // supply

        m.keeper_round()
        nav, redeem_nav, price, redeem_price = prices()
        assert (nav, price) == (redeem_nav, redeem_price)
        m.wait(54)
        nav, redeem_nav, _, _ = prices()
        assert nav - redeem_nav == gap

        # a deposit of 1,000 mints at NAV: 1,000 x (1 - 0.30%) x supply / NAV (it moves the
        # stablecoin further above its target: all of it away)
        m.fund(NEW_LP, 1_000)
        minted = m.deposit(NEW_LP, 1_000).alp_out_wad
        assert minted == 1_000 * WAD * (BPS - LP_BASE_BPS - LP_SPREAD_BPS) * supply // (nav * BPS)
        # a withdrawal of 10,000 ALP pays at the redemption NAV: alp x redeemNav / supply less
        # 0.30%, plus the 2 x 5 bp rebate on its gross, all of which moves the stablecoin toward
        # its target (it holds all of the basket): 0.20% net; the stablecoin at 1 USD
        supply, redeem_nav = sim.contracts["alp"].call("totalSupply"), pool.call("redeemNav")
        out = m.withdraw(LP, 10_000).amount_out_units
        alp = 10_000 * WAD
        gross_usd = alp * redeem_nav // supply
        out_usd = (alp * (BPS - LP_BASE_BPS - LP_SPREAD_BPS) * redeem_nav + 2 * LP_SPREAD_BPS * gross_usd * supply) \
            // (supply * BPS)
        assert out == out_usd // scale


# ----------------------------------------------------------------------- d. execution fee

def _set_execution_fee(mirror: Mirror, fee_usd: Decimal) -> None:
    """`Mirror.set_execution_fee`, with the settings struct passed as a tuple: the Mirror's own
    passes a dict, which the ABI encoder refuses (EncodingTypeError)."""
    sim = mirror.sim
    trading = sim.contracts["trading"]
    fee_wad = int(fee_usd * WAD)
    settings = {**trading.call("settings"), "executionFeeUsd": fee_wad}
    trading.transact("setSettings", tuple(settings.values()), sender=sim.deployment.deployer)
    mirror.model.settings = replace(mirror.model.settings, execution_fee_usd=fee_wad)
    mirror.check()


def test_execution_fee_is_fixed_when_requested(mirror):
    """The execution fee is fixed in the request: X when requested (0.50 USDT on bnb, 0.20
    USDC on arbitrum). Two requests at X: one of 2X at 1000x, one of 1,008 + X at 10x. The
    admin then raises the fee to 3X, above the first request's whole amount. Executed after
    the raise, each is charged X, not 3X: the first opens a margin of 2X - X = X (notional
    1000X: 500 on bnb, 200 on arbitrum), the second a margin of (1,008 + X - X) / 1.008 =
    1,000. A request after the raise pays 3X (1,008 + 3X at 10x: margin 1,000), and one of 2X
    is refused (AmountBelowExecutionFee)."""
    sim = mirror.sim
    trading = sim.contracts["trading"]
    fee = _fee(sim)
    x, x3 = sim.to_units(fee), sim.to_units(3 * fee)
    mirror.fund(LONG, 2_100)
    small = mirror.request_open(LONG, PAIR, "long", 2 * fee, 1000)
    normal = mirror.request_open(LONG, PAIR, "long", _amount(sim, 1_000, 10), 10)
    assert [trading.call("request", p.request_id)["executionFeeTokens"] for p in (small, normal)] == [x, x]

    _set_execution_fee(mirror, 3 * fee)
    assert trading.call("executionFeeTokens") == x3 > small.amount_units

    keeper_before = sim.collateral_units(sim.keeper.address)
    opened_small = mirror.execute_open(small)
    opened = mirror.execute_open(normal)
    assert opened_small.execution_fee_tokens == opened.execution_fee_tokens == x
    assert sim.collateral_units(sim.keeper.address) - keeper_before == 2 * x
    assert opened_small.position.margin_tokens == small.amount_units - x == x  # 2X - X
    assert opened_small.position.notional_wad == 1000 * fee * WAD
    assert opened.position.margin_tokens == (normal.amount_units - x) * WAD // (WAD + 10 * OPEN_FEE_BPS * 10**14)
    assert opened.position.margin_wad == 1_000 * WAD

    later = mirror.open(LONG, PAIR, "long", 1_008 + 3 * fee, 10)
    assert later.execution_fee_tokens == x3
    assert later.position.margin_wad == 1_000 * WAD
    with pytest.raises(errors.AmountBelowExecutionFee) as info:
        mirror.request_open(LONG, PAIR, "long", 2 * fee, 1000)
    assert (info.value.amountIn, info.value.executionFee) == (2 * x, x3)


# ----------------------------------------------------------------------- e. settings

def test_settings_never_apply_backwards(mirror):
    """Longs 3,000,000 and shorts 1,000,000 notional on BTC (10x), the price fixed.
    - An hour priced and settled (a keeper round every minute until t0+3540): longs have paid
      60 x 1,111,111,111,111 of funding index (199.99999999998 USD: 200 less the minutes'
      floors), shorts received as much per USD of notional (66.67).
    - At t0+3600 the admin raises the maximum price age from 60 s to 3600 s
      (`setGuardSettings`): the indexes read in that second are the same before and after,
      and the price stays settled until t0+3600, as its trigger run found it: with no keeper
      for the next hour shorts receive nothing, longs pay 200. (Were the new age applied to
      the last price, shorts would have received for 59 more minutes.)
    - A keeper round at t0+7200 settles for 3600 s under the new setting: with no keeper for an
      hour shorts receive the whole hour, 66.67.
    - At t0+10800 the admin raises funding from 0.01%/h to 0.03%/h and holding from 0.001%/h
      to 0.002%/h (`setRates`): the market accrues at the old rates first, so the hour before
      counts at the old rates exactly (holding index +10**13, longs' funding
      +66,666,666,666,666 = floor(10**14 x 2/3): 200 USD) and the hour after at the new ones
      (+2 x 10**13, +2 x 10**14: 600 USD): 800 USD over the two hours, where the new rate
      applied backwards would have made 1,200."""
    sim = mirror.sim
    long_oi, short_oi = 3_000_000 * WAD, 1_000_000 * WAD
    imbalance = long_oi - short_oi
    minute = _step(FUNDING_RATE, MINUTE, imbalance, long_oi)
    hour_old = _step(FUNDING_RATE, HOUR, imbalance, long_oi)
    assert (minute, hour_old) == (1_111_111_111_111, 66_666_666_666_666)

    with sim.devnet.hold_time():
        mirror.set_prices(PRICES)
        t0 = _now(sim)
        _book(mirror, 3_000_000, 1_000_000)
        mirror.keeper_round()
        start = _indexes(sim)
        for _ in range(59):
            mirror.wait(MINUTE)
            mirror.keeper_round()
        mirror.wait(MINUTE)
        assert (_now(sim), _settled_until(sim)) == (t0 + HOUR, t0 + HOUR)
        before = _indexes(sim)
        assert _moved(start, before)[1:] == (60 * minute, -60 * minute)
        assert long_oi * 60 * minute // WAD == 199_999_999_999_980_000_000  # 200 USD, less the floors
        mirror.set_price_guards(max_age_s=HOUR)
        assert _indexes(sim) == before and _now(sim) == t0 + HOUR
        assert _settled_until(sim) == t0 + HOUR

        mirror.wait(HOUR)  # no keeper
        assert _moved(before, _indexes(sim))[1:] == (hour_old, 0)

        mirror.keeper_round()  # t0+7200, the reference refreshed in this second
        assert _settled_until(sim) == t0 + 3 * HOUR
        settled = _indexes(sim)
        mirror.wait(HOUR)  # no keeper: settled for the whole hour under the new age
        before = _indexes(sim)
        assert _moved(settled, before) == (HOLDING_RATE, hour_old, -hour_old)

        mirror.set_rates(2 * HOLDING_RATE, 3 * FUNDING_RATE)
        assert _indexes(sim) == before  # the hour before, accrued at the old rates
        mirror.keeper_round()  # settles the next hour (the rates apply to the lighter side too)
        mirror.wait(HOUR)
        hour_new = _step(3 * FUNDING_RATE, HOUR, imbalance, long_oi)
        assert hour_new == 2 * 10**14
        assert _moved(before, _indexes(sim)) == (2 * HOLDING_RATE, hour_new, -hour_new)
        assert long_oi * hour_new // WAD == 600 * WAD
        # the two hours: one at each rate (800 USD), not two at the new one (1,200 USD)
        both = _moved(settled, _indexes(sim))[1]
        assert both == hour_old + hour_new != _step(3 * FUNDING_RATE, 2 * HOUR, imbalance, long_oi) == 4 * 10**14


# ----------------------------------------------------------------------- f. payout cap

def test_payout_is_at_most_margin_plus_maximum_profit(mirror):
    """A payout is at most margin + maximum profit; a funding receipt beyond it stays in the
    pool. Funding raised to 1%/h (`setRates`), the maximum price age to an hour. On BTC at
    60,000 longs of 3,000,000 notional (5x) and a short of 1,000,000 notional at 100x: margin
    10,000, maximum profit 900% = 90,000; the short fills at 59,988 (2 bp of slippage), so its
    take-profit cap is 59,988 - 90,000 / qty = 54,589.08. A keeper round settles the price for
    the hour; in it the short receives 1,000,000 x 1%/h x 2/3 = 6,666.67 and owes 10 of
    holding. Then BTC falls to 54,000 (-10%): the keeper's round closes the short at its cap:
    pnl 90,000 (less 6 x 10**-18 of rounding), close fee 0.08% x 910,000 = 728. Margin + pnl -
    close fee - holding + funding received = 105,928.67; it is paid exactly 10,000 + 90,000 =
    100,000, and the pool keeps the other 5,928.67."""
    sim = mirror.sim
    scale = 10 ** (18 - sim.decimals)
    mirror.set_rates(HOLDING_RATE, 100 * FUNDING_RATE)  # 1% an hour
    mirror.set_price_guards(max_age_s=HOUR)
    long_oi, short_oi = 3_000_000 * WAD, 1_000_000 * WAD
    with sim.devnet.hold_time():
        mirror.set_prices(PRICES)
        t0 = _now(sim)
        _, short = _book(mirror, 3_000_000, 1_000_000, long_leverage=5, short_leverage=100)
        assert (short.margin_wad, short.max_profit_wad) == (10_000 * WAD, 90_000 * WAD)
        mirror.keeper_round()
        assert _settled_until(sim) == t0 + HOUR
        mirror.wait(HOUR)
        before = sim.collateral_units(SHORT)
        mirror.set_prices({PAIR: 54_000})
        closed = mirror.keeper_round()

    assert [(c.position.id, c.reason) for c in closed] == [(short.id, "take_profit")]
    c = closed[0]
    received = short_oi * _step(100 * FUNDING_RATE, HOUR, long_oi - short_oi, long_oi) // WAD
    assert received == 6_666_666_666_666_666_000_000  # 6,666.67 USD
    assert (c.funding_wad, c.holding_wad) == (-received, 10 * WAD)
    assert short.entry_price_wad == 59_988 * WAD
    assert c.exit_price_wad == short.take_profit_wad == 59_988 * WAD - 90_000 * WAD * WAD // short.qty_wad \
        == 5_458_908 * WAD // 100
    assert c.pnl_wad == (short.entry_price_wad - c.exit_price_wad) * short.qty_wad // WAD
    assert 0 <= short.max_profit_wad - c.pnl_wad < 10
    close_notional = short.qty_wad * c.exit_price_wad // WAD
    assert 0 < 910_000 * WAD - close_notional < 100  # qty x cap price: 910,000 less the rounding of qty
    assert c.close_fee_wad == -(-close_notional * CLOSE_FEE_BPS // BPS) == 728 * WAD
    uncapped = short.margin_wad + c.pnl_wad - c.close_fee_wad - c.holding_wad - c.funding_wad
    assert uncapped > short.margin_wad + short.max_profit_wad
    assert uncapped * 100 // WAD == 10_592_866  # 105,928.66...
    assert c.payout_wad == short.margin_wad + short.max_profit_wad == 100_000 * WAD
    assert c.payout_tokens == sim.to_units(100_000) == sim.collateral_units(SHORT) - before
    # the pool's side: the margin in, the payout and the treasury's half of the close fee out
    # (10,000 - 100,000 - 364); uncapped it would have paid `kept` more
    treasury = -(-c.close_fee_wad // scale) * (BPS - 5_000) // BPS
    assert c.pool_delta_tokens == short.margin_tokens - c.payout_tokens - treasury
    kept = uncapped - c.payout_wad
    assert kept * 100 // WAD == 592_866  # 5,928.66...
