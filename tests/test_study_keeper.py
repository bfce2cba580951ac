"""The keeper's books in studies (`keeper:`): the block's refusals, the books against a hand
calculation from the counted operations x the gas measured on the exact EVM x gwei x the native
coin's price, on_change pushing less than every_block on the same seeded path (counted from the
oracle's PriceUpdated logs), a fixed gas price costing the same on every path, and the report's
keys. Paths run on revm; the gas is measured once for the module (embedded EVM)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from eth_utils import keccak

from alpsim.study import StudyError, parse_study, run_study
from alpsim.study.keeper_report import measured_gas, path_gas_prices, figures
from alpsim.study.report import summary_md, write_report
from alpsim.study.runner import StudyEngine

COHORT = """
name: keeper books
chain: bnb
seed: 11
paths: 2
horizon: {duration: 1m, step: 5s}
pool: {liquidity: 1_000_000}
prices:
  BTC/USD: {model: gbm, volatility: 0.5}
cohort:
  - {pair: BTC/USD, side: long, leverage: 10, amount: 100}
"""
CROWD = """
name: keeper pushes
chain: bnb
seed: 4
paths: 1
horizon: {duration: 10m, step: 5s}
pool: {liquidity: 5_000_000}
prices:
  BTC/USD: {model: gbm, volatility: 0.6}
traders:
  arrivals_per_hour: 120
  accounts: 8
  profiles:
    - {name: degen, weight: 1, pairs: [BTC/USD], leverage: {choice: [100, 1001]}, amount: {fixed: 100},
       holding: {exponential: {mean: 5m}}}
"""


@pytest.fixture(scope="module")
def gas(build):
    """The keeper's operations on BNB Chain, measured once (embedded EVM); run_study then finds
    them in the module cache."""
    return measured_gas("bnb", build)


@pytest.mark.parametrize("block, fragment", [
    ("keeper: {push: sometimes}", "keeper.push: Input should be 'every_block', 'on_change' or 'seconds'"),
    ("keeper: {gas_price: -0.05}", "keeper.gas_price.fixed: Input should be greater than 0"),
    ("keeper: {gas_price: {median_gwei: -1, p99_gwei: 1}}", "keeper.gas_price.draw.median_gwei: Input should be greater"),
    ("keeper: {gas_price: {median_gwei: 0.5, p99_gwei: 0.1}}", "p99_gwei must be at least median_gwei"),
    ("keeper: {push: on_change, colour: red}", "keeper.colour: unknown key 'colour'"),
    ("keeper: {push: seconds}", "push: seconds needs push_every_s"),
    ("keeper: {push: seconds, push_every_s: 2s}", "keeper.push_every_s (2 s) is shorter than the step (5 s)"),
    ("keeper: {push: every_block, push_every_s: 30s}", "push_every_s is for push: seconds"),
    ("keeper: {l1_data: {blob_base_fee_median_gwei: 0.1}}", "keeper.l1_data: bnb is an L1"),
    ("keeper: {native_usd: 0}", "keeper.native_usd: Input should be greater than 0"),
])
def test_the_keeper_block_refuses_with_its_line(block, fragment):
    with pytest.raises(StudyError) as caught:
        parse_study(COHORT + block + "\n", "k.yaml")
    text = str(caught.value)
    assert fragment in text, text
    assert "k.yaml:12:" in text, text  # the keeper block's line


def test_the_cli_refuses_a_bad_push_mode_with_exit_2(tmp_path):
    study = tmp_path / "bad.yaml"
    study.write_text(COHORT + "keeper: {push: hourly}\n")
    done = subprocess.run([sys.executable, "-m", "alpsim.cli", "study", str(study)], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "200"})
    assert done.returncode == 2, done.stdout + done.stderr
    assert "keeper.push" in done.stderr and "hourly" not in done.stdout


def test_the_books_are_the_counted_operations_times_the_measured_gas(build, gas, tmp_path):
    """One 10x long held to the horizon, a push every block at a fixed 0.1 gwei and BNB at 600
    USD: the counts are the path's (12 steps, one trigger run each, and one at the horizon's
    close), and the cost is their measured gas at that price."""
    study = parse_study(COHORT + "keeper: {gas_price: 0.1, native_usd: 600}\n")
    report = run_study(study, Path("."), paths=1, workers=1, build=build, report_dir=tmp_path).report
    k = report["keeper"]
    ops = k["operations_per_path"]
    steps = 12
    assert (ops["price_pushes"], ops["opens"], ops["close_items"], ops["liquidations"]) == (steps + 1, 1, 1, 0)
    blocks_per_step = 5 / 0.75  # the profile's 0.75 s blocks in a 5 s step
    pushes = (steps + 1) + steps * (blocks_per_step - 1)
    assert ops["price_pushes_charged"] == pytest.approx(pushes)
    hand_gas = pushes * gas["price_push"]["gas"] + gas["open"]["gas"] + gas["close"]["gas"]
    hand_usd = hand_gas * 0.1e-9 * 600
    assert k["cost_per_path_usd"] == pytest.approx(hand_usd, rel=1e-9)
    assert k["revenue_per_path_usd"] == pytest.approx(0.50)  # the execution fee of the one open
    assert k["profit_per_path_usd"]["mean"] == pytest.approx(0.50 - hand_usd, rel=1e-9)
    push_usd = pushes * gas["price_push"]["gas"] * 0.1e-9 * 600
    assert k["push_cost_share"] == pytest.approx(push_usd / hand_usd, rel=1e-9)
    own = (gas["open"]["gas"] + gas["close"]["gas"]) * 0.1e-9 * 600  # 0.027 USD < the 0.50 fee
    assert k["orders_at_loss_share"] == (1.0 if own > 0.5 else 0.0) == 0.0
    assert (tmp_path / f"keeper_gas-bnb-{build.key[:16]}.json").is_file()  # the measurement kept with the report


def test_a_fixed_gas_price_costs_the_same_on_every_path_and_a_drawn_one_does_not(build, gas):
    fixed = parse_study(COHORT + "keeper: {gas_price: 0.2}\n")
    k = run_study(fixed, Path("."), workers=1, build=build).report["keeper"]
    assert k["paths"] == 2
    assert k["gas_price_gwei"]["p5"] == k["gas_price_gwei"]["p95"] == 0.2
    assert k["profits_usd"][0] == k["profits_usd"][1]
    drawn = parse_study(COHORT)  # no block: the profile's 0.05 / 0.5 gwei, drawn per path
    fig = figures(drawn)
    assert fig["gas_price"] == {"kind": "lognormal", "median_gwei": 0.05, "p99_gwei": 0.5, "from": "profile"}
    first, second = path_gas_prices(drawn, 0, fig)[0], path_gas_prices(drawn, 1, fig)[0]
    assert first != second and first == path_gas_prices(drawn, 0, fig)[0]  # the path's own seeded stream


def _path_and_price_updates(engine: StudyEngine, index: int) -> tuple[dict, int]:
    """A path's result and the oracle's PriceUpdated logs over it (from the block the fresh
    engine stands at to the head)."""
    sim = engine.sim
    start = sim.devnet.block_number
    result = engine.run_path(index)
    topic = keccak(text="PriceUpdated(uint256,uint256,uint256,uint256)")
    assert sim.devnet.block_number > start
    return result, len(sim.session.logs(sim.contracts["oracle"].address, [topic], start + 1, sim.devnet.block_number))


def test_on_change_pushes_less_than_every_block_on_the_same_path(build):
    counts, keeper = {}, {}
    for mode in ("every_block", "on_change"):
        engine = StudyEngine(parse_study(CROWD + f"keeper: {{push: {mode}}}\n"), build, Path("."))
        try:
            result, counts[mode] = _path_and_price_updates(engine, 0)
            keeper[mode] = result["keeper"]
        finally:
            engine.close()
    steps = 120
    assert counts["on_change"] < counts["every_block"], counts
    assert keeper["every_block"]["price_pushes"] >= steps
    assert keeper["on_change"]["price_pushes"] < keeper["every_block"]["price_pushes"]
    assert keeper["on_change"]["opens"] == keeper["every_block"]["opens"] > 0  # the same orders either way


def test_the_report_has_the_keepers_books(build, gas, tmp_path):
    study = parse_study(COHORT + "keeper: {push: on_change, push_change: 0.001}\n")
    report = run_study(study, Path("."), paths=1, workers=1, build=build).report
    k = report["keeper"]
    for key in ("push", "gas_price", "native_usd", "l1_data", "blocks_per_step", "operations_per_path",
                "open_batches_all_paths", "liquidation_batches_all_paths", "bad_debt_per_path_usd",
                "paths_with_bad_debt_share", "gas_measured", "gas_source", "batched_gas", "gas_price_gwei",
                "revenue_per_path_usd", "cost_per_path_usd", "cost_per_path_by_kind_usd", "push_cost_share",
                "profit_per_path_usd", "loss_share", "profits_usd", "orders", "per_1000_orders_usd",
                "orders_executed", "orders_at_loss_share", "at_median_gas"):
        assert key in k, key
    assert k["push"] == {"mode": "on_change", "push_change": 0.001}
    assert k["gas_measured"] == {op: row["gas"] for op, row in gas.items()}
    for key in ("mean", "p5", "p50", "p95"):
        assert key in k["profit_per_path_usd"]
    text = summary_md(report)
    assert "## The keeper's books" in text and "on_change (0.1%)" in text
    written = write_report(report, tmp_path)
    assert tmp_path / "keeper_profit.png" in written and (tmp_path / "keeper_profit.png").stat().st_size > 0


def test_the_push_policy_by_mode():
    """on_change: a move of push_change or more, or a price about to age past the oracle's 60 s
    by the next step; seconds: every push_every_s, with the same freshness rule."""
    from alpsim.study.keeper_books import PushPolicy
    from alpsim.study.keeper_spec import KeeperSpec

    start = {1: 60_000 * 10**18, 2: 3_000 * 10**18}
    on_change = PushPolicy(KeeperSpec(push="on_change"), 5, 60, start)
    moved = {1: 60_000 * 10**18 * 10_005 // 10_000, 2: 3_000 * 10**18}  # BTC up exactly 0.05%
    assert on_change.due(moved, 5) == {1}
    assert on_change.due({1: 60_029 * 10**18, 2: 3_000 * 10**18}, 5) == set()  # 0.048%: no push
    on_change.pushed({1}, moved, 5)
    assert on_change.due(moved, 50) == set()
    assert on_change.due(moved, 55) == {2}  # ETH last pushed at 0: 55 + 5 >= 60
    seconds = PushPolicy(KeeperSpec(push="seconds", push_every_s=20), 5, 60, start)
    assert seconds.due(start, 15) == set() and seconds.due(start, 20) == {1, 2}


def test_bad_debt_is_the_loss_beyond_the_margin():
    """A settlement with margin 100, pnl -150 and holding 1 USD leaves 51 USD nobody pays; one
    with pnl -50 leaves none."""
    from alpsim.study.keeper_books import KeeperCounter, empty_counts

    counter = KeeperCounter.__new__(KeeperCounter)  # no session: only the settlement arithmetic
    counter.counts = empty_counts()
    wad = 10**18
    for pnl in (-150, -50):
        counter._settled({"position": {"marginUsd": 100 * wad},
                          "settlement": {"reason": 3, "pnlUsd": pnl * wad, "holdingUsd": 1 * wad, "fundingUsd": 0}})
    assert counter.counts["bad_debt_usd"] == 51.0 and counter.counts["bad_debt_positions"] == 1
    assert counter.counts["liquidations"] == 2
