"""The keeper's transactions to the trading engine, and the checking of open requests.

An open's order is ECIES-encrypted to the keeper: `classify` decrypts it with the keeper's key
and checks it against the request's commitment, giving the order and salt to execute or the
reason to reject it on chain (`rejectOpen`). Executions, rejections, trigger runs and price
pushes carry the keeper's prices of their pairs; each first refreshes the stale reference feeds
of those pairs (`PriceFeeder.refresh_stale_references`). Batches take an explicit gas limit per
item, within a block."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..devnet.base import TX_GAS_LIMIT
from ..errors import AlpsimError
from ..keys import decrypt_with
from ..orders import ORDER_ECIES, UndecryptableOrder, commitment, decode_order, is_plain_frame, read_plain_frame, unseal
from ..profiles import FIRST_ASSET_PRICE_ID
from ..protocol import Order, RejectReason
from .book import PendingRequest

if TYPE_CHECKING:
    from ..contracts import BoundContract, Session
    from .book import RequestBook
    from .prices import PriceFeeder

BATCH_GAS_PER_ITEM = 400_000
"""Explicit gas per request or position of a batch (an open in a batch uses about 160,000)."""
MAX_BATCH_REQUESTS = 50
"""Requests per batch transaction: 50 x 400,000 gas fits a 30,000,000-gas block, and stays
under the engine's 100 executions per pair per block."""
REJECT_GAS = 250_000
"""Explicit gas of a `rejectOpen` (it uses about 70,000): many fit in one block."""
FRESH_MARGIN_S = 10
"""`fresh_basket_prices` pushes a price that would be within this many seconds of its maximum
age by the next block: an LP action a block or two later still finds it fresh."""
REJECTED_STATUS = 3
"""RequestStatus.Rejected in Types.sol."""

Revealed = tuple[PendingRequest, tuple, bytes]
"""A checked open: the request, its order (the contract's Order tuple) and salt."""


def order_tuple(order: Order) -> tuple:
    """`order` as the contract's Order tuple."""
    return (order.pair_id, order.is_long, order.leverage, order.take_profit, order.stop_loss, order.acceptable_price)


def named_request(exc: AlpsimError, requests: list[PendingRequest]) -> PendingRequest | None:
    """The request of a batch's `requests` its revert names (by request id, or by position
    for a close): the one to leave out of the batch."""
    args = getattr(exc, "error_args", {})
    for request in requests:
        if args.get("requestId") == request.request_id:
            return request
        if request.kind == "close" and "requestId" not in args and args.get("positionId") == request.position_id:
            return request
    return None


class Executions:
    """The keeper's engine transactions, sent from `address`; each one's events applied to the
    request book."""

    def __init__(self, session: "Session", trading: "BoundContract", book: "RequestBook", feeder: "PriceFeeder",
                 address: str, private_key: bytes, plain_orders: bool = False):
        self.session, self.trading, self.book, self.feeder = session, trading, book, feeder
        self.address, self.private_key = address, private_key
        self.plain_orders = plain_orders
        """The research mode (docs/mev.md): a request's plain frame is read, not decrypted.
        Off, a plain frame is an order the key does not open (rejected, UndecryptableOrder)."""

    # ----- orders
    def reveal(self, ciphertext: bytes) -> tuple[tuple, bytes]:
        """The order (as the contract's Order tuple) and salt of an encrypted request."""
        if self.plain_orders and is_plain_frame(ciphertext):
            order, salt = read_plain_frame(ciphertext)
        else:
            order, salt = unseal(ciphertext, self.private_key)
        return order_tuple(order), salt

    def classify(self, request: PendingRequest) -> tuple[tuple, bytes] | RejectReason:
        """The order (as the contract's Order tuple) and salt of a pending open, or why the
        keeper must reject it: a ciphertext its key does not open (UndecryptableOrder); a
        plaintext that does not parse or whose commitment is not the request's
        (MalformedOrder). In the research mode a plain frame is read instead: one that does
        not parse is MalformedOrder, as a ciphertext holding no order."""
        if self.plain_orders and is_plain_frame(request.ciphertext):
            try:
                order, salt = read_plain_frame(request.ciphertext)
            except (UndecryptableOrder, ValueError, TypeError):
                return RejectReason.MALFORMED_ORDER
            if commitment(request.trader, order, salt) != request.commitment:
                return RejectReason.MALFORMED_ORDER
            return order_tuple(order), salt
        try:
            payload = decrypt_with(self.private_key, request.ciphertext, ORDER_ECIES)
        except Exception:  # noqa: BLE001 - eciespy raises ValueError and cryptography errors
            return RejectReason.UNDECRYPTABLE_ORDER
        try:
            order, salt = decode_order(payload)
        except (UndecryptableOrder, ValueError, TypeError):
            return RejectReason.MALFORMED_ORDER
        if commitment(request.trader, order, salt) != request.commitment:
            return RejectReason.MALFORMED_ORDER
        return order_tuple(order), salt

    # ----- prices
    def refresh_then_price(self, pair_ids: set[int] | list[int]) -> list[tuple[int, int]]:
        """Refreshes the stale reference feeds of `pair_ids` (transactions), then gives the
        keeper's prices of them as the engine takes them."""
        self.feeder.refresh_stale_references(pair_ids)
        return self.feeder.price_inputs(pair_ids)

    def push_prices(self, pair_ids: list[int] | None = None) -> dict:
        """Records the keeper's prices on chain with no trade (indexes accrue)."""
        ids = list(self.feeder.prices) if pair_ids is None else pair_ids
        return self.trading.transact("updatePrices", self.refresh_then_price(ids), sender=self.address)

    def push_asset_prices(self, price_ids: set[int] | list[int] | None = None) -> dict | None:
        """`PriceOracle.setAssetPrices` at the keeper's asset-only prices, after refreshing their
        stale reference feeds; None when there is nothing to push."""
        if price_ids is not None and not price_ids:
            return None
        ids, prices = self.feeder.asset_price_inputs(price_ids)
        if not ids:
            return None
        self.feeder.refresh_stale_references(ids)
        oracle = self.feeder.contracts["oracle"]
        return oracle.transact("setAssetPrices", ids, prices, sender=self.address)

    def aging_asset_prices(self) -> list[int]:
        """The asset-only price ids the keeper prices whose on-chain price would be within
        FRESH_MARGIN_S of its maximum age by the next block (a round pushes them)."""
        if not self.feeder.asset_prices:
            return []
        return sorted(self.aging(set(self.feeder.asset_prices)))

    def aging(self, price_ids: set[int]) -> set[int]:
        """Those of `price_ids` whose on-chain keeper price would be within FRESH_MARGIN_S of
        the maximum age by the next block."""
        oracle = self.feeder.contracts["oracle"]
        deadline = self.feeder.clock.next_timestamp + FRESH_MARGIN_S - oracle.call("maxPriceAgeSeconds")
        return {pid for pid in price_ids if oracle.call("keeperPrice", pid)[1] < deadline}

    def fresh_basket_prices(self, action: Any) -> list[dict]:
        """Pushes the basket prices an LP action on `action` (a BasketEntry) will read and that
        would be older than FRESH_MARGIN_S short of the maximum age by the next block."""
        contracts = self.feeder.contracts
        basket = self.feeder.deployment.basket
        holdings = contracts["pool"].call("basket")[4]
        needed = {e.price_id for e, held in zip(basket, holdings) if held > 0 or e is action}
        self.feeder.refresh_stale_references(needed)  # the pool refuses a stale reference as well
        stale = self.aging(needed)
        receipts = []
        assets = [pid for pid in stale if pid >= FIRST_ASSET_PRICE_ID and pid in self.feeder.asset_prices]
        if assets:
            receipts.append(self.push_asset_prices(assets))
        pairs = {pid for pid in stale if pid < FIRST_ASSET_PRICE_ID and pid in self.feeder.prices}
        if pairs:  # settled at the keeper's prices, as LPs need where positions are open
            receipts.append(self.run_triggers([], pairs))
        return receipts

    # ----- one call each
    def execute_open(self, request_id: int, ciphertext: bytes | None = None) -> dict:
        """Decrypts the request's order and executes it at the keeper's price."""
        if ciphertext is None:
            ciphertext = self.book.ciphertexts([request_id])[0]
        order, salt = self.reveal(ciphertext)
        return self.execute_open_revealed(request_id, order, salt)

    def execute_open_revealed(self, request_id: int, order: tuple, salt: bytes) -> dict:
        """Executes an open whose order (the contract's Order tuple) and salt are known."""
        receipt = self.trading.transact("executeOpen", request_id, order, salt, self.refresh_then_price([order[0]]),
                                        sender=self.address)
        return self._settled([request_id], receipt)

    def execute_open_batch(self, request_ids: list[int], ciphertexts: list[bytes] | None = None) -> dict:
        """Decrypts the orders of `request_ids` (from `ciphertexts`, or found in the request
        logs) and executes them all in one transaction, with one price update for their pairs.
        A failed check rejects only its request (refunded less the execution fee); a request
        that cannot be executed reverts the whole batch."""
        if ciphertexts is None:
            ciphertexts = self.book.ciphertexts(request_ids)
        revealed = [self.reveal(ciphertext) for ciphertext in ciphertexts]
        return self.execute_open_batch_revealed(list(request_ids), [o for o, _ in revealed], [s for _, s in revealed])

    def execute_open_batch_revealed(self, request_ids: list[int], orders: list[tuple], salts: list[bytes]) -> dict:
        """`execute_open_batch` of orders and salts already known."""
        prices = self.refresh_then_price([o[0] for o in orders])
        receipt = self.trading.transact("executeOpenBatch", request_ids, orders, salts, prices,
                                        sender=self.address, gas=self.batch_gas(len(request_ids)))
        return self._settled(request_ids, receipt)

    def execute_close(self, request_id: int, position_id: int | None = None) -> dict:
        if position_id is None:
            position_id = self.trading.call("request", request_id)["amountIn"]
        pair_id = self.book.open_positions.get(position_id)
        if pair_id is None:
            pair_id = self.trading.call("position", position_id)["pairId"]
        receipt = self.trading.transact("executeClose", request_id, self.refresh_then_price([pair_id]),
                                        sender=self.address)
        return self._settled([request_id], receipt)

    def execute_close_batch(self, request_ids: list[int], position_ids: list[int] | None = None) -> dict:
        """Executes the close requests `request_ids` in one transaction, one price update for
        the pairs of their positions (`position_ids`, when the caller knows them, saves one
        read per request)."""
        if position_ids is None:
            position_ids = [self.trading.call("request", rid)["amountIn"] for rid in request_ids]
        open_positions = self.book.open_positions
        unknown = [pid for pid in position_ids if pid not in open_positions]
        pairs = {open_positions[pid] for pid in position_ids if pid in open_positions}
        if unknown:
            pairs |= {raw["pairId"] for raw in self.trading.call("positionsOf", unknown)}
        receipt = self.trading.transact("executeCloseBatch", list(request_ids), self.refresh_then_price(pairs),
                                        sender=self.address, gas=self.batch_gas(len(request_ids)))
        return self._settled(request_ids, receipt)

    def reject_open(self, request_id: int, reason: RejectReason | int) -> dict:
        """Rejects an open whose order the keeper cannot use (UndecryptableOrder or
        MalformedOrder): the trader is refunded less the execution fee, which the keeper
        keeps."""
        receipt = self.trading.transact("rejectOpen", request_id, int(reason), sender=self.address, gas=REJECT_GAS)
        return self._settled([request_id], receipt)

    def run_triggers(self, position_ids: list[int] | None = None, price_pairs: set[int] | None = None) -> dict:
        """Checks the given (default: every open) position for liquidation, take-profit and
        stop-loss in one transaction, recording the prices of their pairs (and of
        `price_pairs`)."""
        open_positions = self.book.open_positions
        ids = sorted(open_positions) if position_ids is None else position_ids
        pairs = {open_positions[i] for i in ids if i in open_positions} | set(price_pairs or ())
        receipt = self.trading.transact("runTriggers", ids, self.refresh_then_price(pairs), sender=self.address,
                                        gas=self.batch_gas(len(ids)))
        self.book.observe(receipt)
        return receipt

    def triggers_close_any(self, position_ids: list[int], prices: list[tuple[int, int]]) -> bool:
        """Whether the triggers at `prices` would close one of the positions now (a call; a
        revert counts as yes)."""
        try:
            return bool(self.trading.call("runTriggers", position_ids, prices, sender=self.address))
        except AlpsimError:
            return True

    def _settled(self, request_ids: list[int], receipt: dict) -> dict:
        self.book.mark_handled(request_ids)
        self.book.observe(receipt)
        return receipt

    # ----- transactions to send together (a round's)
    def batch_gas(self, items: int) -> int:
        """An explicit gas limit for a batch of `items`: generous per item, within a block."""
        return min(max(TX_GAS_LIMIT, BATCH_GAS_PER_ITEM * items), self.session.block_gas_limit)

    def tx(self, function: str, *args: object, gas: int) -> dict:
        """The keeper's transaction calling `function` of the engine."""
        return {"from": self.address, "to": self.trading.address, "gas": gas,
                "data": self.trading.encode(function, *args)}

    def trigger_tx(self) -> dict | None:
        """The round's `runTriggers` ("tx") and its price inputs ("prices"): every open
        position, every priced pair (with no open position it still records the prices); None
        with nothing priced and nothing open. Refreshes the stale reference feeds first."""
        ids = sorted(self.book.open_positions)
        if not ids and not self.feeder.prices:
            return None
        prices = self.refresh_then_price(set(self.feeder.prices) | {self.book.open_positions[i] for i in ids})
        return {"tx": self.tx("runTriggers", ids, prices, gas=self.batch_gas(len(ids))), "prices": prices}

    def open_batch_tx(self, chunk: list[Revealed]) -> dict:
        orders = [o for _, o, _ in chunk]
        return self.tx("executeOpenBatch", [r.request_id for r, _, _ in chunk], orders, [s for _, _, s in chunk],
                       self.refresh_then_price([o[0] for o in orders]), gas=self.batch_gas(len(chunk)))

    def close_batch_tx(self, requests: list[PendingRequest]) -> dict:
        open_positions = self.book.open_positions
        pairs = {open_positions[r.position_id] for r in requests if r.position_id in open_positions}
        return self.tx("executeCloseBatch", [r.request_id for r in requests], self.refresh_then_price(pairs),
                       gas=self.batch_gas(len(requests)))

    def reject_tx(self, request: PendingRequest, reason: RejectReason) -> dict:
        return self.tx("rejectOpen", request.request_id, int(reason), gas=REJECT_GAS)
