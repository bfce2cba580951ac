"""The pool's reserve (docs/mechanics.md section 10, with 5.4 and 5.5): each open position reserves its
maximum profit; an open whose maximum profit would take the total reserve above 80% of the
pool balance is rejected (ReserveExceeded, refunded less the execution fee); a withdrawal may
not leave the pool balance below reserve / 80% (ReserveNotCovered); closing a position releases
its reserve. Small pools make the limits reachable; expectations are computed from the docs/mechanics.md
formulas and the mirror compares the chain with the reference model. Both chain profiles."""

from __future__ import annotations

from decimal import Decimal

import pytest

from alpsim import errors
from alpsim.client import OrderRejected
from alpsim.mirror import Mirror

TRADER, OTHER = 1, 2
LP = 7
SMALL_POOL = 10_000
PRICES = {"BTC/USD": 60_000, "ETH/USD": 3_000, "SOL/USD": 150, "AAPL/USD": 200}
EXECUTION_FEE_USD = {"bnb": Decimal("0.50"), "arbitrum": Decimal("0.20")}
WAD = 10**18
BPS = 10_000
MAX_RESERVE_BPS = 8_000
COOLDOWN_S = 48 * 3600


def _small_pool(sim, liquidity: int = SMALL_POOL) -> Mirror:
    m = Mirror(sim)
    m.fund(LP, liquidity)
    m.deposit(LP, liquidity)
    m.set_prices(PRICES)
    for trader in (TRADER, OTHER):
        m.fund(trader, 10_000)
    return m


def _fee_units(sim) -> int:
    return sim.to_units(EXECUTION_FEE_USD[sim.profile.name])


def _roi_cap_bps(leverage: int) -> int:
    return 90_000 if leverage < 500 else 50_000 if leverage < 1000 else 30_000


def _margin_units(net: int, leverage: int) -> int:
    """docs/mechanics.md §5.3: M = (A - X) / (1 + L x 8bp) below 500x (rounded down), A - X from 500x."""
    return net if leverage >= 500 else net * WAD // (WAD + leverage * 8 * 10**14)


def _max_profit(sim, amount_units: int, leverage: int) -> int:
    scale = 10 ** (18 - sim.decimals)
    return _margin_units(amount_units - _fee_units(sim), leverage) * scale * _roi_cap_bps(leverage) // BPS


def _smallest_amount_over(sim, capacity_wad: int, leverage: int) -> int:
    """The smallest amount (token units) whose maximum profit is above `capacity_wad`."""
    lo, hi = _fee_units(sim) + 1, sim.to_units(1_000_000)
    while lo < hi:
        mid = (lo + hi) // 2
        if _max_profit(sim, mid, leverage) > capacity_wad:
            hi = mid
        else:
            lo = mid + 1
    return lo


def _units_to_number(sim, units: int) -> Decimal:
    return Decimal(units).scaleb(-sim.decimals)


def _pool(sim) -> tuple[int, int]:
    pool = sim.contracts["pool"]
    return pool.call("poolBalance"), pool.call("reserveUsd")


@pytest.mark.parametrize("leverage", [10, 500])
def test_open_is_rejected_when_total_reserve_would_pass_80pct_of_the_pool(sim, leverage):
    m = _small_pool(sim)
    scale = 10 ** (18 - sim.decimals)
    balance, reserve = _pool(sim)
    assert (balance, reserve) == (sim.to_units(SMALL_POOL), 0)  # the deposit fee stays in the pool
    capacity = balance * scale * MAX_RESERVE_BPS // BPS  # 8,000 USD
    assert sim.contracts["pool"].call("reserveCapacityUsd") == capacity

    too_much = _smallest_amount_over(sim, capacity, leverage)
    just_fits = too_much - 1
    assert _max_profit(sim, just_fits, leverage) <= capacity < _max_profit(sim, too_much, leverage)

    # one token unit too much: rejected, refunded less the execution fee, nothing reserved
    before = sim.collateral_units(TRADER)
    with pytest.raises(OrderRejected) as info:
        m.open(TRADER, "BTC/USD", "long", _units_to_number(sim, too_much), leverage)
    assert info.value.reason == "ReserveExceeded"
    assert info.value.refund_tokens == too_much - _fee_units(sim)
    assert sim.collateral_units(TRADER) == before - _fee_units(sim)
    assert _pool(sim) == (balance, 0)

    # exactly up to the limit: accepted, the reserve is the position's maximum profit
    p = m.open(TRADER, "BTC/USD", "long", _units_to_number(sim, just_fits), leverage).position
    assert p.max_profit_wad == _max_profit(sim, just_fits, leverage)
    balance_after, reserve_after = _pool(sim)
    assert reserve_after == p.max_profit_wad
    assert reserve_after * BPS <= balance_after * scale * MAX_RESERVE_BPS

    # the pool is (almost) full: the smallest allowed position (100 USD notional) is refused
    smallest = sim.to_units(100) // leverage if leverage >= 500 else None
    amount = _units_to_number(sim, smallest + _fee_units(sim)) if smallest else Decimal(11)
    with pytest.raises(OrderRejected) as info:
        m.open(OTHER, "BTC/USD", "short", amount, leverage)
    assert info.value.reason == "ReserveExceeded"
    assert _pool(sim)[1] == reserve_after


def test_reserve_adds_up_over_positions_and_closing_releases_it(sim):
    """500x (no open fee, M = A - X, maximum profit 5 M): two positions of M = 800 reserve
    4,000 each, the whole 80% of a 10,000 pool; a third does not fit until one closes."""
    m = _small_pool(sim)
    amount = 800 + EXECUTION_FEE_USD[sim.profile.name]
    a = m.open(TRADER, "BTC/USD", "long", amount, 500).position
    assert _pool(sim)[1] == a.max_profit_wad == 4_000 * WAD
    with pytest.raises(OrderRejected) as info:  # one token unit more than fits
        m.open(OTHER, "ETH/USD", "short", amount + _units_to_number(sim, 1), 500)
    assert info.value.reason == "ReserveExceeded"
    b = m.open(OTHER, "ETH/USD", "short", amount, 500).position
    assert _pool(sim)[1] == a.max_profit_wad + b.max_profit_wad == 8_000 * WAD
    assert sim.contracts["pool"].call("reserveCapacityUsd") == 0
    with pytest.raises(OrderRejected) as info:
        m.open(TRADER, "BTC/USD", "short", amount, 500)
    assert info.value.reason == "ReserveExceeded"

    closed = m.close(TRADER, a.id)
    assert _pool(sim)[1] == b.max_profit_wad  # released
    assert closed.pnl_wad < 0  # closed at once: the pool gained, so 4,000 fits again
    c = m.open(TRADER, "BTC/USD", "short", amount, 500).position
    assert _pool(sim)[1] == b.max_profit_wad + c.max_profit_wad

    m.set_prices({"ETH/USD": 3_100})  # b (short, 500x) is liquidated: its reserve is released too
    assert [(x.position.id, x.reason) for x in m.run_triggers()] == [(b.id, "liquidation")]
    assert _pool(sim)[1] == c.max_profit_wad


def test_withdrawal_may_not_leave_the_pool_below_reserve_over_80pct(sim):
    m = _small_pool(sim)
    scale = 10 ** (18 - sim.decimals)
    p = m.open(TRADER, "BTC/USD", "long", 600, 10).position
    reserve = p.max_profit_wad
    assert _pool(sim)[1] == reserve
    alp = sim.alp_balance_wad(LP)

    m.wait(COOLDOWN_S)
    # with open interest, a withdrawal needs prices no older than 60 s, settled by the triggers
    with pytest.raises(errors.PriceStale) as stale:
        m.withdraw(LP, "all")
    assert stale.value.pairId == 0
    m.set_prices(PRICES)
    m.keeper_round()

    # everything, then 40% of the ALP: the balance left would be below reserve / 80%
    for share in (1, Decimal("0.4")):
        balance, _ = _pool(sim)
        nav = sim.contracts["pool"].call("redeemNav")  # withdrawals are priced at the redemption NAV
        with pytest.raises(errors.ReserveNotCovered) as info:
            m.withdraw(LP, Decimal(int(alp * share)).scaleb(-18))
        assert info.value.reserveUsd == reserve
        assert info.value.poolBalanceAfterUsd * MAX_RESERVE_BPS < reserve * BPS  # after x 80% < reserve
        # out = alp x redemption NAV / supply less 30 bp, plus the 2 x 5 bp rebate on the part
        # that moves the stablecoin (the whole basket, over its target) toward its target: at
        # most its holdings' value. Within the accrual of one block
        supply, burnt = sim.contracts["alp"].call("totalSupply"), int(alp * share)
        gross = burnt * nav // supply
        toward = min(gross, balance * scale)
        expected_after = balance * scale - (burnt * (BPS - 30) * nav + 10 * toward * supply) // (supply * BPS)
        assert abs(info.value.poolBalanceAfterUsd - max(expected_after, 0)) < WAD
        assert _pool(sim) == (balance, reserve)
        assert sim.alp_balance_wad(LP) == alp

    # 25% leaves enough: allowed, and the pool still covers its reserve
    out = m.withdraw(LP, Decimal(alp // 4).scaleb(-18))
    balance, _ = _pool(sim)
    assert out.amount_out_units > 0
    assert balance * scale * MAX_RESERVE_BPS >= reserve * BPS
    # what is left would break the limit...
    with pytest.raises(errors.ReserveNotCovered):
        m.withdraw(LP, "all")
    # ...until the position closes and releases the reserve
    m.close(TRADER, p.id)
    assert _pool(sim)[1] == 0
    m.withdraw(LP, "all")
    assert sim.alp_balance_wad(LP) == 0
