"""The worked examples of the basket's dynamic fee (docs/mechanics.md section 10, "Worked
examples"), each run on chain (the default deployment of its profile, through the client) and
in the reference model's fee and valuation functions, both equal to the figures the document's
tables print: the USD of the action `a`, its part toward the target, the fee in USD and in bp,
and what comes out (ALP for a deposit, the asset for a withdrawal, to the unit).

Every example starts from the chain's basket exactly at its targets, 1,000,000 USD of it and
1,000,000 ALP (ALP at 1.00): the set-up deposits are made with the mint fee at 0 (then the
defaults, 25 bp and a 5 bp spread, are restored), so the starting state is round. One price then
moves (keeper and reference together unless the example says otherwise) and one LP acts."""

from __future__ import annotations

import re
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest

from alpsim.model.pool import fee_usd, tokens_for_usd, toward_usd, value_usd

U = 10**18
BPS = 10_000
DOC = Path(__file__).resolve().parents[1] / "docs" / "mechanics.md"
LP, NEW_LP = 1, 2
START_SUPPLY_WAD = 1_000_000 * U

START_PRICES = {"USDT": "1", "USDC": "1", "BNB": "625", "ETH": "2500", "BTC": "62500"}
"""Every example's starting prices (USD): the basket at exactly its targets."""
START_HOLDINGS = {
    "bnb": {"USDT": "500000", "USDC": "300000", "BNB": "128", "ETH": "24", "BTC": "0.96"},
    "arbitrum": {"USDC": "600000", "USDT": "300000", "ETH": "20", "BTC": "0.8"},
}
"""Whole tokens: at START_PRICES, 50/30/8/6/6% of 1,000,000 USD on BNB Chain, 60/30/5/5% on Arbitrum."""

# id -> (price moves {symbol: price or (keeper, reference)}, action, asset, amount: tokens in or ALP in)
EXAMPLES = {
    "bnb": {
        "deposit_away": ("B1", {"BNB": ("625", "626.25")}, "deposit", "BNB", "10"),
        "deposit_to_target": ("B2", {"BNB": "500"}, "deposit", "BNB", "32"),
        "deposit_across": ("B3", {"BNB": "500"}, "deposit", "BNB", "64"),
        "withdraw_toward": ("B4", {"BNB": "781.25"}, "withdraw", "BNB", "10000"),
        "withdraw_away": ("B5", {"BNB": "781.25"}, "withdraw", "USDT", "10000"),
        "depeg_deposit": ("B6", {"USDC": "0.88"}, "deposit", "USDC", "50000"),
        "depeg_withdraw_toward": ("B7", {"USDC": "0.88"}, "withdraw", "USDT", "10000"),
        "depeg_withdraw_away": ("B8", {"USDC": "0.88"}, "withdraw", "USDC", "10000"),
    },
    "arbitrum": {
        "deposit_away": ("A1", {"BTC": ("62500", "62625")}, "deposit", "BTC", "0.16"),
        "deposit_to_target": ("A2", {"BTC": "50000"}, "deposit", "BTC", "0.2"),
        "deposit_across": ("A3", {"BTC": "50000"}, "deposit", "BTC", "0.4"),
        "withdraw_toward": ("A4", {"ETH": "3000"}, "withdraw", "ETH", "5000"),
        "withdraw_away": ("A5", {"ETH": "3000"}, "withdraw", "USDC", "5000"),
        "depeg_deposit": ("A6", {"USDC": "0.88"}, "deposit", "USDC", "110000"),
        "depeg_withdraw_toward": ("A7", {"USDC": "0.88"}, "withdraw", "USDT", "10000"),
        "depeg_withdraw_away": ("A8", {"USDC": "0.88"}, "withdraw", "USDC", "10000"),
    },
}
KINDS = list(EXAMPLES["bnb"])


def _wad(x: str) -> int:
    return int(Decimal(x) * U)


def _price_name(symbol: str) -> str:
    """BTC and ETH the assets are priced by their pairs."""
    return {"BTC": "BTC/USD", "ETH": "ETH/USD"}.get(symbol, symbol)


# ----------------------------------------------------------------------- the document's figures
ROW = re.compile(r"^\|\s*([AB]\d)\s*\|(.*)\|\s*$")


def doc_examples() -> dict[str, dict]:
    """The worked-example rows of docs/mechanics.md: id -> a, toward, fee (USD), fee (bp) and
    the amount out with its unit (`| id | chain | ... | a | toward | away | fee | bp | out |`)."""
    rows = {}
    for line in DOC.read_text().splitlines():
        m = ROW.match(line)
        if not m:
            continue
        cells = [c.strip().replace(",", "") for c in m.group(2).split("|")]
        a, toward, away, fee, bp, out = cells[-6:]
        amount, unit = out.split()
        rows[m.group(1)] = {"a": Decimal(a), "toward": Decimal(toward), "away": Decimal(away), "fee": Decimal(fee),
                            "bp": _bp(bp),
                            "out": Decimal(amount), "unit": unit}
    return rows


def _bp(cell: str) -> Fraction:
    """A fee in bp: `30`, or a rounded figure with the exact fraction, `21.82 (240/11)`."""
    m = re.fullmatch(r"[\d.]+ \((\d+)/(\d+)\)", cell)
    return Fraction(int(m.group(1)), int(m.group(2))) if m else Fraction(Decimal(cell))


# ----------------------------------------------------------------------- the reference model
def model_example(chain: str, decimals: dict, targets: dict, moves: dict, action: str, asset: str,
                  amount: str) -> dict:
    """The example in the reference model (alpsim.model.pool): the basket's holdings valued at
    the price that favours the pool (a deposit: every holding at the higher of keeper and
    reference, the asset in at the lower; a withdrawal: the basket at the lower, the asset out at
    the higher), the fee on the action's USD, ALP or tokens out."""
    prices = {s: (_wad(START_PRICES[s]),) * 2 for s in decimals}
    for symbol, p in moves.items():
        prices[symbol] = (_wad(p[0]), _wad(p[1])) if isinstance(p, tuple) else (_wad(p),) * 2
    holdings = {s: int(Decimal(START_HOLDINGS[chain][s]) * 10 ** decimals[s]) for s in decimals}
    pick = max if action == "deposit" else min
    values = {s: value_usd(holdings[s], decimals[s], pick(prices[s])) for s in decimals}
    basket_usd = sum(values.values())  # NAV: no open positions, so no claim
    is_deposit = action == "deposit"
    if is_deposit:
        a = value_usd(int(Decimal(amount) * 10 ** decimals[asset]), decimals[asset], min(prices[asset]))
    else:
        a = _wad(amount) * basket_usd // START_SUPPLY_WAD  # gross: alp x NAV / supply
    toward = toward_usd(values[asset], basket_usd, targets[asset], a, is_deposit)
    fee = fee_usd(values[asset], basket_usd, targets[asset], a, is_deposit)
    if is_deposit:
        out = (a - fee) * START_SUPPLY_WAD // basket_usd
    else:
        out = tokens_for_usd(a - fee, decimals[asset], max(prices[asset]))
    return {"a": a, "toward": toward, "fee": fee, "out": out}


# ----------------------------------------------------------------------- on chain
def start_basket(sim) -> None:
    """The chain's basket at its targets, 1,000,000 USD and 1,000,000 ALP held by LP."""
    pool, admin = sim.pool_contract, sim.deployment.deployer
    settings = (pool.call("mintFeeBps"), pool.call("burnFeeBps"), pool.call("cooldownSeconds"),
                pool.call("maxReserveBps"))
    assert settings == (25, 25, 48 * 3600, 8_000)
    pool.transact("setSettings", 0, 0, 0, 8_000, sender=admin)
    holdings = START_HOLDINGS[sim.profile.name]
    sim.keeper.set_prices({_price_name(s): START_PRICES[s] for s in holdings})
    for symbol, amount in holdings.items():
        sim.fund(LP, amount, asset=symbol)
        sim.deposit(LP, amount, asset=symbol)
    pool.transact("setSettings", *settings, sender=admin)
    assert pool.call("nav") == START_SUPPLY_WAD == sim.contracts["alp"].call("totalSupply")


def move_prices(sim, moves: dict) -> None:
    """The example's prices, keeper and reference (apart where the example gives two), recorded
    on chain: asset-only prices by the keeper, pair prices by a trigger run (settled)."""
    for symbol, p in moves.items():
        name = _price_name(symbol)
        if isinstance(p, tuple):
            sim.keeper.set_prices({name: p[0]}, reference=False)
            sim.keeper.set_reference(name, p[1])
        else:
            sim.keeper.set_prices({name: p})
    sim.keeper.push_asset_prices()
    sim.keeper.run_triggers([], {sim.pair_id("BTC/USD"), sim.pair_id("ETH/USD")})


def _units(amount: Decimal, decimals: int) -> int:
    units = amount * 10**decimals
    assert units == int(units), f"{amount} has more than {decimals} decimals"
    return int(units)


@pytest.mark.parametrize("kind", KINDS)
def test_worked_example(sim, kind):
    chain = sim.profile.name
    example_id, moves, action, asset, amount = EXAMPLES[chain][kind]
    doc = doc_examples()[example_id]
    entries = {e.symbol: e for e in sim.deployment.basket}
    decimals = {s: entries[s].decimals for s in START_HOLDINGS[chain]}
    targets = {s: entries[s].target_bps for s in START_HOLDINGS[chain]}

    model = model_example(chain, decimals, targets, moves, action, asset, amount)
    # the model equals the document
    assert model["a"] == _units(doc["a"], 18)
    assert model["toward"] == _units(doc["toward"], 18)
    assert model["a"] - model["toward"] == _units(doc["away"], 18)
    assert model["fee"] == _units(doc["fee"], 18)
    assert Fraction(model["fee"] * BPS, model["a"]) == Fraction(doc["bp"])
    out_decimals = 18 if doc["unit"] == "ALP" else decimals[doc["unit"]]
    assert doc["unit"] in ("ALP", asset)
    assert model["out"] == _units(doc["out"], out_decimals)

    # the chain equals the model
    start_basket(sim)
    move_prices(sim, moves)
    pool = sim.pool_contract
    held_before = pool.call("holdingsOf", sim.asset_token(asset).address)
    if action == "deposit":
        sim.fund(NEW_LP, amount, asset=asset)
        result = sim.deposit(NEW_LP, amount, asset=asset)
        assert (result.fee_wad, result.alp_out_wad) == (model["fee"], model["out"])
        assert pool.call("holdingsOf", sim.asset_token(asset).address) == held_before + result.amount_units
    else:
        before = sim.asset_units(LP, asset)
        result = sim.withdraw(LP, amount, asset=asset)
        assert (result.fee_wad, result.amount_out_units) == (model["fee"], model["out"])
        assert sim.asset_units(LP, asset) - before == model["out"]
        assert pool.call("holdingsOf", sim.asset_token(asset).address) == held_before - model["out"]


def test_every_example_of_the_document_runs():
    ids = {EXAMPLES[chain][kind][0] for chain in EXAMPLES for kind in KINDS}
    assert set(doc_examples()) == ids
