"""The steps only checked scenarios have (`checks:` at the top; docs/fuzz.md): the fuzzer's
hostile actions as scenario steps, run by `alpsim.fuzz.executor`."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Side = Literal["long", "short"]


class AssetPriceStep(_Strict):
    symbol: str
    price: Decimal = Field(gt=0)
    reference: Decimal = Field(gt=0)
    """The asset's reference feed, set apart from the keeper's price."""


class ReferenceStep(_Strict):
    pair: str
    price: Decimal = Field(gt=0)


class KeeperGapStep(_Strict):
    seconds: int = Field(gt=0)


class PushStep(_Strict):
    after_s: int = Field(default=0, ge=0)


class IdStep(_Strict):
    id: str


class WhoStep(_Strict):
    who: str


class FeeTokenStep(_Strict):
    who: str
    enabled: bool
    funded: bool = False


class BadOrderStep(_Strict):
    who: str
    kind: Literal["random_bytes", "garbage_plaintext", "wrong_commitment"]
    amount: Decimal = Field(gt=0)
    seed: int = Field(default=0, ge=0)


class OutageStep(_Strict):
    minutes: int = Field(ge=1, le=1440)
    lp: str
    trader: str
    pair: str
    side: Side
    id: str
    """The trader's open halfway through."""


class BreakerTripStep(OutageStep):
    bps: int = Field(ge=-5000, le=5000)
    """The reference feed's move from the keeper's price, signed."""


class FeeRaiseStep(_Strict):
    fee_usd: Decimal = Field(ge=0)
    then: Literal["execute", "cancel", "leave"]
    restore: bool
    id: str
    who: str
    pair: str
    side: Side
    amount: Decimal = Field(gt=0)
    griefer: str
    griefer_amount: Decimal = Field(gt=0)
    seed: int = Field(default=0, ge=0)


class SettingsChangeStep(_Strict):
    kind: Literal["max_age", "breaker", "rates"]
    level: int = Field(ge=0, le=2)
    before_s: int = Field(gt=0)
    after_s: int = Field(gt=0)
    mid_round: bool = False


class ExtremeStep(_Strict):
    kind: Literal["request_amount", "request_max", "deposit_amount", "price_high", "price_zero", "price_pair",
                  "withdraw_more", "guard_age", "rates"]


class AdminStep(_Strict):
    execution_fee_usd: Decimal | None = Field(default=None, ge=0)
    holding_rate_wad: int | None = Field(default=None, ge=0)
    funding_rate_wad: int | None = Field(default=None, ge=0)
    max_price_age_s: int | None = Field(default=None, ge=0)
    breaker_bps: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _something(self) -> "AdminStep":
        if all(v is None for v in self.model_dump().values()):
            raise ValueError("admin: name at least one setting")
        return self
