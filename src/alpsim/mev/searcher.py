"""A searcher on a devnet's public mempool (docs/mev.md): it reads pending transactions the way a
real searcher does (`eth_newPendingTransactionFilter`, `eth_getFilterChanges`,
`eth_getTransactionByHash`), decodes every pending `requestOpen` from its calldata (the engine's
ABI), and sends its own transactions with a higher priority fee, so that on a node that orders
a block by fee (anvil, a real chain's builder) they land ahead of the request they follow.

What a pending request shows: the trader, the escrowed amount, the commitment and the order's
bytes. A plain order (the research switch, `alpsim.orders.plain_frame`) shows pair, side,
leverage and so the notional; a hidden one shows none of them (`SeenRequest.order` is None).
The searcher needs an anvil with interval mining (`Alpsim.launch(..., backend="anvil",
block_time_s=...)`): with one block per transaction nothing is ever pending."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from eth_abi import decode as abi_decode
from eth_utils import keccak, to_checksum_address

from ..errors import ConfigError
from ..orders import UndecryptableOrder, is_plain_frame, read_plain_frame
from ..protocol import Order

if TYPE_CHECKING:
    from ..client import Alpsim

PRIORITY_FEE_WEI = 3 * 10**9
"""The searcher's tip (3 gwei) over the victims' 0: its transactions go first in a block."""
SEARCHER_GAS = 600_000
"""Explicit gas of each of the searcher's transactions (several fit a block with the victim's)."""
REQUEST_OPEN_SELECTOR = keccak(text="requestOpen(bytes32,bytes,uint256)")[:4]


@dataclass(frozen=True)
class SeenRequest:
    """A pending `requestOpen` as the searcher decoded it from the mempool."""

    tx_hash: str
    trader: str
    escrow_units: int
    """The amount sent (margin plus the execution fee): in the calldata, plain or hidden."""
    commitment: bytes
    frame: bytes
    order: Order | None
    """The order, read from a plain frame; None for a hidden one (or a malformed frame)."""
    pending_when_read: bool
    """True when the node still had it unmined when the searcher read it (blockNumber null)."""


class Searcher:
    """Watches the mempool of `sim`'s anvil for open requests and sends from dev account
    `account` with a priority fee."""

    def __init__(self, sim: "Alpsim", account: int):
        devnet = sim.devnet
        if not getattr(devnet, "block_time_s", None):
            raise ConfigError("the searcher needs alpsim's own anvil with interval mining "
                              "(Alpsim.launch(chain, backend='anvil', block_time_s=...)): "
                              "with a block per transaction nothing is ever pending")
        self.sim, self.address = sim, sim.address(account)
        self.rpc = devnet.rpc
        self.trading = sim.contracts["trading"].address.lower()
        self.filter_id = self.rpc("eth_newPendingTransactionFilter")
        self.seen: list[SeenRequest] = []
        """Every open request read, in the order read."""

    # ----- reading the mempool
    def poll(self) -> list[SeenRequest]:
        """The open requests that reached the mempool since the last poll."""
        try:
            hashes = self.rpc("eth_getFilterChanges", [self.filter_id])
        except Exception:  # noqa: BLE001 - a node forgets filters across evm_revert: watch afresh
            self.filter_id = self.rpc("eth_newPendingTransactionFilter")
            hashes = []
        out = []
        for tx_hash in hashes or []:
            tx = self.rpc("eth_getTransactionByHash", [tx_hash])
            seen = self.decode(tx) if tx else None
            if seen is not None:
                out.append(seen)
        self.seen += out
        return out

    def wait_for(self, tx_hash: str, timeout_s: float) -> SeenRequest | None:
        """Polls until the open request `tx_hash` shows up (None after `timeout_s`)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for seen in self.poll():
                if seen.tx_hash.lower() == tx_hash.lower():
                    return seen
            time.sleep(0.005)
        return None

    def decode(self, tx: dict[str, Any]) -> SeenRequest | None:
        """A `requestOpen` to the engine decoded from its calldata; None for anything else."""
        if (tx.get("to") or "").lower() != self.trading:
            return None
        data = bytes.fromhex(str(tx.get("input") or "0x")[2:])
        if data[:4] != REQUEST_OPEN_SELECTOR:
            return None
        try:
            commit, frame, amount = abi_decode(["bytes32", "bytes", "uint256"], data[4:])
        except Exception:  # noqa: BLE001 - hostile calldata: not a request the searcher can use
            return None
        order = None
        if is_plain_frame(frame):
            try:
                order = read_plain_frame(frame)[0]
            except UndecryptableOrder:
                order = None
        return SeenRequest(tx["hash"], to_checksum_address(tx["from"]), amount, bytes(commit), bytes(frame), order,
                           tx.get("blockNumber") is None)

    # ----- sending ahead
    def send_ahead(self, tx: dict) -> str:
        """Sends `tx` from the searcher with PRIORITY_FEE_WEI, not waiting for it; its hash."""
        full = {"from": self.address, "gas": SEARCHER_GAS, "value": 0, "maxFeePerGas": 200 * 10**9,
                "maxPriorityFeePerGas": PRIORITY_FEE_WEI, **tx}
        return self.sim.devnet.send_unmined(full)

    def receipt(self, tx_hash: str) -> dict:
        return self.sim.devnet.receipt_of(tx_hash)

    def request_open_tx(self, pair: int, side: str, amount_usd: Any, leverage: int) -> dict:
        """The searcher's own (hidden) open request, as a transaction to send ahead."""
        _, tx, *_ = self.sim._open_request(self.address, pair, side, amount_usd, leverage, 0, 0, 0)
        return tx

    def call_tx(self, role: str, function: str, *args: Any) -> dict:
        contract = self.sim.contracts[role]
        return {"to": contract.address, "data": contract.encode(function, *args)}


def wait_next_block(sim: "Alpsim", timeout_s: float = 30.0) -> int:
    """Waits for the node's next block (interval mining): what is sent now has a whole interval
    in the mempool before it is mined."""
    start = sim.devnet.block_number
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        head = sim.devnet.block_number
        if head > start:
            return head
        time.sleep(0.005)
    raise ConfigError(f"no new block within {timeout_s} s: is the node mining at an interval?")
