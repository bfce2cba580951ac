"""The keeper's round: the request book, the prices and the executions put together.

A round (`Round.run`) reads the new blocks' logs; applies the keeper's prices of every priced
pair in the transaction that runs every open position's triggers (SPEC rule 5.8); then executes
the opens it has checked and the closes in batches, and rejects on chain (`rejectOpen`) the
opens whose order does not decrypt, parse or match its commitment. One bad request never blocks
the others: a batch that reverts is retried without the request its error names, or one request
at a time; a request that fails alone is logged and not retried. An error in one phase is
logged and the next phase runs."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterator, Literal

from ..errors import AlpsimError, NodeError
from ..protocol import RejectReason
from .book import PendingRequest
from .executions import MAX_BATCH_REQUESTS, REJECTED_STATUS, REJECT_GAS, Revealed, named_request

if TYPE_CHECKING:
    from ..contracts import Session
    from ..devnet.base import ChainClock
    from .book import RequestBook
    from .executions import Executions

Log = Callable[[str], None]


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


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


class Round:
    """One round (or one `execute_pending`) of a keeper, and its report. `poll` reads the new
    logs into the book (the keeper's own `poll`)."""

    def __init__(self, book: "RequestBook", executions: "Executions", session: "Session", clock: "ChainClock",
                 poll: Callable[[int | None], list[int]], log: Log):
        self.book, self.executions, self.session, self.clock = book, executions, session, clock
        self.poll, self.log = poll, log
        self.report = RoundReport()

    def run(self) -> RoundReport:
        """Logs, then prices and triggers, then the requests (see the module's docstring). On
        a node that keeps its own time the requests' transactions go back to back after the
        triggers (one block on a chain that mines on a timer); closes wait for the triggers'
        receipt when a trigger would close one of their positions (then skipped, with no
        transaction)."""
        self.report.started_s = time.monotonic()
        try:
            self.report.head_block = self.clock.block_number
            self.poll(self.report.head_block)
        except Exception as exc:  # noqa: BLE001 - the round goes on
            self._error("reading logs", exc)
        trigger_tx = None
        try:
            trigger_tx = self.executions.trigger_tx()
        except Exception as exc:  # noqa: BLE001
            self._error("prices and triggers", exc)
        opens: list[Revealed] = []
        closes: list[PendingRequest] = []
        bad: list[tuple[PendingRequest, RejectReason]] = []
        try:
            opens, closes, bad = self._sort_pending()
        except Exception as exc:  # noqa: BLE001
            self._error("requests", exc)
        try:
            closes = self._first_wave(trigger_tx, opens, closes, bad)
        except Exception as exc:  # noqa: BLE001
            self._error("requests", exc)
        try:
            self._settle_closes(closes)
        except Exception as exc:  # noqa: BLE001
            self._error("closes", exc)
        return self.report

    def execute_pending(self) -> list[dict]:
        """Executes (or rejects) every pending request up to the head, with no trigger run;
        the receipts."""
        self.poll(None)
        opens, closes, bad = self._sort_pending()
        self._settle_closes(self._first_wave(None, opens, closes, bad))
        return self.report.receipts

    def _error(self, phase: str, exc: BaseException) -> None:
        message = f"{phase}: {_describe(exc)}"
        self.report.errors.append(message)
        self.log(f"keeper: {message}")

    def _sort_pending(self) -> tuple[list[Revealed], list[PendingRequest], list[tuple[PendingRequest, RejectReason]]]:
        """The pending requests executable in the next block: opens checked (order and salt),
        closes, and opens to reject (with the reason). Expired ones are dropped."""
        next_block = self.clock.block_number + 1
        self.report.expired += self.book.expire(next_block)
        opens, closes, bad = [], [], []
        pending = self.book.pending
        for request in sorted(pending.values(), key=lambda r: r.request_id):
            if request.request_id in self.book.handled_requests:
                del pending[request.request_id]
            elif request.block >= next_block:
                continue  # not executable before the block after its own
            elif request.kind == "close":
                closes.append(request)
            else:
                verdict = self.executions.classify(request)
                if isinstance(verdict, RejectReason):
                    bad.append((request, verdict))
                else:
                    opens.append((request, *verdict))
        return opens, closes, bad

    def _close_still_due(self, request: PendingRequest) -> bool:
        """False for a close of a position already gone (closed by a trigger, or liquidated):
        nothing to execute, no transaction."""
        if request.position_id in self.book.open_positions:
            return True
        self.report.skipped.append(request.request_id)
        self.book.mark_handled([request.request_id])
        return False

    def _settle_closes(self, closes: list[PendingRequest]) -> None:
        for chunk in _chunks([(r,) for r in closes if self._close_still_due(r)], MAX_BATCH_REQUESTS):
            self._settle("close", chunk)

    def _first_wave(self, trigger_tx: dict | None, opens: list[Revealed], closes: list[PendingRequest],
                    bad: list[tuple[PendingRequest, RejectReason]]) -> list[PendingRequest]:
        """The triggers, then the open batches, the close batches (unless the triggers would
        close one of their positions) and (on a node that keeps its own time) the rejections,
        sent together; each outcome then settled in that order. The closes left for after."""
        executions = self.executions
        closes = [r for r in closes if self._close_still_due(r)]
        later: list[PendingRequest] = []
        if closes and trigger_tx is not None and executions.triggers_close_any([r.position_id for r in closes],
                                                                               trigger_tx["prices"]):
            closes, later = [], closes  # a trigger closes one of them: they go once it is mined
        # each transaction before one may take a block of its own (a node mining one per transaction)
        ahead = int(trigger_tx is not None)
        chunks = list(_chunks(self._in_window(opens, ahead), MAX_BATCH_REQUESTS))
        close_chunks = list(_chunks(self._in_window([(r,) for r in closes], ahead + len(chunks)), MAX_BATCH_REQUESTS))
        txs = [trigger_tx["tx"]] if trigger_tx is not None else []
        txs += [executions.open_batch_tx(chunk) for chunk in chunks]
        txs += [executions.close_batch_tx([r for r, in chunk]) for chunk in close_chunks]
        together = self.session.pipelined
        if together:
            bad = self._in_window(bad, len(txs))
            txs += [executions.reject_tx(r, reason) for r, reason in bad]
        outcomes = self.session.send_each(txs)
        if trigger_tx is not None:
            outcome = outcomes.pop(0)
            if isinstance(outcome, AlpsimError):
                self._error("prices and triggers", outcome)
            else:
                self._triggered(outcome)
        for kind, chunk_list in (("open", chunks), ("close", close_chunks)):
            for chunk in chunk_list:
                outcome = outcomes.pop(0)
                ids = [item[0].request_id for item in chunk]
                if isinstance(outcome, AlpsimError):
                    self._settle(kind, chunk, first=outcome)
                else:
                    self.book.mark_handled(ids)
                    self.book.observe(outcome)
                    self._executed(outcome, ids)
        if together:
            self._rejected(bad, outcomes)
        elif bad:
            self._reject_all(bad)
        return later

    def _triggered(self, receipt: dict) -> None:
        report = self.report
        self.book.observe(receipt)
        report.receipts.append(receipt)
        report.trigger_receipt, report.trigger_block = receipt, receipt["blockNumber"]
        events = self.session.events(receipt, ("PriceUpdated", "PositionClosed"))
        report.price_pairs = [e["pairId"] for e in events if e["event"] == "PriceUpdated"]
        report.triggered = [e["positionId"] for e in events if e["event"] == "PositionClosed"]

    def _reject_all(self, bad: list[tuple[PendingRequest, RejectReason]]) -> None:
        """The `rejectOpen` transactions of the unusable opens, sent together (one block on a
        devnet that holds transactions back)."""
        bad = self._in_window(bad)
        if not bad:
            return
        try:
            outcomes: list = self.session.send_many([self.executions.reject_tx(r, reason) for r, reason in bad])
        except NodeError:
            raise
        except AlpsimError as exc:  # which one reverted is read from the chain below
            self.log(f"keeper: rejections {[r.request_id for r, _ in bad]} failed ({_describe(exc)}): one by one")
            outcomes = [None] * len(bad)
        self._rejected(bad, outcomes)

    def _rejected(self, bad: list[tuple[PendingRequest, RejectReason]], outcomes: list) -> None:
        """Settles each rejection from its outcome: a receipt; a revert (the request is left
        out as a batch's would be); or unknown (None): then the chain says whether it went
        through, else it is sent alone."""
        trading, report = self.executions.trading, self.report
        for (request, reason), outcome in zip(bad, outcomes):
            rid = request.request_id
            if isinstance(outcome, AlpsimError):
                self._left_out(request, outcome)
                continue
            if outcome is None and trading.call("request", rid)["status"] != REJECTED_STATUS:
                try:
                    outcome = trading.transact("rejectOpen", rid, int(reason), sender=self.executions.address,
                                               gas=REJECT_GAS)
                except NodeError:
                    raise
                except AlpsimError as alone:
                    self._failed(rid, alone)
                    continue
            self.book.mark_handled([rid])
            report.rejected[rid] = reason
            if outcome is not None:
                self.book.observe(outcome)
                report.receipts.append(outcome)
                report.events += self.session.events(outcome, ("OpenRejected",))

    def _in_window(self, items: list[tuple], blocks_ahead: int = 0) -> list[tuple]:
        """The items (a PendingRequest first) whose request can still execute `blocks_ahead`
        blocks after the next; the others expire here, with no transaction (their traders
        cancel them)."""
        next_block = self.clock.block_number + 1 + blocks_ahead
        expiry, keep = self.book.request_expiry_blocks(), []
        for item in items:
            request = item[0]
            if next_block > request.block + expiry:
                self.report.expired.append(request.request_id)
                self.book.pending.pop(request.request_id, None)
            else:
                keep.append(item)
        return keep

    def _settle(self, kind: Literal["open", "close"], chunk: list[tuple], first: AlpsimError | None = None) -> None:
        """Executes a chunk of checked requests in one batch (`first`: how a batch of it sent
        already reverted). When the batch reverts anyway, the request its error names is left
        out and the rest retried as a batch; when the error names none, each request alone."""
        executions, error = self.executions, first
        while True:
            if error is None:
                chunk = self._in_window(chunk)
                if not chunk:
                    return
                ids = [item[0].request_id for item in chunk]
                try:
                    if kind == "open":
                        receipt = executions.execute_open_batch_revealed(ids, [o for _, o, _ in chunk],
                                                                         [s for _, _, s in chunk])
                    else:
                        receipt = executions.execute_close_batch(ids, [r.position_id for r, in chunk])
                except NodeError:
                    raise
                except AlpsimError as exc:
                    error = exc
                else:
                    self._executed(receipt, ids)
                    return
            ids = [item[0].request_id for item in chunk]
            culprit = named_request(error, [item[0] for item in chunk])
            if culprit is None:
                self.log(f"keeper: {kind} batch {ids} failed ({_describe(error)}): executing them one by one")
                break
            self.log(f"keeper: {kind} batch {ids} failed ({_describe(error)}): retrying without {culprit.request_id}")
            self._left_out(culprit, error)
            chunk, error = [item for item in chunk if item[0] is not culprit], None
        for item in chunk:
            if not self._in_window([item]):
                continue
            request = item[0]
            try:
                if kind == "open":
                    receipt = executions.execute_open_revealed(request.request_id, item[1], item[2])
                else:
                    receipt = executions.execute_close(request.request_id, request.position_id)
            except NodeError:
                raise
            except AlpsimError as alone:
                self._failed(request.request_id, alone)
                continue
            self._executed(receipt, [request.request_id])

    def _left_out(self, request: PendingRequest, exc: AlpsimError) -> None:
        """A request a batch's revert named: expired, settled by someone else, or failed."""
        name = type(exc).__name__
        if name == "RequestNotExecutable":
            self.report.expired.append(request.request_id)
            self.book.mark_handled([request.request_id])
        elif name in ("RequestNotPending", "PositionNotOpen"):
            self.report.skipped.append(request.request_id)
            self.book.mark_handled([request.request_id])
        else:
            self._failed(request.request_id, exc)

    def _executed(self, receipt: dict, ids: list[int]) -> None:
        self.report.receipts.append(receipt)
        self.report.executed += ids
        self.report.events += self.session.events(
            receipt, ("PositionOpened", "OpenRejected", "PositionClosed", "CloseRejected"))

    def _failed(self, request_id: int, exc: BaseException) -> None:
        """A request that fails alone: logged and marked handled (not retried)."""
        self.report.failed.append(request_id)
        self.book.mark_handled([request_id])
        self.log(f"keeper: request {request_id} failed: {_describe(exc)}")
