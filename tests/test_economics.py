"""`alpsim economics`: the keeper's books against a hand calculation, from the profile's gas
prices and the gas measured once per module on the embedded EVM (exact)."""

import json
import math
import subprocess
import sys
from decimal import Decimal

import pytest
from typer.testing import CliRunner

from alpsim.cli import app
from alpsim.economics import OPERATIONS, chain_books, keeper_day, measure_chain, run_economics
from alpsim.errors import ConfigError
from alpsim.profiles import get_profile, load_profiles

CHAINS = ("bnb", "arbitrum")
FEE_EARNERS = {"open", "open_batch_10", "open_batch_50", "reject_open"}


@pytest.fixture(scope="module")
def measured(build):
    return {chain: measure_chain(chain, build=build) for chain in CHAINS}


def test_measured_gas_is_each_keeper_operation(measured):
    for chain in CHAINS:
        gas = {key: m["gas"] for key, m in measured[chain].items()}
        assert set(gas) == {op.key for op in OPERATIONS}
        assert all(g > 21_000 for g in gas.values())
        # a batch spreads its transaction's base cost and its price update over its operations
        assert gas["open_batch_50"] < gas["open_batch_10"] < gas["open"]
        assert gas["liquidation_batch_50"] < gas["liquidation_batch_10"] < gas["liquidation"]
        # the same EVM on both chains
    assert {k: m["gas"] for k, m in measured["bnb"].items()} == {k: m["gas"] for k, m in measured["arbitrum"].items()}


def test_bnb_operations_against_a_hand_calculation(measured):
    profile = get_profile("bnb")
    books = chain_books(profile, measured["bnb"], 1_000)
    assert (profile.gas.native_usd, profile.gas.median_gwei, profile.gas.p99_gwei) == (855, Decimal("0.05"), Decimal("0.5"))
    for op in OPERATIONS:
        row, gas = books["operations"][op.key], measured["bnb"][op.key]["gas"]
        assert row["cost_median_usd"] == Decimal(gas) * Decimal("0.05") * Decimal("1e-9") * 855
        assert row["cost_p99_usd"] == Decimal(gas) * Decimal("0.5") * Decimal("1e-9") * 855
        assert row["l1_bytes"] is None and row["l1_data_median_usd"] == 0
        assert row["revenue_usd"] == (Decimal("0.50") if op.key in FEE_EARNERS else 0)
        assert row["profit_median_usd"] == row["revenue_usd"] - row["cost_median_usd"]


def test_arbitrum_operations_add_the_l1_data_cost(measured):
    profile = get_profile("arbitrum")
    books = chain_books(profile, measured["arbitrum"], 1_000)
    l1 = profile.gas.l1_data
    assert (l1.blob_base_fee_median_gwei, l1.tx_overhead_bytes, l1.blob_gas_per_byte) == (Decimal("0.015"), 100, 1)
    for op in OPERATIONS:
        m, row = measured["arbitrum"][op.key], books["operations"][op.key]
        # the transaction's 100 overhead bytes are shared by the operations a batch carries
        l1_bytes = Decimal(m["compressed_bytes"]) + Decimal(100) / m["operations_in_tx"]
        assert row["l1_bytes"] == l1_bytes
        expected = Decimal(m["gas"]) * Decimal("0.02") * Decimal("1e-9") * 2921 + l1_bytes * Decimal("0.015") * Decimal("1e-9") * 2921
        assert row["cost_median_usd"] == expected
        assert row["revenue_usd"] == (Decimal("0.20") if op.key in FEE_EARNERS else 0)
        assert 0 < m["compressed_bytes"] < m["calldata_bytes"]


def test_the_keepers_day_against_a_hand_calculation(measured):
    profile = get_profile("bnb")
    rows = chain_books(profile, measured["bnb"], 1_000)["operations"]
    day = keeper_day(profile, rows, 1_000)
    g = {key: Decimal(m["gas"]) for key, m in measured["bnb"].items()}
    usd_per_gas = Decimal("0.05") * Decimal("1e-9") * 855
    pushes = Decimal(86_400) / Decimal("0.75")
    assert pushes == 115_200 == day["price_pushes_per_day"]
    per_open = (g["open"] + Decimal("0.7") * g["close"] + Decimal("0.3") * g["liquidation"]) * usd_per_gas
    push_usd = pushes * g["price_push"] * usd_per_gas
    assert day["revenue_usd"] == 1_000 * Decimal("0.50")
    assert day["cost_median_usd"] == push_usd + 1_000 * per_open
    assert day["profit_median_usd"] == 500 - push_usd - 1_000 * per_open
    assert day["closes_per_day"] == 700 and day["liquidations_per_day"] == 300
    assert day["break_even_opens_per_day_median"] == math.ceil(push_usd / (Decimal("0.50") - per_open))
    assert day["break_even_execution_fee_median_usd"] == push_usd / 1_000 + per_open


def test_break_even_is_where_the_profit_turns(measured):
    for chain in CHAINS:
        profile = get_profile(chain)
        rows = chain_books(profile, measured[chain], 0)["operations"]
        n = keeper_day(profile, rows, 0)["break_even_opens_per_day_median"]
        assert keeper_day(profile, rows, n)["profit_median_usd"] >= 0
        assert keeper_day(profile, rows, n - 1)["profit_median_usd"] < 0
        # the break-even fee at a volume leaves the keeper at zero at that volume
        fee = keeper_day(profile, rows, 2_000)["break_even_execution_fee_median_usd"]
        at_fee = profile.model_copy(update={"execution_fee_usd": fee})
        assert abs(keeper_day(at_fee, rows, 2_000)["profit_median_usd"]) < Decimal("1e-9")
    # no opens: no fee breaks even
    assert keeper_day(profile, rows, 0)["break_even_execution_fee_median_usd"] is None


def test_a_fee_below_the_cost_of_an_open_never_breaks_even(measured):
    profile = get_profile("bnb")
    cheap = profile.model_copy(update={"execution_fee_usd": Decimal("0.001")})
    rows = chain_books(cheap, measured["bnb"], 100)["operations"]
    assert keeper_day(cheap, rows, 100)["break_even_opens_per_day_median"] is None


def test_cli_json_keys():
    done = subprocess.run([sys.executable, "-m", "alpsim.cli", "economics", "--chain", "bnb", "--opens-per-day", "10",
                           "--json"], capture_output=True, text=True, timeout=300, check=True)
    assert "measuring the keeper's gas on bnb" in done.stderr
    out = json.loads(done.stdout)
    assert set(out) == {"opens_per_day", "liquidated_share", "chains"} and out["opens_per_day"] == 10
    books = out["chains"]["bnb"]
    assert list(out["chains"]) == ["bnb"]
    assert set(books) == {"display_name", "native_coin", "execution_fee_usd", "block_time_s", "gas_prices",
                          "operations", "day"}
    assert set(books["operations"]) == {op.key for op in OPERATIONS}
    assert set(books["operations"]["open"]) == {
        "label", "operations_in_tx", "gas", "calldata_bytes", "compressed_bytes", "execution_median_usd",
        "execution_p99_usd", "l1_bytes", "l1_data_median_usd", "l1_data_p99_usd", "cost_median_usd", "cost_p99_usd",
        "revenue_usd", "profit_median_usd", "profit_p99_usd"}
    assert {"price_pushes_per_day", "revenue_usd", "cost_median_usd", "profit_p99_usd", "break_even_opens_per_day_median",
            "break_even_execution_fee_p99_usd"} <= set(books["day"])
    assert books["day"]["revenue_usd"] == 10 * 0.5


@pytest.mark.parametrize("args, complaint", [
    (["--chain", "solana"], "unknown: solana"),
    (["--opens-per-day", "-5"], "must be 0 or more"),
    (["--opens-per-day", "2.5"], "integer"),
    (["--opens-per-day", "many"], "integer"),
])
def test_cli_refuses_bad_input_with_exit_2(args, complaint):
    result = CliRunner().invoke(app, ["economics", *args])
    assert result.exit_code == 2
    assert complaint in " ".join(result.output.split())


def test_a_profile_without_gas_prices_is_refused_before_measuring(tmp_path):
    path = tmp_path / "p.toml"
    path.write_text('[bnb]\ndisplay_name = "B"\nchain_id = 56\nnative_coin = "BNB"\nexecution_fee_usd = "0.5"\n'
                    'block_time_s = "1"\n[bnb.collateral]\nsymbol = "USDT"\nname = "T"\ndecimals = 18\n'
                    'address = "0x55d398326f99059fF775485246999027B3197955"\n')
    with pytest.raises(ConfigError, match=r"no \[bnb.gas\] table"):
        run_economics(("bnb",), 10, profiles_file=str(path))


_BASE = ('[x]\ndisplay_name = "X"\nchain_id = 1\nnative_coin = "E"\nexecution_fee_usd = "1"\nblock_time_s = "1"\n'
         '[x.collateral]\nsymbol = "U"\nname = "U"\ndecimals = 6\naddress = "0x9e5AAC1Ba1a2e6aEd6b32689DFcF62A509Ca96f3"\n')


@pytest.mark.parametrize("gas, complaint", [
    ('native_usd = "0"\nmedian_gwei = "1"\np99_gwei = "2"\n', "gas.native_usd"),
    ('native_usd = "1"\nmedian_gwei = "-1"\np99_gwei = "2"\n', "gas.median_gwei"),
    ('native_usd = "1"\nmedian_gwei = "2"\np99_gwei = "1"\n', "p99_gwei must be at least median_gwei"),
    ('native_usd = "1"\nmedian_gwei = "1"\n', "gas.p99_gwei: Field required"),
    ('native_usd = "1"\nmedian_gwei = "1"\np99_gwei = "2"\nmean_gwei = "1"\n', "gas.mean_gwei"),
    ('native_usd = "1"\nmedian_gwei = "1"\np99_gwei = "2"\n[x.gas.l1_data]\nblob_base_fee_median_gwei = "2"\n'
     'blob_base_fee_p99_gwei = "1"\n', "blob_base_fee_p99_gwei must be at least"),
    ('native_usd = "1"\nmedian_gwei = "1"\np99_gwei = "2"\n[x.gas.l1_data]\nblob_base_fee_median_gwei = "1"\n'
     'blob_base_fee_p99_gwei = "1"\ntx_overhead_bytes = -3\n', "tx_overhead_bytes"),
])
def test_gas_table_refusals(tmp_path, gas, complaint):
    path = tmp_path / "bad.toml"
    path.write_text(_BASE + "[x.gas]\n" + gas)
    with pytest.raises(ConfigError) as info:
        load_profiles(path)
    assert complaint in str(info.value)


def test_gas_quantiles_are_the_log_normal_through_median_and_p99():
    gas = get_profile("bnb").gas
    assert float(gas.quantile_gwei(0.5)) == pytest.approx(0.05)
    assert float(gas.quantile_gwei(0.99)) == pytest.approx(0.5)
    assert gas.quantile_gwei(0.9) < gas.quantile_gwei(0.99)
    with pytest.raises(ValueError):
        gas.quantile_gwei(1)
