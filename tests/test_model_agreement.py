"""The contracts and the reference model agree on any sequence of trades, price moves and
time: positions, balances, indexes, aggregates, NAV and ALP price after every step."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alpsim.client import CloseRejected, OrderRejected

PAIRS = {"BTC/USD": (60_000, 1001), "ETH/USD": (3_000, 1001), "SOL/USD": (150, 100), "AAPL/USD": (200, 50)}

open_action = st.tuples(st.just("open"), st.sampled_from(sorted(PAIRS)), st.booleans(),
                        st.sampled_from([1, 2, 5, 10, 25, 50, 100, 250, 499, 500, 750, 1000, 1001]),
                        st.integers(min_value=20, max_value=5_000))
move_action = st.tuples(st.just("move"), st.sampled_from(sorted(PAIRS)), st.integers(min_value=-300, max_value=300))
wait_action = st.tuples(st.just("wait"), st.integers(min_value=1, max_value=50_000))
close_action = st.tuples(st.just("close"), st.integers(min_value=0, max_value=10))
trigger_action = st.tuples(st.just("triggers"))
actions = st.lists(st.one_of(open_action, open_action, move_action, wait_action, close_action, trigger_action),
                   min_size=3, max_size=12)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(steps=actions)
def test_any_sequence_agrees_with_the_model(mirror, steps):
    sim = mirror.sim
    snap = sim.snapshot()
    model_snap = mirror.model.copy()
    try:
        prices = {pair: Decimal(p) for pair, (p, _) in PAIRS.items()}
        mirror.fund(1, 100_000)
        for step in steps:
            kind = step[0]
            if kind == "open":
                _, pair, is_long, leverage, amount = step
                leverage = min(leverage, PAIRS[pair][1])
                try:
                    mirror.open(1, pair, "long" if is_long else "short", amount, leverage)
                except OrderRejected:
                    pass
            elif kind == "move":
                _, pair, bps = step  # up to 3% per move, within the circuit breaker as keeper and feed move together
                prices[pair] = (prices[pair] * (10_000 + bps) / 10_000).quantize(Decimal("0.0001"))
                mirror.set_prices({pair: prices[pair]})
            elif kind == "wait":
                mirror.wait(step[1])
            elif kind == "close":
                open_ids = sorted(sim.keeper.open_positions)
                if open_ids:
                    try:
                        mirror.close(1, open_ids[step[1] % len(open_ids)])
                    except CloseRejected:
                        pass
            else:
                mirror.run_triggers()
        mirror.check()
    finally:
        sim.revert(snap)
        mirror.model = model_snap
