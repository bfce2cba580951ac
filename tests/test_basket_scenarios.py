"""Scenarios with the ALP basket: bad basket assets and amounts refused at load time with the
chain's basket named; a BNB deposit and withdrawal through a scenario give to the unit what the
client gives; an LP deposit during a keeper outage fails with PriceStale on the asset's price
id and moves nothing, and succeeds once the keeper is back."""

from __future__ import annotations

from decimal import Decimal

import pytest

from alpsim.client import Alpsim
from alpsim.scenario import ScenarioError, ScenarioRunner, parse_scenario
from alpsim.units import wad_to_decimal

GOOD = """\
name: basket
chain: bnb
seed: 5
funds:
  lp: {USDT: 100000, BNB: 10}
  alice: 1000
steps:
  - prices: {BTC/USD: 60000, ETH/USD: 3000, BNB: 600}
  - deposit: {id: in-usdt, who: lp, asset: USDT, amount: 100000}
  - deposit: {id: in-bnb, who: lp, asset: BNB, amount: 10}
  - expect: {pool: {holdings: {USDT: 100000, BNB: 10}, weights: {BNB: {approx: 566.04, tol: 0.01}}}}
  - wait: {seconds: 172800}
  - prices: {BTC/USD: 60000, ETH/USD: 3000, BNB: 600}
  - withdraw: {id: out-bnb, who: lp, alp: 1000, asset: BNB}
  - expect: {lp_action: out-bnb, fee_bps: 30}
  - expect: {account: lp, balances: {BNB: {approx: 1.67, tol: 0.01}}}
"""
BASKET_BNB = "the basket: USDT, USDC, BNB, ETH, BTC"
BASKET_ARB = "the basket: USDC, USDT, ETH, BTC"

CASES = [
    # (what, replace this, with this, line, words in the message)
    ("unknown deposit asset", "asset: BNB, amount: 10}", "asset: DOGE, amount: 10}", 10,
     f"unknown basket asset 'DOGE' on bnb; {BASKET_BNB}"),
    ("unknown withdraw asset", "asset: BNB}", "asset: WBNB}", 14, "unknown basket asset 'WBNB' on bnb"),
    ("unknown funded asset", "BNB: 10}", "CAKE: 10}", 5, f"unknown basket asset 'CAKE' on bnb; {BASKET_BNB}"),
    ("unknown price name", "BNB: 600}\n  - deposit", "CAKE: 2}\n  - deposit", 8,
     "unknown pair or basket asset 'CAKE'"),
    ("asset priced by its pair", "ETH/USD: 3000, BNB: 600}\n  - deposit", "BTC: 60000}\n  - deposit", 8,
     "BTC the basket asset is priced by the pair BTC/USD: move BTC/USD"),
    ("too many decimals", "asset: BNB, amount: 10}", "asset: BNB, amount: 0.0000000000000000001}", 10,
     "has more decimals than BNB (18)"),
    ("funds with too many decimals", "USDT: 100000, BNB: 10}", "USDT: 100000, BNB: 1.0000000000000000001}", 5,
     "funds 1.0000000000000000001 has more decimals than BNB (18)"),
    ("zero deposit", "asset: BNB, amount: 10}", "asset: BNB, amount: 0}", 10, "greater than 0"),
    ("negative funds", "BNB: 10}", "BNB: -1}", 5, "must not be negative"),
    ("unknown holdings symbol", "holdings: {USDT: 100000, BNB: 10}", "holdings: {USDT: 100000, SOL: 10}", 11,
     "unknown basket asset 'SOL'"),
    ("holdings not a mapping", "holdings: {USDT: 100000, BNB: 10}", "holdings: 5", 11,
     "a mapping of basket asset symbol to value"),
    ("unknown lp action", "lp_action: out-bnb,", "lp_action: out-btc,", 15, "unknown lp action id 'out-btc'"),
    ("unknown lp action field", "fee_bps: 30}", "fee_pct: 0.3}", 15, "unknown lp_action field(s) fee_pct"),
    ("lp action id twice", "id: in-bnb,", "id: in-usdt,", 10, "lp action id 'in-usdt' is used twice"),
    ("unknown balance symbol", "balances: {BNB:", "balances: {XRP:", 16, "unknown basket asset 'XRP'"),
]


@pytest.mark.parametrize("what, old, new, line, words", CASES, ids=[c[0] for c in CASES])
def test_bad_basket_input_is_refused_with_its_line(what, old, new, line, words):
    assert old in GOOD, what
    with pytest.raises(ScenarioError) as info:
        parse_scenario(GOOD.replace(old, new, 1), "case.yaml")
    problems = info.value.problems
    assert any(p.startswith(f"case.yaml:{line}:") and words in p for p in problems), problems


def test_the_good_file_parses_and_keeps_the_plain_funds_form():
    scenario = parse_scenario(GOOD)
    assert scenario.funds_of("lp") == {"USDT": Decimal(100000), "BNB": Decimal(10)}
    assert scenario.funds_of("alice") == {None: Decimal(1000)}
    assert scenario.stable_funds("alice", "USDT") == 1000 and scenario.stable_funds("lp", "USDT") == 100000


def test_the_basket_is_the_scenario_chains():
    """BNB is in BNB Chain's basket, not Arbitrum's; USDC on Arbitrum has 6 decimals."""
    arbitrum = GOOD.replace("chain: bnb", "chain: arbitrum")
    with pytest.raises(ScenarioError) as info:
        parse_scenario(arbitrum, "arb.yaml")
    assert any(p.startswith("arb.yaml:5:") and f"unknown basket asset 'BNB' on arbitrum; {BASKET_ARB}" in p
               for p in info.value.problems), info.value.problems
    six = arbitrum.replace("USDT: 100000, BNB: 10}", "USDC: 1.0000001}").replace("BNB: 600}", "USDC: 1}")
    with pytest.raises(ScenarioError) as info:
        parse_scenario(six, "arb.yaml")
    assert any(p.startswith("arb.yaml:5:") and "funds 1.0000001 has more decimals than USDC (6)" in p
               for p in info.value.problems), info.value.problems


def test_bnb_deposit_and_withdrawal_through_a_scenario_match_the_client(build):
    run = ScenarioRunner(parse_scenario(GOOD), backend="revm", build=build).run()
    assert run.error is None, run.error
    assert all(e.passed for e in run.expectations), [e for e in run.expectations if not e.passed]
    actions = {a.id: a for a in run.lp_actions}

    # the same actions through the client, on a fresh devnet of the same chain
    sim = Alpsim.launch("bnb", "revm", build=build, seed=5)
    try:
        lp = sim.devnet.accounts[1]
        sim.fund(lp, 100000, asset="USDT")
        sim.fund(lp, 10, asset="BNB")

        def prices() -> None:
            sim.keeper.set_prices({"BTC/USD": 60000, "ETH/USD": 3000, "BNB": 600})
            sim.keeper.push_prices([sim.pair_id("BTC/USD"), sim.pair_id("ETH/USD")])
            sim.keeper.push_asset_prices([sim.deployment.price_id("BNB")])

        prices()
        usdt = sim.deposit(lp, 100000, asset="USDT")
        bnb = sim.deposit(lp, 10, asset="BNB")
        sim.devnet.advance_time(172800)
        prices()
        out = sim.withdraw(lp, 1000, asset="BNB")
        left_bnb = sim.asset_units(lp, "BNB")
    finally:
        sim.stop()

    assert actions["in-usdt"].alp == wad_to_decimal(usdt.alp_out_wad)
    assert actions["in-bnb"].alp == wad_to_decimal(bnb.alp_out_wad)
    assert actions["in-bnb"].fee_usd == wad_to_decimal(bnb.fee_wad)
    assert actions["out-bnb"].amount == Decimal(out.amount_out_units).scaleb(-18)
    assert actions["out-bnb"].fee_usd == wad_to_decimal(out.fee_wad)
    assert run.report["pool"]["holdings"]["BNB"] == Decimal(10) - actions["out-bnb"].amount
    assert Decimal(left_bnb).scaleb(-18) == actions["out-bnb"].amount

    # by hand: the first deposit mints 100,000 x (1 - 0.0030) = 99,700 ALP (1,000 units of it
    # locked); 10 BNB at 600 = 6,000 USD, all toward BNB's target (800 x 100,000 / 9,200 =
    # 8,695.65 USD short): fee 6,000 x 0.0020 = 12, ALP (6,000 - 12) x 99,700 / 100,000
    assert actions["in-usdt"].alp == Decimal("99700") - Decimal("1000e-18")
    assert actions["in-bnb"].fee_usd == 12
    assert actions["in-bnb"].alp == Decimal(5988) * Decimal(99700) / Decimal(100000)
    # BNB at 6,000 of 106,000 is under its 8%: taking it out is away, 30 bp:
    # 1,000 x 106,000 / 105,670.036 x 0.997 / 600 BNB, to a few units of rounding
    by_hand = Decimal(1000) * Decimal(106000) / (Decimal(99700) + Decimal("5970.036")) * Decimal("0.997") / 600
    assert abs(actions["out-bnb"].amount - by_hand) < Decimal("1e-15")
    assert actions["out-bnb"].fee_bps == 30


OUTAGE = """\
name: outage
chain: bnb
funds: {lp: {USDT: 1000, BNB: 10}}
steps:
  - prices: {BTC/USD: 60000, BNB: 600}
  - keeper: {online: false}
  - wait: {seconds: 120}
  - deposit: {who: lp, asset: BNB, amount: 10}
"""


def test_deposit_during_a_keeper_outage_fails_price_stale_and_moves_nothing(build):
    run = ScenarioRunner(parse_scenario(OUTAGE), backend="revm", build=build).run()
    assert run.steps_done == 3 and run.failure is not None and run.failure.step == 3
    cause = run.failure.cause
    assert type(cause).__name__ == "PriceStale"
    assert cause.error_args["pairId"] == 128  # BNB's asset-only price id, the only one the empty pool reads
    assert cause.error_args["maxAge"] == 60
    assert run.report["incomplete"]["error"].startswith("step 3 (deposit) failed: PriceStale: PriceStale(pairId=128")
    pool = run.report["pool"]
    assert pool["alp_supply"] == 0 and all(v == 0 for v in pool["holdings"].values())
    assert run.lp_actions == []
    sim_free = run.report["accounts"]["lp"]
    assert sim_free == 1000  # the payout stablecoin untouched


def test_deposit_after_the_keeper_is_back_succeeds(build):
    text = OUTAGE.replace("  - deposit:", "  - keeper: {online: true}\n  - deposit:") + \
        "  - expect: {pool: {holdings: {BNB: 10}}}\n  - expect: {account: lp, balances: {BNB: 0, USDT: 1000}}\n"
    run = ScenarioRunner(parse_scenario(text), backend="revm", build=build).run()
    assert run.error is None, run.error
    assert run.expectations and all(e.passed for e in run.expectations), run.expectations
    # a first deposit starts BNB at 100% of the basket, away from its 8%: 30 bp of 6,000 USD
    assert run.lp_actions[0].fee_usd == 18 and run.lp_actions[0].fee_bps == 30


def test_report_carries_the_basket_and_plots_its_weights(build, tmp_path):
    import json

    from alpsim.scenario import write_report

    run = ScenarioRunner(parse_scenario(GOOD), backend="revm", build=build).run()
    written = {p.name for p in write_report(run, tmp_path)}
    assert {"report.json", "summary.md", "price.png", "pool.png", "equity.png", "basket.png"} == written
    data = json.loads((tmp_path / "report.json").read_text())
    last = data["series"][-1]
    assert last["asset_prices"] == {"USDT": 1, "USDC": 1, "BNB": 600, "ETH": 3000, "BTC": 60000}
    assert last["holdings"]["USDT"] == 100000 and 0 < last["weights_bps"]["BNB"] < 800
    summary = (tmp_path / "summary.md").read_text()
    assert "| BNB |" in summary and "## LP actions" in summary and "`basket.png`" in summary
    # a scenario that only touches the payout stablecoin draws no basket plot
    plain = GOOD.replace("  lp: {USDT: 100000, BNB: 10}", "  lp: 100000").replace(", BNB: 600}", "}")
    plain = plain[:plain.index("  - deposit: {id: in-bnb")]
    run = ScenarioRunner(parse_scenario(plain), backend="revm", build=build).run()
    assert "basket.png" not in {p.name for p in write_report(run, tmp_path / "plain")}
