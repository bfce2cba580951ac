"""The ALP pool's NAV (docs/mechanics.md section 10): pool balance - unrealized trader pnl + holding and
funding owed to the pool, at the keeper price, aggregated per pair and side so that it costs
the same with one open position or many; ALP price = NAV / supply, and deposits while
positions are open mint at that price. On both chain profiles."""

from __future__ import annotations

from fractions import Fraction
import pytest
from conftest import PROFILES, embedded_system, lp_mirror

# NAV's and a deposit's gas are compared on the exact (embedded) backend; the rest runs on revm
exact_system = pytest.fixture(scope="module", params=PROFILES, name="exact_system")(embedded_system)


@pytest.fixture
def exact_mirror(exact_system):
    snap = exact_system.snapshot()
    yield lp_mirror(exact_system)
    exact_system.revert(snap)


WAD = 10**18
BPS = 10_000
NEW_LP = 6


def _wad_str(wad: int) -> str:
    return f"{wad // WAD}.{wad % WAD:018d}"


def _scale(sim) -> int:
    return 10 ** (18 - sim.decimals)


def _nav_from_aggregates(sim) -> int:
    """docs/mechanics.md §10 from the market's side aggregates and indexes, at the keeper price, the way
    the spec writes it: pnl of longs = sum(qty) x price - sum(qty x entry), of shorts the
    reverse; fees owed = notional x index now - sum(notional x index at open)."""
    market, oracle = sim.contracts["market"], sim.contracts["oracle"]
    nav = sim.contracts["pool"].call("poolBalance") * _scale(sim)
    for pair_id in range(len(sim.deployment.pairs)):
        longs, shorts = market.call("side", pair_id, True), market.call("side", pair_id, False)
        if longs["oiUsd"] == 0 and shorts["oiUsd"] == 0:
            continue
        price = oracle.call("keeperPrice", pair_id)[0]
        idx = market.call("indexesNow", pair_id)
        for side, is_long, funding_index in ((longs, True, idx["fundingLong"]), (shorts, False, idx["fundingShort"])):
            if side["oiUsd"] == 0:
                continue
            value = side["qty"] * price // WAD
            pnl = value - side["costUsd"] if is_long else side["costUsd"] - value
            holding = (side["oiUsd"] * idx["holding"] - side["holdingWeight"]) // WAD
            funding = (side["oiUsd"] * funding_index - side["fundingWeight"]) // WAD  # floor
            nav += holding + funding - pnl
    return max(nav, 0)


def _nav_from_positions(sim, positions: list) -> Fraction:
    """docs/mechanics.md §10 position by position, exactly (no rounding): balance - sum(pnl) + sum(fees)."""
    market, oracle = sim.contracts["market"], sim.contracts["oracle"]
    nav = Fraction(sim.contracts["pool"].call("poolBalance") * _scale(sim))
    for p in positions:
        price = oracle.call("keeperPrice", p.pair_id)[0]
        idx = market.call("indexesNow", p.pair_id)
        move = price - p.entry_price_wad if p.is_long else p.entry_price_wad - price
        funding_index = idx["fundingLong"] if p.is_long else idx["fundingShort"]
        nav -= Fraction(p.qty_wad * move, WAD)
        nav += Fraction(p.notional_wad * (idx["holding"] - p.holding_index), WAD)
        nav += Fraction(p.notional_wad * (funding_index - p.funding_index), WAD)
    return nav


def _check_side_aggregates(sim, positions: list) -> None:
    """The aggregates are the sums over the open positions (Market's invariants)."""
    market = sim.contracts["market"]
    for pair_id in {p.pair_id for p in positions}:
        for is_long in (True, False):
            mine = [p for p in positions if p.pair_id == pair_id and p.is_long == is_long]
            side = market.call("side", pair_id, is_long)
            assert side["oiUsd"] == sum(p.notional_wad for p in mine)
            assert side["qty"] == sum(p.qty_wad for p in mine)
            assert side["costUsd"] == sum(p.qty_wad * p.entry_price_wad // WAD for p in mine)
            assert side["holdingWeight"] == sum(p.notional_wad * p.holding_index for p in mine)
            assert side["fundingWeight"] == sum(p.notional_wad * p.funding_index for p in mine)


def _open_book(mirror) -> list:
    """Positions on two pairs and both sides, the pool balance as it is after them."""
    for trader in (1, 2, 3):
        mirror.fund(trader, 5_000)
    return [
        mirror.open(1, "BTC/USD", "long", 5_000, 20).position,
        mirror.open(2, "BTC/USD", "short", 2_000, 10).position,
        mirror.open(3, "ETH/USD", "long", 500, 1001).position,
    ]


def test_nav_is_pool_balance_minus_trader_pnl_plus_fees_owed(mirror):
    sim = mirror.sim
    positions = _open_book(mirror)
    mirror.wait(1800)  # some holding and funding owed
    # the longs (BTC and ETH) win then lose 0.04%, the BTC short the reverse: net, the traders
    # first win, then lose
    for outcome, prices in (("winners", {"BTC/USD": "60024", "ETH/USD": "3001.2"}),
                            ("losers", {"BTC/USD": "59976", "ETH/USD": "2998.8"})):
        mirror.set_prices(prices)
        mirror.push_prices()  # the keeper records them on chain: NAV marks at them
        pool = sim.pool()
        balance_wad = pool.balance_units * _scale(sim)
        _check_side_aggregates(sim, positions)
        assert pool.nav_wad == _nav_from_aggregates(sim), outcome
        assert abs(pool.nav_wad - _nav_from_positions(sim, positions)) <= 2 * len(positions) + 2, outcome
        trader_pnl = _trader_pnl(sim, positions)
        if outcome == "winners":
            assert trader_pnl > 0
            assert pool.nav_wad < balance_wad  # the pool owes the winners
        else:
            assert trader_pnl < 0
            assert pool.nav_wad > balance_wad  # the losers owe the pool
        # ALP price = NAV / supply (rounded down)
        assert pool.alp_price_wad == pool.nav_wad * WAD // pool.alp_supply_wad


def _trader_pnl(sim, positions: list) -> Fraction:
    oracle = sim.contracts["oracle"]
    total = Fraction(0)
    for p in positions:
        move = oracle.call("keeperPrice", p.pair_id)[0] - p.entry_price_wad
        total += Fraction(p.qty_wad * (move if p.is_long else -move), WAD)
    return total


def _fees_owed(sim, positions: list) -> Fraction:
    """docs/mechanics.md §10's third term: NAV - balance + pnl."""
    return _nav_from_positions(sim, positions) - sim.pool().balance_units * _scale(sim) + _trader_pnl(sim, positions)


def test_nav_counts_holding_and_funding_owed(mirror):
    """At unchanged prices NAV grows by what the positions come to owe: five hours of holding
    on every notional plus the funding the pool keeps."""
    sim = mirror.sim
    positions = _open_book(mirror)
    mirror.push_prices()
    first, fees_first = sim.pool().nav_wad, _fees_owed(sim, positions)
    mirror.wait(5 * 3600)
    mirror.push_prices()
    later, fees_later = sim.pool().nav_wad, _fees_owed(sim, positions)
    assert later == _nav_from_aggregates(sim)
    assert fees_later > fees_first >= 0
    holding_5h = Fraction(sum(p.notional_wad for p in positions), 100_000) * 5
    assert fees_later - fees_first >= holding_5h * Fraction(999, 1000)
    # nothing else moved NAV: same prices, same pool balance
    assert abs((later - first) - (fees_later - fees_first)) <= 4 * len(positions) + 4


def test_deposit_with_open_positions_mints_at_the_alp_price(mirror):
    sim = mirror.sim
    positions = _open_book(mirror)
    mirror.fund(4, 100_000)
    positions.append(mirror.open(4, "BTC/USD", "long", 100_000, 10).position)  # ~1,000,000 notional
    # the longs win a lot (ETH's 1001x long stays below its take-profit cap, +300%: the
    # keeper's triggers, which settle the prices for the deposit, would close it there)
    mirror.set_prices({"BTC/USD": 61_500, "ETH/USD": 3_006})
    mirror.keeper_round()  # recorded and settled (the triggers ran at them): LPs may be priced
    assert len(sim.keeper.open_positions) == 4  # nothing closed
    pool_before = sim.pool()
    price_before = pool_before.alp_price_wad
    balance_price = pool_before.balance_units * _scale(sim) * WAD // pool_before.alp_supply_wad
    assert price_before < balance_price - balance_price // 1000  # open pnl moves it by > 0.1%

    amount = 100_000
    mirror.fund(NEW_LP, amount)
    result = mirror.deposit(NEW_LP, amount)
    after = sim.pool()
    amount_wad = amount * WAD
    # NAV in the deposit's block, before the deposit: after less what was deposited. The fee:
    # 30 bp, the stablecoin (the whole basket) moving further above its target weight
    nav_at_deposit = after.nav_wad - amount_wad
    expected = amount_wad * (BPS - 30) * pool_before.alp_supply_wad // (nav_at_deposit * BPS)
    assert result.alp_out_wad == expected
    assert after.alp_supply_wad == pool_before.alp_supply_wad + expected
    # that is the ALP price read before (up to the seconds of holding between the two blocks)
    at_price = Fraction(amount_wad * (BPS - 30), BPS) * WAD / price_before
    assert abs(result.alp_out_wad - at_price) / at_price < Fraction(1, 10**7)
    # and not the price the pool balance alone would give
    at_balance_price = Fraction(amount_wad * (BPS - 30), BPS) * WAD / balance_price
    assert result.alp_out_wad > at_balance_price * Fraction(1001, 1000)
    # the ALP price is unchanged by the deposit but for the fee, which stays in the pool
    assert after.alp_price_wad >= price_before
    assert sim.alp_balance_wad(NEW_LP) == expected
    assert len(positions) == 4


def _nav_gas(sim) -> int:
    pool = sim.contracts["pool"]
    return sim.devnet.w3.eth.estimate_gas({"to": pool.address, "data": pool.encode("nav")})


def test_nav_costs_the_same_with_one_or_twenty_positions(exact_mirror):
    mirror = exact_mirror
    sim = mirror.sim
    mirror.check_every_step = False  # checked once at the end; keeps the test fast
    traders = [1, 2, 3, 4, 5]
    for t in traders:
        mirror.fund(t, 2_000)
    mirror.open(1, "BTC/USD", "long", 200, 10)
    mirror.keeper_round()  # settled: deposits need it
    gas_one = _nav_gas(sim)
    mirror.fund(NEW_LP, 2_000)
    deposit_one = mirror.deposit(NEW_LP, 1_000).gas_used

    for i in range(19):
        mirror.open(traders[i % len(traders)], "BTC/USD", "long", 200, 10 + i)
    assert len(sim.keeper.open_positions) == 20
    mirror.keeper_round()
    gas_twenty = _nav_gas(sim)
    mirror.fund(NEW_LP - 1, 2_000)
    deposit_twenty = mirror.deposit(NEW_LP - 1, 1_000).gas_used  # also a holder's first deposit
    mirror.check()

    assert abs(gas_twenty - gas_one) <= gas_one * 5 // 100, (gas_one, gas_twenty)
    assert abs(deposit_twenty - deposit_one) <= deposit_one * 5 // 100, (deposit_one, deposit_twenty)
    assert sim.pool().nav_wad == _nav_from_aggregates(sim)
