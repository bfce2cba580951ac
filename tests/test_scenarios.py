"""Every shipped scenario runs and its expectations pass on the embedded backend; the same
file and seed give the same report byte for byte; revm and anvil give the same positions,
pool, accounts and expectations as embedded for every shipped scenario (gas aside)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal

import pytest

from alpsim.paths import find_project
from alpsim.quote import dumps_exact
from alpsim.scenario import ScenarioRunner, load_scenario, write_report
from conftest import default_sigint

SCENARIOS = sorted((find_project().root / "scenarios").glob("*.yaml"))
REQUIRED = {"wiped_by_noise", "leverage_ladder", "profit_cap", "lp_winning_streak", "keeper_outage",
            "execution_fee_bnb", "execution_fee_arbitrum", "bnb_crash", "usdc_depeg", "basket_rebalance"}


def test_the_showcase_is_shipped():
    assert REQUIRED <= {p.stem for p in SCENARIOS}


_EMBEDDED_RUNS: dict[str, object] = {}
"""Each shipped scenario's embedded run, made once for the tests that need it."""


def _embedded_run(path, build):  # noqa: ANN001, ANN202
    if path.stem not in _EMBEDDED_RUNS:
        _EMBEDDED_RUNS[path.stem] = ScenarioRunner(load_scenario(path), build=build).run()
    return _EMBEDDED_RUNS[path.stem]


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_shipped_scenario_passes(path, build):
    run = _embedded_run(path, build)
    assert run.error is None and not run.interrupted
    assert run.expectations, "a shipped scenario checks something"
    failed = [e for e in run.expectations if not e.passed]
    assert not failed, failed
    assert run.steps_done == len(run.scenario.steps)


RECORDED = find_project().root / "tests" / "recorded_reports"
"""Each shipped scenario's report as recorded by scripts/record_reports.py, gas aside: the
baseline a restructuring of the code must keep byte for byte."""


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_shipped_scenario_report_is_the_recorded_one(path, build):
    """The report (positions, pool, accounts, expectations; gas aside) is the one recorded. A
    change of the mechanics that is meant to change it re-records it
    (`.venv/bin/python scripts/record_reports.py`) and says so."""
    report = {k: v for k, v in _embedded_run(path, build).report.items() if k not in ("gas", "gas_note")}
    recorded = RECORDED / f"{path.stem}.json"
    assert recorded.exists(), f"{recorded} missing: run scripts/record_reports.py"
    assert dumps_exact(report) + "\n" == recorded.read_text(), f"{path.stem}: the report differs from {recorded}"


def test_same_file_and_seed_same_report_byte_for_byte(build, tmp_path):
    path = find_project().root / "scenarios" / "profit_cap.yaml"
    first = ScenarioRunner(load_scenario(path), build=build).run()
    second = ScenarioRunner(load_scenario(path), build=build).run()
    assert dumps_exact(first.report) == dumps_exact(second.report)
    write_report(first, tmp_path / "a")
    write_report(second, tmp_path / "b")
    for name in ("report.json", "summary.md"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


@pytest.mark.parametrize("backend", ["revm", "anvil"])
@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_every_backend_gives_the_same_report_but_gas(build, path, backend):
    """The same bytecode on revm (in process) and anvil (a node over JSON-RPC): byte for byte
    the same positions, pool, accounts and expectations as eth-tester. Anvil measures gas
    exactly; revm leaves the gas table out with a note (its gas reads low)."""
    embedded = _embedded_run(path, build).report
    other = ScenarioRunner(load_scenario(path), backend=backend, build=build).run().report
    for key in ("positions", "pool", "accounts", "expectations"):
        assert dumps_exact(other[key]) == dumps_exact(embedded[key]), key
    assert embedded["gas"]
    if backend == "revm":
        assert other["gas"] is None and "not measured" in other["gas_note"]
    else:
        assert other["gas"]


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "alpsim.cli", "run", *args], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "120"})


def test_cli_json_report_and_exit_status(tmp_path):
    path = find_project().root / "scenarios" / "keeper_outage.yaml"
    proc = _cli(str(path), "--json", "--report", str(tmp_path / "rep"))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert list(data) == ["scenario", "chain", "positions", "pool", "accounts", "lp_actions", "expectations", "gas"]
    keys = ["status", "pair", "side", "leverage", "margin_usd", "notional_usd", "entry_price", "exit_price",
            "liquidation_price", "pnl_usd", "open_fee_usd", "close_fee_usd", "execution_fee_usd", "holding_fee_usd",
            "funding_fee_usd", "payout_usd", "reject_reason"]
    for position in data["positions"].values():
        assert list(position) == keys
    assert list(data["pool"]) == ["nav_usd", "alp_price", "alp_supply", "reserve_usd", "holdings", "weights"]
    assert list(data["pool"]["holdings"]) == list(data["pool"]["weights"]) == ["USDC", "USDT", "ETH", "BTC"]
    assert [(a["kind"], a["asset"], a["fee_bps"]) for a in data["lp_actions"]] == [("deposit", "USDC", 30)]
    assert set(data["accounts"]) == {"lp", "alice", "bob"}
    assert {"request_open", "execute_open", "cancel_request", "deposit"} <= set(data["gas"])
    assert all(set(e) == {"step", "subject", "expected", "actual", "passed"} for e in data["expectations"])
    assert (tmp_path / "rep" / "report.json").is_file()


def test_failed_expectation_exits_1(tmp_path):
    text = (find_project().root / "scenarios" / "profit_cap.yaml").read_text()
    broken = tmp_path / "wrong.yaml"
    broken.write_text(text.replace("status: closed}\n  - expect: {position: capped, pnl_usd",
                                   "status: liquidated}\n  - expect: {position: capped, pnl_usd"))
    proc = _cli(str(broken), "--json", "--backend", "revm")
    assert proc.returncode == 1
    data = json.loads(proc.stdout)
    failed = [e for e in data["expectations"] if not e["passed"]]
    assert [(e["subject"], e["expected"], e["actual"]) for e in failed] == [("capped.status", "liquidated", "closed")]


def test_chain_override_runs_the_same_file_on_the_other_chain(build):
    scenario = load_scenario(find_project().root / "scenarios" / "wiped_by_noise.yaml")
    run = ScenarioRunner(scenario, chain="arbitrum", backend="revm", build=build).run()
    assert run.report["chain"] == "arbitrum"
    assert run.report["positions"]["degen-1001x"]["execution_fee_usd"] == Decimal("0.2")


def test_ctrl_c_stops_with_a_partial_report(tmp_path):
    """A long run interrupted by Ctrl-C still prints (and writes) what it did so far."""
    import signal
    import time

    path = find_project().root / "scenarios" / "leverage_ladder.yaml"
    proc = subprocess.Popen([sys.executable, "-m", "alpsim.cli", "run", str(path), "--json", "--report",
                             str(tmp_path / "partial")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "COLUMNS": "120"}, preexec_fn=default_sigint)
    started = ""
    while "running:" not in started:  # the first step is done: compiled, deployed, running
        line = proc.stderr.readline()
        assert line, "the run ended before it started"
        started += line
    time.sleep(2)  # somewhere in the hour-long price path
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    data = json.loads(out)
    assert data["incomplete"]["interrupted"] is True
    assert 0 < data["incomplete"]["steps_done"] < len(load_scenario(path).steps)
    assert "interrupted after" in started + err
    assert (tmp_path / "partial" / "summary.md").read_text().count("Incomplete run") == 1
