"""`--report DIR`: report.json, a Markdown summary naming every position, and valid PNG plots
(price path with entries, take-profits, liquidations and exits; NAV and ALP price; equity)."""

from __future__ import annotations

import json

import matplotlib.image as mpimg
import pytest

from alpsim.scenario import ScenarioRunner, load_scenario, write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


LADDER_MINUTES = """\
name: the leverage ladder, minute steps
description: The shipped leverage ladder's positions with the keeper looking every minute (60 steps, not 240).
chain: bnb
seed: 42
funds: {lp: 2000000, cautious: 100, bold: 100, degen: 100}
steps:
  - prices: {BTC/USD: 60000}
  - deposit: {who: lp, amount: 2000000}
  - open: {id: x10, who: cautious, pair: BTC/USD, side: long, amount: 100, leverage: 10}
  - open: {id: x100, who: bold, pair: BTC/USD, side: long, amount: 100, leverage: 100}
  - open: {id: x1001, who: degen, pair: BTC/USD, side: long, amount: 100, leverage: 1001}
  - path: {pair: BTC/USD, model: gbm, volatility: 0.5, drift: 0, seconds: 3600, step: 60, seed: 2}
  - keeper: {}
  - expect: {position: x1001, status: liquidated}
  - expect: {position: x100, status: liquidated}
  - close: {id: x10}
  - expect: {position: x10, status: closed}
"""
"""The report's subject is its files, not the ladder: the same positions on fewer steps, on the
embedded backend (the summary's gas table needs its exact gas)."""


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory, build):
    source = tmp_path_factory.mktemp("scenario") / "ladder_minutes.yaml"
    source.write_text(LADDER_MINUTES)
    run = ScenarioRunner(load_scenario(source), build=build).run()
    assert all(e.passed for e in run.expectations), run.expectations
    folder = tmp_path_factory.mktemp("report")
    write_report(run, folder)
    return folder, run


def test_plots_exist_and_are_valid_pngs(report_dir):
    folder, _ = report_dir
    for name in ("price.png", "pool.png", "equity.png"):
        data = (folder / name).read_bytes()
        assert data.startswith(PNG_MAGIC), name
        image = mpimg.imread(folder / name)
        assert image.shape[0] > 200 and image.shape[1] > 500, name
        assert image.std() > 0.01, f"{name} is blank"


def test_summary_names_every_position_and_the_pool(report_dir):
    folder, run = report_dir
    summary = (folder / "summary.md").read_text()
    assert summary.startswith(f"# {run.scenario.name}")
    for pid, record in run.positions.items():
        assert f"| {pid} | {record.who} |" in summary
    assert "## Pool" in summary and "## Expectations" in summary and "## Gas" in summary
    assert "liquidated" in summary


def test_report_json_is_the_report_with_its_series(report_dir):
    folder, run = report_dir
    data = json.loads((folder / "report.json").read_text())
    assert data["positions"].keys() == run.report["positions"].keys()
    series = data["series"]
    assert len(series) == len(run.samples) and series[0]["t"] == 0
    assert series[-1]["t"] >= 3600
    assert series[0]["prices"] == {}  # before the first prices step
    assert all("BTC/USD" in s["prices"] for s in series[1:])
