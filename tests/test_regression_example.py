"""A user's project run as a user runs it: examples/regression in pytest subprocesses (the
plugin from its entry point), against the shipped contracts (passes, gas check included),
against a copy of contracts/ whose extreme-tier minimum close fee is 4 bp (its regression test
fails, naming the test and the difference), against a copy with a storage write added to
`executeOpen` (the gas check fails), under xdist (the same snapshot), and with hostile
`--alpsim-contracts` (usage errors before any test). Each modified copy compiles once per
content (`build/user-contracts/`), so a rerun reuses it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from alpsim.paths import find_project

ROOT = find_project().root
EXAMPLE = ROOT / "examples" / "regression"


def run_pytest(*args: str, cwd: Path = EXAMPLE) -> subprocess.CompletedProcess:
    """pytest in a subprocess, as a user runs it (the plugin from its entry point)."""
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist", *args],
                          cwd=cwd, capture_output=True, text=True, env=dict(os.environ), timeout=300)


def patched_contracts(tmp: Path, old: str, new: str, source: str = "trading/TradingEngine.sol") -> Path:
    """A copy of contracts/ with `old` replaced by `new` in `source` (exactly once)."""
    folder = tmp / "contracts"
    shutil.copytree(ROOT / "contracts", folder)
    path = folder / source
    text = path.read_text()
    assert text.count(old) == 1, f"the patch target {old!r} is not in {source} exactly once"
    path.write_text(text.replace(old, new))
    return folder


def test_example_passes_on_the_shipped_contracts_with_its_gas_check_and_report():
    run = run_pytest("--gas-check=.gas-snapshot", "--gas-report")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "5 passed" in run.stdout and "gas check passed: 0 change(s)" in run.stdout
    report = run.stdout.split("alpsim gas report")[1]
    assert "TradingEngine.executeOpen" in report and "AlpPool.deposit" in report


def test_example_regression_test_fails_on_a_4_bp_extreme_close_fee(tmp_path):
    # the default setting, written by the engine's constructor (EngineSettings)
    contracts = patched_contracts(tmp_path, "s.extremeMinCloseFeeBps = 3;", "s.extremeMinCloseFeeBps = 4;",
                                  "trading/EngineSettings.sol")
    run = run_pytest("--alpsim-backend", "revm", f"--alpsim-contracts={contracts}")
    assert run.returncode == 1, run.stdout + run.stderr
    assert "1 failed, 4 passed" in run.stdout
    assert "FAILED tests/test_extreme_close_fee.py::test_extreme_tier_close_fee_is_3_bp_of_the_close_notional" \
        in run.stdout
    assert "extreme-tier close fee is 4.0000 bp of the close notional, expected 3 bp" in run.stdout


def test_example_gas_check_fails_on_a_storage_write_added_to_execute_open(tmp_path):
    contracts = patched_contracts(
        tmp_path, "ctx.collateral.safeTransfer(msg.sender, feeTokens);\n",
        "ctx.collateral.safeTransfer(msg.sender, feeTokens);\n"
        "        assembly { sstore(0xa1b5, requestId) }\n")
    run = run_pytest(f"--alpsim-contracts={contracts}", "--gas-check=.gas-snapshot")
    assert run.returncode == 1, run.stdout + run.stderr
    assert "5 passed" in run.stdout  # behaviour unchanged: only gas
    assert "GAS CHECK FAILED: 2 operation(s)" in run.stdout
    failing = [line for line in run.stdout.splitlines() if "FAIL" in line and "│" in line]
    assert len(failing) == 2 and all("TradingEngine.executeOpen#1" in line for line in failing)
    assert all("+22," in line for line in failing)  # a fresh slot's write: 22,100 gas and change


def test_example_under_xdist_writes_the_same_snapshot(tmp_path):
    snapshot = tmp_path / "snap"
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "2",
                          f"--gas-snapshot={snapshot}"], cwd=EXAMPLE, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert snapshot.read_text() == (EXAMPLE / ".gas-snapshot").read_text()


def test_bad_contracts_dirs_are_usage_errors_before_any_test(tmp_path):
    missing = run_pytest(f"--alpsim-contracts={tmp_path / 'nope'}")
    assert missing.returncode == pytest.ExitCode.USAGE_ERROR
    assert "--alpsim-contracts" in missing.stderr and "no such directory" in missing.stderr
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "Broken.sol").write_text("// SPDX-License-Identifier: MIT\npragma solidity 0.8.28;\n"
                                       "contract Broken { function f() external pure returns (uint256) "
                                       "{ return undefinedThing; } }\n")
    run = run_pytest(f"--alpsim-contracts={broken}")
    assert run.returncode == pytest.ExitCode.USAGE_ERROR, run.stdout + run.stderr
    assert "the contracts do not compile" in run.stderr and "contracts/Broken.sol:3:" in run.stderr
    assert "Traceback" not in run.stderr + run.stdout and "passed" not in run.stdout


def test_contracts_missing_what_the_client_needs_are_named_before_any_test(tmp_path):
    # a project of one contract (it compiles in a moment); a function or event changed in a
    # full copy is named the same way (test_interface_check_names_missing_and_changed_entries)
    small = tmp_path / "small"
    small.mkdir()
    (small / "Only.sol").write_text("// SPDX-License-Identifier: MIT\npragma solidity 0.8.28;\ncontract Only {}\n")
    run = run_pytest(f"--alpsim-contracts={small}")
    assert run.returncode == pytest.ExitCode.USAGE_ERROR, run.stdout + run.stderr
    assert "TradingEngine: contract missing (the client deploys it)" in run.stderr
    assert "passed" not in run.stdout and "Traceback" not in run.stderr
