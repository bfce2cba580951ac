"""Chain profiles (docs/mechanics.md section 12): typed, loaded from TOML, `bnb` and `arbitrum` built in."""

from __future__ import annotations

import tomllib
from decimal import Decimal
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
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
