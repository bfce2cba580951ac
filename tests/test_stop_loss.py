"""Stop-loss triggers (docs/mechanics.md section 6, with 7 for the fill): the keeper's `runTriggers` closes
a long whose oracle price is at or below its stop-loss and a short at or above it, at the oracle
price moved against the trader by slippage; nothing happens on the other side of the
stop-loss; one keeper run over many positions closes exactly those whose take-profit or
stop-loss was hit. Expectations from the docs/mechanics.md formulas; the mirror also compares the chain
with the reference model. Both chain profiles."""

from __future__ import annotations

from decimal import Decimal

import pytest

from conftest import funded_mirror

TRADER_FUNDS = 10_000
TRADERS = (1, 2, 3, 4, 5, 6)
DEPTH_USD = {"BTC/USD": 100_000_000, "ETH/USD": 50_000_000}
SPREAD_BPS = {"BTC/USD": 1, "ETH/USD": 1}
WAD = 10**18


mirror = pytest.fixture(name="mirror")(funded_mirror)
"""conftest's `funded_pool` (TRADERS funded and approved); each test ends with a full chain/model comparison."""


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def close_fill(pair: str, is_long: bool, oracle_wad: int, side_oi_wad: int) -> int:
    """docs/mechanics.md §7 for a close: s = spread + sideOI / depth x 1% (sideOI includes the position: the
    side's OI without it plus its own notional); a long sells at oracle x (1 - s), a short
    buys at oracle x (1 + s), each rounded against the trader."""
    slip = SPREAD_BPS[pair] * 10**14 + _ceil_div(side_oi_wad * 10**16, DEPTH_USD[pair] * WAD)
    if is_long:
        return oracle_wad * (WAD - slip) // WAD
    return _ceil_div(oracle_wad * (WAD + slip), WAD)


def _price(value) -> int:
    return int(Decimal(value).scaleb(18))


@pytest.mark.parametrize("pair, side, leverage, stop_loss, untouched, hit", [
    # long: no trigger above the stop-loss (profit side, or just above it); trigger at it
    ("BTC/USD", "long", 10, "58000", ["62000", "58000.01"], "58000"),
    # long: a price through the stop-loss triggers too
    ("BTC/USD", "long", 20, "59000", ["59500"], "58800"),
    # short: no trigger below the stop-loss; trigger at it
    ("ETH/USD", "short", 10, "3100", ["2900", "3099.99"], "3100"),
    ("ETH/USD", "short", 20, "3050", ["3049"], "3070"),
])
def test_stop_loss_closes_at_the_oracle_price_moved_by_slippage(mirror, pair, side, leverage, stop_loss, untouched,
                                                                hit):
    sim = mirror.sim
    trader = TRADERS[0]
    p = mirror.open(trader, pair, side, 1000, leverage, stop_loss=stop_loss).position
    assert p.stop_loss_wad == _price(stop_loss)

    for price in untouched:
        mirror.set_prices({pair: price})
        assert mirror.run_triggers() == []
        assert sim.position(p.id) is not None

    balance = sim.collateral_units(trader)
    reserve = sim.contracts["pool"].call("reserveUsd")
    mirror.set_prices({pair: hit})
    closed = mirror.run_triggers()

    assert [c.position.id for c in closed] == [p.id]
    c = closed[0]
    assert c.reason == "stop_loss"
    assert c.oracle_price_wad == _price(hit)
    expected_exit = close_fill(pair, side == "long", _price(hit), p.notional_wad)
    assert c.exit_price_wad == expected_exit
    assert (expected_exit < _price(hit)) if side == "long" else (expected_exit > _price(hit))
    move = expected_exit - p.entry_price_wad if side == "long" else p.entry_price_wad - expected_exit
    assert c.pnl_wad == p.qty_wad * move // WAD < 0  # a loss, rounded down (pool's favour)
    assert c.close_fee_wad == _ceil_div(p.qty_wad * expected_exit // WAD * 8, 10_000)  # standard: 8 bp
    assert c.payout_wad == p.margin_wad + c.pnl_wad - c.close_fee_wad - c.holding_wad - c.funding_wad > 0
    assert sim.collateral_units(trader) == balance + c.payout_tokens
    assert sim.contracts["pool"].call("reserveUsd") == reserve - p.max_profit_wad
    assert sim.position(p.id) is None
    # a closed position is not triggered again
    assert mirror.run_triggers([p.id]) == []
    mirror.check()


def test_one_keeper_run_closes_exactly_the_positions_hit(mirror):
    sim = mirror.sim
    t1, t2, t3, t4, t5, t6 = TRADERS
    tp_long = mirror.open(t1, "BTC/USD", "long", 1000, 10, take_profit=61_000).position
    sl_long = mirror.open(t2, "BTC/USD", "long", 1000, 10, stop_loss=59_000).position
    bare_long = mirror.open(t3, "BTC/USD", "long", 1000, 10).position
    sl_short = mirror.open(t4, "BTC/USD", "short", 1000, 10, stop_loss=60_500).position
    tp_short = mirror.open(t5, "BTC/USD", "short", 1000, 10, take_profit=58_800).position
    eth_long = mirror.open(t6, "ETH/USD", "long", 1000, 10, stop_loss=2_900, take_profit=3_300).position
    everyone = [tp_long, sl_long, bare_long, sl_short, tp_short, eth_long]

    # BTC up: the long take-profit and the short stop-loss only
    mirror.set_prices({"BTC/USD": 61_500, "ETH/USD": 3_000})
    closed = {c.position.id: c for c in mirror.run_triggers([p.id for p in everyone])}
    assert {pid: c.reason for pid, c in closed.items()} == {tp_long.id: "take_profit", sl_short.id: "stop_loss"}
    assert closed[tp_long.id].exit_price_wad == 61_000 * WAD  # min(fill, TP)
    assert closed[sl_short.id].exit_price_wad > 61_500 * WAD  # oracle moved against the short
    open_now = {p.id for p in everyone} - set(closed)
    assert {pid for pid in open_now if sim.position(pid) is not None} == open_now

    # BTC down: the long stop-loss and the short take-profit; ETH barely moves
    mirror.set_prices({"BTC/USD": 58_500, "ETH/USD": 2_950})
    closed = {c.position.id: c for c in mirror.run_triggers()}
    assert {pid: c.reason for pid, c in closed.items()} == {sl_long.id: "stop_loss", tp_short.id: "take_profit"}
    assert closed[sl_long.id].exit_price_wad < 58_500 * WAD
    assert closed[tp_short.id].exit_price_wad == 58_800 * WAD  # max(fill, TP)

    # the position without limits and the ETH long are still open; then ETH's stop-loss
    assert {pid for pid in (bare_long.id, eth_long.id) if sim.position(pid) is not None} == {bare_long.id, eth_long.id}
    mirror.set_prices({"ETH/USD": 2_900})
    closed = mirror.run_triggers()
    assert [(c.position.id, c.reason) for c in closed] == [(eth_long.id, "stop_loss")]
    assert sim.position(bare_long.id) is not None
    reserve = sim.contracts["pool"].call("reserveUsd")
    assert reserve == bare_long.max_profit_wad
    mirror.check()
