"""Preparations shared by the bad-input tables of the oracle (tests/test_bad_inputs_oracle_market.py)
and the pool (tests/test_bad_inputs_pool.py): a pair's keeper price made *settled* by the
keeper's trigger run, and each way a settled price can then be unusable for LPs
(docs/mechanics.md sections 8 and 10). `PriceOracle.settledMarkPrice` checks, in this order:
PriceStale (keeper price missing or older than the maximum age), ReferenceStale, CircuitBreakerTripped,
PriceNotSettled (now past `settledUntil`). Each preparation makes exactly one of them fail first,
for BTC (pair 0, the first pair checked), and ends with a transaction: a view called next runs on
its block, a transaction sent next on a later one."""

from __future__ import annotations

from typing import Callable

MAX_AGE_S = 60  # docs/mechanics.md §8
BTC = 0
WAD = 10**18


def wait_until_next_block_at(sim, timestamp: int) -> None:
    """Moves the clock so that the next transaction's block is stamped `timestamp`."""
    clock = sim.devnet.clock
    target_ms = timestamp * 1000 - clock.block_time_ms
    assert target_ms > clock.head_ms, (timestamp, clock.head_ms)
    sim.devnet.advance_time((target_ms - clock.head_ms) / 1000)
    assert clock.next_timestamp == timestamp


def price_at(pair_id: int) -> Callable:
    """The time of the pair's keeper price (`keeperPrice(pairId).updatedAt`)."""
    return lambda s: s.contracts["oracle"].call("keeperPrice", pair_id)[1]


def keeper_price(pair_id: int) -> Callable:
    return lambda s: s.contracts["oracle"].call("keeperPrice", pair_id)[0]


def reference_price(pair_id: int) -> Callable:
    return lambda s: s.contracts["oracle"].call("referencePrice", pair_id)[0]


def reference_at(pair_id: int) -> Callable:
    """The time of the pair's reference round."""
    return lambda s: s.contracts["oracle"].call("referencePrice", pair_id)[1]


def settled_until(pair_id: int) -> Callable:
    return lambda s: s.contracts["oracle"].call("settledUntil", pair_id)


def open_pairs(sim) -> list[int]:
    """The pairs the keeper's open positions are on (those with open interest)."""
    return sorted(set(sim.keeper.open_positions.values()))


def settle(sim, pairs: list[int] | None = None) -> dict:
    """The keeper's trigger run (`runTriggers`) at its current prices over the open positions of
    `pairs` (default: all), reference rounds older than 30 s refreshed first: their prices are
    settled. Nothing closes, and each of those pairs is settled now."""
    pairs = open_pairs(sim) if pairs is None else pairs
    ids = sorted(pid for pid, pair in sim.keeper.open_positions.items() if pair in pairs)
    assert ids, "no open position to run the triggers of"
    receipt = sim.keeper.run_triggers(ids)
    assert sim.session.events(receipt, "PositionClosed") == []
    now = sim.devnet.timestamp
    for pair in pairs:
        assert settled_until(pair)(sim) >= now, (pair, settled_until(pair)(sim), now)
    return receipt


def reference_stale(sim) -> None:
    """Settled, then 61 s after BTC's reference round the keeper pushes the same prices again
    without a new reference round (`updatePrices` straight on the engine): the keeper price is
    fresh, the reference is not (and the settlement, tied to that round, has lapsed too:
    ReferenceStale is checked first)."""
    settle(sim)
    ref_at = reference_at(BTC)(sim)
    wait_until_next_block_at(sim, ref_at + MAX_AGE_S + 1)
    oracle = sim.contracts["oracle"]
    prices = [(pair, oracle.call("keeperPrice", pair)[0]) for pair in open_pairs(sim)]
    sim.contracts["trading"].transact("updatePrices", prices, sender=sim.keeper.address)
    assert reference_at(BTC)(sim) == ref_at
    assert price_at(BTC)(sim) == sim.devnet.timestamp  # fresh


def breaker(sim) -> None:
    """Settled, then BTC's reference round moves 1.67% away from the keeper's 60,000 (past the
    1% circuit breaker) and the keeper's next round finds the breaker tripped: the keeper price
    stays fresh, and is no longer settled (until then the window granted stands: see
    test_pool_books)."""
    settle(sim)
    assert keeper_price(BTC)(sim) == 60_000 * WAD
    sim.keeper.set_reference("BTC/USD", 61_000)
    receipt = sim.keeper.run_triggers(sorted(sim.keeper.open_positions))
    assert sim.session.events(receipt, "PositionClosed") == []
    assert settled_until(BTC)(sim) == 0 and price_at(BTC)(sim) == sim.devnet.timestamp


def new_price_unsettled(sim) -> None:
    """Settled, then a new BTC price (60,100, its reference along) recorded by a bare
    `updatePrices` (the keeper's `push_prices`), no triggers since: not settled."""
    settle(sim)
    sim.keeper.set_prices({"BTC/USD": 60_100})
    sim.keeper.push_prices([BTC])
    assert keeper_price(BTC)(sim) == 60_100 * WAD
    assert settled_until(BTC)(sim) == 0


def settlement_aged(sim) -> None:
    """Settled, then 61 s past BTC's settlement the keeper pushes the same prices with
    `updatePrices` (a fresh reference round first): keeper price and reference are fresh, but
    `settledUntil` does not move with a same-price update, so the price is no longer settled."""
    settle(sim)
    until = settled_until(BTC)(sim)
    wait_until_next_block_at(sim, until + 1)
    price = keeper_price(BTC)(sim)
    sim.keeper.push_prices()
    assert keeper_price(BTC)(sim) == price
    assert price_at(BTC)(sim) > until and reference_at(BTC)(sim) > until  # both fresh again
    assert settled_until(BTC)(sim) == until < sim.devnet.timestamp
