"""The keeper: feeds prices, executes requests (decrypting hidden orders with its key), and
runs take-profit, stop-loss and liquidation triggers, many positions per transaction."""

from __future__ import annotations

from typing import TYPE_CHECKING

from eth_utils import keccak

from .deployment import KEEPER_ACCOUNT, feed_role
from .devnet.base import TX_GAS_LIMIT
from .keys import dev_private_key
from .orders import unseal
from .units import Number, to_units

if TYPE_CHECKING:
    from .client import Alpsim

ZERO_ADDRESS = "0x" + "00" * 20
REFERENCE_DECIMALS = 8
REFERENCE_REFRESH_S = 30
"""The devnet's reference feeds are refreshed when older than this (Chainlink's heartbeat)."""
BATCH_GAS_PER_ITEM = 400_000
"""Explicit gas per request or position of a batch (an open in a batch uses about 160,000)."""


class Keeper:
    """The bundled keeper of a deployed system. `prices` holds its current price per pair id
    (18-decimal USD)."""

    def __init__(self, sim: "Alpsim", private_key: bytes | None = None):
        self.sim = sim
        self.address = sim.deployment.keeper
        self.private_key = private_key if private_key is not None else dev_private_key(KEEPER_ACCOUNT)
        self.prices: dict[int, int] = {}
        self.reference_updated_at: dict[int, int] = {}
        self.auto_refresh_reference = True
        self.open_positions: dict[int, int] = {}  # position id -> pair id
        self.handled_requests: set[int] = set()

    @property
    def trading(self):  # noqa: ANN201
        return self.sim.contracts["trading"]

    # ----- prices
    def set_prices(self, prices: dict[str | int, Number], *, reference: bool = True) -> None:
        """Moves the keeper's prices (and, by default, the reference feeds) to `prices`."""
        for pair, price in prices.items():
            pair_id = self.sim.pair_id(pair)
            wad = to_units(price, 18, f"price of {pair}")
            self.prices[pair_id] = wad
            if reference:
                self.set_reference(pair_id, price)

    def set_reference(self, pair: str | int, price: Number) -> None:
        """Moves only the pair's reference feed (the Chainlink mock)."""
        pair_id = self.sim.pair_id(pair)
        answer = to_units(price, 18, f"price of {pair}") // 10 ** (18 - REFERENCE_DECIMALS)
        feed = self.sim.contracts[feed_role(self.sim.deployment.pairs[pair_id])]
        feed.transact("setAnswer", answer, sender=self.address)
        self.reference_updated_at[pair_id] = self.sim.devnet.timestamp

    def _price_inputs(self, pair_ids: set[int] | list[int]) -> list[tuple[int, int]]:
        inputs = []
        for pair_id in sorted(set(pair_ids)):
            if pair_id not in self.prices:
                continue
            if self.auto_refresh_reference:
                last = self.reference_updated_at.get(pair_id)
                if last is not None and self.sim.devnet.clock.next_timestamp - last > REFERENCE_REFRESH_S:
                    ref_price = self.sim.contracts["oracle"].call("referencePrice", pair_id)[0]
                    self.set_reference(pair_id, _wad_str(ref_price))
            inputs.append((pair_id, self.prices[pair_id]))
        return inputs

    def push_prices(self, pair_ids: list[int] | None = None) -> dict:
        """Records the keeper's prices on chain with no trade (indexes accrue)."""
        ids = list(self.prices) if pair_ids is None else pair_ids
        return self.trading.transact("updatePrices", self._price_inputs(ids), sender=self.address)

    # ----- requests
    def execute_open(self, request_id: int, ciphertext: bytes | None = None) -> dict:
        """Decrypts the request's order and executes it at the keeper's price."""
        if ciphertext is None:
            ciphertext = self._ciphertexts([request_id])[0]
        order, salt = self._reveal(ciphertext)
        receipt = self.trading.transact("executeOpen", request_id, order, salt, self._price_inputs([order[0]]),
                                        sender=self.address)
        self.handled_requests.add(request_id)
        self.observe(receipt)
        return receipt

    def execute_open_batch(self, request_ids: list[int], ciphertexts: list[bytes] | None = None) -> dict:
        """Decrypts the orders of `request_ids` (from `ciphertexts`, or found in the request
        logs) and executes them all in one transaction, with one price update for their pairs.
        A failed check rejects only its request (refunded less the execution fee); a request
        that cannot be executed reverts the whole batch."""
        if ciphertexts is None:
            ciphertexts = self._ciphertexts(request_ids)
        orders, salts = [], []
        for ciphertext in ciphertexts:
            order, salt = self._reveal(ciphertext)
            orders.append(order)
            salts.append(salt)
        prices = self._price_inputs([o[0] for o in orders])
        receipt = self.trading.transact("executeOpenBatch", list(request_ids), orders, salts, prices,
                                        sender=self.address, gas=self._batch_gas(len(request_ids)))
        self.handled_requests.update(request_ids)
        self.observe(receipt)
        return receipt

    def execute_close_batch(self, request_ids: list[int], position_ids: list[int] | None = None) -> dict:
        """Executes the close requests `request_ids` in one transaction, one price update for
        the pairs of their positions (`position_ids`, when the caller knows them, saves one
        read per request)."""
        if position_ids is None:
            position_ids = [self.trading.call("request", rid)["amountIn"] for rid in request_ids]
        unknown = [pid for pid in position_ids if pid not in self.open_positions]
        pairs = {self.open_positions[pid] for pid in position_ids if pid in self.open_positions}
        if unknown:
            pairs |= {raw["pairId"] for raw in self.trading.call("positionsOf", unknown)}
        receipt = self.trading.transact("executeCloseBatch", list(request_ids), self._price_inputs(pairs),
                                        sender=self.address, gas=self._batch_gas(len(request_ids)))
        self.handled_requests.update(request_ids)
        self.observe(receipt)
        return receipt

    def _batch_gas(self, items: int) -> int:
        """An explicit gas limit for a batch of `items`: generous per item, within a block."""
        return min(max(TX_GAS_LIMIT, BATCH_GAS_PER_ITEM * items), self.sim.devnet.block_gas_limit)

    def execute_close(self, request_id: int) -> dict:
        request = self.trading.call("request", request_id)
        position = self.trading.call("position", request["amountIn"])
        receipt = self.trading.transact("executeClose", request_id, self._price_inputs([position["pairId"]]),
                                        sender=self.address)
        self.handled_requests.add(request_id)
        self.observe(receipt)
        return receipt

    def run_triggers(self, position_ids: list[int] | None = None, price_pairs: set[int] | None = None) -> dict:
        """Checks the given (default: every open) position for liquidation, take-profit and
        stop-loss in one transaction, recording the prices of their pairs (and of
        `price_pairs`)."""
        ids = sorted(self.open_positions) if position_ids is None else position_ids
        pairs = {self.open_positions[i] for i in ids if i in self.open_positions} | set(price_pairs or ())
        receipt = self.trading.transact("runTriggers", ids, self._price_inputs(pairs), sender=self.address,
                                        gas=self._batch_gas(len(ids)))
        self.observe(receipt)
        return receipt

    def execute_pending(self) -> list[dict]:
        """Executes every pending request found in the logs (a keeper coming back online)."""
        receipts = []
        for request_id, kind, ciphertext in self.pending_requests():
            status = self.trading.call("request", request_id)
            if status["status"] != 1:
                continue
            if self.sim.devnet.block_number + 1 > status["blockNumber"] + 10:
                continue  # expired: the trader cancels
            if kind == "close" and self.trading.call("position", status["amountIn"])["trader"] == ZERO_ADDRESS:
                continue  # closed by a trigger since: nothing to execute
            receipts.append(self.execute_open(request_id, ciphertext) if kind == "open" else self.execute_close(request_id))
        return receipts

    def pending_requests(self) -> list[tuple[int, str, bytes | None]]:
        found = []
        for log in self._logs("OpenRequested(uint256,address,uint256,bytes32,bytes)"):
            event = self.sim.session.decode_log(log)
            found.append((event["requestId"], "open", bytes(event["encryptedOrder"])))
        for log in self._logs("CloseRequested(uint256,uint256,address)"):
            event = self.sim.session.decode_log(log)
            found.append((event["requestId"], "close", None))
        return sorted((r for r in found if r[0] not in self.handled_requests), key=lambda r: r[0])

    def sync(self) -> None:
        """Rebuilds the set of open positions from the logs (a new keeper picking up)."""
        self.open_positions.clear()
        opened = self._logs("PositionOpened(uint256,uint256,address,(address,uint32,bool,bool,uint16,uint64,uint256,"
                            "uint256,uint256,uint256,uint256,uint256,uint256,uint256,uint256,uint256,int256),"
                            "(uint256,uint256,uint256,uint256,uint256,uint256))")
        for log in opened:
            event = self.sim.session.decode_log(log)
            self.open_positions[event["positionId"]] = event["position"]["pairId"]
        for pid in list(self.open_positions):
            if self.trading.call("position", pid)["trader"] == "0x" + "00" * 20:
                del self.open_positions[pid]

    def _logs(self, signature: str) -> list:
        return self.sim.devnet.w3.eth.get_logs({
            "address": self.trading.address, "fromBlock": self.sim.deployment.block,
            "topics": ["0x" + keccak(text=signature).hex()],
        })

    def _ciphertexts(self, request_ids: list[int]) -> list[bytes]:
        """The encrypted orders of open requests, found in the request logs."""
        found = {rid: ct for rid, kind, ct in self.pending_requests() if kind == "open"}
        missing = [rid for rid in request_ids if rid not in found]
        if missing:
            raise LookupError(f"no open request {missing[0]} in the logs")
        return [found[rid] for rid in request_ids]

    def _reveal(self, ciphertext: bytes) -> tuple[tuple, bytes]:
        """The order (as the contract's Order tuple) and salt of an encrypted request."""
        order, salt = unseal(ciphertext, self.private_key)
        return (order.pair_id, order.is_long, order.leverage, order.take_profit, order.stop_loss,
                order.acceptable_price), salt

    def observe(self, receipt: dict) -> None:
        for event in self.sim.session.events(receipt, ("PositionOpened", "PositionClosed")):
            if event["event"] == "PositionOpened":
                self.open_positions[event["positionId"]] = event["position"]["pairId"]
            elif event["event"] == "PositionClosed":
                self.open_positions.pop(event["positionId"], None)


def _wad_str(wad: int) -> str:
    from .units import wad_to_decimal

    return str(wad_to_decimal(wad))
