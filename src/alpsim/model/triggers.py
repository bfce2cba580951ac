"""The keeper's triggers, mirroring `contracts/trading/Triggers.sol` (docs/mechanics.md sections
6, 8 and 11): `run_triggers` applies prices as settled, then liquidates each given position
(at the oracle price), else closes it at its take-profit, else at its stop-loss; the liquidation
test itself; and `update_prices`, prices with no triggers (not settled when new).
"""

from __future__ import annotations

from ..protocol import CloseReason, Position, RejectReason, Settlement
from ..units import BPS
from .math import pnl_usd_floor


class Triggers:
    """The triggers of `ExchangeModel` (trading_engine.py holds the state)."""

    def run_triggers(self, position_ids: list[int], prices: dict[int, int], now: int) -> dict[int, Settlement]:
        self.apply_prices(prices, now, triggers_run=True)
        closed = {}
        for pid in position_ids:
            result = self._trigger(pid, now)
            if result is not None:
                closed[pid] = result
        return closed

    def update_prices(self, prices: dict[int, int], now: int) -> None:
        self.apply_prices(prices, now)

    def _trigger(self, pid: int, now: int) -> Settlement | None:
        p = self.positions.get(pid)
        if p is None:
            return None
        price, reason = self.guarded_price(p.pair_id, not p.is_long, now)
        if reason is not RejectReason.NONE:
            return None
        if self.is_liquidatable(p, price, now):
            return self._settle(p, price, price, CloseReason.LIQUIDATION, now)
        if (price >= p.take_profit) if p.is_long else (price <= p.take_profit):
            fill = self.close_fill(p, price)
            exit_price = min(fill, p.take_profit) if p.is_long else max(fill, p.take_profit)
            return self._settle(p, price, exit_price, CloseReason.TAKE_PROFIT, now)
        if p.stop_loss and ((price <= p.stop_loss) if p.is_long else (price >= p.stop_loss)):
            return self._settle(p, price, self.close_fill(p, price), CloseReason.STOP_LOSS, now)
        return None

    def is_liquidatable(self, p: Position, price: int, now: int) -> bool:
        s = self.settings
        pnl = pnl_usd_floor(p.is_long, p.qty, p.entry_price, price)
        fee = self.close_fee_usd(p, pnl, price, self._referral_discount(p.trader))
        holding, funding = self.accrued_charges(p, now)
        loss = fee + holding + funding - pnl
        threshold = s.liquidation_threshold_extreme_bps if p.leverage >= s.extreme_leverage \
            else s.liquidation_threshold_standard_bps
        return loss > 0 and loss * BPS >= threshold * p.margin_usd
