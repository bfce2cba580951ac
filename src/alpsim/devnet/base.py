"""What every devnet backend offers: a web3 connection presenting a chain profile, funded
accounts, transactions with decoded-ready revert data, snapshots, and a controlled clock; and
the reads the package makes of a chain (logs, blocks, code, mined transactions), so that nothing
outside `alpsim.devnet` talks web3."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

from web3 import Web3
from web3.providers.base import BaseProvider

from ..errors import AlpsimError
from ..profiles import ChainProfile

GENESIS_TIMESTAMP = 1_767_225_600
"""2026-01-01T00:00:00Z: every devnet starts here, so runs are reproducible."""

DEV_MNEMONIC = "test test test test test test test test test test test junk"
"""anvil's default mnemonic; the embedded backend derives the same ten accounts from it."""
DEV_HD_PATH = "m/44'/60'/0'/0"

TX_GAS_LIMIT = 15_000_000
"""Explicit gas for every devnet transaction: no estimation round trip, same on all backends."""
MAX_FEE_PER_GAS = 100 * 10**9
MAX_BLOCKS_PER_ADVANCE = 32
"""`advance_time` mines at most this many blocks (more than any block-count window of the
protocol, e.g. the 10-block request expiry); the last one is stamped at the target time."""


class TransactionReverted(AlpsimError):
    """Raw revert of a transaction or call; the contract layer decodes `data`."""

    def __init__(self, data: bytes, tx_hash: str | None = None, receipt: Any = None):
        self.data, self.tx_hash, self.receipt = data, tx_hash, receipt
        super().__init__(f"reverted: 0x{data.hex()}")


@dataclass
class BlockClock:
    """Simulated time in milliseconds. Each block is stamped `block_time_ms` after the previous
    one (timestamps are whole seconds, so sub-second block times give consecutive blocks the
    same timestamp, as on BNB Chain and Arbitrum)."""

    block_time_ms: int
    head_ms: int = GENESIS_TIMESTAMP * 1000

    @property
    def next_ms(self) -> int:
        return self.head_ms + self.block_time_ms

    @property
    def next_timestamp(self) -> int:
        return self.next_ms // 1000

    def plan_advance(self, seconds: float) -> list[int]:
        """Timestamps (ms) of the blocks that carry time forward by `seconds`."""
        if seconds < 0:
            raise ValueError("time only moves forward")
        target_ms = self.head_ms + round(seconds * 1000)
        if self.block_time_ms == 0:  # time held (Devnet.hold_time): one block at the target
            return [target_ms]
        blocks = min(max(math.ceil((target_ms - self.head_ms) / self.block_time_ms), 1), MAX_BLOCKS_PER_ADVANCE)
        stamps = [self.head_ms + self.block_time_ms * (i + 1) for i in range(blocks - 1)]
        stamps = [s for s in stamps if s < target_ms]
        return stamps + [max(target_ms, self.head_ms)]


@dataclass(frozen=True)
class Block:
    """A mined block, as far as the package reads one."""

    number: int
    timestamp: int
    hash: bytes


class ChainClock:
    """What a follower of the chain (the keeper) needs of time: the head block's number and
    timestamp, and the timestamp the next block will carry. A devnet's `chain_clock`."""

    def __init__(self, devnet: "Devnet"):
        self._devnet = devnet

    @property
    def block_number(self) -> int:
        return self._devnet.block_number

    @property
    def timestamp(self) -> int:
        """The head block's timestamp."""
        return self._devnet.timestamp

    @property
    def next_timestamp(self) -> int:
        """The next block's timestamp: the devnet clock's, or on a node that keeps its own
        time (not stamped by this client, whose clock then runs apart) its head's plus one."""
        devnet = self._devnet
        if devnet.stamp_blocks:
            return devnet.clock.next_timestamp
        return devnet.timestamp + 1


class Devnet(ABC):
    """A running chain for one profile. Use as a context manager; `close()` stops what it
    started."""

    backend_name: str = "devnet"
    block_gas_limit: int = 30_000_000
    """The most gas one block holds (anvil's default; the embedded devnet's genesis sets its own)."""
    exact_gas: bool = True
    """Whether receipts carry the gas a real chain would charge; a backend that cannot measure
    it exactly (revm) gives `gasUsed: None` instead of a wrong figure."""
    snapshots_outlive_revert: bool = True
    """Whether a snapshot can be reverted to again after a revert to it or to an older one
    (eth-tester, anvil); on revm a revert consumes its snapshot and every newer one."""
    stamp_blocks: bool = True
    """Whether this client stamps every block with its clock's time; False on a live node that
    keeps its own time (and that others also send to)."""

    def __init__(self, profile: ChainProfile):
        self.profile = profile
        self.clock = BlockClock(profile.block_time_ms)
        self.chain_clock = ChainClock(self)
        """Head block number and timestamp and the next block's timestamp, for a follower."""
        self.w3: Web3
        self._snapshot_clocks: dict[Any, int] = {}

    # ----- lifecycle
    def __enter__(self) -> "Devnet":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:  # noqa: B027 - backends with nothing to stop inherit this
        """Stops whatever the backend started."""

    # ----- identity and accounts
    @property
    def chain_id(self) -> int:
        return self.w3.eth.chain_id

    @property
    @abstractmethod
    def accounts(self) -> list[str]:
        """Funded accounts that can sign through the node (checksummed)."""

    @property
    def rpc_url(self) -> str | None:
        return None

    def web3_provider(self) -> BaseProvider:
        """A web3 provider for an outside script (`Web3(devnet.web3_provider())`), as a
        third-party script connects: an HTTP provider of the node's URL on an RPC devnet; the
        in-process provider on the embedded and revm backends, which have no URL."""
        return self.w3.provider

    # ----- reads
    def get_logs(self, address: str | list[str] | None, topics: list, from_block: int,
                 to_block: int | str = "latest") -> list[Any]:
        """The logs of `address` (one, several or None: any) matching `topics` (a list per
        position: None matches anything, a list any of its values) in blocks `from_block` to
        `to_block`, as eth_getLogs gives them (topics and data as bytes, blockNumber an int)."""
        query: dict[str, Any] = {"fromBlock": from_block, "toBlock": to_block, "topics": topics}
        if address is not None:
            query["address"] = address
        return self.w3.eth.get_logs(query)

    def block(self, number: int | str = "latest") -> Block:
        """Block `number` (or "latest")."""
        block = self.w3.eth.get_block(number)
        return Block(block["number"], block["timestamp"], bytes(block["hash"]))

    def code_at(self, address: str) -> bytes:
        """The code deployed at `address` (b"" for none)."""
        return bytes(self.w3.eth.get_code(address))

    def mined_transaction(self, tx_hash: Any) -> dict:
        """{"to", "data"} of a mined transaction."""
        mined = self.w3.eth.get_transaction(tx_hash)
        return {"to": mined["to"], "data": bytes(mined["input"])}

    # ----- many transactions in one block
    def send_many(self, txs: list[dict]) -> list[dict]:
        """Sends `txs` (each with an explicit `gas`, like `send`) in as few blocks as their gas
        limits allow, in order, and returns their receipts; the first reverted one raises
        TransactionReverted (the others are mined all the same)."""
        receipts: list[dict] = []
        block_gas = 0
        chunk: list[dict] = []
        for tx in txs:
            full = _complete(tx)
            if chunk and block_gas + full["gas"] > self.block_gas_limit:
                receipts += self._send_block(chunk)
                chunk, block_gas = [], 0
            chunk.append(full)
            block_gas += full["gas"]
        if chunk:
            receipts += self._send_block(chunk)
        for receipt in receipts:
            self._raise_if_reverted(receipt["transactionHash"], receipt)
        return receipts

    def send_block(self, txs: list[dict]) -> list[dict]:
        """Sends `txs` in order into one block (a live node that mines on its own may spread
        them) and returns their receipts, reverted ones included: a revert raises nothing here,
        its receipt has status 0 and `revert_data` gives its data."""
        return self._send_block([_complete(tx) for tx in txs])

    def revert_data(self, tx_hash: Any) -> bytes:
        """The revert data of a mined transaction that reverted (b"" for one that did not)."""
        return self._revert_data(tx_hash)

    def send_pipelined(self, txs: list[dict]) -> list[dict]:
        """Sends `txs` in order and returns their receipts, reverted ones included (status 0;
        `revert_data` gives their data; a revert is never retried). On a node that keeps its
        own time (`RpcDevnet` not stamping blocks) all are sent before any receipt is awaited,
        so a chain that mines on a timer puts them in one block; where this client stamps the
        blocks, each gets its own block, mined before the next is sent, as `send` does."""
        receipts = []
        for tx in txs:
            self._before_block()
            tx_hash = self._send(_complete(tx))
            self._after_block()
            receipts.append(self._receipt(tx_hash))
        return receipts

    def _send_block(self, txs: list[dict]) -> list[dict]:
        """One block holding `txs` (complete transactions); their receipts, reverted or not.
        Backends that cannot hold transactions back send them one block each."""
        out = []
        for tx in txs:
            self._before_block()
            tx_hash = self._send(tx)
            self._after_block()
            out.append(self._receipt(tx_hash))
        return out

    # ----- transactions and calls
    def send(self, tx: dict) -> dict:
        """Sends `tx` (from, to or data, value) with an explicit gas limit and returns its
        receipt; a reverted transaction raises TransactionReverted with its revert data."""
        self._before_block()
        tx_hash = self._send(_complete(tx))
        self._after_block()
        receipt = self._receipt(tx_hash)
        self._raise_if_reverted(tx_hash, receipt)
        return receipt

    def _raise_if_reverted(self, tx_hash: Any, receipt: Any) -> None:
        if receipt["status"] != 1:
            hex_hash = tx_hash if isinstance(tx_hash, str) else Web3.to_hex(tx_hash)
            raise TransactionReverted(self._revert_data(tx_hash), hex_hash, receipt)

    def _receipt(self, tx_hash: Any) -> Any:
        return self.w3.eth.get_transaction_receipt(tx_hash)

    def call(self, tx: dict, block: int | str = "latest") -> bytes:
        """Executes `tx` as a call; a revert raises TransactionReverted with its data."""
        return self._call({"value": 0, **tx}, block)

    @abstractmethod
    def _send(self, tx: dict) -> Any: ...

    @abstractmethod
    def _call(self, tx: dict, block: int | str) -> bytes: ...

    @abstractmethod
    def _revert_data(self, tx_hash: Any) -> bytes: ...

    def _before_block(self) -> None:
        """Stamps the next block with the clock's time."""

    def _after_block(self) -> None:
        self.clock.head_ms = self.clock.next_ms

    # ----- time
    @property
    def timestamp(self) -> int:
        """Timestamp of the latest block."""
        return self.w3.eth.get_block("latest")["timestamp"]

    @property
    def block_number(self) -> int:
        return self.w3.eth.block_number

    def mine(self, blocks: int = 1) -> None:
        """Mines `blocks` empty blocks, each one block time after the previous."""
        for _ in range(blocks):
            self._mine_at(self.clock.next_ms)

    def advance_time(self, seconds: float) -> None:
        """Moves time forward by `seconds`: blocks at the profile's block time (at most
        MAX_BLOCKS_PER_ADVANCE of them), the last one stamped exactly `seconds` later."""
        for stamp_ms in self.clock.plan_advance(seconds):
            self._mine_at(stamp_ms)

    @contextmanager
    def hold_time(self) -> Iterator[None]:
        """Within: every block gets the timestamp of the latest one (time moves only by
        `advance_time`), so a workload accrues and prices the same whatever its number of
        blocks."""
        saved = self.clock.block_time_ms
        self.clock.block_time_ms = 0
        self._hold_time(True)
        try:
            yield
        finally:
            self.clock.block_time_ms = saved
            self._hold_time(False)

    def _hold_time(self, held: bool) -> None:
        """Backends whose node keeps its own clock stop it here (and restart it)."""

    @abstractmethod
    def _mine_at(self, stamp_ms: int) -> None:
        """Mines one empty block stamped `stamp_ms // 1000`, and moves the clock there."""

    # ----- snapshots
    def snapshot(self) -> Any:
        snap = self._snapshot()
        self._snapshot_clocks[snap] = self.clock.head_ms
        return snap

    def revert(self, snap: Any) -> None:
        self._revert(snap)
        self.clock.head_ms = self._snapshot_clocks[snap]
        self._after_revert()

    @abstractmethod
    def _snapshot(self) -> Any: ...

    @abstractmethod
    def _revert(self, snap: Any) -> None: ...

    def _after_revert(self) -> None:
        pass


def _complete(tx: dict) -> dict:
    """`tx` with the devnet's explicit gas limit and fees where it names none."""
    return {"gas": TX_GAS_LIMIT, "maxFeePerGas": MAX_FEE_PER_GAS, "maxPriorityFeePerGas": 0, "value": 0, **tx}
