"""The alpsim pytest plugin and `alpsim.testing` (issue 17): the helpers in process (on revm),
the interface check and the gas snapshot's arithmetic, the project's own gas paths (checked
against the committed `.gas-snapshot` in a subprocess, as CI does), and in subprocesses: revm's
gas report without a number, an unexpected revert explained, the plugin inert when unused.
examples/regression against modified contracts: tests/test_regression_example.py."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from alpsim import errors
from alpsim.compiler import compile_contracts
from alpsim.paths import find_project
from alpsim.testing import assert_event, balance_change, emits, reverts
from alpsim.testing.gas import GasCall, compare, read_snapshot, snapshot_entries, write_snapshot
from alpsim.testing.interface import interface_problems

ROOT = find_project().root
EXAMPLE = ROOT / "examples" / "regression"
PROJECT_SNAPSHOT = ROOT / ".gas-snapshot"
GAS_PATHS = "tests/test_plugin.py::TestGasPaths"
GAS_CHECK_ARGS = [GAS_PATHS, "--alpsim-chain", "bnb,arbitrum", f"--gas-check={PROJECT_SNAPSHOT}"]
"""The project's gas check (CI): `pytest -p no:xdist tests/test_plugin.py::TestGasPaths
--alpsim-chain bnb,arbitrum --gas-check=.gas-snapshot` (write the file with --gas-snapshot=)."""
COOLDOWN_S = 48 * 3600


def run_pytest(*args: str, cwd: Path = ROOT, env: dict | None = None) -> subprocess.CompletedProcess:
    """pytest in a subprocess, as a user runs it (the plugin from its entry point)."""
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist", *args],
                          cwd=cwd, capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=300)


# ----------------------------------------------------------------- helpers, in process (revm)

ON_REVM = pytest.mark.alpsim(chains=["bnb"], backend="revm")


@ON_REVM
def test_reverts_checks_the_error_and_its_arguments(alpsim, lp):
    with reverts(errors.CooldownActive, holder=lp.address) as caught:
        lp.withdraw()
    assert caught.value.unlocksAt > alpsim.devnet.timestamp
    with reverts("CooldownActive"):
        lp.withdraw()

    with pytest.raises(AssertionError, match=r"(?s)reverted with other arguments.*holder: got '0x"):
        with reverts(errors.CooldownActive, holder=alpsim.address(3)):
            lp.withdraw()
    with pytest.raises(AssertionError, match="expected InsufficientAlpOut but got CooldownActive"):
        with reverts(errors.InsufficientAlpOut):
            lp.withdraw()
    with pytest.raises(AssertionError, match="expected CooldownActive, but nothing reverted"):
        with reverts(errors.CooldownActive):
            lp.deposit(1)


@ON_REVM
def test_emits_and_assert_event_find_the_event_or_list_what_was_emitted(alpsim, lp):
    with emits(alpsim, "Deposit", lp=lp.address, amountIn=alpsim.to_units(10)) as capture:
        lp.deposit(10)
    assert capture.event["alpOut"] > 0
    assert assert_event(alpsim, capture.receipts, "Deposit")["lp"] == lp.address

    with pytest.raises(AssertionError, match=r"no Deposit event with .*amountIn"):
        with emits(alpsim, "Deposit", amountIn=1):
            lp.deposit(10)
    with pytest.raises(AssertionError, match=r"no Withdraw event emitted; events emitted: .*Deposit"):
        with emits(alpsim, "Withdraw"):
            lp.deposit(10)


@ON_REVM
def test_balance_change_checks_named_accounts_and_shows_a_table(alpsim, lp, trader):
    pool = alpsim.pool_contract
    with balance_change(alpsim, {"lp": lp, "pool": pool, "trader": trader}, lp=-250, pool=250, trader=0) as change:
        lp.deposit(250)
    assert change["lp"] == Decimal(-250)

    with pytest.raises(AssertionError, match=r"(?s)collateral balances did not change as expected.*lp .*<-- differs"):
        with balance_change(alpsim, {"lp": lp, "pool": pool}, lp=-249):
            lp.deposit(250)
    with pytest.raises(AssertionError, match="no account named nobody"):
        with balance_change(alpsim, {"lp": lp}, nobody=1):
            lp.deposit(1)


@ON_REVM
def test_fixtures_fund_the_handles_and_revert_between_tests(alpsim, trader, lp, keeper, prices):
    assert trader.balance == 100_000
    assert alpsim.pool().nav_usd >= 9_990_000  # the lp fixture's liquidity, less the mint fee
    assert keeper.address == alpsim.deployment.keeper
    assert prices["BTC/USD"] == 60_000
    prices["BTC/USD"] = 61_000
    assert alpsim.keeper.prices[alpsim.pair_id("BTC/USD")] == 61_000 * 10**18
    assert len(trader.positions()) == 0  # reverted: no position left by another test


@pytest.mark.alpsim(chains=["bnb", "arbitrum"], backend="revm")
def test_basket_fixture_deposits_any_asset_and_fills_at_the_targets(alpsim, basket, lp, prices):
    """The `basket` fixture (issue 28): a deposit of a volatile asset and a fill at the target
    weights, with the pool's state and a quote that the next deposit matches to the unit."""
    chain = alpsim.deployment.chain
    assert basket.symbols == {"bnb": ["USDT", "USDC", "BNB", "ETH", "BTC"],
                              "arbitrum": ["USDC", "USDT", "ETH", "BTC"]}[chain]
    assert basket.payout == alpsim.profile.collateral.symbol
    assert prices["BTC"] == 60_000 and prices[basket.payout] == 1  # basket assets by symbol
    result = basket.deposit(lp, "BTC", "0.5")
    assert result.amount_units == 5 * 10 ** (alpsim.asset_decimals("BTC") - 1)
    assert lp.balance_of("BTC") == 0 and basket.state().holdings["BTC"] == Decimal("0.5")
    deposits = basket.fill(lp, 1_000_000)
    assert len(deposits) == len(basket.symbols)
    state = basket.state()
    # the lp fixture's 10,000,000 of the payout token, 30,000 USD of BTC, then 1,000,000 at the targets
    btc_usd = (Decimal("0.5") + Decimal(1_000_000) * state.targets_bps["BTC"] / 10_000 / 60_000) * 60_000
    assert abs(state.holdings["BTC"] * 60_000 - btc_usd) < 1
    quote = basket.quote("ETH", 2)
    out = basket.deposit(lp, "ETH", 2)
    assert out.alp_out_wad == quote["units"]["alp_out_wad"] and out.fee_wad == quote["units"]["fee_wad"]


def test_interface_check_names_missing_and_changed_entries():
    shipped = compile_contracts().artifacts
    user = copy.deepcopy(shipped)
    engine = user["TradingEngine"]
    abi = [e for e in engine.abi if e.get("name") != "executeOpen"]
    for entry in abi:
        if entry.get("type") == "event" and entry["name"] == "PositionClosed":
            entry["inputs"][0]["indexed"] = False
    user["TradingEngine"] = type(engine)(engine.name, engine.source, abi, engine.bytecode, engine.deployed_bytecode)
    del user["ReferralRegistry"]

    problems = interface_problems(shipped, user)
    assert "TradingEngine.executeOpen: function missing (the client needs executeOpen(" in "\n".join(problems)
    assert any(p.startswith("TradingEngine.PositionClosed: event changed") for p in problems)
    assert "ReferralRegistry: contract missing (the client deploys it)" in problems
    assert len(problems) == 3
    assert interface_problems(shipped, shipped) == []


def test_gas_snapshot_round_trip_and_tolerance(tmp_path):
    calls = [GasCall("t.py::a[bnb]", "TradingEngine.executeOpen", 1000), GasCall("t.py::a[bnb]", "X.f", 50),
             GasCall("t.py::a[bnb]", "TradingEngine.executeOpen", 1100), GasCall("t.py::b", "X.f", None)]
    entries = snapshot_entries(calls)
    assert entries == {("t.py::a[bnb]", "TradingEngine.executeOpen#1"): 1000,
                       ("t.py::a[bnb]", "TradingEngine.executeOpen#2"): 1100, ("t.py::a[bnb]", "X.f#1"): 50}
    path = tmp_path / "snap"
    write_snapshot(path, entries)
    lines = path.read_text().splitlines()
    assert lines[1:] == sorted(lines[1:]) and read_snapshot(path) == entries

    after = {**entries, ("t.py::a[bnb]", "TradingEngine.executeOpen#1"): 1010, ("t.py::a[bnb]", "X.f#1"): 40}
    strict = compare(entries, after, 0)
    assert [(c.operation, c.delta, c.failed) for c in strict.changes] == [
        ("TradingEngine.executeOpen#1", 10, True), ("X.f#1", -10, False)]
    assert compare(entries, after, 1.0).failed == []  # +1% is within a 1% tolerance
    assert len(compare(entries, after, 0.99).failed) == 1
    (tmp_path / "bad").write_text("not a snapshot line\n")
    with pytest.raises(ValueError, match="bad:1: not a gas snapshot line"):
        read_snapshot(tmp_path / "bad")


# ----------------------------------------------------------------- the project's gas paths

class TestGasPaths:
    """The operations whose gas the project's `.gas-snapshot` records (exact-gas backend, the
    plugin's default): each also checks what it did."""

    def test_deposit_then_withdraw_after_the_cooldown(self, alpsim, lp):
        deposit = lp.deposit(1_000)
        alpsim.devnet.advance_time(COOLDOWN_S)
        result = lp.withdraw(Decimal(deposit.alp_out_wad).scaleb(-18))
        assert result.alp_in_wad == deposit.alp_out_wad and result.amount_out_units > 0

    def test_open_and_close_standard_tier(self, alpsim, trader, lp, prices):
        opened = trader.open("BTC/USD", "long", 1_000, 10)
        closed = trader.close(opened.position.id)
        assert closed.reason == "close" and alpsim.position(opened.position.id) is None

    def test_open_and_close_extreme_tier(self, alpsim, trader, lp, prices):
        opened = trader.open("ETH/USD", "short", 100, 1001)
        assert opened.open_fee_wad == 0  # no open fee in the extreme tier
        assert trader.close(opened.position.id).reason == "close"

    def test_take_profit_and_liquidation_triggers(self, alpsim, trader, lp, keeper, prices):
        winner = trader.open("BTC/USD", "long", 1_000, 10).position
        loser = trader.open("BTC/USD", "short", 100, 1001).position
        prices["BTC/USD"] = 200_000
        closed = {c.position.id: c.reason for c in alpsim.closed_from(keeper.run_triggers())}
        assert closed == {winner.id: "take_profit", loser.id: "liquidation"}

    def test_cancel_an_expired_request(self, alpsim, trader, lp, prices):
        pending = trader.request_open("SOL/USD", "long", 500, 20)
        alpsim.devnet.mine(11)
        with balance_change(alpsim, {"trader": trader}, trader=500):
            trader.cancel(pending.request_id)


def test_project_gas_check_passes_against_the_committed_snapshot():
    """CI's gas check of the project's own operations, both chain profiles."""
    run = run_pytest(*GAS_CHECK_ARGS)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "10 passed" in run.stdout
    assert "gas check passed" in run.stdout
    assert "new (not in the snapshot)" not in run.stdout and "not measured now" not in run.stdout


# ----------------------------------------------------------------- the plugin run in a subprocess

def test_gas_on_revm_is_never_a_number(tmp_path):
    run = run_pytest("--alpsim-backend", "revm", "--gas-report", cwd=EXAMPLE)
    assert run.returncode == 0, run.stdout + run.stderr
    section = run.stdout.split("alpsim gas report")[1]
    report = section.split("\n", 1)[1].rsplit("\n=", 1)[0]  # between the section's header and the summary
    assert "gas is not measured on revm" in report
    assert not any(ch.isdigit() for ch in report), report
    refused = run_pytest("--alpsim-backend", "revm", f"--gas-snapshot={tmp_path / 's'}", cwd=EXAMPLE)
    assert refused.returncode == pytest.ExitCode.USAGE_ERROR and "gas is not measured" in refused.stderr


UNEXPECTED_REVERT_TEST = (
    "def test_cancel_someone_elses_request(alpsim, trader, lp, prices):\n"
    "    pending = trader.request_open('BTC/USD', 'long', 500, 50)\n"
    "    alpsim.cancel(2, pending.request_id)\n")
"""A user's test that reverts where it did not expect to: account 2 cancels account 1's request."""


def test_an_unexpected_revert_is_explained(tmp_path):
    (tmp_path / "test_user.py").write_text(UNEXPECTED_REVERT_TEST)
    run = run_pytest("--alpsim-backend", "revm", "--rootdir", str(tmp_path), str(tmp_path))
    assert run.returncode == 1, run.stdout + run.stderr
    section = run.stdout.split("alpsim: the transaction reverted")[1]
    assert "error:    NotOwner  [NotOwner(address,address)]" in section
    assert "owner = '0x70997970C51812dc3A010C7d01b50e0d17dc79C8'" in section  # the trader, account 1
    assert "call:     TradingEngine.cancelRequest(requestId=1)" in section
    assert "call trace:\n  TradingEngine.cancelRequest -> reverted NotOwner(" in section


def test_the_plugin_is_inert_until_a_fixture_is_requested(tmp_path):
    (tmp_path / "test_plain.py").write_text("def test_nothing_of_alpsim():\n    assert 1 + 1 == 2\n")
    # no project to compile or deploy from: any attempt would fail the run
    run = run_pytest("--rootdir", str(tmp_path), str(tmp_path), env={"ALPSIM_ROOT": str(tmp_path / "none")},
                     cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 passed" in run.stdout


LIBRARY_REVERT_TEST = (
    "def test_execute_an_open_twice(alpsim, trader, lp, prices):\n"
    "    pending = trader.request_open('BTC/USD', 'long', 500, 50)\n"
    "    alpsim.keeper.execute_open(pending.request_id)\n"
    "    alpsim.keeper.execute_open(pending.request_id)\n")
"""A user's test whose second execution reverts inside the engine's OpenPipeline library."""


@pytest.mark.anvil
def test_an_unexpected_revert_on_anvil_shows_the_call_tree(tmp_path):
    """On anvil the trace is the node's own (debug_traceTransaction): the engine's call, its
    calls to the market and the oracle, and the delegatecall to its OpenPipeline library that
    reverted, each with the decoded error."""
    (tmp_path / "test_user.py").write_text(LIBRARY_REVERT_TEST)
    run = run_pytest("--alpsim-backend", "anvil", "--rootdir", str(tmp_path), str(tmp_path))
    assert run.returncode == 1, run.stdout + run.stderr
    trace = run.stdout.split("alpsim: the transaction reverted")[1].split("call trace:\n")[1].splitlines()
    assert trace[0].startswith("  CALL TradingEngine.executeOpen -> execution reverted: RequestNotPending(requestId=1")
    library = [line for line in trace if line.startswith("    DELEGATECALL OpenPipeline.executeOne ")]
    assert len(library) == 1 and "-> execution reverted: RequestNotPending(requestId=1" in library[0]
