"""Deploys the system for a chain profile and writes `deployments/<chain>.json`: everything a
third-party client needs (addresses and full ABIs by role)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from .compiler import BuildResult, compile_contracts, source_files, source_hash
from .contracts import Session
from .devnet import Devnet
from .paths import find_project


class ContractEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    """The Solidity contract name."""
    address: str
    abi: list[dict[str, Any]]


class CompilerInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str
    settings: dict[str, Any]


class Deployment(BaseModel):
    """The deployments file."""

    model_config = ConfigDict(extra="forbid")

    chain: str
    chain_id: int
    block: int
    """Block of the last deployment transaction: the system is complete from here on."""
    deployer: str
    compiler: CompilerInfo
    source_hash: str
    contracts: dict[str, ContractEntry]
    """One entry per role: collateral, alp, pool, pairs, oracle, market, referrals,
    platform_token, trading, and one reference feed per pair (feed_BTC_USD, ...)."""
    keeper: str
    """The keeper account (KEEPER role; its public key encrypts orders)."""
    treasury: str
    """Receives the protocol's half of trading fees."""
    pairs: list[str]
    """Pair names by pair id."""

    def write(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.model_dump(), indent=2) + "\n")
        return path

    @classmethod
    def read(cls, path: str | Path) -> "Deployment":
        return cls.model_validate_json(Path(path).read_text())


def default_path(chain: str) -> Path:
    return find_project().deployments / f"{chain}.json"


ERC20_NAME = "ERC20"
"""Contract name recorded for a collateral the system did not deploy (fork mode)."""
KEEPER_ACCOUNT = 9


def _real_collateral(devnet: Devnet, session: Session, abi: list[dict], collateral: Any) -> Any:
    """The profile's real token on a forked chain, checked to be what the profile says."""
    from .errors import ConfigError

    if not devnet.w3.eth.get_code(collateral.address):
        raise ConfigError(f"no contract at {collateral.address}, the real {collateral.symbol}: fork mode needs a "
                          "node forking the profile's chain")
    erc20 = [e for e in abi if e.get("type") in ("function", "event", "error") and
             e.get("name") in ("balanceOf", "transfer", "transferFrom", "approve", "allowance", "decimals",
                               "symbol", "name", "totalSupply", "Transfer", "Approval")]
    token = session.bind(ERC20_NAME, collateral.address, erc20)
    symbol, decimals = token.call("symbol"), token.call("decimals")
    if (symbol, decimals) != (collateral.symbol, collateral.decimals):
        raise ConfigError(f"{collateral.address} is {symbol} with {decimals} decimals; the profile expects "
                          f"{collateral.symbol} with {collateral.decimals}")
    return token
TREASURY_ACCOUNT = 8


MODULES = {"TradingEngine": "EngineModule"}
"""Contracts that forward the functions they do not define to a module they deploy
(delegatecall): their address answers both ABIs."""


def contract_abi(artifacts: dict[str, Any], name: str) -> list[dict]:
    """The ABI of contract `name` as deployed: with its module's functions, events and errors
    for a contract in MODULES (each entry once)."""
    abi = list(artifacts[name].abi)
    module = MODULES.get(name)
    if module is not None:
        seen = {_abi_key(e) for e in abi}
        abi += [e for e in artifacts[module].abi if e["type"] != "constructor" and _abi_key(e) not in seen]
    return abi


def _abi_key(entry: dict) -> tuple:
    return entry["type"], entry.get("name"), tuple(p["type"] for p in entry.get("inputs", []))


def feed_role(pair_name: str) -> str:
    return "feed_" + pair_name.replace("/", "_")


def deploy_system(devnet: Devnet, build: BuildResult | None = None, deployer: str | None = None,
                  keeper: str | None = None, treasury: str | None = None,
                  keeper_public_key: bytes | None = None, real_collateral: bool = False) -> tuple[Deployment, Session]:
    """Deploys every contract in dependency order and wires their roles. The deployer holds
    the admin roles; `keeper` (default dev account 9) the keeper roles; `treasury` (default
    dev account 8) receives the protocol's fee share. `real_collateral` (fork mode) uses the
    profile's real collateral token instead of deploying a mock."""
    from .keys import dev_private_key, public_key_bytes
    from .model.trading import default_pairs

    build = build or compile_contracts()
    profile = devnet.profile
    accounts = devnet.accounts
    deployer = deployer or accounts[0]
    keeper = keeper or accounts[KEEPER_ACCOUNT]
    treasury = treasury or accounts[TREASURY_ACCOUNT]
    if keeper_public_key is None:
        keeper_public_key = public_key_bytes(dev_private_key(KEEPER_ACCOUNT))
    session = Session(devnet)
    art = build.artifacts
    entries: dict[str, ContractEntry] = {}
    bound = {}

    def deploy(role: str, name: str, types: list[str], args: list[Any]) -> Any:
        address = session.deploy(art[name], types, args, deployer)
        abi = contract_abi(art, name)
        entries[role] = ContractEntry(name=name, address=address, abi=abi)
        bound[role] = session.bind(name, address, abi)
        return bound[role]

    def role_id(contract: Any, name: str) -> bytes:
        return contract.call(name)

    # 1. collateral (a mock with the real symbol and decimals), ALP, the pool
    c = profile.collateral
    if real_collateral:
        collateral = _real_collateral(devnet, session, art["MockCollateral"].abi, c)
        entries["collateral"] = ContractEntry(name=ERC20_NAME, address=collateral.address, abi=collateral.abi)
    else:
        collateral = deploy("collateral", "MockCollateral", ["string", "string", "uint8", "address"],
                            [c.name, c.symbol, c.decimals, deployer])
    alp = deploy("alp", "AlpToken", ["address"], [deployer])
    pool = deploy("pool", "AlpPool", ["address", "address", "address"], [collateral.address, alp.address, deployer])
    alp.transact("transferOwnership", pool.address, sender=deployer)
    # 2. pairs (SPEC section 3), the oracle and one reference feed per pair
    pairs = deploy("pairs", "PairRegistry", ["address"], [deployer])
    oracle = deploy("oracle", "PriceOracle", ["address"], [deployer])
    pair_names = []
    for pair_id, p in enumerate(default_pairs()):
        pairs.transact("listPair", (p.name, True, False, p.tiered, p.max_leverage, p.spread_bps,
                                    p.depth_1pct_usd, p.max_oi_per_side_usd), sender=deployer)
        feed = deploy(feed_role(p.name), "MockAggregator", ["string", "address"], [p.name.replace("/", " / "), deployer])
        feed.transact("grantRole", role_id(feed, "FEEDER_ROLE"), keeper, sender=deployer)
        oracle.transact("setReferenceFeed", pair_id, feed.address, sender=deployer)
        pair_names.append(p.name)
    # 3. market aggregates, referrals, platform token, the trading engine
    market = deploy("market", "Market", ["address", "address", "address"], [pairs.address, oracle.address, deployer])
    referrals = deploy("referrals", "ReferralRegistry", [], [])
    platform = deploy("platform_token", "PlatformToken", ["address"], [deployer])
    trading = deploy(
        "trading", "TradingEngine",
        ["address", "address", "address", "address", "address", "address", "address", "address", "uint256", "address"],
        [collateral.address, pool.address, pairs.address, oracle.address, market.address, referrals.address,
         platform.address, treasury, profile.execution_fee_wad, deployer],
    )
    # 4. roles: the engine moves the pool's reserve and balance, the market's aggregates and
    #    the oracle's prices; the keeper executes and feeds
    pool.transact("grantRole", role_id(pool, "TRADING_ROLE"), trading.address, sender=deployer)
    pool.transact("setNavSource", market.address, sender=deployer)
    market.transact("grantRole", role_id(market, "ENGINE_ROLE"), trading.address, sender=deployer)
    oracle.transact("grantRole", role_id(oracle, "UPDATER_ROLE"), trading.address, sender=deployer)
    oracle.transact("grantRole", role_id(oracle, "KEEPER_ROLE"), keeper, sender=deployer)
    trading.transact("grantRole", role_id(trading, "KEEPER_ROLE"), keeper, sender=deployer)
    for pair_id in range(len(pair_names)):  # listing pays the pairs' first storage writes, not the first traders
        market.transact("initPair", pair_id, sender=deployer)
        trading.transact("initPair", pair_id, sender=deployer)
    receipt = trading.transact("setKeeperPublicKey", keeper_public_key, sender=deployer)

    deployment = Deployment(
        chain=profile.name,
        chain_id=devnet.chain_id,
        block=receipt["blockNumber"],
        deployer=deployer,
        compiler=CompilerInfo(version=build.solc_version, settings=build.settings),
        source_hash=source_hash(source_files(find_project())),
        contracts=entries,
        keeper=keeper,
        treasury=treasury,
        pairs=pair_names,
    )
    return deployment, session
