"""The client's value types: the requests a batch takes (`OpenRequest`, `CloseRequest`), what
an action returns (`PendingOpen`, `DepositResult`, `WithdrawResult`), the pool's state
(`PoolState`) and the refusals a keeper's execution can end in (`OrderRejected`,
`CloseRejected`). `alpsim.client` re-exports every name."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal, NamedTuple

from pydantic import BaseModel, ConfigDict

from .errors import AlpsimError
from .protocol import Order
from .units import Number, from_units, wad_to_decimal


Account = str | int
"""An account: its address, or its index among the devnet's funded accounts."""


@dataclass(frozen=True)
class OpenRequest:
    """One trader's open request in a batch (`Alpsim.request_opens`): `request_open`'s
    arguments, with the same units (collateral tokens, prices in USD, 0 for "none")."""

    who: Account
    pair: str | int
    side: Literal["long", "short"]
    amount: Number
    leverage: int
    take_profit: Number = 0
    stop_loss: Number = 0
    acceptable_price: Number = 0


class CloseRequest(NamedTuple):
    """One trader's close request in a batch (`Alpsim.request_closes`)."""

    who: Account
    position_id: int


@dataclass(frozen=True)
class PendingOpen:
    """A sent open request (step one), with what only the trader and the keeper know."""

    request_id: int
    trader: str
    order: Order
    salt: bytes
    ciphertext: bytes
    amount_units: int
    receipt: dict


class OrderRejected(AlpsimError):
    """The keeper executed the request and a check failed: refunded less the execution fee."""

    def __init__(self, request_id: int, reason: str, refund_tokens: int, execution_fee_tokens: int):
        self.request_id, self.reason = request_id, reason
        self.refund_tokens, self.execution_fee_tokens = refund_tokens, execution_fee_tokens
        super().__init__(f"order {request_id} rejected: {reason} (refunded {refund_tokens} token units, "
                         f"execution fee {execution_fee_tokens} kept by the keeper)")


class CloseRejected(AlpsimError):
    """The keeper could not execute a close at a guarded price (stale, circuit breaker)."""

    def __init__(self, request_id: int, position_id: int, reason: str):
        self.request_id, self.position_id, self.reason = request_id, position_id, reason
        super().__init__(f"close of position {position_id} (request {request_id}) rejected: {reason}")


class PoolState(BaseModel):
    """The ALP pool as the chain reports it. Integers in the contracts' units."""

    model_config = ConfigDict(frozen=True)

    nav_wad: int
    alp_price_wad: int
    alp_supply_wad: int
    reserve_wad: int
    balance_units: int
    """The pool's holdings of the payout stablecoin (`poolBalance`)."""
    collateral_decimals: int
    holdings: dict[str, Decimal] = {}
    """Basket symbol -> the pool's holdings, whole tokens (listing order)."""
    weights_bps: dict[str, Decimal] = {}
    """Basket symbol -> current weight in bp (to 0.01 bp) of the holdings' value at the keeper's
    mark prices (`PriceOracle.markPrice`); holdings only: the claim on open positions is not a
    holding. All 0 while the basket is empty."""
    targets_bps: dict[str, int] = {}
    prices: dict[str, Decimal] = {}
    """Basket symbol -> the mark price in USD (the last keeper price, whatever its age; 1 for an
    asset valued at face value); an asset never priced is left out."""
    reserve_capacity_wad: int = 0
    """`AlpPool.reserveCapacityUsd`: 80% of the payout-token holdings less the reserve (other
    basket assets do not count)."""

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

    @property
    def reserve_capacity(self) -> Decimal:
        """Reserve the pool can still take on, USD (payout-token holdings only)."""
        return wad_to_decimal(self.reserve_capacity_wad)


class DepositResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    lp: str
    amount_units: int
    alp_out_wad: int
    fee_wad: int
    unlocks_at: int
    gas_used: int | None
    """None on a backend that cannot measure gas exactly (revm)."""


class WithdrawResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    lp: str
    alp_in_wad: int
    amount_out_units: int
    fee_wad: int
    gas_used: int | None
    """None on a backend that cannot measure gas exactly (revm)."""
