"""Executing opens, mirroring `contracts/trading/OpenPipeline.sol` (docs/mechanics.md sections 4,
5.2 to 5.5 and 7): the pair and leverage checks, the guarded price, sizing (margin, notional
and the open fee, in collateral or the platform token), the notional tiers, the open-interest
cap, slippage and the acceptable price, the ROI cap and take-profit cap, the open-loss guard
and the pool's reserve; then the fee's charge and split, the market's aggregates and the stored
position. A failed check rejects the request and refunds all but the execution fee.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..protocol import OpenCharges, Order, Position, RejectReason
from ..units import BPS, WAD
from .math import (
    discounted_rate_wad,
    fill_price,
    margin_tokens_down,
    mul_div_down,
    mul_div_up,
    slippage_wad_up,
    take_profit_cap_price,
)
from .tokens import ESCROW


@dataclass
class OpenResult:
    """What `execute_open` did: the position and its charges, or the reason it was rejected."""

    request_id: int
    position: Position | None
    charges: OpenCharges | None
    reason: RejectReason


class OpenPipeline:
    """The open side of `ExchangeModel` (trading_engine.py holds the state)."""

    def execute_open(self, request_id: int, order: Order, prices: dict[int, int], now: int, block: int,
                     keeper: str) -> OpenResult:
        r = self._executable(request_id, "open", block)
        self.apply_prices(prices, now)
        fee = r.execution_fee_tokens
        self._move(ESCROW, keeper, fee)
        net = r.amount_in - fee
        reason, position, charges = self._open(request_id, r.trader, net, order, now, block)
        if reason is RejectReason.NONE:
            r.status = "executed"
        else:
            r.status = "rejected"
            self._move(ESCROW, r.trader, net)
        return OpenResult(request_id, position, charges, reason)

    def roi_cap_bps(self, leverage: int) -> int:
        s = self.settings
        if leverage >= s.max_roi_leverage:
            return s.roi_cap_max_leverage_bps
        if leverage >= s.extreme_leverage:
            return s.roi_cap_extreme_bps
        return s.roi_cap_standard_bps

    def size_open(self, trader: str, net: int, leverage: int) -> dict:
        """Margin, notional and open fee (docs/mechanics.md §5.3), as `_sizeOpen`."""
        s = self.settings
        discount = s.referral_discount_bps if trader in self.referred else 0
        out = {"discount_bps": discount, "pay_in_token": False, "fee_rate_wad": 0}
        extreme = leverage >= s.extreme_leverage

        def margin(m: int) -> None:
            out.update(margin_tokens=m, margin_usd=m * self.scale, notional_usd=m * self.scale * leverage)

        if extreme:
            margin(net)
            out.update(open_fee_usd=0, open_fee_tokens=0)
            return out
        if trader in self.fee_in_token:
            margin(net)
            rate = discounted_rate_wad(s.open_fee_bps, discount + s.token_discount_bps)
            fee_usd = mul_div_up(out["notional_usd"], rate, WAD)
            tokens = self.platform_tokens(fee_usd)
            if tokens != 0 and self.can_pull_token(trader, tokens):
                out.update(pay_in_token=True, fee_rate_wad=rate, open_fee_usd=fee_usd, open_fee_tokens=tokens)
                return out
        rate = discounted_rate_wad(s.open_fee_bps, discount)
        m = margin_tokens_down(net, leverage, rate)
        margin(m)
        out.update(fee_rate_wad=rate, open_fee_tokens=net - m, open_fee_usd=(net - m) * self.scale)
        return out

    def _open(self, request_id: int, trader: str, net: int, order: Order, now: int, block: int):
        s = self.settings
        none = (None, None)
        if order.pair_id >= len(self.pairs) or not self.pairs[order.pair_id].listed:
            return (RejectReason.PAIR_NOT_LISTED, *none)
        pair = self.pairs[order.pair_id]
        if pair.paused:
            return (RejectReason.PAIR_PAUSED, *none)
        if order.leverage >= s.extreme_leverage and pair.max_leverage < s.extreme_leverage:
            return (RejectReason.EXTREME_LEVERAGE_NOT_OFFERED, *none)
        if order.leverage == 0 or order.leverage > pair.max_leverage:
            return (RejectReason.LEVERAGE_OUT_OF_RANGE, *none)
        if not self._count_execution(order.pair_id, block):
            return (RejectReason.TOO_MANY_EXECUTIONS, *none)
        oracle_price, reason = self.guarded_price(order.pair_id, order.is_long, now)
        if reason is not RejectReason.NONE:
            return (reason, *none)
        size = self.size_open(trader, net, order.leverage)
        notional = size["notional_usd"]
        cap, too_large = self.leverage_cap(order.pair_id, notional)
        if too_large:
            return (RejectReason.NOTIONAL_TOO_LARGE, *none)
        if order.leverage > cap:
            return (RejectReason.LEVERAGE_ABOVE_NOTIONAL_TIER, *none)
        if notional < s.min_notional_usd or notional == 0:
            return (RejectReason.NOTIONAL_TOO_SMALL, *none)
        side_oi = self.side(order.pair_id, order.is_long).oi_usd
        if side_oi + notional > pair.max_oi_per_side_usd:
            return (RejectReason.OPEN_INTEREST_CAP_EXCEEDED, *none)
        slip = slippage_wad_up(pair.spread_bps, side_oi, notional, pair.depth_1pct_usd)
        fill = fill_price(oracle_price, slip, order.is_long)
        if fill == 0:
            return (RejectReason.OPEN_LOSS_TOO_HIGH, *none)
        if order.acceptable_price and (fill > order.acceptable_price if order.is_long else fill < order.acceptable_price):
            return (RejectReason.SLIPPAGE_EXCEEDED, *none)
        qty = mul_div_down(notional, WAD, fill)
        max_profit = size["margin_usd"] * self.roi_cap_bps(order.leverage) // BPS
        cap_price = take_profit_cap_price(order.is_long, fill, qty, max_profit)
        if order.take_profit == 0:
            take_profit = cap_price
        elif (order.take_profit <= fill) if order.is_long else (order.take_profit >= fill):
            return (RejectReason.TAKE_PROFIT_WRONG_SIDE, *none)
        elif (order.take_profit > cap_price) if order.is_long else (order.take_profit < cap_price):
            return (RejectReason.TAKE_PROFIT_BEYOND_CAP, *none)
        else:
            take_profit = order.take_profit
        if order.stop_loss and ((order.stop_loss >= fill) if order.is_long else (order.stop_loss <= fill)):
            return (RejectReason.STOP_LOSS_WRONG_SIDE, *none)
        open_loss = mul_div_up(abs(fill - oracle_price), qty, WAD)
        if open_loss * BPS >= s.open_loss_guard_bps * size["margin_usd"]:
            return (RejectReason.OPEN_LOSS_TOO_HIGH, *none)
        if self.pool.reserve_capacity_usd() < max_profit:
            return (RejectReason.RESERVE_EXCEEDED, *none)
        # commit
        pid = request_id  # the position takes its request's slots on chain
        if size["pay_in_token"]:
            self._split_token_fee(trader, size["open_fee_tokens"])
        elif size["open_fee_tokens"]:
            self._split_collateral_fee(size["open_fee_tokens"])
        cost = mul_div_down(qty, fill, WAD)
        idx = self.accrue(order.pair_id, now)
        funding_index = idx.funding_long if order.is_long else idx.funding_short
        side = self.side(order.pair_id, order.is_long)
        side.oi_usd += notional
        side.qty += qty
        side.cost_usd += cost
        side.holding_weight += notional * idx.holding
        side.funding_weight += notional * funding_index
        self.pool.reserve_usd += max_profit
        position = Position(
            id=pid, trader=trader, pair_id=order.pair_id, is_long=order.is_long, fee_in_token=size["pay_in_token"],
            leverage=order.leverage, opened_at=now, margin_tokens=size["margin_tokens"], margin_usd=size["margin_usd"],
            notional_usd=notional, qty=qty, entry_price=fill, cost_usd=cost, take_profit=take_profit,
            stop_loss=order.stop_loss, max_profit_usd=max_profit, holding_index=idx.holding,
            funding_index=funding_index,
        )
        self.positions[pid] = position
        charges = OpenCharges(
            oracle_price=oracle_price, slippage_wad=slip, execution_fee_tokens=self.requests[pid].execution_fee_tokens,
            open_fee_usd=size["open_fee_usd"], open_fee_tokens=size["open_fee_tokens"],
            fee_discount_bps=size["discount_bps"] + (s.token_discount_bps if size["pay_in_token"] else 0),
        )
        return RejectReason.NONE, position, charges

    def _count_execution(self, pair_id: int, block: int) -> bool:
        last_block, count = self.executions.get(pair_id, (0, 0))
        count = count + 1 if last_block == block else 1
        self.executions[pair_id] = (block, count)
        return count <= self.settings.max_executions_per_pair_per_block
