"""Executing closes, mirroring `contracts/trading/ClosePipeline.sol` (docs/mechanics.md sections 6
and 7): a trader's close request executes at the guarded price moved by the closing slippage,
capped at the take-profit, and settles; a failed guard rejects the request and the position
stays open.
"""

from __future__ import annotations

from ..protocol import CloseReason, RejectReason, Settlement
from .errors import ModelRefusal


class ClosePipeline:
    """The close side of `ExchangeModel` (trading_engine.py holds the state)."""

    def execute_close(self, request_id: int, prices: dict[int, int], now: int, block: int) -> Settlement | RejectReason:
        r = self._executable(request_id, "close", block)
        if r.amount_in not in self.positions:
            raise ModelRefusal("PositionNotOpen", positionId=r.amount_in)
        self.apply_prices(prices, now)
        p = self.positions[r.amount_in]
        price, reason = self.guarded_price(p.pair_id, not p.is_long, now)
        if reason is not RejectReason.NONE:
            r.status = "rejected"
            return reason
        r.status = "executed"
        fill = self.close_fill(p, price)
        exit_price = min(fill, p.take_profit) if p.is_long else max(fill, p.take_profit)
        return self._settle(p, price, exit_price, CloseReason.TRADER_CLOSE, now)
