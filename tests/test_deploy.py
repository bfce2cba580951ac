"""Deploy on both backends for both profiles; the deployments file alone drives a deposit
through plain web3."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from web3 import HTTPProvider, Web3

from alpsim.contracts import Session
from alpsim.deployment import Deployment, deploy_system
from alpsim.devnet import AnvilDevnet, AnvilProcess, EmbeddedDevnet
from alpsim.keeper import Keeper
from alpsim.profiles import get_profile
from alpsim.service import connect_keeper

BACKENDS = {"embedded": EmbeddedDevnet, "anvil": AnvilDevnet}
BASKET_ROLES = {  # the basket (profiles.toml): a reference feed per asset-only price, a token per asset after the payout one
    "bnb": ["feed_USDT", "feed_USDC", "asset_USDC", "feed_BNB", "asset_BNB", "asset_ETH", "asset_BTC"],
    "arbitrum": ["feed_USDC", "feed_USDT", "asset_USDT", "asset_ETH", "asset_BTC"],
}


def roles(chain: str) -> list[str]:
    return (["collateral", "alp", "pool", "pairs", "oracle", "feed_BTC_USD", "feed_ETH_USD", "feed_SOL_USD",
             "feed_AAPL_USD"] + BASKET_ROLES[chain] + ["market", "referrals", "platform_token", "trading"])


def _deposit_with_plain_web3(w3: Web3, path, keeper) -> None:  # noqa: ANN001
    """What a third-party client does with nothing but the deployments file."""
    data = json.loads(path.read_text())
    assert w3.eth.chain_id == data["chain_id"]
    c = {role: w3.eth.contract(address=e["address"], abi=e["abi"]) for role, e in data["contracts"].items()}
    lp = w3.eth.accounts[3]
    decimals = c["collateral"].functions.decimals().call()
    amount = 250 * 10**decimals
    def mined(tx_hash):  # noqa: ANN001, ANN202 - a node may answer before it mines
        return w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)

    mined(c["collateral"].functions.mint(lp, amount).transact({"from": data["deployer"]}))
    mined(c["collateral"].functions.approve(c["pool"].address, amount).transact({"from": lp}))
    keeper()  # the system's keeper keeps the basket's prices fresh (it pushes them every block on a real chain)
    assert mined(c["pool"].functions.deposit(c["collateral"].address, amount, 0).transact({"from": lp}))["status"] == 1
    # 0.30% mint fee (the stablecoin moves away from its target: the basket held nothing) at
    # 1 USD per ALP: 249.25 ALP, less the 1,000 base units the first deposit locks at the dead address
    assert c["alp"].functions.balanceOf(lp).call() == 249_250 * 10**15 - 1_000
    assert c["alp"].functions.totalSupply().call() == 249_250 * 10**15
    assert c["pool"].functions.nav().call() == 250 * 10**18
    assert c["pool"].functions.poolBalance().call() == amount


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("chain", ["bnb", "arbitrum"])
def test_deploy_writes_a_file_a_third_party_can_use(backend, chain, build, tmp_path):
    profile = get_profile(chain)
    with BACKENDS[backend](profile) as devnet:
        deployment, _ = deploy_system(devnet, build)
        path = deployment.write(tmp_path / f"{chain}.json")
        data = json.loads(path.read_text())
        assert list(data) == ["chain", "chain_id", "block", "deployer", "compiler", "source_hash", "contracts",
                              "libraries", "keeper", "treasury", "pairs", "basket", "enums", "ecies"]
        # the libraries linked into the engine, by name (tests/test_engine_split.py calls them)
        assert list(data["libraries"]) == ["ClosePipeline", "OpenPipeline", "Triggers"]
        assert data["pairs"] == ["BTC/USD", "ETH/USD", "SOL/USD", "AAPL/USD"]
        assert (data["keeper"], data["treasury"]) == (devnet.accounts[9], devnet.accounts[8])
        assert (data["chain"], data["chain_id"], data["deployer"]) == (chain, profile.chain_id, devnet.accounts[0])
        assert data["block"] == devnet.block_number
        assert data["compiler"] == {"version": "0.8.28", "settings": build.settings}
        assert list(data["contracts"]) == roles(chain)
        for role in roles(chain):
            entry = data["contracts"][role]
            assert set(entry) == {"name", "address", "abi"} and entry["abi"]
            assert devnet.w3.eth.get_code(entry["address"]) != b""
        assert Deployment.read(path) == deployment
        collateral = devnet.w3.eth.contract(address=data["contracts"]["collateral"]["address"],
                                            abi=data["contracts"]["collateral"]["abi"])
        assert collateral.functions.symbol().call() == profile.collateral.symbol
        assert collateral.functions.decimals().call() == profile.collateral.decimals
        w3 = devnet.w3 if backend == "embedded" else Web3(HTTPProvider(devnet.rpc_url))
        sim_keeper = Keeper(Session(devnet), deployment, devnet.chain_clock)
        _deposit_with_plain_web3(w3, path, sim_keeper.fresh_basket_prices)


def test_cli_deploy_to_a_given_rpc_url(tmp_path):
    node = AnvilProcess(42161)
    try:
        out = tmp_path / "arb.json"
        proc = subprocess.run(
            [sys.executable, "-m", "alpsim.cli", "deploy", "--chain", "arbitrum", "--rpc", node.url, "--out", str(out)],
            capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"},
        )
        assert proc.returncode == 0, proc.stderr
        assert "pool" in proc.stdout and str(out) in proc.stdout
        _deposit_with_plain_web3(Web3(HTTPProvider(node.url)), out, connect_keeper(node.url, out).fresh_basket_prices)
    finally:
        node.stop()


def test_cli_deploy_refuses_a_node_of_another_chain(tmp_path):
    node = AnvilProcess(1)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "alpsim.cli", "deploy", "--chain", "bnb", "--rpc", node.url, "--out", str(tmp_path / "x.json")],
            capture_output=True, text=True,
        )
        assert proc.returncode == 2
        assert "reports chain id 1" in proc.stderr and "expects 56" in proc.stderr
        assert not (tmp_path / "x.json").exists()
    finally:
        node.stop()
