"""Studies on the ALP basket (docs/studies.md): basket asset prices in the price models, BTC the
asset and BTC/USD the pair one price, the LP's return split by source adding up to the total, the
run model, the shipped 80/20-vs-stable study, and the same report on one and two workers."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from alpsim.paths import find_project
from alpsim.study import load_study, parse_study, run_study
from alpsim.study.ledger import SOURCES
from alpsim.study.runner import StudyEngine, _cut
from alpsim.units import WAD

BASKET = """
name: basket
chain: bnb
seed: 11
paths: 4
horizon: {duration: 2h, step: 10m}
pool: {liquidity: 1_000_000}
start_prices: {BNB: 640}
prices:
  BTC/USD: {model: gbm, volatility: 0.9}
  BNB: {model: jump, volatility: 0.9, intensity: 3000, jump_mean: -0.01, jump_std: 0.01}
  ETH/USD: {model: gbm, volatility: 1.0}
correlation: [[1, 0.75, 0.8], [0.75, 1, 0.7], [0.8, 0.7, 1]]
cohort:
  - {pair: BTC/USD, side: long, leverage: 100, amount: 1000}
traders:
  arrivals_per_hour: 30
  accounts: 5
  profiles:
    - {name: degen, weight: 1, leverage: {choice: [50, 500]}, amount: {lognormal: {median: 300, sigma: 0.5}},
       holding: {exponential: {mean: 20m}}}
"""

RUN = BASKET.replace("name: basket\n", "name: run\n").replace(
    "{model: jump, volatility: 0.9, intensity: 3000, jump_mean: -0.01, jump_std: 0.01}",
    "{model: gbm, volatility: 0.5, drift: -200}") + """
lps:
  accounts: 4
  run: {drawdown: 0.003, share: 0.4}
"""

ROUNDING = 1e-12
"""The split's residual on a path without LP actions: the sources are exact integers of the
chain's USD (18 decimals) divided by the supply, so what is left is the float sum of a few
hundred terms of order 1e-3 (each good to 1e-16 relative) and the floors of the ALP price
readings (1e-18 USD per ALP): far below 1e-12."""
LP_TIMING = 1e-6
"""With LP actions in a step the split puts the step's trading at the supply before them, but
the open positions keep accruing holding and funding over the seconds (blocks) the LP actions
take: that accrual, at most open interest x (holding + funding rate) x those seconds, met a
different supply. For this study (open interest under 2 M USD, 0.001%/h, a minute of blocks),
at most 2e6 x 1e-5 / 60 over a NAV of 1e6: 3e-7 of the price, under 1e-6."""


@pytest.fixture(scope="module")
def engine(build):
    study = parse_study(BASKET)
    engine = StudyEngine(study, build, Path("."))
    yield engine
    engine.close()


def test_the_split_adds_up_and_the_beta_is_the_holdings_times_the_price_moves(engine):
    sim = engine.sim
    result = engine.run_path(0)
    split = result["lp_split"]["return"]
    prices = result["alp_price"]
    assert split["total"] == prices[-1] / prices[0] - 1
    assert abs(split["total"] - sum(split[s] for s in SOURCES)) <= ROUNDING
    assert abs(split["residual"]) <= ROUNDING
    # by hand: no LP acts in the path, so BNB, ETH and BTC are held unchanged all along (the payout
    # stablecoin moves with every trade, but its price stays at 1): the beta is their holdings times
    # their price moves, over the supply, over the start price
    basket = sim.pool_contract.call("basket")
    supply = sim.contracts["alp"].call("totalSupply") / WAD
    moved = {"BNB": ("BNB", Decimal(640)), "ETH": ("ETH/USD", Decimal(3000)), "BTC": ("BTC/USD", Decimal(60_000))}
    beta_usd = 0.0
    for token, decimals, held in zip(basket[0], basket[1], basket[4]):
        symbol = next(e.symbol for e in sim.deployment.basket if e.address == token)
        if symbol in moved:
            key, start = moved[symbol]
            beta_usd += held / 10**decimals * float(_cut(result["final_prices"][key]) - start)
    assert split["basket_beta"] == pytest.approx(beta_usd / supply / prices[0], rel=1e-9)
    assert split["basket_beta"] != 0
    # the weights at the end are the holdings at the final prices
    assert sum(result["lp_split"]["weights_end"].values()) == pytest.approx(1.0, abs=1e-12)


def test_btc_the_asset_and_btc_usd_the_pair_are_one_price(engine):
    sim, study = engine.sim, engine.study
    result = engine.run_path(1)
    oracle, deployment = sim.contracts["oracle"], sim.deployment
    assert deployment.price_id("BTC") == deployment.pair_id("BTC/USD")
    assert deployment.price_id("ETH") == deployment.pair_id("ETH/USD")
    for key in ("BTC/USD", "ETH/USD", "BNB"):  # the oracle marks the basket at the path's last prices
        assert oracle.call("markPrice", deployment.price_id(key)) == int(_cut(result["final_prices"][key]) * WAD)
    # an asset the study does not model stays at the profile's start price
    assert oracle.call("markPrice", deployment.price_id("USDC")) == WAD
    assert set(result["final_prices"]) == set(study.prices)  # one path per key: no BTC beside BTC/USD


def test_a_run_leaves_through_the_fee_and_the_split_still_adds_up(build):
    study = parse_study(RUN)
    engine = StudyEngine(study, build, Path("."))
    try:
        result = engine.run_path(0)
        run = result["lp_flows"]["run"]
        assert run["started_s"] is not None and run["withdrawals"] == 4 and run["left_in_pool"] == 0
        assert run["fees_usd"] > 0
        # the fees the run paid are among the mint and burn fees the split counts
        assert result["lp_split"]["fees_usd"]["mint_burn"] == pytest.approx(run["fees_usd"], rel=1e-12)
        assert abs(result["lp_split"]["return"]["residual"]) <= LP_TIMING
        # the holders left 40% of the pool in stablecoins first: USDT, while the reserve allowed
        withdrawn = sum(run["by_asset"].values())
        assert withdrawn == pytest.approx(400_000, rel=0.05) and set(run["by_asset"]) <= {"USDT", "USDC"}
        weights = result["lp_split"]["weights_end"]
        assert weights["USDT"] + weights["USDC"] < 0.8  # the volatile share grew past its 20% target
    finally:
        engine.close()


def _dumps(report: dict) -> str:
    return json.dumps(report, sort_keys=True)


def test_a_basket_study_gives_the_same_report_on_one_and_two_workers(build):
    study = parse_study(BASKET)
    one = run_study(study, Path("."), workers=1, build=build).report
    two = run_study(study, Path("."), workers=2, build=build).report
    assert _dumps(one) == _dumps(two)
    again = run_study(study, Path("."), workers=1, build=build).report
    assert _dumps(again) == _dumps(one)
    split = one["pool"]["lp_return_split"]
    assert set(split) == {"total", *SOURCES}
    assert split["total"]["median"] == one["pool"]["lp_return"]["p50"]
    assert one["pool"]["split_residual_max_abs"] <= ROUNDING


def test_the_shipped_study_compares_the_two_pools_on_the_same_prices(build, tmp_path):
    path = find_project().root / "studies" / "basket_80_20_vs_stable.yaml"
    study = load_study(path)
    assert [list(v) for v in study.sweep["basket_targets"]] == [
        ["USDT", "USDC", "BNB", "ETH", "BTC"], ["USDT"]]
    short = study.model_copy(update={"horizon": study.horizon.model_copy(update={"duration": 6 * 3600})})
    run = run_study(short, path.parent, paths=4, workers=1, build=build, report_dir=tmp_path)
    cells = run.report["cells"]
    basket, stable = (c["report"]["pool"] for c in cells)
    assert stable["targets_bps"] == {"USDT": 10_000, "USDC": 0, "BNB": 0, "ETH": 0, "BTC": 0}
    assert basket["targets_bps"] == {"USDT": 5000, "USDC": 3000, "BNB": 800, "ETH": 600, "BTC": 600}
    # a pool of USDT alone has no beta; the basket has some on every path
    assert all(x == 0 for x in stable["lp_return_split_paths"]["basket_beta"])
    assert all(x != 0 for x in basket["lp_return_split_paths"]["basket_beta"])
    assert stable["weights_end"]["USDT"]["mean"] == 1.0
    # the same crowd: the same orders drawn in both pools
    assert cells[0]["report"]["crowd"]["orders"] == cells[1]["report"]["crowd"]["orders"] > 0
    for pool in (basket, stable):
        assert pool["split_residual_max_abs"] <= LP_TIMING
        assert len(pool["lp_returns"]) == 4
    summary = (tmp_path / "summary.md").read_text()
    assert "| USDT 100 |" in summary and "basket beta, median" in summary
    assert "## The LP's return by source" in (tmp_path / "cell-0" / "summary.md").read_text()
