"""The keeper's request book: the engine's requests and positions as its logs tell them.

It follows the chain with a log cursor (the last block whose logs it has read): each poll reads
the new blocks' logs (one eth_getLogs per range, filtered by the engine's address and the
watched events) and keeps the pending requests and the open positions in memory. A request
leaves the book when it is executed, rejected, cancelled, handled by this keeper, or expired
(its window of `expiry_blocks` blocks after its own is over)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from eth_utils import keccak

from ..errors import _abi_type

if TYPE_CHECKING:
    from ..contracts import BoundContract, Session
    from ..deployment import Deployment
    from ..devnet.base import ChainClock

MAX_LOG_RANGE_BLOCKS = 10_000
"""Blocks per eth_getLogs call (a start-up scan of a long history is split)."""
WATCHED_EVENTS = ("OpenRequested", "CloseRequested", "PositionOpened", "PositionClosed", "OpenRejected",
                  "CloseRejected", "RequestCancelled", "SettingsUpdated")
"""The trading engine's events the keeper follows."""
_RESOLVING = ("OpenRejected", "CloseRejected", "RequestCancelled")


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


def event_topics(abi: list[dict], names: tuple[str, ...]) -> dict[str, str]:
    """topic0 (0x hex) of each event of `abi` named in `names`."""
    out = {}
    for entry in abi:
        if entry.get("type") == "event" and entry["name"] in names:
            signature = f"{entry['name']}({','.join(_abi_type(p) for p in entry['inputs'])})"
            out[entry["name"]] = "0x" + keccak(text=signature).hex()
    return out


class RequestBook:
    """Pending requests (by id), open positions (position id -> pair id), the requests this
    keeper has handled, the log cursor and the engine's request window."""

    def __init__(self, session: "Session", trading: "BoundContract", deployment: "Deployment",
                 clock: "ChainClock"):
        self.session, self.trading, self.deployment, self.clock = session, trading, deployment, clock
        self.open_positions: dict[int, int] = {}
        self.handled_requests: set[int] = set()
        self.pending: dict[int, PendingRequest] = {}
        self.cursor: int | None = None
        """The last block whose logs the keeper has read; None until `sync()`."""
        self.expiry_blocks: int | None = None
        self._topics: dict[str, str] | None = None

    # ----- reading the logs
    def sync(self) -> None:
        """Rebuilds the open positions and pending requests from every log since deployment
        (a keeper starting up or taking over); the cursor then follows the head."""
        self.open_positions.clear()
        self.pending.clear()
        self.expiry_blocks = self.trading.call("settings")["requestExpiryBlocks"]
        self.cursor = self.deployment.block - 1
        head = self.clock.block_number
        self.poll(head)
        self.expire(head + 1)

    def poll(self, to_block: int | None = None) -> list[int]:
        """Reads the logs of blocks cursor+1 to `to_block` (default: the head) in one call and
        updates the pending requests and open positions; the ids of the requests it found
        still pending."""
        if self.cursor is None:
            self.sync()
            return sorted(self.pending)
        head = self.clock.block_number if to_block is None else to_block
        if head < self.cursor:  # the chain went back (a revert the keeper was not told of)
            self.sync()
            return sorted(self.pending)
        found = []
        for start in range(self.cursor + 1, head + 1, MAX_LOG_RANGE_BLOCKS):
            end = min(start + MAX_LOG_RANGE_BLOCKS - 1, head)
            for log in self.session.logs(self.trading.address, [list(self.watched_topics().values())], start, end):
                rid = self.apply(self.session.decode_log(log), log["blockNumber"])
                if rid is not None:
                    found.append(rid)
            self.cursor = end
        return [rid for rid in found if rid in self.pending]

    def watched_topics(self) -> dict[str, str]:
        """topic0 of each of WATCHED_EVENTS."""
        if self._topics is None:
            self._topics = event_topics(self.deployment.contracts["trading"].abi, WATCHED_EVENTS)
        return self._topics

    def apply(self, event: dict, block: int | None = None) -> int | None:
        """Updates the book with one engine event (mined in `block`); a new request's id."""
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
        for event in self.session.events(receipt, WATCHED_EVENTS):
            if event["address"].lower() == self.trading.address.lower():
                self.apply(event)

    def ciphertexts(self, request_ids: list[int]) -> list[bytes]:
        """The encrypted orders of open requests: from the pending requests, else from their
        request logs (one eth_getLogs filtered by request id)."""
        found = {rid: r.ciphertext for rid, r in self.pending.items() if r.kind == "open"}
        missing = [rid for rid in request_ids if rid not in found]
        if missing:
            topics = [self.watched_topics()["OpenRequested"], ["0x" + rid.to_bytes(32, "big").hex() for rid in missing]]
            for log in self.session.logs(self.trading.address, topics, self.deployment.block):
                event = self.session.decode_log(log)
                found[event["requestId"]] = bytes(event["encryptedOrder"])
        missing = [rid for rid in request_ids if rid not in found]
        if missing:
            raise LookupError(f"no open request {missing[0]} in the logs")
        return [found[rid] for rid in request_ids]

    # ----- settling
    def mark_handled(self, request_ids: list[int]) -> None:
        """The requests this keeper executed, rejected or gave up: out of the book for good."""
        self.handled_requests.update(request_ids)
        for rid in request_ids:
            self.pending.pop(rid, None)

    def expire(self, next_block: int) -> list[int]:
        """Drops the pending requests that cannot execute in `next_block` any more (their
        traders cancel them); their ids."""
        expiry = self.request_expiry_blocks()
        gone = [r.request_id for r in self.pending.values() if next_block > r.block + expiry]
        for rid in gone:
            del self.pending[rid]
        return gone

    def request_expiry_blocks(self) -> int:
        """The engine's request window in blocks (read once, then followed in the logs)."""
        if self.expiry_blocks is None:
            self.expiry_blocks = self.trading.call("settings")["requestExpiryBlocks"]
        return self.expiry_blocks

    def pending_requests(self) -> list[tuple[int, str, bytes | None]]:
        """The pending requests up to the head: (request id, "open" or "close", ciphertext of
        an open)."""
        self.poll()
        return [(r.request_id, r.kind, r.ciphertext if r.kind == "open" else None)
                for r in sorted(self.pending.values(), key=lambda r: r.request_id)]
