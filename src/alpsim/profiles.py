"""Chain profiles (docs/mechanics.md section 12): typed, loaded from TOML, `bnb` and `arbitrum` built in."""

from __future__ import annotations

import math
import tomllib
from decimal import Decimal
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from eth_utils import is_checksum_address

from .errors import ConfigError, UnknownNameError
from .units import USD


class CollateralProfile(BaseModel):
    """The chain's stablecoin: the pool's only collateral, valued at exactly 1 USD."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    symbol: str
    """Token symbol, as on the real chain (USDT, USDC)."""
    name: str
    """Token name, for the devnet mock."""
    decimals: int = Field(ge=0, le=18)
    """Token decimals (18 for BNB Chain's USDT, 6 for Arbitrum's USDC)."""
    address: str
    """The real token's address, used in fork mode."""

    @field_validator("address")
    @classmethod
    def _checksummed(cls, value: str) -> str:
        if not is_checksum_address(value):
            raise ValueError(f"{value!r} is not a checksummed address")
        return value


FIRST_ASSET_PRICE_ID = 128
"""Oracle price ids from here to 255 price basket assets that are not pairs (PriceOracle.sol)."""
MAX_BASKET_ASSETS = 8
"""AlpPool.MAX_BASKET_ASSETS."""


class BasketAsset(BaseModel):
    """One asset of the ALP basket (docs/mechanics.md section 10). The payout stablecoin's row
    names only its symbol, target and price: its token is `[<chain>.collateral]`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    symbol: str
    """Token symbol on the real chain; scenario and study prices name the asset by it."""
    target_bps: int = Field(ge=0, le=10_000)
    """Target weight in the basket, in basis points; a profile's targets sum to 10,000."""
    name: str | None = None
    """Token name, for the devnet mock (the payout row takes the collateral's)."""
    token_symbol: str | None = None
    """The token's own `symbol()` when it differs from the asset's (WBNB for BNB, BTCB for BTC)."""
    decimals: int | None = Field(default=None, ge=0, le=18)
    address: str | None = None
    """The real token's address, used in fork mode."""
    pair: str | None = None
    """A pair whose price is the asset's (BTC the asset is BTC/USD the pair: one price)."""
    price_id: int | None = Field(default=None, ge=FIRST_ASSET_PRICE_ID, le=255)
    """An asset-only oracle price id (BNB, the stablecoins), with a reference feed of its own."""
    start_price_usd: Decimal | None = Field(default=None, gt=0)
    """The keeper's first price of an asset-only id on a devnet."""

    @field_validator("address")
    @classmethod
    def _checksummed(cls, value: str | None) -> str | None:
        if value is not None and not is_checksum_address(value):
            raise ValueError(f"{value!r} is not a checksummed address")
        return value


class L1DataModel(BaseModel):
    """An Arbitrum transaction's L1 data cost after EIP-4844 (docs/economics.md): the batch
    poster pays blob gas for the transaction's compressed bytes, and ArbOS charges it back to
    the sender (16 L1 pricing units a compressed byte, each unit priced at the poster's cost
    per byte / 16). A compressed byte costs `blob_gas_per_byte` blob gas at the blob base fee."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    blob_base_fee_median_gwei: Decimal = Field(ge=0)
    """Ethereum's blob base fee on a typical block, in gwei per blob gas."""
    blob_base_fee_p99_gwei: Decimal = Field(ge=0)
    """The blob base fee's tail (99th percentile), in gwei per blob gas."""
    blob_gas_per_byte: Decimal = Field(default=Decimal(1), gt=0)
    """Blob gas per compressed byte (a blob: 131,072 blob gas for 131,072 bytes)."""
    tx_overhead_bytes: int = Field(default=100, ge=0)
    """Bytes of a signed transaction beside its calldata (nonce, gas fields, to, signature)."""

    @model_validator(mode="after")
    def _tail_above_median(self) -> "L1DataModel":
        if self.blob_base_fee_p99_gwei < self.blob_base_fee_median_gwei:
            raise ValueError("blob_base_fee_p99_gwei must be at least blob_base_fee_median_gwei")
        return self


class GasModel(BaseModel):
    """The chain's gas prices (docs/economics.md): the native coin in USD and the execution gas
    price as a log-normal distribution through its median and its 99th percentile; on a rollup,
    the L1 data cost of a transaction's bytes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    native_usd: Decimal = Field(gt=0)
    """The native coin's price (BNB, ETH) in USD."""
    median_gwei: Decimal = Field(gt=0)
    """The execution gas price a typical transaction pays, in gwei."""
    p99_gwei: Decimal = Field(gt=0)
    """The execution gas price's tail (99th percentile), in gwei."""
    l1_data: L1DataModel | None = None
    """A rollup's L1 data cost (Arbitrum); None on an L1 (BNB Chain)."""

    @model_validator(mode="after")
    def _tail_above_median(self) -> "GasModel":
        if self.p99_gwei < self.median_gwei:
            raise ValueError("p99_gwei must be at least median_gwei")
        return self

    def quantile_gwei(self, q: float) -> Decimal:
        """The execution gas price at quantile `q` (0 < q < 1) of the log-normal through the
        median and the 99th percentile."""
        from statistics import NormalDist

        if not 0 < q < 1:
            raise ValueError(f"quantile must be between 0 and 1, got {q}")
        z99 = NormalDist().inv_cdf(0.99)
        sigma = math.log(self.p99_gwei / self.median_gwei) / z99
        return Decimal(repr(float(self.median_gwei) * math.exp(sigma * NormalDist().inv_cdf(q))))


class ChainProfile(BaseModel):
    """A chain alpsim can present itself as."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    """Profile key (`bnb`, `arbitrum`)."""
    display_name: str
    chain_id: int = Field(gt=0)
    """Reported by `eth_chainId` and by the `chainid` opcode."""
    native_coin: str
    collateral: CollateralProfile
    execution_fee_usd: Decimal = Field(ge=0)
    """Paid on each open to the keeper that executes it."""
    block_time_s: Decimal = Field(gt=0)
    """Seconds between blocks; blocks are stamped at this pace."""
    evm_version: Literal["cancun", "prague"] = "cancun"
    basket: tuple[BasketAsset, ...] = ()
    """The ALP basket in listing order; empty: the payout stablecoin alone at 1 USD (a one-asset pool)."""
    gas: GasModel | None = None
    """Gas prices for `alpsim economics`; a profile without them cannot be priced."""

    @model_validator(mode="after")
    def _basket_valid(self) -> "ChainProfile":
        if not self.basket:
            return self
        symbols = [a.symbol for a in self.basket]
        problems = []
        if len(self.basket) > MAX_BASKET_ASSETS:
            problems.append(f"at most {MAX_BASKET_ASSETS} assets, got {len(self.basket)}")
        if len(set(symbols)) != len(symbols):
            problems.append(f"symbols must be unique: {symbols}")
        if sum(a.target_bps for a in self.basket) != 10_000:
            problems.append(f"targets must sum to 10000 bp, got {sum(a.target_bps for a in self.basket)}")
        if symbols[0] != self.collateral.symbol:
            problems.append(f"the first asset must be the payout stablecoin {self.collateral.symbol}")
        ids = [a.price_id for a in self.basket if a.price_id is not None]
        if len(set(ids)) != len(ids):
            problems.append(f"price ids must be unique: {ids}")
        for i, a in enumerate(self.basket):
            if (a.pair is None) == (a.price_id is None):
                problems.append(f"{a.symbol}: give exactly one of pair and price_id")
            if a.price_id is not None and a.start_price_usd is None:
                problems.append(f"{a.symbol}: an asset-only price id needs start_price_usd")
            if i > 0 and (a.name is None or a.decimals is None or a.address is None):
                problems.append(f"{a.symbol}: name, decimals and address are required")
            if i == 0 and (a.name or a.decimals is not None or a.address):
                problems.append(f"{a.symbol}: the payout row takes name, decimals and address from collateral")
        if problems:
            raise ValueError("basket: " + "; ".join(problems))
        return self

    def start_asset_prices(self) -> dict[str, Decimal]:
        """The keeper's first prices of the basket's asset-only ids (BNB, the stablecoins), by symbol."""
        return {a.symbol: a.start_price_usd for a in self.basket if a.price_id is not None}

    def basket_decimals(self, asset: BasketAsset) -> int:
        return self.collateral.decimals if asset.symbol == self.collateral.symbol else asset.decimals

    @property
    def block_time_ms(self) -> int:
        return int(self.block_time_s * 1000)

    @property
    def execution_fee_wad(self) -> int:
        """The execution fee in 18-decimal USD."""
        return int(self.execution_fee_usd * USD)


@cache
def _builtin_text() -> str:
    return resources.files("alpsim").joinpath("profiles.toml").read_text()


def load_profiles(path: str | Path | None = None) -> dict[str, ChainProfile]:
    """Profiles from `path` (a TOML file with one table per profile), or the built-in ones."""
    try:
        text = Path(path).read_text() if path else _builtin_text()
    except OSError as exc:
        raise ConfigError(f"cannot read profiles file {path}: {exc.strerror}") from exc
    source = str(path) if path else "built-in profiles.toml"
    try:
        tables = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: {exc}") from exc
    profiles = {}
    for name, table in tables.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{source}: {name!r} must be a table of profile settings")
        try:
            profiles[name] = ChainProfile(name=name, **table)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise ConfigError(f"{source}: profile {name!r}: {problems}") from exc
    return profiles


def get_profile(name: str, path: str | Path | None = None) -> ChainProfile:
    """The profile called `name`; an unknown name is refused with the known ones."""
    profiles = load_profiles(path)
    if name not in profiles:
        raise UnknownNameError("chain profile", name, profiles)
    return profiles[name]
