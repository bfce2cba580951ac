"""What the client returns about positions: typed, integers in the contracts' units, with
human (Decimal) views."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from .protocol import CloseReason, Position, RejectReason
from .units import wad_to_decimal


class PositionInfo(BaseModel):
    """An open position as the chain holds it (docs/mechanics.md sections 5 and 11)."""

    model_config = ConfigDict(frozen=True)

    id: int
    trader: str
    pair: str
    pair_id: int
    side: Literal["long", "short"]
    leverage: int
    opened_at: int
    fee_in_token: bool
    margin_tokens: int
    margin_wad: int
    notional_wad: int
    qty_wad: int
    entry_price_wad: int
    take_profit_wad: int
    stop_loss_wad: int
    max_profit_wad: int
    holding_index: int
    funding_index: int
    liquidation_price_wad: int
    """Where the position becomes liquidatable, before holding and funding accrue."""

    @property
    def is_long(self) -> bool:
        return self.side == "long"

    @property
    def margin_usd(self) -> Decimal:
        return wad_to_decimal(self.margin_wad)

    @property
    def notional_usd(self) -> Decimal:
        return wad_to_decimal(self.notional_wad)

    @property
    def entry_price(self) -> Decimal:
        return wad_to_decimal(self.entry_price_wad)

    @property
    def liquidation_price(self) -> Decimal:
        return wad_to_decimal(self.liquidation_price_wad)

    @property
    def take_profit(self) -> Decimal:
        return wad_to_decimal(self.take_profit_wad)

    def to_model(self) -> Position:
        return Position(
            id=self.id, trader=self.trader, pair_id=self.pair_id, is_long=self.is_long, fee_in_token=self.fee_in_token,
            leverage=self.leverage, opened_at=self.opened_at, margin_tokens=self.margin_tokens,
            margin_usd=self.margin_wad, notional_usd=self.notional_wad, qty=self.qty_wad,
            entry_price=self.entry_price_wad, cost_usd=self.qty_wad * self.entry_price_wad // 10**18,
            take_profit=self.take_profit_wad, stop_loss=self.stop_loss_wad, max_profit_usd=self.max_profit_wad,
            holding_index=self.holding_index, funding_index=self.funding_index,
        )


def position_from_chain(position_id: int, raw: dict[str, Any], pair_names: list[str], liquidation_price: int) -> PositionInfo:
    """From the contract's `Position` struct (call output or event argument)."""
    return PositionInfo(
        id=position_id, trader=raw["trader"], pair=pair_names[raw["pairId"]], pair_id=raw["pairId"],
        side="long" if raw["isLong"] else "short", leverage=raw["leverage"], opened_at=raw["openedAt"],
        fee_in_token=raw["feeInToken"], margin_tokens=raw["marginTokens"], margin_wad=raw["marginUsd"],
        notional_wad=raw["notionalUsd"], qty_wad=raw["qty"], entry_price_wad=raw["entryPrice"],
        take_profit_wad=raw["takeProfit"], stop_loss_wad=raw["stopLoss"], max_profit_wad=raw["maxProfitUsd"],
        holding_index=raw["holdingIndex"], funding_index=raw["fundingIndex"], liquidation_price_wad=liquidation_price,
    )


class OpenedPosition(BaseModel):
    """The result of a one-click open: the position and what opening it cost."""

    model_config = ConfigDict(frozen=True)

    request_id: int
    position: PositionInfo
    oracle_price_wad: int
    slippage_wad: int
    execution_fee_tokens: int
    open_fee_wad: int
    open_fee_tokens: int
    fee_in_token: bool
    fee_discount_bps: int
    gas_request: int | None
    gas_execute: int | None
    """Gas of the request and of its execution; None on a backend that cannot measure gas
    exactly (revm)."""

    @property
    def open_fee_usd(self) -> Decimal:
        return wad_to_decimal(self.open_fee_wad)


class ClosedPosition(BaseModel):
    """How a position ended (trader close, take-profit, stop-loss or liquidation)."""

    model_config = ConfigDict(frozen=True)

    position: PositionInfo
    reason: Literal["close", "take_profit", "stop_loss", "liquidation"]
    oracle_price_wad: int
    exit_price_wad: int
    pnl_wad: int
    close_fee_wad: int
    holding_wad: int
    funding_wad: int
    payout_wad: int
    payout_tokens: int
    pool_delta_tokens: int
    fee_in_token: bool
    block: int
    gas: int | None
    """Gas of the settling transaction; None on revm (not measured exactly)."""

    @property
    def pnl_usd(self) -> Decimal:
        return wad_to_decimal(self.pnl_wad)

    @property
    def payout_usd(self) -> Decimal:
        return wad_to_decimal(self.payout_wad)

    @property
    def exit_price(self) -> Decimal:
        return wad_to_decimal(self.exit_price_wad)


CLOSE_REASONS = {
    CloseReason.TRADER_CLOSE: "close", CloseReason.TAKE_PROFIT: "take_profit",
    CloseReason.STOP_LOSS: "stop_loss", CloseReason.LIQUIDATION: "liquidation",
}


def reject_label(code: int) -> str:
    return RejectReason(code).label
