"""Price guards (docs/mechanics.md section 8, and the settled-price rule of section 10): a keeper/reference
gap over 1% trips the circuit breaker, a gap over 0.1% executes at the worse of the two for
the trader, a reference older than 60 s is stale; deposits and withdrawals need a fresh,
settled keeper price (the triggers ran at it: `runTriggers`) for every pair with open
interest; at most 100 executions per pair per block. On both chain profiles. The reference
feed sits at 60000 for BTC/USD throughout unless moved."""

from __future__ import annotations

import pytest

from alpsim import errors
from alpsim.client import CloseRejected, OrderRejected

WAD = 10**18
PAIR, PAIR_ID = "BTC/USD", 0
REF = 60_000 * WAD
TRADER, OTHER = 1, 2
LP = 7


@pytest.fixture
def mirror(mirror):
    """The conftest mirror, compared with the model once at the end of the test rather than
    after every action (settlements and rejections are still compared as they happen)."""
    mirror.check_every_step = False
    yield mirror
    mirror.check()


@pytest.fixture
def manual_reference(sim):
    """The keeper leaves stale reference feeds alone (restored after the test: the deployed
    system is shared by the session)."""
    previous = sim.keeper.auto_refresh_reference
    sim.keeper.auto_refresh_reference = False
    yield
    sim.keeper.auto_refresh_reference = previous


def _wad_str(wad: int) -> str:
    return f"{wad // WAD}.{wad % WAD:018d}"


def _latest_events(sim, name: str) -> list[dict]:
    w3 = sim.devnet.w3
    events = []
    for tx in w3.eth.get_block("latest")["transactions"]:
        events += sim.session.events(w3.eth.get_transaction_receipt(tx), name)
    return events


def _keeper_units(sim) -> int:
    return sim.contracts["collateral"].call("balanceOf", sim.keeper.address)


def _wait_until(mirror, ms: int) -> None:
    """Moves the clock so that the latest block is stamped `ms` (in milliseconds)."""
    clock = mirror.sim.devnet.clock
    assert ms > clock.head_ms, (ms, clock.head_ms)
    mirror.wait((ms - clock.head_ms) / 1000)


def _open_at(mirror, timestamp: int, who, side: str = "long", amount=100, leverage=1001):
    """Requests an open, then has the keeper execute it in a block stamped `timestamp`."""
    bt = mirror.sim.devnet.clock.block_time_ms
    _wait_until(mirror, timestamp * 1000 - 5 * bt)  # the request's one or two blocks fit before
    pending = mirror.request_open(who, PAIR, side, amount, leverage)  # one or two blocks
    _wait_until(mirror, timestamp * 1000 - bt)
    assert mirror.sim.devnet.clock.next_timestamp == timestamp
    return mirror.execute_open(pending)


# ----------------------------------------------------------------------- circuit breaker

def test_circuit_breaker_rejects_opens_and_refunds(mirror):
    sim = mirror.sim
    amount_units = sim.to_units(1_000)
    for side, keeper in (("long", "60600.000000000000000001"),  # one wad over 1% above
                         ("short", "59399.999999999999999999"),  # one wad over 1% below
                         ("short", "62000")):
        mirror.fund(TRADER, 1_000)
        mirror.set_prices({PAIR: keeper}, reference=False)
        before, keeper_before = sim.collateral_units(TRADER), _keeper_units(sim)
        with pytest.raises(OrderRejected) as rejected:
            mirror.open(TRADER, PAIR, side, 1_000, 10)
        fee = rejected.value.execution_fee_tokens
        assert rejected.value.reason == "CircuitBreaker", keeper
        assert rejected.value.refund_tokens == amount_units - fee
        assert sim.collateral_units(TRADER) == before - fee  # refunded, less the execution fee
        assert _keeper_units(sim) == keeper_before + fee
    assert sim.keeper.open_positions == {}
    assert sim.pool().reserve_wad == 0
    market = sim.contracts["market"]
    assert market.call("sideOiUsd", PAIR_ID, True) == market.call("sideOiUsd", PAIR_ID, False) == 0


def test_gap_of_exactly_1_percent_does_not_trip_the_breaker(mirror):
    """Not over 1%: executes, at the worse price for the trader (the keeper's here)."""
    for trader in (TRADER, OTHER):
        mirror.fund(trader, 1_000)
    mirror.set_prices({PAIR: "60600"}, reference=False)
    assert mirror.open(TRADER, PAIR, "long", 1_000, 10).oracle_price_wad == 60_600 * WAD
    mirror.set_prices({PAIR: "59400"}, reference=False)
    assert mirror.open(OTHER, PAIR, "short", 1_000, 10).oracle_price_wad == 59_400 * WAD


def test_circuit_breaker_rejects_closes_and_triggers_skip(mirror):
    sim = mirror.sim
    trading = sim.contracts["trading"]
    mirror.fund(TRADER, 100)
    p = mirror.open(TRADER, PAIR, "long", 100, 1001).position
    mirror.set_prices({PAIR: 59_000}, reference=False)  # 1.67% below the reference
    before = sim.collateral_units(TRADER)
    with pytest.raises(CloseRejected) as rejected:
        mirror.close(TRADER, p.id)
    assert rejected.value.reason == "CircuitBreaker"
    assert [e["reason"] for e in _latest_events(sim, "CloseRejected")] == [16]  # on chain too
    assert sim.position(p.id) is not None
    assert sim.collateral_units(TRADER) == before

    # far past its liquidation price, but the keeper's price is not trusted: skipped
    assert trading.call("isLiquidatable", p.id, 59_000 * WAD)
    assert mirror.run_triggers() == []
    assert sim.position(p.id) is not None
    # the reference agrees again: liquidated
    mirror.set_reference(PAIR, 59_000)
    closed = mirror.run_triggers()
    assert [(c.position.id, c.reason, c.oracle_price_wad) for c in closed] == [(p.id, "liquidation", 59_000 * WAD)]


# ----------------------------------------------------------------------- worse price

@pytest.mark.parametrize("keeper", ["60300", "59700"], ids=["keeper-above", "keeper-below"])
def test_gap_over_a_tenth_of_a_percent_executes_at_the_worse_price(mirror, keeper):
    """0.5% gap: a long opens at the higher of keeper and reference, a short at the lower;
    a long closes at the lower, a short at the higher."""
    keeper_wad = int(keeper) * WAD
    high, low = max(keeper_wad, REF), min(keeper_wad, REF)
    for trader in (TRADER, OTHER):
        mirror.fund(trader, 1_000)
    mirror.set_prices({PAIR: keeper}, reference=False)
    long_ = mirror.open(TRADER, PAIR, "long", 1_000, 10)
    short = mirror.open(OTHER, PAIR, "short", 1_000, 10)
    assert long_.oracle_price_wad == high
    assert short.oracle_price_wad == low
    assert long_.position.entry_price_wad > high and short.position.entry_price_wad < low  # plus slippage
    closed_long = mirror.close(TRADER, long_.position.id)
    closed_short = mirror.close(OTHER, short.position.id)
    assert closed_long.oracle_price_wad == low
    assert closed_short.oracle_price_wad == high


def _guarded(mirror, keeper_wad: int) -> dict[str, tuple[int, int]]:
    """Records `keeper_wad` on chain (the reference stays) and reads the oracle's guarded
    price for a buying trader (long open, short close) and a selling one."""
    mirror.set_prices({PAIR: _wad_str(keeper_wad)}, reference=False)
    mirror.push_prices()
    oracle = mirror.sim.contracts["oracle"]
    return {"buys": tuple(oracle.call("guardedPrice", PAIR_ID, True)),
            "sells": tuple(oracle.call("guardedPrice", PAIR_ID, False))}


def test_gap_up_to_a_tenth_of_a_percent_uses_the_keeper_price(mirror):
    """Up to 0.1% the keeper price stands even where it favours the trader; one wad further
    the worse-price rule takes the reference for the side it would favour."""
    ok, breaker = 0, 16
    tenth = REF // 1000
    for keeper in (REF + tenth // 2, REF - tenth // 2, REF + tenth, REF - tenth):  # 0.05%, 0.1%
        assert _guarded(mirror, keeper) == {"buys": (keeper, ok), "sells": (keeper, ok)}, keeper
    above, below = REF + tenth + 1, REF - tenth - 1
    assert _guarded(mirror, above) == {"buys": (above, ok), "sells": (REF, ok)}
    assert _guarded(mirror, below) == {"buys": (REF, ok), "sells": (below, ok)}
    # and the circuit breaker's edge: 1% is not over it, one wad more is
    assert _guarded(mirror, REF + REF // 100) == {"buys": (REF + REF // 100, ok), "sells": (REF, ok)}
    assert _guarded(mirror, REF - REF // 100 - 1) == {"buys": (0, breaker), "sells": (0, breaker)}

    # the trades use it: a short opens (sells) at the keeper's 60060, then at the reference
    for t in (1, 2, 3):
        mirror.fund(t, 1_000)
    mirror.set_prices({PAIR: 60_000})
    held = mirror.open(3, PAIR, "long", 1_000, 10).position  # no gap
    mirror.set_prices({PAIR: "60060"}, reference=False)
    assert mirror.open(1, PAIR, "short", 1_000, 10).oracle_price_wad == REF + tenth
    assert mirror.close(3, held.id).oracle_price_wad == REF + tenth  # a long closing sells
    mirror.set_prices({PAIR: _wad_str(above)}, reference=False)
    assert mirror.open(2, PAIR, "short", 1_000, 10).oracle_price_wad == REF


# ----------------------------------------------------------------------- stale prices

def test_stale_reference_rejects_opens_and_closes_and_triggers_skip(mirror, manual_reference):
    sim = mirror.sim
    for t in (TRADER, OTHER):
        mirror.fund(t, 100)
    p = mirror.open(TRADER, PAIR, "long", 100, 1001).position
    ref_at = sim.contracts["oracle"].call("referencePrice", PAIR_ID)[1]
    mirror.wait(61)
    assert sim.devnet.clock.next_timestamp > ref_at + 60

    before = sim.collateral_units(OTHER)
    with pytest.raises(OrderRejected) as rejected:
        mirror.open(OTHER, PAIR, "short", 100, 1001)  # the keeper price is fresh, the reference not
    assert rejected.value.reason == "PriceStale"
    assert sim.collateral_units(OTHER) == before - rejected.value.execution_fee_tokens

    with pytest.raises(CloseRejected) as close_rejected:
        mirror.close(TRADER, p.id)
    assert close_rejected.value.reason == "PriceStale"
    assert [e["reason"] for e in _latest_events(sim, "CloseRejected")] == [15]

    crash = p.entry_price_wad * 99 // 100
    crash -= crash % 10**10
    mirror.set_prices({PAIR: _wad_str(crash)}, reference=False)
    assert mirror.run_triggers() == []
    assert sim.position(p.id) is not None
    mirror.set_reference(PAIR, _wad_str(crash))  # a fresh reference: the keeper acts
    assert [c.reason for c in mirror.run_triggers()] == ["liquidation"]


def test_reference_is_fresh_for_60_seconds_and_stale_after(mirror, manual_reference):
    sim = mirror.sim
    oracle = sim.contracts["oracle"]
    for t in (TRADER, OTHER):
        mirror.fund(t, 100)
    ref_at = oracle.call("referencePrice", PAIR_ID)[1]
    opened = _open_at(mirror, ref_at + 60, TRADER)  # 60 s old: still fresh
    assert opened.position.opened_at == ref_at + 60

    mirror.set_reference(PAIR, 60_000)  # a new reference round
    ref_at = oracle.call("referencePrice", PAIR_ID)[1]
    with pytest.raises(OrderRejected) as rejected:
        _open_at(mirror, ref_at + 61, OTHER)  # 61 s: stale
    assert rejected.value.reason == "PriceStale"
    assert sim.session.block().timestamp == ref_at + 61
    assert oracle.call("referencePrice", PAIR_ID)[1] == ref_at  # the keeper did not refresh it


# ----------------------------------------------------------------------- the pool's settled prices

def test_deposit_needs_a_keeper_price_at_most_60_seconds_old_with_open_interest(mirror):
    """With open interest a deposit needs the pair's keeper price settled (the triggers ran at
    it) and at most 60 s old; a bare price push does not settle it."""
    sim = mirror.sim
    oracle = sim.contracts["oracle"]
    mirror.fund(TRADER, 100)
    mirror.open(TRADER, PAIR, "long", 100, 1001)
    bt = sim.devnet.clock.block_time_ms
    for lp in (4, 5):
        mirror.fund(lp, 1_000)
    # pairs without open interest have no keeper price on chain at all: not needed
    assert oracle.call("keeperPrice", 3) == (0, 0, 0)
    # the open's price is fresh but no trigger has run at it: not settled
    kp_at = oracle.call("keeperPrice", PAIR_ID)[1]
    with pytest.raises(errors.PriceNotSettled) as unsettled:
        mirror.deposit(4, 1_000)
    assert (unsettled.value.pairId, unsettled.value.updatedAt, unsettled.value.settledUntil) == (PAIR_ID, kp_at, 0)

    # a new reference round and the keeper's triggers in the same second: settled for 60 s
    with sim.devnet.hold_time():
        mirror.set_reference(PAIR, 60_000)
        mirror.keeper_round()
    kp_at = oracle.call("keeperPrice", PAIR_ID)[1]
    assert oracle.call("referencePrice", PAIR_ID)[1] == kp_at
    assert oracle.call("settledUntil", PAIR_ID) == kp_at + 60
    # the stablecoin's own price pushed half-way (the client pushes one about to age before an
    # LP action, which would take a block of its own)
    _wait_until(mirror, (kp_at + 30) * 1000)
    mirror.push_asset_prices()
    # approve, then deposit in a block stamped 60 s after the keeper price: fresh
    _wait_until(mirror, (kp_at + 60) * 1000 - 2 * bt)
    result = mirror.deposit(4, 1_000)
    assert result.alp_out_wad > 0
    assert sim.session.block().timestamp == kp_at + 60

    mirror.keeper_round()  # a new keeper price round
    kp_at = oracle.call("keeperPrice", PAIR_ID)[1]
    _wait_until(mirror, (kp_at + 30) * 1000)
    mirror.push_asset_prices()
    _wait_until(mirror, (kp_at + 61) * 1000 - 2 * bt)
    with pytest.raises(errors.PriceStale) as stale:
        mirror.deposit(5, 1_000)  # 61 s: stale
    assert sim.session.block().timestamp == kp_at + 61
    assert stale.value.pairId == PAIR_ID and stale.value.updatedAt == kp_at and stale.value.maxAge == 60
    assert sim.alp_balance_wad(5) == 0

    # the keeper pushes the same price without triggers: fresh again, but its settlement has aged out
    mirror.push_prices()
    settled_until = oracle.call("settledUntil", PAIR_ID)
    assert 0 < settled_until < sim.devnet.timestamp
    with pytest.raises(errors.PriceNotSettled) as unsettled:
        mirror.deposit(5, 1_000)
    assert unsettled.value.settledUntil == settled_until
    mirror.keeper_round()  # the keeper's triggers run at its prices: deposits work again
    assert mirror.deposit(5, 1_000).alp_out_wad > 0


def test_withdraw_needs_a_fresh_settled_keeper_price_with_open_interest(mirror):
    mirror.wait(48 * 3600 + 1)  # past the LP's cooldown
    mirror.fund(TRADER, 100)
    mirror.open(TRADER, PAIR, "long", 100, 1001)
    mirror.wait(61)
    with pytest.raises(errors.PriceStale) as stale:
        mirror.withdraw(LP, 1_000)
    assert stale.value.pairId == PAIR_ID
    mirror.push_prices()  # fresh, but no trigger has run at it
    with pytest.raises(errors.PriceNotSettled) as unsettled:
        mirror.withdraw(LP, 1_000)
    assert unsettled.value.pairId == PAIR_ID and unsettled.value.settledUntil == 0
    mirror.keeper_round()
    result = mirror.withdraw(LP, 1_000)
    assert result.amount_out_units > 0


def test_pool_needs_no_price_without_open_interest(mirror):
    sim = mirror.sim
    oracle = sim.contracts["oracle"]
    mirror.wait(48 * 3600 + 1)  # the LP's cooldown over; no keeper price ever recorded
    assert all(oracle.call("keeperPrice", pair_id) == (0, 0, 0) for pair_id in range(4))
    mirror.fund(6, 1_000)
    assert mirror.deposit(6, 1_000).alp_out_wad > 0
    assert mirror.withdraw(LP, 1_000).amount_out_units > 0
    assert sim.pool().reserve_wad == 0


# ----------------------------------------------------------------------- throughput

def test_at_most_100_executions_per_pair_per_block(sim):
    assert sim.settings.max_executions_per_pair_per_block == 100
    assert sim.contracts["trading"].call("settings")["maxExecutionsPerPairPerBlock"] == 100
