"""What a hidden request still shows (alpsim.mev.leakage, docs/mev.md): its ciphertext length and
its requestOpen gas do not depend on the order (measured on the embedded EVM), decoding its
calldata with the engine's ABI finds no pair, side or leverage, and the outsider's guess
statistics are computed right."""

from __future__ import annotations

import itertools
import math
import statistics
from decimal import Decimal

import numpy as np
import pytest
from eth_abi import encode as abi_encode

from alpsim.client import Alpsim
from alpsim.errors import ConfigError
from alpsim.keys import dev_private_key
from alpsim.mev import leakage
from alpsim.orders import UndecryptableOrder, commitment, decode_order, encode_order, unseal
from alpsim.protocol import Order
from alpsim.service import DEFAULT_START_PRICES

TRADER = 1
AMOUNT = Decimal(100)


@pytest.fixture(scope="module")
def embedded(build):
    sim = Alpsim.launch("bnb", build=build, seed=3)
    sim.fund(7, 1_000_000)
    sim.deposit(7, 1_000_000)
    sim.fund(TRADER, 100_000)
    sim.approve_collateral(TRADER)
    sim.keeper.set_prices(DEFAULT_START_PRICES)
    sim.keeper.push_prices()
    sim.open(TRADER, "BTC/USD", "long", 100, 10)  # the engine's escrow balance written once
    yield sim
    sim.stop()


def _spec(pair: str, is_long: bool, leverage: int, limits: bool) -> dict:
    start, sign = DEFAULT_START_PRICES[pair], 1 if is_long else -1
    return {"pair": pair, "is_long": is_long, "leverage": leverage, "amount_usd": AMOUNT,
            "take_profit": start * (1 + sign * Decimal("0.01")) if limits else Decimal(0),
            "stop_loss": start * (1 - sign * Decimal("0.01")) if limits else Decimal(0)}


def test_ciphertext_length_and_request_gas_do_not_depend_on_the_order(embedded):
    rng = np.random.Generator(np.random.PCG64(5))
    seen = []
    for pair, is_long, leverage, limits in itertools.product(("BTC/USD", "ETH/USD", "SOL/USD", "AAPL/USD"),
                                                             (True, False), (2, 50), (False, True)):
        snap = embedded.snapshot()
        try:
            tx, ciphertext = leakage.hidden_request(embedded, TRADER, _spec(pair, is_long, leverage, limits), rng)
            receipt = embedded.session.send(tx)
        finally:
            embedded.revert(snap)
        data = bytes.fromhex(tx["data"][2:])
        zeros = data.count(0)
        assert leakage.calldata_gas(data) == 4 * zeros + 16 * (len(data) - zeros)
        execution_gas = receipt["gasUsed"] - 21_000 - leakage.calldata_gas(data)
        seen.append((len(ciphertext), len(data), receipt["gasUsed"], execution_gas))
    assert {s[0] for s in seen} == {148}
    assert len({s[1] for s in seen}) == 1
    # the gas beyond the calldata's is one figure for 32 different orders; what varies is the
    # calldata's zero bytes (12 gas each), random bytes of the commitment and ciphertext
    assert len({s[3] for s in seen}) == 1, sorted({s[3] for s in seen})
    assert len(seen) == 32


def test_decoding_a_hidden_request_finds_no_pair_side_or_leverage(embedded):
    rng = np.random.Generator(np.random.PCG64(6))
    spec = _spec("ETH/USD", True, 1001, False)
    tx, ciphertext = leakage.hidden_request(embedded, TRADER, spec, rng)
    data = bytes.fromhex(tx["data"][2:])
    seen = leakage.outsider_decode(embedded.contracts["trading"], data)
    assert seen["function"] == "requestOpen" and seen["ciphertext"] == ciphertext
    assert seen["amount_in"] == embedded.to_units(AMOUNT) and seen["ciphertext_bytes"] == 148
    order = Order(embedded.pair_id("ETH/USD"), True, 1001, 0, 0, 0)
    # no ABI word of the order's fields among the calldata's words (a plain order's would be)
    words = {data[4 + i:4 + i + 32] for i in range(0, len(data) - 4, 32)}
    for value in (order.pair_id, int(order.is_long), order.leverage):
        assert abi_encode(["uint256"], [value]) not in words
    # nor the packed order's pair, side and leverage bytes anywhere in it
    assert encode_order(order, b"\0" * 32)[:7] not in data
    # the ciphertext is no order: as a plaintext it does not parse, and a key other than the
    # keeper's does not open it; the keeper's does (the test could fail)
    with pytest.raises(UndecryptableOrder):
        decode_order(ciphertext)
    with pytest.raises(UndecryptableOrder):
        unseal(ciphertext, dev_private_key(TRADER))
    opened, salt = unseal(ciphertext, embedded.keeper.private_key)
    assert opened == order
    # every pair, side and leverage against the commitment: no match without the salt, the
    # order with it; the salt is 32 random bytes, 2^256 tries per candidate order
    trader = embedded.address(TRADER)
    candidates = [Order(p, s, lev, 0, 0, 0) for p in range(4) for s in (True, False) for lev in range(1, 1002)]
    assert not [c for c in candidates if commitment(trader, c, b"\0" * 32) == seen["commitment"]]
    assert [c for c in candidates if commitment(trader, c, salt) == seen["commitment"]] == [order]


RECORDS = [  # trader, round, side, leverage, escrow, notional (None: rejected)
    ("A", 0, True, 10, 100.0, 1000.0), ("B", 0, False, 100, 10.0, 1000.0), ("A", 1, True, 10, 200.0, 1800.0),
    ("C", 1, False, 50, 20.0, 1000.0), ("B", 2, False, 100, 40.0, 3600.0), ("C", 2, False, 20, 400.0, 8000.0),
    ("A", 2, True, 10, 50.0, None),
]


def test_guess_statistics_against_a_hand_calculation():
    records = [{"trader": t, "round": r, "is_long": s, "leverage": lev, "amount_usd": a, "notional_usd": n}
               for t, r, s, lev, a, n in RECORDS]
    got = leakage.guess_statistics(records, neighbours=2)
    assert got["executed"] == 6 and got["long_share"] == round(2 / 6, 4) and got["base_rate"] == round(4 / 6, 4)
    # the crowd's majority leaving each order out: a long sees 1 long of 5 (short), a short 2 of 5
    # (short): the 4 shorts hit
    assert got["side"]["crowd_majority"]["accuracy"] == round(4 / 6, 4)
    # the trader's earlier sides: A's second order follows A's first (long), B and C short;
    # only A's first (no history, crowd says short) misses
    assert got["side"]["trader_history"]["accuracy"] == round(5 / 6, 4)
    # escrow x the median notional/escrow of the 5 others: ratios 10, 100, 9, 50, 90, 20
    ratios = [10, 100, 9, 50, 90, 20]
    guesses = [100 * 50, 10 * 20, 200 * 50, 20 * 20, 40 * 20, 400 * 50]
    assert [statistics.median(ratios[:i] + ratios[i + 1:]) for i in range(6)] == [50, 20, 50, 20, 20, 50]
    truth = [1000, 1000, 1800, 1000, 3600, 8000]
    errors = sorted(abs(g / t - 1) for g, t in zip(guesses, truth))  # 0.6, 0.78, 0.8, 1.5, 4.0, 4.56
    within_2x = sum(0.5 <= g / t <= 2 for g, t in zip(guesses, truth)) / 6
    assert got["notional"]["escrow_x_crowd_prior"] == {"median_abs_error_pct": round(statistics.median(errors) * 100, 2),
                                                       "within_2x_share": within_2x}
    assert statistics.median(errors) == (0.8 + 1.5) / 2 and within_2x == 0
    # near the escrow (2 nearest in log terms) and the trader's history, recomputed plainly
    amounts = [100, 10, 200, 20, 40, 400]
    near = [sorted((j for j in range(6) if j != i), key=lambda j: abs(math.log(amounts[j] / amounts[i])))[:2]
            for i in range(6)]
    near_guess = [amounts[i] * statistics.median(ratios[j] for j in near[i]) for i in range(6)]
    past = {2: [0], 4: [1], 5: [3]}  # A's, B's and C's earlier rounds
    hist_guess = [amounts[i] * statistics.median(ratios[j] for j in past[i]) if i in past else near_guess[i]
                  for i in range(6)]
    for key, guess in (("escrow_x_prior_near_escrow", near_guess), ("escrow_x_trader_history", hist_guess)):
        times = [g / t for g, t in zip(guess, truth)]
        assert got["notional"][key] == {
            "median_abs_error_pct": round(statistics.median(abs(x - 1) for x in times) * 100, 2),
            "within_2x_share": round(sum(0.5 <= x <= 2 for x in times) / 6, 4)}
    # the crowd's most common leverage leaving each out (ties: the smaller) is never right here
    assert got["leverage"]["crowd_mode"] == 0.0
    with pytest.raises(ConfigError, match="at least 2 executed"):
        leakage.guess_statistics(records[:1])


def test_measure_leakage_keys_and_refusals():
    with pytest.raises(ConfigError, match="unknown chain"):
        leakage.measure_leakage("eth")
    for orders in (1, True, "200", leakage.MAX_ORDERS + 1):
        with pytest.raises(ConfigError, match="orders must be"):
            leakage.measure_leakage("bnb", orders)
    with pytest.raises(ConfigError, match="seed must be"):
        leakage.measure_leakage("bnb", 6, -2)
    result = leakage.measure_leakage("bnb", 6, 2)
    assert set(result) == {"chain", "orders", "seed", "backend", "block_time_s", "crowd", "traders", "requests",
                           "seen_pending_share", "rejected", "blocks_to_execution", "public", "length_and_gas",
                           "guesses"}
    assert result["requests"] == 6 and result["block_time_s"] == "0.75"
    assert result["length_and_gas"]["ciphertext_bytes"] == [148]
    assert result["length_and_gas"]["execution_gas_depends_on_order"] is False
    assert all(int(blocks) >= 1 for blocks in result["blocks_to_execution"])
    assert set(result["guesses"]) >= {"side", "notional", "leverage", "base_rate"}
    markdown = leakage.leakage_markdown(result)
    assert "| side: always the crowd's majority |" in markdown and "148 bytes" in markdown
