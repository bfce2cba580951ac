"""Every bad input to the price oracle, the reference feeds and the market aggregates (docs/mechanics.md
sections 1, 8, 9, 13), table-driven, on both chain profiles: prices, settled or not, are recorded
only by the trading engine (UPDATER), never zero or beyond uint128; feeds move only by their
feeders; the market's aggregates move only by the engine (ENGINE), its `accrueAll` also by the
oracle; settings only by the admin; a mark price LPs may not be priced at (older than the
maximum age, its reference stale or past the circuit breaker, not settled) is refused. Each
refusal raises the exact error with its arguments and leaves every balance, price and
aggregate unchanged.

Rows name a prepared state (`conftest.PreparedStates`), an
optional preparation, the caller, the contract, the call and its arguments, the expected error
and its fields. Arguments and fields may be functions of the deployed system, read just before
the call."""

from __future__ import annotations

from typing import Callable

import pytest

from alpsim import errors
from alpsim.deployment import feed_role
from bad_inputs_helpers import (MAX_AGE_S, MAX_UINT, PRICES, ROW_ARGS, WAD, ZERO_ADDRESS, addr, breaker,
                                new_price_unsettled, params, reference_at, reference_price, reference_stale,
                                RefusalTable, role_of, settle, settled_until, settlement_aged, unauthorized)


MAX_PRICE = 2**128 - 1  # the largest keeper price (PriceOracle.KeeperPrice.price is a uint128)

ADMIN, TRADER, UPDATER, LP, TREASURY, KEEPER = 0, 1, 5, 7, 8, 9
EOA_ROLES = {"admin": ADMIN, "trader": TRADER, "lp": LP, "treasury": TREASURY, "keeper": KEEPER}
"""One account per EOA role (docs/mechanics.md §1). The trading engine, a contract, holds UPDATER on the
oracle and ENGINE on the market; account UPDATER is granted UPDATER by the admin in the
`updater` state only."""
NON_ADMINS = {k: v for k, v in EOA_ROLES.items() if k != "admin"}
NON_KEEPERS = {k: v for k, v in EOA_ROLES.items() if k != "keeper"}
NON_FEEDERS = {k: v for k, v in EOA_ROLES.items() if k not in ("admin", "keeper")}


# ------------------------------------------------------------------ prepared states

def _wait_until_latest_block_at(sim, timestamp: int) -> None:
    """Moves the clock so that the latest block, the one calls run on, is stamped `timestamp`."""
    clock = sim.devnet.clock
    if clock.head_ms // 1000 != timestamp:
        assert timestamp * 1000 > clock.head_ms, (timestamp, clock.head_ms)
        sim.devnet.advance_time((timestamp * 1000 - clock.head_ms) / 1000)
    assert sim.devnet.timestamp == timestamp


def _build_market(sim) -> None:
    """Pool liquidity, a BTC long open (BTC has a keeper price on chain, the other pairs none),
    the keeper's platform-token price set, platform tokens in a few hands."""
    sim.fund(LP, 100_000)
    sim.deposit(LP, 100_000)
    sim.fund(TRADER, 1_000)
    for who in (TRADER, TREASURY):
        sim.contracts["platform_token"].transact("mint", sim.address(who), 1_000 * WAD, sender=sim.address(ADMIN))
    sim.contracts["oracle"].transact("setPlatformTokenPrice", 2 * WAD, sender=sim.address(KEEPER))
    sim.keeper.set_prices(PRICES)
    sim.open(TRADER, "BTC/USD", "long", 500, 20)


def _build_updater(sim) -> None:
    """market, and the admin grants UPDATER to account UPDATER (as it did to the engine)."""
    _build_market(sim)
    oracle = sim.contracts["oracle"]
    oracle.transact("grantRole", oracle.call("UPDATER_ROLE"), sim.address(UPDATER), sender=sim.address(ADMIN))


BUILDERS = {"market": _build_market, "updater": _build_updater}


def _prices_and_aggregates(sim) -> dict:
    """The oracle's, the feeds' and the market's state."""
    c = sim.contracts
    oracle, market = c["oracle"], c["market"]
    pair_ids = range(len(sim.deployment.pairs))
    return {
        # keeperPrice: (price, updatedAt, settledUntil)
        "oracle": ([oracle.call("keeperPrice", i) for i in pair_ids]
                   + [oracle.call("referenceFeed", i) for i in pair_ids]
                   + [oracle.call(f) for f in ("platformTokenPriceUsd", "maxPriceAgeSeconds", "circuitBreakerBps",
                                               "worsePriceBps", "fundingAccrual")]),
        "feeds": [c[feed_role(name)].call("latestRoundData") for name in sim.deployment.pairs],
        # storedIndexes: an accrual (accrue, accrueAll) writes them
        "market": ([market.call(f) for f in ("holdingRatePerHourWad", "fundingRatePerHourWad")]
                   + [market.call("side", 0, is_long) for is_long in (True, False)]
                   + [market.call("storedIndexes", i) for i in pair_ids]),
    }


TABLE = RefusalTable(BUILDERS, extra=_prices_and_aggregates)
enter, refused, run_row, snapshot = TABLE.enter, TABLE.refused, TABLE.run_row, TABLE.snapshot


def price_at(pair_id: int) -> Callable:
    return lambda s: s.contracts["oracle"].call("keeperPrice", pair_id)[1]


# ------------------------------------------------------------------ preparations

def revoke_updater(s) -> None:
    oracle = s.contracts["oracle"]
    oracle.transact("revokeRole", oracle.call("UPDATER_ROLE"), s.address(UPDATER), sender=s.address(ADMIN))


def btc_price_older_than(seconds: int, max_age: int | None = None) -> Callable:
    """The keeper pushes again, the admin optionally sets the maximum age, and the latest block
    (the one a call runs on) is `seconds` after BTC's keeper price."""
    def prep(s):
        s.keeper.push_prices([0])
        if max_age is not None:
            s.contracts["oracle"].transact("setGuardSettings", max_age, 100, 10, sender=s.address(ADMIN))
        _wait_until_latest_block_at(s, price_at(0)(s) + seconds)
    return prep


def wait_seconds(seconds: int) -> Callable:
    return lambda s: s.devnet.advance_time(seconds)


# ------------------------------------------------------------------ oracle: prices and settings

PRICE_SETTERS = ("setPrice", "setSettledPrice")
"""Both record a keeper price (UPDATER); `setSettledPrice` (the engine's `runTriggers`) also
marks it settled when the guard passes. They take the same inputs and refuse the same."""

ORACLE_ROWS = [
    # --- setPrice, setSettledPrice: UPDATER only (the engine), every EOA role refused
    *[(f"{fn}-by-{name}", "market", None, who, "oracle", fn, (0, 61_000 * WAD),
       "AccessControlUnauthorizedAccount", unauthorized(who, "oracle", "UPDATER_ROLE"))
      for fn in PRICE_SETTERS for name, who in EOA_ROLES.items()],
    *[(f"{fn}-by-revoked-updater", "updater", revoke_updater, UPDATER, "oracle", fn, (0, 61_000 * WAD),
       "AccessControlUnauthorizedAccount", unauthorized(UPDATER, "oracle", "UPDATER_ROLE"))
      for fn in PRICE_SETTERS],
    # --- by an updater: zero and beyond uint128 (the keeper price's width since issue 26)
    *[row for fn in PRICE_SETTERS for row in [
        (f"{fn}-zero", "updater", None, UPDATER, "oracle", fn, (0, 0), "InvalidPriceInput", {"pairId": 0}),
        (f"{fn}-zero-unpriced-pair", "updater", None, UPDATER, "oracle", fn, (3, 0),
         "InvalidPriceInput", {"pairId": 3}),
        (f"{fn}-uint128-max-plus-one", "updater", None, UPDATER, "oracle", fn, (1, MAX_PRICE + 1),
         "InvalidPriceInput", {"pairId": 1}),
        # accepted before issue 26 (the limit was uint192)
        (f"{fn}-uint192-max", "updater", None, UPDATER, "oracle", fn, (1, 2**192 - 1),
         "InvalidPriceInput", {"pairId": 1}),
        (f"{fn}-uint192-max-plus-one", "updater", None, UPDATER, "oracle", fn, (1, 2**192),
         "InvalidPriceInput", {"pairId": 1}),
        (f"{fn}-max-uint", "updater", None, UPDATER, "oracle", fn, (2, MAX_UINT), "InvalidPriceInput", {"pairId": 2}),
        (f"{fn}-zero-unknown-pair", "updater", None, UPDATER, "oracle", fn, (99, 0),
         "InvalidPriceInput", {"pairId": 99}),
        (f"{fn}-max-uint-pair-and-price", "updater", None, UPDATER, "oracle", fn, (MAX_UINT, MAX_UINT),
         "InvalidPriceInput", {"pairId": MAX_UINT}),
        # a pair takes keeper prices once it has a reference feed: a valid price for one without
        (f"{fn}-pair-without-feed", "updater", None, UPDATER, "oracle", fn, (4, 61_000 * WAD),
         "InvalidPriceInput", {"pairId": 4}),
        (f"{fn}-max-pair-without-feed", "updater", None, UPDATER, "oracle", fn, (MAX_UINT, 61_000 * WAD),
         "InvalidPriceInput", {"pairId": MAX_UINT}),
    ]],
    # --- settings: ADMIN only
    *[(f"setReferenceFeed-by-{name}", "market", None, who, "oracle", "setReferenceFeed", (0, ZERO_ADDRESS),
       "AccessControlUnauthorizedAccount", unauthorized(who, "oracle", "ADMIN_ROLE"))
      for name, who in NON_ADMINS.items()],
    *[(f"setGuardSettings-by-{name}", "market", None, who, "oracle", "setGuardSettings", (MAX_UINT, MAX_UINT, MAX_UINT),
       "AccessControlUnauthorizedAccount", unauthorized(who, "oracle", "ADMIN_ROLE"))
      for name, who in NON_ADMINS.items()],
    *[(f"setFundingAccrual-by-{name}", "market", None, who, "oracle", "setFundingAccrual", (addr(who),),
       "AccessControlUnauthorizedAccount", unauthorized(who, "oracle", "ADMIN_ROLE"))
      for name, who in NON_ADMINS.items()],
    *[(f"grant-updater-to-self-by-{name}", "market", None, who, "oracle", "grantRole",
       (role_of("oracle", "UPDATER_ROLE"), addr(who)),
       "AccessControlUnauthorizedAccount", unauthorized(who, "oracle", "DEFAULT_ADMIN_ROLE"))
      for name, who in NON_ADMINS.items()],
    # --- the platform token's price: KEEPER only
    *[(f"setPlatformTokenPrice-by-{name}", "market", None, who, "oracle", "setPlatformTokenPrice", (WAD // 2,),
       "AccessControlUnauthorizedAccount", unauthorized(who, "oracle", "KEEPER_ROLE"))
      for name, who in NON_KEEPERS.items()],
]


@pytest.mark.parametrize(ROW_ARGS, **params(ORACLE_ROWS))
def test_oracle_refused(sim, state, prep, caller, contract, function, args, error, fields):
    run_row(sim, state, prep, caller, contract, function, args, error, fields)


def test_only_the_engine_records_prices_and_only_the_keeper_prices_the_platform_token(sim):
    """The premise of the oracle rows."""
    oracle = sim.contracts["oracle"]
    updater, keeper = oracle.call("UPDATER_ROLE"), oracle.call("KEEPER_ROLE")
    assert oracle.call("hasRole", updater, sim.contracts["trading"].address)
    assert [i for i in range(10) if oracle.call("hasRole", updater, sim.address(i))] == []
    assert [i for i in range(10) if oracle.call("hasRole", keeper, sim.address(i))] == [KEEPER]


@pytest.mark.parametrize("fn", PRICE_SETTERS)
def test_the_largest_keeper_price_is_uint128_max(sim, fn):
    """The boundary of the `-uint128-max-plus-one` rows: one less is recorded, by either setter.
    At 2^128-1 ETH's price is past the circuit breaker, so `setSettledPrice` records it not
    settled; at its reference price it is settled until the reference round's time plus the
    maximum age."""
    enter(sim, "updater")
    oracle, updater = sim.contracts["oracle"], sim.address(UPDATER)
    oracle.transact(fn, 1, MAX_PRICE, sender=updater)
    assert tuple(oracle.call("keeperPrice", 1)) == (MAX_PRICE, sim.devnet.timestamp, 0)
    ref, ref_at = oracle.call("referencePrice", 1)
    oracle.transact(fn, 1, ref, sender=updater)
    settled = ref_at + MAX_AGE_S if fn == "setSettledPrice" else 0
    assert tuple(oracle.call("keeperPrice", 1)) == (ref, sim.devnet.timestamp, settled)
    assert oracle.call("settledUntil", 1) == settled


# ------------------------------------------------------------------ stale mark prices

STALE_ROWS = [
    ("never-priced-pair", "market", None, TRADER, "oracle", "settledMarkPrice", (3,),
     "PriceStale", {"pairId": 3, "updatedAt": 0, "maxAge": MAX_AGE_S}),
    ("unknown-pair", "market", None, TRADER, "oracle", "settledMarkPrice", (99,),
     "PriceStale", {"pairId": 99, "updatedAt": 0, "maxAge": MAX_AGE_S}),
    ("btc-61s-old", "market", btc_price_older_than(61), TRADER, "oracle", "settledMarkPrice", (0,),
     "PriceStale", {"pairId": 0, "updatedAt": price_at(0), "maxAge": MAX_AGE_S}),
    ("btc-an-hour-old", "market", wait_seconds(3600), KEEPER, "oracle", "settledMarkPrice", (0,),
     "PriceStale", {"pairId": 0, "updatedAt": price_at(0), "maxAge": MAX_AGE_S}),
    ("btc-11s-old-max-age-10s", "market", btc_price_older_than(11, max_age=10), TRADER, "oracle",
     "settledMarkPrice", (0,), "PriceStale", {"pairId": 0, "updatedAt": price_at(0), "maxAge": 10}),
    ("btc-1s-old-max-age-0", "market", btc_price_older_than(1, max_age=0), TRADER, "oracle", "settledMarkPrice",
     (0,), "PriceStale", {"pairId": 0, "updatedAt": price_at(0), "maxAge": 0}),
    # the pool's NAV source asks for every pair with open interest (only BTC here)
    ("market-requireSettledPrices-btc-61s-old", "market", btc_price_older_than(61), LP, "market",
     "requireSettledPrices", (), "PriceStale", {"pairId": 0, "updatedAt": price_at(0), "maxAge": MAX_AGE_S}),
    ("market-settledPoolClaimsUsd-btc-61s-old", "market", btc_price_older_than(61), LP, "market",
     "settledPoolClaimsUsd", (), "PriceStale", {"pairId": 0, "updatedAt": price_at(0), "maxAge": MAX_AGE_S}),
]


@pytest.mark.parametrize(ROW_ARGS, **params(STALE_ROWS))
def test_stale_mark_price_refused(sim, state, prep, caller, contract, function, args, error, fields):
    run_row(sim, state, prep, caller, contract, function, args, error, fields, view=True)


def test_a_price_exactly_max_age_old_is_still_served(sim):
    """The boundary of the stale rows: at exactly 60 s the mark price is served. Since issue 26
    it must also be settled, and its reference round fresh: the keeper sets BTC's reference
    round and runs the triggers at its price in one block, so the price, the round and the
    settlement (`settledUntil` = the round's time + 60 s) all reach their limit together."""
    enter(sim, "market")
    oracle, trading = sim.contracts["oracle"], sim.contracts["trading"]
    feed = sim.contracts[feed_role("BTC/USD")]
    keeper, price = sim.deployment.keeper, PRICES["BTC/USD"] * WAD
    ids = sorted(sim.keeper.open_positions)
    receipts = sim.devnet.send_block([
        {"from": keeper, "to": feed.address, "data": feed.encode("setAnswer", PRICES["BTC/USD"] * 10**8)},
        {"from": keeper, "to": trading.address, "data": trading.encode("runTriggers", ids, [(0, price)])}])
    assert [r["status"] for r in receipts] == [1, 1]
    at = price_at(0)(sim)
    assert reference_at(0)(sim) == at and oracle.call("settledUntil", 0) == at + MAX_AGE_S
    _wait_until_latest_block_at(sim, at + MAX_AGE_S)
    assert oracle.call("settledMarkPrice", 0) == price
    sim.contracts["market"].call("requireSettledPrices")
    # one second on, the first check fails first
    _wait_until_latest_block_at(sim, at + MAX_AGE_S + 1)
    with pytest.raises(errors.PriceStale):
        oracle.call("settledMarkPrice", 0)


# ------------------------------------------------------------------ mark prices LPs may not use

MARK_ROWS = [
    # the checks after the keeper price's age, in settledMarkPrice's order; each row's
    # preparation fails exactly one of them (bad_inputs_helpers)
    ("btc-reference-61s-old", "market", reference_stale, TRADER, "oracle", "settledMarkPrice", (0,),
     "ReferenceStale", {"pairId": 0, "updatedAt": reference_at(0), "maxAge": MAX_AGE_S}),
    ("btc-reference-past-breaker", "market", breaker, TRADER, "oracle", "settledMarkPrice", (0,),
     "CircuitBreakerTripped", {"pairId": 0, "keeperPrice": PRICES["BTC/USD"] * WAD, "referencePrice": 61_000 * WAD}),
    ("btc-opened-never-triggered", "market", None, TRADER, "oracle", "settledMarkPrice", (0,),
     "PriceNotSettled", {"pairId": 0, "updatedAt": price_at(0), "settledUntil": 0}),
    ("btc-new-price-by-updatePrices", "market", new_price_unsettled, TRADER, "oracle", "settledMarkPrice", (0,),
     "PriceNotSettled", {"pairId": 0, "updatedAt": price_at(0), "settledUntil": 0}),
    ("btc-settlement-aged-same-price-pushed", "market", settlement_aged, TRADER, "oracle", "settledMarkPrice",
     (0,), "PriceNotSettled", {"pairId": 0, "updatedAt": price_at(0), "settledUntil": settled_until(0)}),
    # the pool's NAV source, as a deposit or withdrawal asks
    ("market-requireSettledPrices-reference-61s-old", "market", reference_stale, LP, "market",
     "requireSettledPrices", (), "ReferenceStale", {"pairId": 0, "updatedAt": reference_at(0), "maxAge": MAX_AGE_S}),
    ("market-settledPoolClaimsUsd-past-breaker", "market", breaker, LP, "market", "settledPoolClaimsUsd", (),
     "CircuitBreakerTripped", {"pairId": 0, "keeperPrice": PRICES["BTC/USD"] * WAD,
                               "referencePrice": reference_price(0)}),
    ("market-requireSettledPrices-not-settled", "market", new_price_unsettled, LP, "market",
     "requireSettledPrices", (), "PriceNotSettled", {"pairId": 0, "updatedAt": price_at(0), "settledUntil": 0}),
]


@pytest.mark.parametrize(ROW_ARGS, **params(MARK_ROWS))
def test_unsettled_mark_price_refused(sim, state, prep, caller, contract, function, args, error, fields):
    run_row(sim, state, prep, caller, contract, function, args, error, fields, view=True)


@pytest.mark.parametrize("prep", [None, new_price_unsettled, settlement_aged, reference_stale],
                         ids=["opened", "new-price", "settlement-aged", "reference-stale"])
def test_the_keepers_trigger_run_settles_the_mark_price(sim, prep):
    """The control of the rows above: the keeper's trigger run at its current price (reference
    rounds refreshed first) makes the same mark price usable."""
    enter(sim, "market")
    if prep:
        prep(sim)
    settle(sim)
    price = sim.contracts["oracle"].call("keeperPrice", 0)[0]
    assert sim.contracts["oracle"].call("settledMarkPrice", 0) == price
    sim.contracts["market"].call("requireSettledPrices")


# ------------------------------------------------------------------ reference feeds

FEED_ROWS = [
    *[(f"BTC-setAnswer-by-{name}", "market", None, who, feed_role("BTC/USD"), "setAnswer", (1,),
       "AccessControlUnauthorizedAccount", unauthorized(who, feed_role("BTC/USD"), "FEEDER_ROLE"))
      for name, who in NON_FEEDERS.items()],
    *[(f"{pair.split('/')[0]}-setAnswer-by-trader", "market", None, TRADER, feed_role(pair), "setAnswer", (-1,),
       "AccessControlUnauthorizedAccount", unauthorized(TRADER, feed_role(pair), "FEEDER_ROLE"))
      for pair in ("ETH/USD", "SOL/USD", "AAPL/USD")],
    *[(f"BTC-grant-feeder-to-self-by-{name}", "market", None, who, feed_role("BTC/USD"), "grantRole",
       (role_of(feed_role("BTC/USD"), "FEEDER_ROLE"), addr(who)),
       "AccessControlUnauthorizedAccount", unauthorized(who, feed_role("BTC/USD"), "DEFAULT_ADMIN_ROLE"))
      for name, who in NON_ADMINS.items()],
]


@pytest.mark.parametrize(ROW_ARGS, **params(FEED_ROWS))
def test_reference_feed_refused(sim, state, prep, caller, contract, function, args, error, fields):
    run_row(sim, state, prep, caller, contract, function, args, error, fields)


def test_feeders_are_the_admin_and_the_keeper(sim):
    """The premise of the feed rows, on every pair's feed."""
    for name in sim.deployment.pairs:
        feed = sim.contracts[feed_role(name)]
        feeder = feed.call("FEEDER_ROLE")
        assert [i for i in range(10) if feed.call("hasRole", feeder, sim.address(i))] == [ADMIN, KEEPER], name


# ------------------------------------------------------------------ market aggregates

def _remove_whole_side(s) -> tuple:
    """Arguments that would empty BTC's long side (it holds the open position)."""
    side = s.contracts["market"].call("side", 0, True)
    assert side["oiUsd"] > 0
    return (0, True, side["oiUsd"], side["qty"], side["costUsd"], 0, 0)


ENGINE_CALLS = [
    ("accrue", (0,)),
    # the engine or the oracle (before a guard setting or a feed changes); BTC has open interest,
    # so an accepted call would write its indexes
    ("accrueAll", ()),
    ("addPosition", (0, True, 10_000 * WAD, WAD // 6, 10_000 * WAD)),
    ("removePosition", _remove_whole_side),
]
MARKET_ROWS = [
    *[(f"{fn}-by-{name}", "market", None, who, "market", fn, args,
       "AccessControlUnauthorizedAccount", unauthorized(who, "market", "ENGINE_ROLE"))
      for fn, args in ENGINE_CALLS for name, who in EOA_ROLES.items()],
    *[(f"setRates-by-{name}", "market", None, who, "market", "setRates", (MAX_UINT, MAX_UINT),
       "AccessControlUnauthorizedAccount", unauthorized(who, "market", "ADMIN_ROLE"))
      for name, who in NON_ADMINS.items()],
    *[(f"grant-engine-to-self-by-{name}", "market", None, who, "market", "grantRole",
       (role_of("market", "ENGINE_ROLE"), addr(who)),
       "AccessControlUnauthorizedAccount", unauthorized(who, "market", "DEFAULT_ADMIN_ROLE"))
      for name, who in NON_ADMINS.items()],
]


@pytest.mark.parametrize(ROW_ARGS, **params(MARKET_ROWS))
def test_market_refused(sim, state, prep, caller, contract, function, args, error, fields):
    run_row(sim, state, prep, caller, contract, function, args, error, fields)


def test_only_the_engine_moves_the_market(sim):
    """The premise of the market rows: the engine holds ENGINE, no account does; the oracle,
    wired at deployment, accrues the market before a guard setting changes."""
    market, oracle = sim.contracts["market"], sim.contracts["oracle"]
    engine = market.call("ENGINE_ROLE")
    assert market.call("hasRole", engine, sim.contracts["trading"].address)
    assert [i for i in range(10) if market.call("hasRole", engine, sim.address(i))] == []
    assert oracle.call("fundingAccrual") == market.address
    assert not market.call("hasRole", engine, oracle.address)
    enter(sim, "market")
    before = market.call("storedIndexes", 0)
    sim.devnet.advance_time(10)
    oracle.transact("setGuardSettings", MAX_AGE_S, 100, 10, sender=sim.address(ADMIN))
    after = market.call("storedIndexes", 0)
    assert after != before and after["updatedAt"] == sim.devnet.timestamp
