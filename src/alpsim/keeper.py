"""The keeper: feeds prices, executes requests (decrypting hidden orders with its key), rejects
the orders it cannot use, and runs take-profit, stop-loss and liquidation triggers, many
positions per transaction.

It follows the chain block by block: a log cursor (the last block whose logs it has read) and
the pending requests in memory, so that each round reads only the new blocks' logs. A round
(`run_round`) first applies its prices in the transaction that runs every open position's
triggers (SPEC rule 5.8), then executes the requests it has checked; an order that does not
decrypt, parse or match its commitment is rejected on chain (`rejectOpen`) and never blocks
the others."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterator, Literal, Protocol

from eth_utils import keccak

from .deployment import KEEPER_ACCOUNT, feed_role
from .devnet.base import MAX_FEE_PER_GAS, TX_GAS_LIMIT
from .errors import AlpsimError, NodeError, _abi_type
from .keys import decrypt_with, dev_private_key
from .orders import ORDER_ECIES, UndecryptableOrder, commitment, decode_order, unseal
from .protocol import Order, RejectReason
from .units import Number, to_units

if TYPE_CHECKING:
    from .contracts import BoundContract, Session
    from .deployment import Deployment
    from .devnet import Devnet

REFERENCE_DECIMALS = 8
REFERENCE_REFRESH_S = 30
"""The devnet's reference feeds are refreshed when older than this (Chainlink's heartbeat)."""
BATCH_GAS_PER_ITEM = 400_000
"""Explicit gas per request or position of a batch (an open in a batch uses about 160,000)."""
MAX_BATCH_REQUESTS = 50
"""Requests per batch transaction: 50 x 400,000 gas fits a 30,000,000-gas block, and stays
under the engine's 100 executions per pair per block."""
REJECT_GAS = 250_000
"""Explicit gas of a `rejectOpen` (it uses about 70,000): many fit in one block."""
REJECTED_STATUS = 3
"""RequestStatus.Rejected in Types.sol."""
REFERENCE_GAS = 500_000
"""Explicit gas of a reference feed's `setAnswer`."""
RECEIPT_TIMEOUT_S = 60
SEND_RETRY_S = 0.1
MAX_LOG_RANGE_BLOCKS = 10_000
"""Blocks per eth_getLogs call (a start-up scan of a long history is split)."""
WATCHED_EVENTS = ("OpenRequested", "CloseRequested", "PositionOpened", "PositionClosed", "OpenRejected",
                  "CloseRejected", "RequestCancelled", "SettingsUpdated")
"""The trading engine's events the keeper follows."""
_RESOLVING = ("OpenRejected", "CloseRejected", "RequestCancelled")


class KeeperHost(Protocol):
    """What the keeper uses of a client (`alpsim.client.Alpsim` is one)."""

    deployment: "Deployment"
    devnet: "Devnet"
    session: "Session"
    contracts: dict[str, "BoundContract"]

    def pair_id(self, pair: str | int) -> int: ...


@dataclass(frozen=True)
class PendingRequest:
    """A request seen in the logs and not yet executed, rejected, cancelled or expired."""

    request_id: int
    kind: Literal["open", "close"]
    trader: str
    block: int
    """The block the request was mined in: executable in the next `expiry_blocks` blocks."""
    ciphertext: bytes = b""
    commitment: bytes = b""
    position_id: int = 0
    """Close requests: the position to close."""


@dataclass
class KeeperState:
    """Everything a Keeper keeps between rounds (`Keeper.state()` / `restore()`)."""

    prices: dict[int, int]
    reference_updated_at: dict[int, int]
    reference_prices: dict[int, int]
    auto_refresh_reference: bool
    open_positions: dict[int, int]
    handled_requests: set[int]
    pending: dict[int, PendingRequest]
    cursor: int | None
    expiry_blocks: int | None


@dataclass
class RoundReport:
    """What one round did. Request ids; `events` are the decoded outcomes of its executions."""

    head_block: int = 0
    """The chain head the round processed logs up to."""
    started_s: float = 0.0
    """`time.monotonic()` at the round's start."""
    trigger_block: int | None = None
    trigger_receipt: dict | None = None
    price_pairs: list[int] = field(default_factory=list)
    """Pairs whose price the round's trigger transaction recorded (PriceUpdated)."""
    triggered: list[int] = field(default_factory=list)
    """Positions closed by the round's triggers (take-profit, stop-loss, liquidation)."""
    executed: list[int] = field(default_factory=list)
    """Requests executed: opened or closed, or turned down by a check at execution."""
    rejected: dict[int, RejectReason] = field(default_factory=dict)
    """Opens the keeper rejected on chain (`rejectOpen`), with the reason."""
    expired: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    """Requests left with nothing to do (a close of a position already gone, a request settled
    by another keeper)."""
    failed: list[int] = field(default_factory=list)
    """Requests that failed even alone (logged, not retried)."""
    errors: list[str] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)
    receipts: list[dict] = field(default_factory=list)


def event_topics(abi: list[dict], names: tuple[str, ...]) -> dict[str, str]:
    """topic0 (0x hex) of each event of `abi` named in `names`."""
    out = {}
    for entry in abi:
        if entry.get("type") == "event" and entry["name"] in names:
            signature = f"{entry['name']}({','.join(_abi_type(p) for p in entry['inputs'])})"
            out[entry["name"]] = "0x" + keccak(text=signature).hex()
    return out


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _named_request(exc: AlpsimError, requests: list[PendingRequest]) -> PendingRequest | None:
    """The request of `requests` a revert names (by request id, or by position for a close)."""
    args = getattr(exc, "error_args", {})
    for request in requests:
        if args.get("requestId") == request.request_id:
            return request
        if request.kind == "close" and "requestId" not in args and args.get("positionId") == request.position_id:
            return request
    return None


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


class Keeper:
    """The bundled keeper of a deployed system. `prices` holds its current price per pair id
    (18-decimal USD)."""

    def __init__(self, sim: KeeperHost, private_key: bytes | None = None):
        self.sim = sim
        self.address = sim.deployment.keeper
        self.private_key = private_key if private_key is not None else dev_private_key(KEEPER_ACCOUNT)
        self.prices: dict[int, int] = {}
        self.reference_updated_at: dict[int, int] = {}
        self.reference_prices: dict[int, int] = {}
        """The reference feeds' answers as this keeper last set them (18-decimal USD)."""
        self.auto_refresh_reference = True
        self.open_positions: dict[int, int] = {}  # position id -> pair id
        self.handled_requests: set[int] = set()
        self.pending: dict[int, PendingRequest] = {}
        self.cursor: int | None = None
        """The last block whose logs the keeper has read; None until `sync()`."""
        self.expiry_blocks: int | None = None
        self._topics: dict[str, str] | None = None

    @property
    def trading(self) -> "BoundContract":
        return self.sim.contracts["trading"]

    # ----- state
    def state(self) -> KeeperState:
        """A copy of everything the keeper keeps (for snapshots)."""
        return KeeperState(dict(self.prices), dict(self.reference_updated_at), dict(self.reference_prices),
                           self.auto_refresh_reference, dict(self.open_positions), set(self.handled_requests),
                           dict(self.pending), self.cursor, self.expiry_blocks)

    def restore(self, state: KeeperState) -> None:
        self.prices, self.reference_updated_at = dict(state.prices), dict(state.reference_updated_at)
        self.reference_prices = dict(state.reference_prices)
        self.auto_refresh_reference = state.auto_refresh_reference
        self.open_positions, self.handled_requests = dict(state.open_positions), set(state.handled_requests)
        self.pending, self.cursor, self.expiry_blocks = dict(state.pending), state.cursor, state.expiry_blocks

    # ----- prices
    def set_prices(self, prices: dict[str | int, Number], *, reference: bool = True) -> None:
        """Moves the keeper's prices (and, by default, the reference feeds) to `prices`."""
        moved = {}
        for pair, price in prices.items():
            pair_id = self.sim.pair_id(pair)
            self.prices[pair_id] = moved[pair_id] = to_units(price, 18, f"price of {pair}")
        if reference:
            self._set_references(moved)

    def set_reference(self, pair: str | int, price: Number) -> None:
        """Moves only the pair's reference feed (the Chainlink mock)."""
        self._set_references({self.sim.pair_id(pair): to_units(price, 18, f"price of {pair}")})

    def _set_references(self, prices: dict[int, int]) -> None:
        """Moves the reference feeds of the pairs of `prices` (18-decimal USD, kept to the
        feeds' 8 decimals), their transactions sent together."""
        scale = 10 ** (18 - REFERENCE_DECIMALS)
        answers = {pair_id: wad // scale for pair_id, wad in prices.items()}
        feeds = {pair_id: self.sim.contracts[feed_role(self.sim.deployment.pairs[pair_id])] for pair_id in answers}
        outcomes = self._send_together([{"from": self.address, "to": feeds[pair_id].address, "gas": REFERENCE_GAS,
                                         "data": feeds[pair_id].encode("setAnswer", answer)}
                                        for pair_id, answer in answers.items()])
        if not outcomes:
            return
        now = self.sim.devnet.timestamp
        for (pair_id, answer), outcome in zip(answers.items(), outcomes):
            if not isinstance(outcome, AlpsimError):
                self.reference_prices[pair_id], self.reference_updated_at[pair_id] = answer * scale, now
        failed = [o for o in outcomes if isinstance(o, AlpsimError)]
        if failed:
            raise failed[0]

    def follow_references(self, max_gap_bps: int) -> list[int]:
        """Moves the reference feed of every priced pair whose keeper price is more than
        `max_gap_bps` from it (or that this keeper never set), as a Chainlink feed updates on
        deviation; the heartbeat is `_price_inputs`'s. The pairs moved."""
        moved = {}
        for pair_id, wad in sorted(self.prices.items()):
            ref = self.reference_prices.get(pair_id)
            if ref is None or abs(wad - ref) * 10_000 > max_gap_bps * ref:
                moved[pair_id] = wad
        self._set_references(moved)
        return list(moved)

    def _price_inputs(self, pair_ids: set[int] | list[int]) -> list[tuple[int, int]]:
        """The keeper's prices of `pair_ids` (those it has), as the engine takes them; first
        refreshes the reference feeds older than REFERENCE_REFRESH_S at their own answers."""
        priced = sorted(p for p in set(pair_ids) if p in self.prices)
        if self.auto_refresh_reference:
            seen = [p for p in priced if p in self.reference_updated_at]
            next_timestamp = self._next_timestamp() if seen else 0
            stale = [p for p in seen if next_timestamp - self.reference_updated_at[p] > REFERENCE_REFRESH_S]
            self._set_references({p: self.sim.contracts["oracle"].call("referencePrice", p)[0] for p in stale})
        return [(pair_id, self.prices[pair_id]) for pair_id in priced]

    def _next_timestamp(self) -> int:
        """The next block's timestamp: the devnet clock's, or on a node that keeps its own
        time (not stamped by this client, whose clock then runs apart) its head's."""
        devnet = self.sim.devnet
        if getattr(devnet, "stamp_blocks", True):
            return devnet.clock.next_timestamp
        return devnet.timestamp + 1

    def push_prices(self, pair_ids: list[int] | None = None) -> dict:
        """Records the keeper's prices on chain with no trade (indexes accrue)."""
        ids = list(self.prices) if pair_ids is None else pair_ids
        return self.trading.transact("updatePrices", self._price_inputs(ids), sender=self.address)

    # ----- requests, one call each
    def execute_open(self, request_id: int, ciphertext: bytes | None = None) -> dict:
        """Decrypts the request's order and executes it at the keeper's price."""
        if ciphertext is None:
            ciphertext = self._ciphertexts([request_id])[0]
        order, salt = self._reveal(ciphertext)
        return self._execute_open_revealed(request_id, order, salt)

    def _execute_open_revealed(self, request_id: int, order: tuple, salt: bytes) -> dict:
        receipt = self.trading.transact("executeOpen", request_id, order, salt, self._price_inputs([order[0]]),
                                        sender=self.address)
        self._handled([request_id])
        self.observe(receipt)
        return receipt

    def execute_open_batch(self, request_ids: list[int], ciphertexts: list[bytes] | None = None) -> dict:
        """Decrypts the orders of `request_ids` (from `ciphertexts`, or found in the request
        logs) and executes them all in one transaction, with one price update for their pairs.
        A failed check rejects only its request (refunded less the execution fee); a request
        that cannot be executed reverts the whole batch."""
        if ciphertexts is None:
            ciphertexts = self._ciphertexts(request_ids)
        revealed = [self._reveal(ciphertext) for ciphertext in ciphertexts]
        return self._execute_open_batch_revealed(list(request_ids), [o for o, _ in revealed], [s for _, s in revealed])

    def _execute_open_batch_revealed(self, request_ids: list[int], orders: list[tuple], salts: list[bytes]) -> dict:
        prices = self._price_inputs([o[0] for o in orders])
        receipt = self.trading.transact("executeOpenBatch", request_ids, orders, salts, prices,
                                        sender=self.address, gas=self._batch_gas(len(request_ids)))
        self._handled(request_ids)
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
        self._handled(request_ids)
        self.observe(receipt)
        return receipt

    def _batch_gas(self, items: int) -> int:
        """An explicit gas limit for a batch of `items`: generous per item, within a block."""
        return min(max(TX_GAS_LIMIT, BATCH_GAS_PER_ITEM * items), self.sim.devnet.block_gas_limit)

    def execute_close(self, request_id: int, position_id: int | None = None) -> dict:
        if position_id is None:
            position_id = self.trading.call("request", request_id)["amountIn"]
        pair_id = self.open_positions.get(position_id)
        if pair_id is None:
            pair_id = self.trading.call("position", position_id)["pairId"]
        receipt = self.trading.transact("executeClose", request_id, self._price_inputs([pair_id]),
                                        sender=self.address)
        self._handled([request_id])
        self.observe(receipt)
        return receipt

    def reject_open(self, request_id: int, reason: RejectReason | int) -> dict:
        """Rejects an open whose order the keeper cannot use (UndecryptableOrder or
        MalformedOrder): the trader is refunded less the execution fee, which the keeper
        keeps."""
        receipt = self.trading.transact("rejectOpen", request_id, int(reason), sender=self.address, gas=REJECT_GAS)
        self._handled([request_id])
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

    def classify(self, request: PendingRequest) -> tuple[tuple, bytes] | RejectReason:
        """The order (as the contract's Order tuple) and salt of a pending open, or why the
        keeper must reject it: a ciphertext its key does not open (UndecryptableOrder); a
        plaintext that does not parse or whose commitment is not the request's
        (MalformedOrder)."""
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
        return _order_tuple(order), salt

    # ----- following the chain
    def sync(self) -> None:
        """Rebuilds the open positions and pending requests from every log since deployment
        (a keeper starting up or taking over); the cursor then follows the head."""
        self.open_positions.clear()
        self.pending.clear()
        self.expiry_blocks = self.trading.call("settings")["requestExpiryBlocks"]
        self.cursor = self.sim.deployment.block - 1
        head = self.sim.devnet.block_number
        self.poll(head)
        self._expire(head + 1)

    def poll(self, to_block: int | None = None) -> list[int]:
        """Reads the logs of blocks cursor+1 to `to_block` (default: the head) in one call and
        updates the pending requests and open positions; the ids of the requests it found
        still pending."""
        if self.cursor is None:
            self.sync()
            return sorted(self.pending)
        head = self.sim.devnet.block_number if to_block is None else to_block
        if head < self.cursor:  # the chain went back (a revert the keeper was not told of)
            self.sync()
            return sorted(self.pending)
        found = []
        for start in range(self.cursor + 1, head + 1, MAX_LOG_RANGE_BLOCKS):
            end = min(start + MAX_LOG_RANGE_BLOCKS - 1, head)
            logs = self.sim.devnet.w3.eth.get_logs({
                "address": self.trading.address, "fromBlock": start, "toBlock": end,
                "topics": [list(self._watched_topics().values())],
            })
            for log in logs:
                rid = self._apply(self.sim.session.decode_log(log), log["blockNumber"])
                if rid is not None:
                    found.append(rid)
            self.cursor = end
        return [rid for rid in found if rid in self.pending]

    def _watched_topics(self) -> dict[str, str]:
        if self._topics is None:
            self._topics = event_topics(self.sim.deployment.contracts["trading"].abi, WATCHED_EVENTS)
        return self._topics

    def _apply(self, event: dict, block: int | None = None) -> int | None:
        """Updates the keeper's books with one engine event; a new request's id."""
        name = event["event"]
        if name == "OpenRequested":
            rid = event["requestId"]
            if rid not in self.handled_requests:
                self.pending[rid] = PendingRequest(rid, "open", event["trader"], block, bytes(event["encryptedOrder"]),
                                                   bytes(event["commitment"]))
                return rid
        elif name == "CloseRequested":
            rid = event["requestId"]
            if rid not in self.handled_requests:
                self.pending[rid] = PendingRequest(rid, "close", event["trader"], block,
                                                   position_id=event["positionId"])
                return rid
        elif name == "PositionOpened":
            self.open_positions[event["positionId"]] = event["position"]["pairId"]
            self.pending.pop(event["requestId"], None)
        elif name == "PositionClosed":
            # a pending close of it is skipped at its round (no transaction)
            self.open_positions.pop(event["positionId"], None)
        elif name in _RESOLVING:
            self.pending.pop(event["requestId"], None)
        elif name == "SettingsUpdated":
            self.expiry_blocks = event["settings"]["requestExpiryBlocks"]
        return None

    def observe(self, receipt: dict) -> None:
        """Applies the engine events of one of the keeper's own receipts."""
        for event in self.sim.session.events(receipt, WATCHED_EVENTS):
            if event["address"].lower() == self.trading.address.lower():
                self._apply(event)

    def _handled(self, request_ids: list[int]) -> None:
        self.handled_requests.update(request_ids)
        for rid in request_ids:
            self.pending.pop(rid, None)

    def _expire(self, next_block: int) -> list[int]:
        """Drops the pending requests that cannot execute in `next_block` any more (their
        traders cancel them)."""
        expiry = self._expiry_blocks()
        gone = [r.request_id for r in self.pending.values() if next_block > r.block + expiry]
        for rid in gone:
            del self.pending[rid]
        return gone

    def _expiry_blocks(self) -> int:
        if self.expiry_blocks is None:
            self.expiry_blocks = self.trading.call("settings")["requestExpiryBlocks"]
        return self.expiry_blocks

    def pending_requests(self) -> list[tuple[int, str, bytes | None]]:
        """The pending requests up to the head: (request id, "open" or "close", ciphertext of
        an open)."""
        self.poll()
        return [(r.request_id, r.kind, r.ciphertext if r.kind == "open" else None)
                for r in sorted(self.pending.values(), key=lambda r: r.request_id)]

    # ----- rounds
    def run_round(self, log: Callable[[str], None] = lambda message: None) -> RoundReport:
        """One round, at the keeper's current prices: reads the new blocks' logs; applies every
        priced pair's price in the transaction that runs the triggers of every open position;
        then executes the checked opens and closes and rejects the unusable opens. On a node
        that keeps its own time these are sent back to back after the triggers (one block on a
        chain that mines on a timer); closes wait for the triggers' receipt when a trigger
        would close one of their positions (then skipped, no transaction). An error in one
        phase is logged and the next phase runs."""
        report = RoundReport(started_s=time.monotonic())
        try:
            report.head_block = self.sim.devnet.block_number
            self.poll(report.head_block)
        except Exception as exc:  # noqa: BLE001 - the round goes on
            self._error(report, log, "reading logs", exc)
        trigger_tx = None
        try:
            trigger_tx = self._trigger_tx()
        except Exception as exc:  # noqa: BLE001
            self._error(report, log, "prices and triggers", exc)
        opens: list[tuple[PendingRequest, tuple, bytes]] = []
        closes: list[PendingRequest] = []
        bad: list[tuple[PendingRequest, RejectReason]] = []
        try:
            opens, closes, bad = self._sort_pending(report)
        except Exception as exc:  # noqa: BLE001
            self._error(report, log, "requests", exc)
        try:
            closes = self._first_wave(trigger_tx, opens, closes, bad, report, log)
        except Exception as exc:  # noqa: BLE001
            self._error(report, log, "requests", exc)
        try:
            for chunk in _chunks([(r,) for r in closes if self._close_still_due(r, report)], MAX_BATCH_REQUESTS):
                self._settle("close", chunk, report, log)
        except Exception as exc:  # noqa: BLE001
            self._error(report, log, "closes", exc)
        return report

    def execute_pending(self, log: Callable[[str], None] = lambda message: None) -> list[dict]:
        """Executes (or rejects) every pending request up to the head, with no trigger run;
        the receipts."""
        self.poll()
        report = RoundReport()
        opens, closes, bad = self._sort_pending(report)
        closes = self._first_wave(None, opens, closes, bad, report, log)
        for chunk in _chunks([(r,) for r in closes if self._close_still_due(r, report)], MAX_BATCH_REQUESTS):
            self._settle("close", chunk, report, log)
        return report.receipts

    @staticmethod
    def _error(report: RoundReport, log: Callable[[str], None], phase: str, exc: BaseException) -> None:
        message = f"{phase}: {_describe(exc)}"
        report.errors.append(message)
        log(f"keeper: {message}")

    def _trigger_tx(self) -> dict | None:
        """The round's `runTriggers` ("tx") and its price inputs ("prices"): every open
        position, every priced pair (with no open position it still records the prices); None
        with nothing priced and nothing open."""
        ids = sorted(self.open_positions)
        if not ids and not self.prices:
            return None
        prices = self._price_inputs(set(self.prices) | {self.open_positions[i] for i in ids})
        return {"tx": self._tx("runTriggers", ids, prices, gas=self._batch_gas(len(ids))), "prices": prices}

    def _sort_pending(self, report: RoundReport
                      ) -> tuple[list[tuple[PendingRequest, tuple, bytes]], list[PendingRequest],
                                 list[tuple[PendingRequest, RejectReason]]]:
        """The pending requests executable in the next block: opens checked (order and salt),
        closes, and opens to reject (with the reason). Expired ones are dropped."""
        next_block = self.sim.devnet.block_number + 1
        report.expired += self._expire(next_block)
        opens, closes, bad = [], [], []
        for request in sorted(self.pending.values(), key=lambda r: r.request_id):
            if request.request_id in self.handled_requests:
                del self.pending[request.request_id]
            elif request.block >= next_block:
                continue  # not executable before the block after its own
            elif request.kind == "close":
                closes.append(request)
            else:
                verdict = self.classify(request)
                if isinstance(verdict, RejectReason):
                    bad.append((request, verdict))
                else:
                    opens.append((request, *verdict))
        return opens, closes, bad

    def _close_still_due(self, request: PendingRequest, report: RoundReport) -> bool:
        """False for a close of a position already gone (closed by a trigger, or liquidated):
        nothing to execute, no transaction."""
        if request.position_id in self.open_positions:
            return True
        report.skipped.append(request.request_id)
        self._handled([request.request_id])
        return False

    def _first_wave(self, trigger_tx: dict | None, opens: list[tuple[PendingRequest, tuple, bytes]],
                    closes: list[PendingRequest], bad: list[tuple[PendingRequest, RejectReason]],
                    report: RoundReport, log: Callable[[str], None]) -> list[PendingRequest]:
        """The triggers, then the open batches, the close batches (unless the triggers would
        close one of their positions) and (on a node that keeps its own time) the rejections,
        sent together; each outcome then settled in that order. The closes left for after."""
        closes = [r for r in closes if self._close_still_due(r, report)]
        later: list[PendingRequest] = []
        if closes and trigger_tx is not None and self._triggers_close_any([r.position_id for r in closes],
                                                                         trigger_tx["prices"]):
            closes, later = [], closes  # a trigger closes one of them: they go once it is mined
        # each transaction before one may take a block of its own (a node mining one per transaction)
        ahead = int(trigger_tx is not None)
        chunks = list(_chunks(self._in_window(opens, report, ahead), MAX_BATCH_REQUESTS))
        close_chunks = list(_chunks(self._in_window([(r,) for r in closes], report, ahead + len(chunks)),
                                    MAX_BATCH_REQUESTS))
        txs = [trigger_tx["tx"]] if trigger_tx is not None else []
        txs += [self._open_batch_tx(chunk) for chunk in chunks]
        txs += [self._close_batch_tx([r for r, in chunk]) for chunk in close_chunks]
        together = self._pipelined()
        if together:
            bad = self._in_window(bad, report, len(txs))
            txs += [self._tx("rejectOpen", r.request_id, int(reason), gas=REJECT_GAS) for r, reason in bad]
        outcomes = self._send_together(txs)
        if trigger_tx is not None:
            outcome = outcomes.pop(0)
            if isinstance(outcome, AlpsimError):
                self._error(report, log, "prices and triggers", outcome)
            else:
                self._triggered(report, outcome)
        for kind, chunk_list in (("open", chunks), ("close", close_chunks)):
            for chunk in chunk_list:
                outcome = outcomes.pop(0)
                ids = [item[0].request_id for item in chunk]
                if isinstance(outcome, AlpsimError):
                    self._settle(kind, chunk, report, log, first=outcome)
                else:
                    self._handled(ids)
                    self.observe(outcome)
                    self._executed(report, outcome, ids)
        if together:
            self._rejected(bad, outcomes, report, log)
        elif bad:
            self._reject_all(bad, report, log)
        return later

    def _triggers_close_any(self, position_ids: list[int], prices: list[tuple[int, int]]) -> bool:
        """Whether the triggers at `prices` would close one of the positions now (a call; a
        revert counts as yes)."""
        try:
            return bool(self.trading.call("runTriggers", position_ids, prices, sender=self.address))
        except AlpsimError:
            return True

    def _triggered(self, report: RoundReport, receipt: dict) -> None:
        self.observe(receipt)
        report.receipts.append(receipt)
        report.trigger_receipt, report.trigger_block = receipt, receipt["blockNumber"]
        events = self.sim.session.events(receipt, ("PriceUpdated", "PositionClosed"))
        report.price_pairs = [e["pairId"] for e in events if e["event"] == "PriceUpdated"]
        report.triggered = [e["positionId"] for e in events if e["event"] == "PositionClosed"]

    def _open_batch_tx(self, chunk: list[tuple[PendingRequest, tuple, bytes]]) -> dict:
        orders = [o for _, o, _ in chunk]
        return self._tx("executeOpenBatch", [r.request_id for r, _, _ in chunk], orders, [s for _, _, s in chunk],
                        self._price_inputs([o[0] for o in orders]), gas=self._batch_gas(len(chunk)))

    def _close_batch_tx(self, requests: list[PendingRequest]) -> dict:
        pairs = {self.open_positions[r.position_id] for r in requests if r.position_id in self.open_positions}
        return self._tx("executeCloseBatch", [r.request_id for r in requests], self._price_inputs(pairs),
                        gas=self._batch_gas(len(requests)))

    def _tx(self, function: str, *args: object, gas: int) -> dict:
        return {"from": self.address, "to": self.trading.address, "gas": gas,
                "data": self.trading.encode(function, *args)}

    def _pipelined(self) -> bool:
        """Whether the round's transactions go back to back: on a node that keeps its own time
        (not stamped block by block by this client)."""
        return not getattr(self.sim.devnet, "stamp_blocks", True)

    def _send_together(self, txs: list[dict]) -> list[dict | AlpsimError]:
        """Each transaction's receipt, or its revert decoded. On a node that keeps its own
        time all are sent before any receipt is awaited: a chain that mines on a timer puts
        them in one block, in this order (one sender, consecutive nonces); elsewhere each is
        sent when the one before it is mined."""
        out: list[dict | AlpsimError] = []
        if not self._pipelined():
            for tx in txs:
                try:
                    out.append(self.sim.session.send(tx))
                except NodeError:
                    raise
                except AlpsimError as exc:
                    out.append(exc)
            return out
        w3 = self.sim.devnet.w3
        hashes = [self._send_now({"maxFeePerGas": MAX_FEE_PER_GAS, "maxPriorityFeePerGas": 0, "value": 0, **tx})
                  for tx in txs]
        for tx_hash in hashes:
            receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=RECEIPT_TIMEOUT_S, poll_latency=0.01)
            if receipt["status"] == 1:
                out.append(receipt)
                continue
            trace = self.sim.devnet.rpc("debug_traceTransaction", [w3.to_hex(tx_hash), {"tracer": "callTracer"}])
            out.append(self.sim.session.decoder.decode((trace or {}).get("output") or "0x", w3.to_hex(tx_hash)))
        return out

    def _send_now(self, tx: dict) -> bytes:
        """eth_sendTransaction (the node signs and numbers it); a refusal is retried once a
        moment later (a node's pending nonce can lag a just-mined transaction)."""
        try:
            return self.sim.devnet.w3.eth.send_transaction(tx)
        except NodeError:
            raise
        except Exception:  # noqa: BLE001 - web3 raises ValueError subclasses for a refusal
            time.sleep(SEND_RETRY_S)
            return self.sim.devnet.w3.eth.send_transaction(tx)

    def _reject_all(self, bad: list[tuple[PendingRequest, RejectReason]], report: RoundReport,
                    log: Callable[[str], None]) -> None:
        """The `rejectOpen` transactions of the unusable opens, sent together (one block on a
        devnet that holds transactions back)."""
        bad = self._in_window(bad, report)
        if not bad:
            return
        try:
            outcomes: list = self.sim.session.send_many(
                [self._tx("rejectOpen", r.request_id, int(reason), gas=REJECT_GAS) for r, reason in bad])
        except NodeError:
            raise
        except AlpsimError as exc:  # which one reverted is read from the chain below
            log(f"keeper: rejections {[r.request_id for r, _ in bad]} failed ({_describe(exc)}): one by one")
            outcomes = [None] * len(bad)
        self._rejected(bad, outcomes, report, log)

    def _rejected(self, bad: list[tuple[PendingRequest, RejectReason]], outcomes: list, report: RoundReport,
                  log: Callable[[str], None]) -> None:
        """Settles each rejection from its outcome: a receipt; a revert (the request is left
        out as a batch's would be); or unknown (None): then the chain says whether it went
        through, else it is sent alone."""
        for (request, reason), outcome in zip(bad, outcomes):
            rid = request.request_id
            if isinstance(outcome, AlpsimError):
                self._left_out(report, log, request, outcome)
                continue
            if outcome is None and self.trading.call("request", rid)["status"] != REJECTED_STATUS:
                try:
                    outcome = self.trading.transact("rejectOpen", rid, int(reason), sender=self.address,
                                                    gas=REJECT_GAS)
                except NodeError:
                    raise
                except AlpsimError as alone:
                    self._failed(report, log, rid, alone)
                    continue
            self._handled([rid])
            report.rejected[rid] = reason
            if outcome is not None:
                self.observe(outcome)
                report.receipts.append(outcome)
                report.events += self.sim.session.events(outcome, ("OpenRejected",))

    def _in_window(self, items: list[tuple], report: RoundReport, blocks_ahead: int = 0) -> list[tuple]:
        """The items (a PendingRequest first) whose request can still execute `blocks_ahead`
        blocks after the next; the others expire here, with no transaction (their traders
        cancel them)."""
        next_block = self.sim.devnet.block_number + 1 + blocks_ahead
        expiry, keep = self._expiry_blocks(), []
        for item in items:
            request = item[0]
            if next_block > request.block + expiry:
                report.expired.append(request.request_id)
                self.pending.pop(request.request_id, None)
            else:
                keep.append(item)
        return keep

    def _settle(self, kind: Literal["open", "close"], chunk: list[tuple], report: RoundReport,
                log: Callable[[str], None], first: AlpsimError | None = None) -> None:
        """Executes a chunk of checked requests in one batch (`first`: how a batch of it sent
        already reverted). When the batch reverts anyway, the request its error names is left
        out and the rest retried as a batch; when the error names none, each request alone.
        One bad request never blocks the others."""
        error = first
        while True:
            if error is None:
                chunk = self._in_window(chunk, report)
                if not chunk:
                    return
                ids = [item[0].request_id for item in chunk]
                try:
                    if kind == "open":
                        receipt = self._execute_open_batch_revealed(ids, [o for _, o, _ in chunk],
                                                                    [s for _, _, s in chunk])
                    else:
                        receipt = self.execute_close_batch(ids, [r.position_id for r, in chunk])
                except NodeError:
                    raise
                except AlpsimError as exc:
                    error = exc
                else:
                    self._executed(report, receipt, ids)
                    return
            ids = [item[0].request_id for item in chunk]
            culprit = _named_request(error, [item[0] for item in chunk])
            if culprit is None:
                log(f"keeper: {kind} batch {ids} failed ({_describe(error)}): executing them one by one")
                break
            log(f"keeper: {kind} batch {ids} failed ({_describe(error)}): retrying without {culprit.request_id}")
            self._left_out(report, log, culprit, error)
            chunk, error = [item for item in chunk if item[0] is not culprit], None
        for item in chunk:
            if not self._in_window([item], report):
                continue
            request = item[0]
            try:
                if kind == "open":
                    receipt = self._execute_open_revealed(request.request_id, item[1], item[2])
                else:
                    receipt = self.execute_close(request.request_id, request.position_id)
            except NodeError:
                raise
            except AlpsimError as alone:
                self._failed(report, log, request.request_id, alone)
                continue
            self._executed(report, receipt, [request.request_id])

    def _left_out(self, report: RoundReport, log: Callable[[str], None], request: PendingRequest,
                  exc: AlpsimError) -> None:
        """A request a batch's revert named: expired, settled by someone else, or failed."""
        name = type(exc).__name__
        if name == "RequestNotExecutable":
            report.expired.append(request.request_id)
            self._handled([request.request_id])
        elif name in ("RequestNotPending", "PositionNotOpen"):
            report.skipped.append(request.request_id)
            self._handled([request.request_id])
        else:
            self._failed(report, log, request.request_id, exc)

    def _executed(self, report: RoundReport, receipt: dict, ids: list[int]) -> None:
        report.receipts.append(receipt)
        report.executed += ids
        report.events += self.sim.session.events(
            receipt, ("PositionOpened", "OpenRejected", "PositionClosed", "CloseRejected"))

    def _failed(self, report: RoundReport, log: Callable[[str], None], request_id: int, exc: BaseException) -> None:
        """A request that fails alone: logged and marked handled (not retried)."""
        report.failed.append(request_id)
        self._handled([request_id])
        log(f"keeper: request {request_id} failed: {_describe(exc)}")

    # ----- orders
    def _ciphertexts(self, request_ids: list[int]) -> list[bytes]:
        """The encrypted orders of open requests: from the pending requests, else from their
        request logs (one eth_getLogs filtered by request id)."""
        found = {rid: r.ciphertext for rid, r in self.pending.items() if r.kind == "open"}
        missing = [rid for rid in request_ids if rid not in found]
        if missing:
            topic = self._watched_topics()["OpenRequested"]
            logs = self.sim.devnet.w3.eth.get_logs({
                "address": self.trading.address, "fromBlock": self.sim.deployment.block,
                "topics": [topic, ["0x" + rid.to_bytes(32, "big").hex() for rid in missing]],
            })
            for log in logs:
                event = self.sim.session.decode_log(log)
                found[event["requestId"]] = bytes(event["encryptedOrder"])
        missing = [rid for rid in request_ids if rid not in found]
        if missing:
            raise LookupError(f"no open request {missing[0]} in the logs")
        return [found[rid] for rid in request_ids]

    def _reveal(self, ciphertext: bytes) -> tuple[tuple, bytes]:
        """The order (as the contract's Order tuple) and salt of an encrypted request."""
        order, salt = unseal(ciphertext, self.private_key)
        return _order_tuple(order), salt


def _order_tuple(order: Order) -> tuple:
    return (order.pair_id, order.is_long, order.leverage, order.take_profit, order.stop_loss, order.acceptable_price)
