"""The risk lab against a closed form: with holding and funding at zero and GBM prices, a position
is liquidated within the horizon exactly when the keeper's price at some step crosses its
liquidation price, a barrier-hitting probability with a closed form (reflection principle, with
Broadie, Glasserman and Kou's continuity correction for a keeper that looks only at each price
step). A study on the real contracts, at several leverages and two volatilities, must land
within three standard errors of it wherever it lies between 5% and 95%."""

from __future__ import annotations

from pathlib import Path

from alpsim.study import parse_study, run_study
from alpsim.study.closed_form import hit_probability
from alpsim.study.runner import start_prices

VOLATILITY = {"BTC/USD": 0.6, "ETH/USD": 1.2}
STUDY = """
name: closed-form check
chain: bnb
seed: 11
paths: 240
horizon: {duration: 1h, step: 2m}
pool: {liquidity: 10_000_000}
settings: {holding_rate_per_hour: 0, funding_rate_per_hour: 0}
prices:
  BTC/USD: {model: gbm, volatility: 0.6}
  ETH/USD: {model: gbm, volatility: 1.2}
cohort:
  - {pair: BTC/USD, side: long, leverage: 100, amount: 50}
  - {pair: BTC/USD, side: long, leverage: 200, amount: 50}
  - {pair: BTC/USD, side: short, leverage: 150, amount: 50}
  - {pair: ETH/USD, side: long, leverage: 50, amount: 50}
  - {pair: ETH/USD, side: long, leverage: 100, amount: 50}
  - {pair: ETH/USD, side: short, leverage: 100, amount: 50}
"""


def test_liquidation_probability_matches_the_barrier_formula(build):
    study = parse_study(STUDY)
    report = run_study(study, Path("."), workers=2, build=build).report
    start = start_prices(study)
    compared = []
    for name, group in report["cohort"].items():
        pair = name.split()[0]
        assert group["opened"] == study.paths, (name, group["refused"])
        expected = hit_probability(float(start[pair]), group["liquidation_price"], VOLATILITY[pair],
                                   study.horizon.duration, step_s=study.horizon.step)
        if not 0.05 <= expected <= 0.95:
            continue
        estimate, n = group["liquidation_probability"], group["opened"]
        standard_error = (expected * (1 - expected) / n) ** 0.5
        compared.append(name)
        assert abs(estimate - expected) <= 3 * standard_error, (name, estimate, expected, standard_error)
        # the liquidations are the only closes before the horizon: no take-profit interferes
        assert set(group["closed_by"]) <= {"liquidation", "horizon"}, group["closed_by"]
    assert len(compared) >= 4, compared
