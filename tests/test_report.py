"""`--report DIR`: report.json, a Markdown summary naming every position, and valid PNG plots
(price path with entries, take-profits, liquidations and exits; NAV and ALP price; equity)."""

from __future__ import annotations

import json

import matplotlib.image as mpimg
import pytest

from alpsim.paths import find_project
from alpsim.scenario import ScenarioRunner, load_scenario, write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory, build):
    scenario = load_scenario(find_project().root / "scenarios" / "leverage_ladder.yaml")
    run = ScenarioRunner(scenario, build=build).run()
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
