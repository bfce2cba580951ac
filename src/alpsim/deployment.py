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
    """One entry per role: collateral, alp, pool, ..."""

    def write(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.model_dump(), indent=2) + "\n")
        return path

    @classmethod
    def read(cls, path: str | Path) -> "Deployment":
        return cls.model_validate_json(Path(path).read_text())


def default_path(chain: str) -> Path:
    return find_project().deployments / f"{chain}.json"


def deploy_system(devnet: Devnet, build: BuildResult | None = None, deployer: str | None = None) -> tuple[Deployment, Session]:
    """Deploys every contract in dependency order and wires their roles. The deployer holds
    the admin roles."""
    build = build or compile_contracts()
    profile = devnet.profile
    deployer = deployer or devnet.accounts[0]
    session = Session(devnet)
    art = build.artifacts
    entries: dict[str, ContractEntry] = {}

    def deploy(role: str, name: str, types: list[str], args: list[Any]) -> str:
        address = session.deploy(art[name], types, args, deployer)
        entries[role] = ContractEntry(name=name, address=address, abi=art[name].abi)
        return address

    # 1. collateral: a mock with the real symbol and decimals
    c = profile.collateral
    collateral = deploy("collateral", "MockCollateral", ["string", "string", "uint8", "address"],
                        [c.name, c.symbol, c.decimals, deployer])
    # 2. ALP, owned by the deployer until the pool exists
    alp = deploy("alp", "AlpToken", ["address"], [deployer])
    # 3. the pool, then hand ALP's mint and burn to it
    pool = deploy("pool", "AlpPool", ["address", "address", "address"], [collateral, alp, deployer])
    receipt = session.bind("alp", alp, art["AlpToken"].abi).transact("transferOwnership", pool, sender=deployer)

    deployment = Deployment(
        chain=profile.name,
        chain_id=devnet.chain_id,
        block=receipt["blockNumber"],
        deployer=deployer,
        compiler=CompilerInfo(version=build.solc_version, settings=build.settings),
        source_hash=source_hash(source_files(find_project())),
        contracts=entries,
    )
    return deployment, session
