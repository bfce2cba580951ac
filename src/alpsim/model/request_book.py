"""Traders' requests, mirroring `contracts/trading/RequestBook.sol` (docs/mechanics.md sections
5.1, 5.6 and 5.7): an open request escrows its amount against a hidden order and fixes its
execution fee; a close request names a position; after the request window the trader may cancel;
the keeper rejects an order it cannot use, refunding all but the execution fee.
"""

from __future__ import annotations

from ..protocol import RejectReason, Request
from .errors import ModelRefusal
from .math import ceil_div
from .tokens import ESCROW


class RequestBook:
    """The requests of `ExchangeModel` (trading_engine.py holds `requests` and `next_request_id`)."""

    def execution_fee_tokens(self) -> int:
        return ceil_div(self.settings.execution_fee_usd, self.scale)

    def request_open(self, trader: str, amount_in: int, commitment: bytes, block: int) -> int:
        fee = self.execution_fee_tokens()
        if amount_in <= fee:
            raise ModelRefusal("AmountBelowExecutionFee", amountIn=amount_in, executionFee=fee)
        if amount_in > 2**128 - 1:
            raise ModelRefusal("AmountTooLarge", amount=amount_in, max=2**128 - 1)
        self._move(trader, ESCROW, amount_in)
        rid = self.next_request_id
        self.next_request_id += 1
        self.requests[rid] = Request(rid, trader, "open", block, amount_in, commitment, execution_fee_tokens=fee)
        return rid

    def request_close(self, trader: str, position_id: int, block: int) -> int:
        pos = self.positions.get(position_id)
        if pos is None:
            raise ModelRefusal("PositionNotOpen", positionId=position_id)
        if pos.trader != trader:
            raise ModelRefusal("NotOwner", caller=trader, owner=pos.trader)
        for r in self.requests.values():
            if (r.kind == "close" and r.amount_in == position_id and r.status == "pending"
                    and block <= r.block + self.settings.request_expiry_blocks):
                raise ModelRefusal("CloseAlreadyPending", positionId=position_id, requestId=r.id)
        rid = self.next_request_id
        self.next_request_id += 1
        self.requests[rid] = Request(rid, trader, "close", block, position_id)
        return rid

    def cancel_request(self, trader: str, request_id: int, block: int) -> int:
        r = self._pending(request_id)
        if r.trader != trader:
            raise ModelRefusal("NotOwner", caller=trader, owner=r.trader)
        expires = r.block + self.settings.request_expiry_blocks
        if block <= expires:
            raise ModelRefusal("RequestNotExpired", requestId=request_id, expiresAfterBlock=expires)
        r.status = "cancelled"
        if r.kind == "open":
            self._move(ESCROW, trader, r.amount_in)
            return r.amount_in
        return 0

    def _pending(self, request_id: int) -> Request:
        r = self.requests.get(request_id)
        if r is None:
            raise ModelRefusal("UnknownRequest", requestId=request_id)
        if r.status != "pending":
            raise ModelRefusal("RequestNotPending", requestId=request_id)
        return r

    def _executable(self, request_id: int, kind: str, block: int) -> Request:
        r = self._pending(request_id)
        if r.kind != kind:
            raise ModelRefusal("UnknownRequest", requestId=request_id)
        if block <= r.block or block > r.block + self.settings.request_expiry_blocks:
            raise ModelRefusal("RequestNotExecutable", requestId=request_id, requestBlock=r.block, currentBlock=block)
        return r

    def reject_open(self, request_id: int, reason: RejectReason, block: int, keeper: str) -> int:
        """The keeper's rejection of an order it cannot use, as `rejectOpen`: the refund."""
        if reason not in (RejectReason.UNDECRYPTABLE_ORDER, RejectReason.MALFORMED_ORDER):
            raise ModelRefusal("InvalidRejectReason", reason=int(reason))
        r = self._executable(request_id, "open", block)
        r.status = "rejected"
        fee = r.execution_fee_tokens
        self._move(ESCROW, r.trader, r.amount_in - fee)
        self._move(ESCROW, keeper, fee)
        return r.amount_in - fee
