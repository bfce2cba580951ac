"""LP quotes (issue 28): `sim.quote_lp` and `alpsim quote-lp` equal, to the unit, what the deposit
or withdrawal then gives on chain (ALP or tokens out, and the fee the event reports), on both
chains, for a stablecoin, BNB and BTC, with keeper and reference prices apart; the prices'
sources are said (oracle, keeper, stale); bad inputs exit 2 with the reason."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal

import pytest

from alpsim.errors import PriceStale
from alpsim.model.pool import fee_usd
from alpsim.quote import DEFAULT_POOL_LP, DEFAULT_POOL_USD, LP_QUOTE_KEYS, LpQuoteError, quote_lp, seed_default_pool

LP = DEFAULT_POOL_LP
DEPOSITOR = 2
COOLDOWN_S = 48 * 3600
ASSETS = {"bnb": ["USDT", "USDC", "BNB", "BTC"], "arbitrum": ["USDC", "USDT", "BTC"]}
"""Per chain: the payout stablecoin, the other stablecoin, BNB (BNB Chain only) and BTC."""
DEPOSITS = {"USDT": "25000", "USDC": "25000", "BNB": "40", "BTC": "0.5"}
"""Sizes large enough to move the weights past their targets (the fee's away side)."""


@pytest.fixture
def pool(sim):
    """The default quote pool: 1,000,000 USD at the target weights from account LP."""
    seed_default_pool(sim)
    return sim


def _check_fee(q: dict, event_fee_wad: int) -> None:
    """The event's fee is the exact fee rounded down; the model's `fee_usd` rounds it up."""
    assert q["units"]["fee_wad"] == event_fee_wad
    assert q["fee_usd"] == Decimal(event_fee_wad).scaleb(-18)
    assert q["fee_bps"] == (Decimal(event_fee_wad * 10_000) / Decimal(q["units"]["action_usd_wad"])).quantize(
        Decimal("0.0001"))


def test_deposit_quotes_equal_the_deposits_to_the_unit(pool):
    sim = pool
    chain = sim.deployment.chain
    # BTC's reference 0.5% above the keeper: a deposit is valued at the keeper's (lower) price,
    # the basket at the reference's (higher)
    sim.keeper.set_reference("BTC", 60_300)
    for symbol in ASSETS[chain]:
        amount = DEPOSITS[symbol]
        sim.fund(DEPOSITOR, amount, asset=symbol)
        q = sim.quote_lp(symbol, amount)
        assert list(q)[:8] == [k for k in LP_QUOTE_KEYS if k != "amount_out"]
        result = sim.deposit(DEPOSITOR, amount, asset=symbol)
        assert q["units"]["alp_out_wad"] == result.alp_out_wad, symbol
        assert q["alp_out"] == Decimal(result.alp_out_wad).scaleb(-18)
        _check_fee(q, result.fee_wad)
        # the weights after: the holdings now on chain at the quote's (action) prices
        state = sim.pool()
        prices = {s: p["high"] for s, p in q["prices"].items()}
        values = {s: state.holdings[s] * prices[s] for s in prices}
        total = sum(values.values())
        assert q["weights_after_bps"] == {s: (values.get(s, Decimal(0)) * 10_000 / total).quantize(Decimal("0.01"))
                                          for s in q["targets_bps"]}
        assert q["targets_bps"] == {e.symbol: e.target_bps for e in sim.deployment.basket}
    btc = q["prices"]["BTC"]
    assert (btc["low"], btc["high"]) == (60_000, 60_300)


def test_a_deposit_moving_its_asset_to_target_pays_20_bp_and_the_model_agrees(pool):
    """BTC underweight after its price fell 10%: a deposit of exactly what brings it to target
    pays base - spread = 20 bp (docs/mechanics.md section 10's worked example 2)."""
    sim = pool
    sim.keeper.set_prices({"BTC/USD": 54_000})
    sim.keeper.push_prices()  # on chain: pool() weighs at the oracle's mark prices
    state = sim.pool()
    values = {s: state.holdings[s] * state.prices[s] for s in state.holdings if state.holdings[s]}
    total = sum(values.values())
    target = state.targets_bps["BTC"]
    # e = V x 10,000 - w x T < 0; the USD that brings BTC to target: -e / (10,000 - w)
    to_target_usd = (target * total - values["BTC"] * 10_000) / (10_000 - target)
    amount = (to_target_usd / 54_000).quantize(Decimal("0.00000001"), rounding="ROUND_DOWN")
    q = sim.quote_lp("BTC", amount)
    assert q["fee_bps"] == 20
    u = q["units"]
    # all of it moves BTC toward its target: 25 - 5 bp on the whole, at the keeper's price
    assert (u["base_fee_bps"], u["spread_bps"]) == (25, 5) and u["toward_usd_wad"] == u["action_usd_wad"]
    assert u["action_usd_wad"] == int(amount * 10**sim.asset_decimals("BTC")) * 10 ** (18 - sim.asset_decimals("BTC")) * 54_000
    assert u["fee_wad"] == u["action_usd_wad"] * 20 // 10_000
    sim.fund(DEPOSITOR, amount, asset="BTC")
    result = sim.deposit(DEPOSITOR, amount, asset="BTC")
    assert (q["units"]["alp_out_wad"], q["units"]["fee_wad"]) == (result.alp_out_wad, result.fee_wad)
    # the model's fee function on the same figures (it rounds up, the event down)
    value_wad, total_wad = int(values["BTC"] * 10**18), int(total * 10**18)
    model_fee = fee_usd(value_wad, total_wad, target, q["units"]["action_usd_wad"], True)
    assert 0 <= model_fee - result.fee_wad <= 1


def test_withdrawal_quotes_equal_the_withdrawals_to_the_unit(pool):
    sim = pool
    chain = sim.deployment.chain
    sim.devnet.advance_time(COOLDOWN_S)
    sim.keeper.set_reference("BTC", 59_700)  # reference below the keeper: paid out at the keeper's (higher)
    alp_wad = sim.alp_balance_wad(LP)
    for symbol in ASSETS[chain]:
        alp = Decimal(alp_wad // 50).scaleb(-18)  # 2% of the supply each: about 20,000 USD
        q = sim.quote_lp(symbol, alp, withdraw=True)
        assert "alp_out" not in q and list(q)[:8] == [k for k in LP_QUOTE_KEYS if k != "alp_out"]
        before = sim.asset_units(LP, symbol)
        result = sim.withdraw(LP, alp, asset=symbol)
        assert q["units"]["amount_out_units"] == result.amount_out_units == sim.asset_units(LP, symbol) - before
        assert q["amount_out"] == Decimal(result.amount_out_units).scaleb(-sim.asset_decimals(symbol))
        _check_fee(q, result.fee_wad)
    btc = q["prices"]["BTC"]
    assert (btc["low"], btc["high"]) == (59_700, 60_000)


def test_price_sources_are_said(pool):
    sim = pool
    q = sim.quote_lp("BTC", "0.1")
    assert {p["source"] for p in q["prices"].values()} == {"oracle"}  # just pushed by the seeding deposits
    sim.devnet.advance_time(120)  # every price older than the oracle's 60 s
    q = sim.quote_lp("BTC", "0.1")
    assert {p["source"] for p in q["prices"].values()} == {"keeper"}  # the keeper pushes them first
    sim.keeper.online = False  # an outage: nobody pushes; the quote uses the last prices and says so
    q = sim.quote_lp("BTC", "0.1")
    assert {p["source"] for p in q["prices"].values()} == {"stale"}
    with pytest.raises(PriceStale):  # the page's quote: the oracle's refusal, not a quote at a stale price
        quote_lp(sim, "BTC", "0.1", allow_stale=False)
    sim.fund(DEPOSITOR, "0.1", asset="BTC")
    with pytest.raises(PriceStale):
        sim.deposit(DEPOSITOR, "0.1", asset="BTC")


def test_refusals_name_the_contracts_error(pool):
    sim = pool
    supply = sim.contracts["alp"].call("totalSupply")
    with pytest.raises(LpQuoteError, match=rf"^InsufficientAlpBalance\(balance={supply}, "
                                           rf"requested={DEFAULT_POOL_USD * 2 * 10**18}\): the pool would refuse"):
        sim.quote_lp("BTC", DEFAULT_POOL_USD * 2, withdraw=True)
    held_btc = sim.pool().holdings["BTC"]
    # more BTC than the basket holds: ALP worth twice its BTC
    with pytest.raises(LpQuoteError, match=r"^BasketHoldingsShort"):
        sim.quote_lp("BTC", held_btc * 60_000 * 2, withdraw=True)
    for bad, message in (("0", "amount must be positive"), ("-3", "amount must be positive"),
                         ("ten", "amount must be a number")):
        with pytest.raises(Exception, match=message):
            sim.quote_lp("BTC", bad)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "alpsim.cli", "quote-lp", *args], capture_output=True, text=True,
                          timeout=240, env={**os.environ, "COLUMNS": "160"})


def test_cli_json_on_the_default_pool():
    proc = _cli("--chain", "bnb", "--asset", "BNB", "--amount", "10", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout, parse_float=Decimal)
    assert list(data)[:8] == ["asset", "amount", "fee_bps", "fee_usd", "alp_out", "weights_before_bps",
                              "weights_after_bps", "targets_bps"]
    assert data["asset"] == "BNB" and data["amount"] == 10
    # 10 BNB at 600 USD is 6,000 USD; the pool's BNB is at (a hair under) its 8% target, so
    # nearly all of it moves BNB away from the target: 30 bp, 18 USD
    assert data["units"]["action_usd_wad"] == 6_000 * 10**18
    assert Decimal("29.99") <= data["fee_bps"] <= 30 and Decimal("17.99") <= data["fee_usd"] <= 18
    assert data["targets_bps"] == {"USDT": 5000, "USDC": 3000, "BNB": 800, "ETH": 600, "BTC": 600}
    assert abs(data["weights_before_bps"]["BNB"] - 800) < Decimal("0.1")
    # after: BNB's 6,000 USD more of about 1,006,000
    assert abs(data["weights_after_bps"]["BNB"] - Decimal(86_000 * 10_000) / 1_006_000) < Decimal("0.1")

    out = _cli("--chain", "arbitrum", "--asset", "BTC", "--amount", "1000", "--withdraw", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout, parse_float=Decimal)
    assert "amount_out" in data and "alp_out" not in data and data["withdraw"] is True
    assert data["targets_bps"] == {"USDC": 6000, "USDT": 3000, "ETH": 500, "BTC": 500}


def test_cli_table_and_bad_inputs_exit_2():
    table = _cli("--chain", "arbitrum", "--asset", "USDT", "--amount", "5000")
    assert table.returncode == 0, table.stderr
    assert "alp_out" in table.stdout and "basket weights" in table.stdout and "oracle" in table.stdout
    for args, message in (
        (["--asset", "DOGE", "--amount", "10"], "unknown basket asset 'DOGE'; known: BNB, BTC, ETH, USDC, USDT."),
        (["--chain", "arbitrum", "--asset", "BNB", "--amount", "1"], "unknown basket asset 'BNB'; known: BTC, ETH"),
        (["--asset", "BNB", "--amount", "-1"], "amount must be positive, got -1"),
        (["--asset", "BNB", "--amount", "0"], "amount must be positive, got 0"),
        (["--asset", "BNB", "--amount", "abc"], "amount must be a number, got 'abc'"),
    ):
        proc = _cli(*args)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert message in proc.stderr, (args, proc.stderr)
