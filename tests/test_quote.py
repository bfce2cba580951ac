"""`alpsim quote` (docs/mechanics.md sections 4, 5 and 11 offline) equals what the chain then does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal

import pytest

from alpsim.profiles import get_profile
from alpsim.quote import QUOTE_KEYS, QuoteError, quote_order
from alpsim.units import to_units

TRADER = 1

CASES = [
    ("BTC/USD", "long", "100", 1001, "60000", False, False),
    ("BTC/USD", "short", "250", 500, "60000", True, False),
    ("ETH/USD", "long", "1000", 100, "3000", False, True),
    ("ETH/USD", "short", "1000", 10, "3000", True, True),
    ("SOL/USD", "long", "500", 50, "150", False, False),
    ("AAPL/USD", "short", "300", 20, "200", True, False),
]


@pytest.mark.parametrize("pair, side, amount, leverage, price, referral, fee_token", CASES)
def test_quote_equals_the_chain(mirror, pair, side, amount, leverage, price, referral, fee_token):
    sim = mirror.sim
    q = quote_order(sim.profile, pair, side, amount, leverage, price, referral=referral, fee_token=fee_token)
    mirror.set_prices({pair: price})
    mirror.fund(TRADER, amount)
    if referral:
        mirror.bind_referral(TRADER, 2)
    if fee_token:
        mirror.set_platform_token_price(1)
        mirror.fund_platform_token(TRADER, 10_000)
        mirror.set_fee_in_token(TRADER)
    opened = mirror.open(TRADER, pair, side, amount, leverage)
    p = opened.position
    wad = Decimal(10**18)
    assert Decimal(p.margin_wad) / wad == q["margin_usd"]
    assert Decimal(p.notional_wad) / wad == q["notional_usd"]
    assert Decimal(p.entry_price_wad) / wad == q["entry_price"]
    assert Decimal(p.qty_wad) / wad == q["qty"]
    assert Decimal(p.take_profit_wad) / wad == q["take_profit_cap_price"]
    assert Decimal(p.liquidation_price_wad) / wad == q["liquidation_price"]
    assert Decimal(opened.open_fee_wad) / wad == q["open_fee_usd"]
    assert q["tier"] == ("extreme" if leverage >= 500 else "standard")

    # liquidatable at the quoted price, not at a price 0.0001% better for the trader
    trading = sim.contracts["trading"]
    liq = to_units(q["liquidation_price"], 18)
    better = liq * 1_000_001 // 1_000_000 if side == "long" else liq * 999_999 // 1_000_000
    assert trading.call("isLiquidatable", p.id, liq)
    assert not trading.call("isLiquidatable", p.id, better)
    mirror.set_prices({pair: str(Decimal(better) / wad)})
    assert mirror.run_triggers([p.id]) == []
    mirror.set_prices({pair: str(q["liquidation_price"])})
    closed = mirror.run_triggers([p.id])
    assert [c.reason for c in closed] == ["liquidation"]


def test_round_trip_cost_is_what_an_open_and_close_at_once_costs(mirror):
    sim = mirror.sim
    q = quote_order(sim.profile, "BTC/USD", "long", "100", 1001, "60000")
    mirror.fund(TRADER, 100)
    before = sim.collateral_units(TRADER)
    opened = mirror.open(TRADER, "BTC/USD", "long", 100, 1001)
    closed = mirror.close(TRADER, opened.position.id)
    lost = Decimal(before - sim.collateral_units(TRADER)) / Decimal(10**sim.decimals)
    # on chain the close comes a block or two later: that second of holding and funding is
    # the only difference (to one token unit of rounding)
    accrued = Decimal(closed.holding_wad + closed.funding_wad) / Decimal(10**18)
    assert abs(lost - q["round_trip_cost_usd"] - accrued) <= Decimal(1) / 10**sim.decimals
    # execution fee + both legs' slippage + close fee: about half of 100 USD at 1001x
    assert Decimal(40) < lost < Decimal(60)


def test_liquidation_distance_at_1001x_is_about_0_055_percent():
    q = quote_order(get_profile("bnb"), "BTC/USD", "long", "100", 1001, "60000")
    assert Decimal("-0.056") < q["liquidation_move_pct"] < Decimal("-0.054")
    short = quote_order(get_profile("bnb"), "BTC/USD", "short", "100", 1001, "60000")
    assert Decimal("0.054") < short["liquidation_move_pct"] < Decimal("0.056")


@pytest.mark.parametrize(
    "pair, leverage, amount, reason",
    [
        ("BTC/USD", 1002, "100", "LeverageOutOfRange"),
        ("SOL/USD", 101, "100", "LeverageOutOfRange"),
        ("SOL/USD", 500, "100", "ExtremeLeverageNotOffered"),
        ("AAPL/USD", 1001, "100", "ExtremeLeverageNotOffered"),
        ("BTC/USD", 1001, "2000", "LeverageAboveNotionalTier"),
        ("BTC/USD", 100, "250000", "NotionalTooLarge"),
        ("BTC/USD", 10, "9", "NotionalTooSmall"),
        ("BTC/USD", 0, "100", "LeverageOutOfRange"),
    ],
)
def test_invalid_input_is_refused_with_the_reason(pair, leverage, amount, reason):
    with pytest.raises(QuoteError) as info:
        quote_order(get_profile("arbitrum"), pair, "long", amount, leverage, "100")
    assert str(info.value).startswith(reason + ":")


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "alpsim.cli", "quote", *args], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "120"})


def test_cli_json_has_exactly_the_keys_as_json_numbers():
    proc = _cli("--chain", "arbitrum", "--pair", "BTC/USD", "--side", "long", "--amount", "100", "--leverage", "1001",
                "--price", "60000", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout, parse_float=Decimal)
    assert list(data) == QUOTE_KEYS
    assert data["chain"] == "arbitrum" and data["tier"] == "extreme"
    for key in QUOTE_KEYS[4:]:
        if key != "tier":
            assert isinstance(data[key], (int, Decimal)), key
    assert data["execution_fee_usd"] == Decimal("0.2")
    entry, liq = data["entry_price"], data["liquidation_price"]
    assert data["liquidation_move_pct"] == ((liq - entry) / entry * 100).quantize(Decimal("1e-12"))


def test_cli_table_and_refusal():
    table = _cli("--pair", "ETH/USD", "--leverage", "50", "--referral", "--fee-token")
    assert table.returncode == 0 and "liquidation_price" in table.stdout and "round_trip_cost_usd" in table.stdout
    refused = _cli("--pair", "SOL/USD", "--leverage", "1001")
    assert refused.returncode == 2 and "ExtremeLeverageNotOffered" in refused.stderr
    unknown = _cli("--pair", "DOGE/USD")
    assert unknown.returncode == 2 and "unknown pair 'DOGE/USD'" in unknown.stderr
