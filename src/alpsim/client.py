"""The alpsim client: one call per user action against a deployed system."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from .compiler import BuildResult
from .contracts import BoundContract, Session
from .deployment import Deployment, deploy_system
from .devnet import Devnet, start_devnet
from .errors import ConfigError, UnknownNameError
from .profiles import ChainProfile, get_profile
from .units import Number, from_units, to_units, wad_to_decimal

Account = str | int
"""An account: its address, or its index among the devnet's funded accounts."""


class PoolState(BaseModel):
    """The ALP pool as the chain reports it. Integers in the contracts' units."""

    model_config = ConfigDict(frozen=True)

    nav_wad: int
    alp_price_wad: int
    alp_supply_wad: int
    reserve_wad: int
    balance_units: int
    collateral_decimals: int

    @property
    def nav_usd(self) -> Decimal:
        return wad_to_decimal(self.nav_wad)

    @property
    def alp_price(self) -> Decimal:
        return wad_to_decimal(self.alp_price_wad)

    @property
    def alp_supply(self) -> Decimal:
        return wad_to_decimal(self.alp_supply_wad)

    @property
    def reserve_usd(self) -> Decimal:
        return wad_to_decimal(self.reserve_wad)

    @property
    def balance(self) -> Decimal:
        return from_units(self.balance_units, self.collateral_decimals)


class DepositResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    lp: str
    amount_units: int
    alp_out_wad: int
    fee_wad: int
    unlocks_at: int
    gas_used: int


class WithdrawResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    lp: str
    alp_in_wad: int
    amount_out_units: int
    fee_wad: int
    gas_used: int


class Alpsim:
    """A deployed alpsim system on a devnet, driven as trader, LP and keeper."""

    def __init__(self, devnet: Devnet, deployment: Deployment, session: Session | None = None):
        self.devnet = devnet
        self.deployment = deployment
        self.session = session or Session(devnet)
        self.contracts: dict[str, BoundContract] = {
            role: self.session.bind(entry.name, entry.address, entry.abi)
            for role, entry in deployment.contracts.items()
        }
        self.decimals: int = self.contracts["collateral"].call("decimals")

    # ----- set-up
    @classmethod
    def launch(cls, chain: str | ChainProfile = "bnb", backend: str = "embedded", *, rpc_url: str | None = None,
               build: BuildResult | None = None, profiles_file: str | Path | None = None) -> "Alpsim":
        """Starts a devnet for `chain` and deploys the whole system on it."""
        profile = chain if isinstance(chain, ChainProfile) else get_profile(chain, profiles_file)
        devnet = start_devnet(profile, backend, rpc_url=rpc_url)
        try:
            deployment, session = deploy_system(devnet, build)
            return cls(devnet, deployment, session)
        except BaseException:
            devnet.close()
            raise

    def close(self) -> None:
        self.devnet.close()

    def __enter__(self) -> "Alpsim":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def profile(self) -> ChainProfile:
        return self.devnet.profile

    @property
    def pool_contract(self) -> BoundContract:
        return self.contracts["pool"]

    def address(self, who: Account) -> str:
        if isinstance(who, int):
            accounts = self.devnet.accounts
            if not 0 <= who < len(accounts):
                raise UnknownNameError("account index", str(who), [str(i) for i in range(len(accounts))])
            return accounts[who]
        return who

    # ----- collateral
    def to_units(self, amount: Number) -> int:
        return to_units(amount, self.decimals, "collateral amount")

    def fund(self, who: Account, amount: Number) -> None:
        """Mints `amount` (whole tokens, e.g. "1000.5") of the mock collateral to `who`."""
        self.contracts["collateral"].transact("mint", self.address(who), self.to_units(amount),
                                              sender=self.deployment.deployer)

    def collateral_units(self, who: Account) -> int:
        return self.contracts["collateral"].call("balanceOf", self.address(who))

    def collateral_balance(self, who: Account) -> Decimal:
        return from_units(self.collateral_units(who), self.decimals)

    def alp_balance_wad(self, who: Account) -> int:
        return self.contracts["alp"].call("balanceOf", self.address(who))

    # ----- LP
    def deposit(self, who: Account, amount: Number, *, min_alp_out: Number = 0) -> DepositResult:
        """Approves and deposits `amount` collateral (whole tokens) for ALP."""
        return self.deposit_units(who, self.to_units(amount), min_alp_out_wad=to_units(min_alp_out, 18))

    def deposit_units(self, who: Account, amount_units: int, *, min_alp_out_wad: int = 0) -> DepositResult:
        lp = self.address(who)
        self.contracts["collateral"].transact("approve", self.pool_contract.address, amount_units, sender=lp)
        receipt = self.pool_contract.transact("deposit", amount_units, min_alp_out_wad, sender=lp)
        event = self.session.events(receipt, "Deposit")[0]
        return DepositResult(lp=lp, amount_units=amount_units, alp_out_wad=event["alpOut"], fee_wad=event["feeUsd"],
                             unlocks_at=event["unlocksAt"], gas_used=receipt["gasUsed"])

    def withdraw(self, who: Account, alp: Number | Literal["all"] = "all", *, min_out: Number = 0) -> WithdrawResult:
        """Redeems `alp` ALP (or all the holder's ALP) for collateral."""
        lp = self.address(who)
        alp_wad = self.alp_balance_wad(lp) if alp == "all" else to_units(alp, 18, "ALP amount")
        return self.withdraw_wad(lp, alp_wad, min_out_units=self.to_units(min_out))

    def withdraw_wad(self, who: Account, alp_wad: int, *, min_out_units: int = 0) -> WithdrawResult:
        lp = self.address(who)
        receipt = self.pool_contract.transact("withdraw", alp_wad, min_out_units, sender=lp)
        event = self.session.events(receipt, "Withdraw")[0]
        return WithdrawResult(lp=lp, alp_in_wad=alp_wad, amount_out_units=event["amountOut"], fee_wad=event["feeUsd"],
                              gas_used=receipt["gasUsed"])

    # ----- reads
    def pool(self) -> PoolState:
        pool = self.pool_contract
        return PoolState(
            nav_wad=pool.call("nav"),
            alp_price_wad=pool.call("alpPrice"),
            alp_supply_wad=self.contracts["alp"].call("totalSupply"),
            reserve_wad=pool.call("reserveUsd"),
            balance_units=pool.call("poolBalance"),
            collateral_decimals=self.decimals,
        )


def require_positive(amount: Number, what: str) -> None:
    if Decimal(amount) <= 0:
        raise ConfigError(f"{what} must be positive, got {amount}")
