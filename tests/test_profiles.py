from decimal import Decimal

import pytest

from alpsim.errors import ConfigError, UnknownNameError
from alpsim.profiles import get_profile, load_profiles


def test_builtin_profiles_are_spec_section_12():
    profiles = load_profiles()
    assert sorted(profiles) == ["arbitrum", "bnb"]
    bnb, arb = profiles["bnb"], profiles["arbitrum"]
    assert (bnb.chain_id, bnb.native_coin, bnb.collateral.symbol, bnb.collateral.decimals) == (56, "BNB", "USDT", 18)
    assert bnb.collateral.address == "0x55d398326f99059fF775485246999027B3197955"
    assert (bnb.execution_fee_usd, bnb.block_time_s, bnb.evm_version) == (Decimal("0.50"), Decimal("0.75"), "cancun")
    assert (arb.chain_id, arb.native_coin, arb.collateral.symbol, arb.collateral.decimals) == (42161, "ETH", "USDC", 6)
    assert arb.collateral.address == "0xaf88d065e77c8cC2239327C5EDb3A432268e5831"
    assert (arb.execution_fee_usd, arb.block_time_s, arb.evm_version) == (Decimal("0.20"), Decimal("0.25"), "cancun")
    assert bnb.execution_fee_wad == 5 * 10**17 and arb.execution_fee_wad == 2 * 10**17
    assert bnb.block_time_ms == 750 and arb.block_time_ms == 250


def test_unknown_profile_names_the_known_ones_and_suggests():
    with pytest.raises(UnknownNameError) as info:
        get_profile("arbitrun")
    message = str(info.value)
    assert "arbitrum, bnb" in message and "Did you mean 'arbitrum'?" in message
    assert isinstance(info.value, ConfigError)


def test_user_profiles_file(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text(
        '[opbnb]\ndisplay_name = "opBNB"\nchain_id = 204\nnative_coin = "BNB"\nexecution_fee_usd = "0.05"\n'
        'block_time_s = "1"\n[opbnb.collateral]\nsymbol = "USDT"\nname = "Tether USD"\ndecimals = 18\n'
        'address = "0x9e5AAC1Ba1a2e6aEd6b32689DFcF62A509Ca96f3"\n'
    )
    profile = get_profile("opbnb", path)
    assert profile.chain_id == 204 and profile.block_time_ms == 1000


@pytest.mark.parametrize(
    "body, complaint",
    [
        ('[x]\nchain_id = "abc"\n', "chain_id"),
        ("[x\n", "Expected"),
        ('[x]\ndisplay_name = "X"\nchain_id = 1\nnative_coin = "E"\nexecution_fee_usd = "1"\nblock_time_s = "1"\n'
         'colour = "red"\n[x.collateral]\nsymbol = "U"\nname = "U"\ndecimals = 6\n'
         'address = "0x9e5AAC1Ba1a2e6aEd6b32689DFcF62A509Ca96f3"\n', "colour"),
        ('[x]\ndisplay_name = "X"\nchain_id = 1\nnative_coin = "E"\nexecution_fee_usd = "1"\nblock_time_s = "1"\n'
         '[x.collateral]\nsymbol = "U"\nname = "U"\ndecimals = 6\n'
         'address = "0x9e5AAC1Ba1a2e6aEd6b32689DFcF62A509Ca96f3"\n[x.gas]\nnative_usd = "1"\nmedian_gwei = "2"\n'
         'p99_gwei = "1"\n', "p99_gwei must be at least median_gwei"),
    ],
)
def test_malformed_profiles_file_is_refused_with_the_reason(tmp_path, body, complaint):
    path = tmp_path / "bad.toml"
    path.write_text(body)
    with pytest.raises(ConfigError) as info:
        load_profiles(path)
    assert complaint in str(info.value) and "bad.toml" in str(info.value)


def test_builtin_gas_prices_are_docs_economics_defaults():
    profiles = load_profiles()
    bnb, arb = profiles["bnb"].gas, profiles["arbitrum"].gas
    assert (bnb.native_usd, bnb.median_gwei, bnb.p99_gwei, bnb.l1_data) == (855, Decimal("0.05"), Decimal("0.5"), None)
    assert (arb.native_usd, arb.median_gwei, arb.p99_gwei) == (2921, Decimal("0.02"), Decimal("0.2"))
    l1 = arb.l1_data
    assert (l1.blob_base_fee_median_gwei, l1.blob_base_fee_p99_gwei, l1.blob_gas_per_byte, l1.tx_overhead_bytes) == (
        Decimal("0.015"), Decimal("0.5"), 1, 100)
