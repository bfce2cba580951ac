"""A study's `keeper:` block (docs/studies.md, "The keeper's books"): the gas prices the keeper's
operations are priced at (each figure the chain profile's unless given) and how the keeper pushes
prices (every block, on a change, or every N seconds)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, Tag, model_validator

from ..yamlfile import line_for


def _duration(value: Any) -> int:
    from .spec import seconds  # spec imports this module: read it when a value comes

    return seconds(value)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)



class GasPriceDraw(_Strict):
    """An execution gas price drawn once per path from the log-normal through its median and its
    99th percentile (as the chain profile reads its own, `GasModel.quantile_gwei`)."""

    median_gwei: Decimal = Field(gt=0)
    p99_gwei: Decimal = Field(gt=0)

    @model_validator(mode="after")
    def _tail(self) -> "GasPriceDraw":
        if self.p99_gwei < self.median_gwei:
            raise ValueError("p99_gwei must be at least median_gwei")
        return self


def _gas_price_kind(value: Any) -> str:
    return "draw" if isinstance(value, (dict, GasPriceDraw)) else "fixed"


GasPrice = Annotated[Union[Annotated[Annotated[Decimal, Field(gt=0)], Tag("fixed")], Annotated[GasPriceDraw, Tag("draw")]],
                     Discriminator(_gas_price_kind)]
"""Gwei: a number (fixed) or `{median_gwei, p99_gwei}` (drawn per path)."""


class KeeperL1Data(_Strict):
    """Arbitrum's L1 data figures, by the profile's names (`[arbitrum.gas.l1_data]`); each one
    left out is the profile's."""

    blob_base_fee_median_gwei: Decimal | None = Field(default=None, ge=0)
    blob_base_fee_p99_gwei: Decimal | None = Field(default=None, ge=0)
    blob_gas_per_byte: Decimal | None = Field(default=None, gt=0)
    tx_overhead_bytes: int | None = Field(default=None, ge=0)


class KeeperSpec(_Strict):
    """The keeper's books and how it pushes prices (docs/studies.md, "The keeper's books").
    Every figure left out is the chain profile's `[<chain>.gas]`; the execution fee is the
    engine's (`settings.engine.executionFeeUsd`, else the profile's)."""

    gas_price: GasPrice | None = None
    """Gwei: a number (the same on every path) or `{median_gwei, p99_gwei}` drawn per path;
    none: the profile's median and p99, drawn per path."""
    native_usd: Decimal | None = Field(default=None, gt=0)
    l1_data: KeeperL1Data | None = None
    push: Literal["every_block", "on_change", "seconds"] = "every_block"
    """every_block: every block (a step's push stands for the step's blocks, as today);
    on_change: a pair when its price moved `push_change` from its last push; seconds: every
    `push_every_s`. The last two also push a price about to age past the oracle's limit."""
    push_change: Decimal = Field(default=Decimal("0.0005"), gt=0, lt=1)
    """on_change: the relative move that sends a push (0.0005: 0.05%); ignored by the other modes."""
    push_every_s: Annotated[int, BeforeValidator(_duration)] | None = None
    """seconds: a duration (`10s`, `1m`) at least the study's step."""

    @model_validator(mode="after")
    def _mode_parameters(self) -> "KeeperSpec":
        if self.push == "seconds" and self.push_every_s is None:
            raise ValueError("push: seconds needs push_every_s (a duration, e.g. 10s)")
        if self.push != "seconds" and self.push_every_s is not None:
            raise ValueError(f"push_every_s is for push: seconds (push is {self.push})")
        l1 = self.l1_data
        if l1 is not None and None not in (l1.blob_base_fee_median_gwei, l1.blob_base_fee_p99_gwei) \
                and l1.blob_base_fee_p99_gwei < l1.blob_base_fee_median_gwei:
            raise ValueError("l1_data: blob_base_fee_p99_gwei must be at least blob_base_fee_median_gwei")
        return self



def keeper_problems(study: Any, lines: dict) -> list[tuple[int, str]]:
    """The keeper block against the chain and the horizon."""
    keeper, out = study.keeper, []
    if keeper.l1_data is not None and study.chain != "arbitrum":
        out.append((line_for(("keeper", "l1_data"), lines),
                    f"keeper.l1_data: {study.chain} is an L1 with no L1 data cost (arbitrum has one)"))
    if keeper.push_every_s is not None and keeper.push_every_s < study.horizon.step:
        out.append((line_for(("keeper", "push_every_s"), lines),
                    f"keeper.push_every_s ({keeper.push_every_s} s) is shorter than the step ({study.horizon.step} s): "
                    "prices change only at steps; use push: every_block"))
    return out
