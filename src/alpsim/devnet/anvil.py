"""The anvil devnet: a real node started from `node_modules` (npm `@foundry-rs/anvil`) on a
free 127.0.0.1 port, or any node reached by its RPC URL."""

from __future__ import annotations

import atexit
import ctypes
import platform
import signal
import socket
import shutil
import subprocess
import sys
import tempfile
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from eth_utils import to_checksum_address
from web3 import HTTPProvider, Web3
from requests.exceptions import ConnectionError as RequestsConnectionError
from requests.exceptions import Timeout as RequestsTimeout
from web3.exceptions import Web3RPCError

from ..errors import ConfigError, NodeError
from ..paths import ProjectPaths, find_project
from ..profiles import ChainProfile
from .base import DEV_MNEMONIC, GENESIS_TIMESTAMP, Devnet, TransactionReverted, _complete

START_TIMEOUT_S = 20.0
RECEIPT_TIMEOUT_S = 60
SEND_RETRY_DELAYS_S = (0.05, 0.1, 0.2, 0.4, 0.8)
"""Waits before each new try of a pipelined transaction the node refused for a transient
reason (1.55 s in all)."""
TRANSIENT_REFUSALS = ("nonce too low", "already known", "replacement transaction underpriced")
"""What a node answers to a transaction whose nonce it has not caught up with: right after a
receipt, anvil's pending nonce (eth_getTransactionCount "pending") can lag the transaction just
mined for some 100 ms. Any other refusal, and any revert, is final."""


def anvil_binary(paths: ProjectPaths | None = None) -> Path:
    """The native anvil that npm installed for this platform."""
    paths = paths or find_project()
    system = {"linux": "linux", "darwin": "darwin", "win32": "win32"}.get(sys.platform, sys.platform)
    machine = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(
        platform.machine().lower(), platform.machine().lower())
    binary = paths.node_modules / "@foundry-rs" / f"anvil-{system}-{machine}" / "bin" / "anvil"
    if not binary.is_file():
        raise ConfigError(f"anvil not found at {binary}: run `npm ci` (make does it for you)")
    return binary


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    """Linux: the kernel kills anvil if this Python process dies, even by SIGKILL."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


MAX_PERSISTED_STATES = 64
"""States of past blocks anvil keeps on disk beyond those in memory (a trace of an older
transaction is then refused; alpsim traces the transaction that just failed)."""
_RUNNING: "weakref.WeakSet[AnvilProcess]" = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    for proc in list(_RUNNING):
        proc.stop()


class AnvilProcess:
    """One anvil child process, stopped on `stop()`, at interpreter exit, or with its parent."""

    def __init__(self, chain_id: int, *, port: int | None = None, fork_url: str | None = None,
                 hardfork: str = "cancun", extra_args: list[str] | None = None, accounts: int = 10):
        self.port = port or free_port()
        self.fork_url = fork_url
        """The RPC URL of the chain this node forks, or None for a fresh chain."""
        args = [
            str(anvil_binary()), "--host", "127.0.0.1", "--port", str(self.port),
            "--chain-id", str(chain_id), "--hardfork", hardfork,
            "--mnemonic", DEV_MNEMONIC, "--accounts", str(accounts),
        ]
        if fork_url:
            args += ["--fork-url", fork_url]
        else:
            args += ["--timestamp", str(GENESIS_TIMESTAMP)]
        # anvil keeps recent states in memory and writes older ones to disk (by default under
        # ~/.foundry/anvil/tmp, left behind when a process is killed: a long run wrote tens of
        # GB there). Its own folder, at most MAX_PERSISTED_STATES states, removed on stop.
        self._cache = tempfile.mkdtemp(prefix="alpsim-anvil-states-")
        args += ["--cache-path", self._cache, "--max-persisted-states", str(MAX_PERSISTED_STATES)]
        args += extra_args or []
        # anvil's own log goes to a file: it says when anvil is listening (an answer on the
        # port alone could come from another process), and why it failed if it did
        self._log = tempfile.NamedTemporaryFile(prefix="alpsim-anvil-", suffix=".log", delete=False)
        self.popen = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
        _RUNNING.add(self)
        self.url = f"http://127.0.0.1:{self.port}"
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log_text(self) -> str:
        try:
            return Path(self._log.name).read_text(errors="replace")
        except OSError:
            return ""

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        listening = f"Listening on 127.0.0.1:{self.port}"
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                tail = " ".join(self.log_text().strip().splitlines()[-3:])
                raise NodeError(f"anvil exited with code {self.popen.returncode} on port {self.port}: {tail}")
            if listening in self.log_text():
                return
            time.sleep(0.02)
        raise NodeError(f"anvil did not listen on {self.url} within {START_TIMEOUT_S:.0f} s")

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self._log.close()
        Path(self._log.name).unlink(missing_ok=True)
        shutil.rmtree(self._cache, ignore_errors=True)
        _RUNNING.discard(self)


class _NodeProvider(HTTPProvider):
    """HTTP JSON-RPC whose connection failures raise NodeError (an AlpsimError): a node that
    went away is a clear error, not a transport traceback. The node's chain id is asked once:
    web3's request validation asks for it before every call and transaction otherwise (one
    extra round trip each), and a running node's chain id does not change."""

    _chain_id_response = None

    def make_request(self, method, params):  # noqa: ANN001, ANN201
        if method == "eth_chainId" and self._chain_id_response is not None:
            return self._chain_id_response
        try:
            response = super().make_request(method, params)
        except (OSError, RequestsConnectionError, RequestsTimeout) as exc:
            raise NodeError(f"the node at {self.endpoint_uri} does not answer ({method}): "
                            f"{type(exc).__name__}") from exc
        if method == "eth_chainId" and "result" in response:
            self._chain_id_response = response
        return response


class RpcDevnet(Devnet):
    """A devnet reached over JSON-RPC (anvil or any node with unlocked dev accounts)."""

    backend_name = "rpc"

    def __init__(self, profile: ChainProfile, url: str, *, check_chain_id: bool = True, stamp_blocks: bool = True):
        super().__init__(profile)
        self.url = url
        self.stamp_blocks = stamp_blocks
        """False on a live node that others also send to: the node keeps its own time."""
        self._mine_on_send = False
        self._next_nonces: dict[str, int] = {}
        """Per sender, the nonce after the last one `send_pipelined` used (the node's count
        can lag it)."""
        self.w3 = Web3(_NodeProvider(url, request_kwargs={"timeout": 60}))
        try:
            self._chain_id = self.w3.eth.chain_id
        except NodeError:
            raise
        except Exception as exc:
            raise NodeError(f"no node answers at {url}: {exc}") from exc
        if check_chain_id and self._chain_id != profile.chain_id:
            raise ConfigError(f"node at {url} reports chain id {self._chain_id}, profile {profile.name!r} "
                              f"expects {profile.chain_id}")
        self._accounts = [to_checksum_address(a) for a in self.w3.eth.accounts]
        latest = self.w3.eth.get_block("latest")
        self.clock.head_ms = max(self.clock.head_ms, latest["timestamp"] * 1000)

    @property
    def accounts(self) -> list[str]:
        return list(self._accounts)

    @property
    def chain_id(self) -> int:
        return self._chain_id

    @property
    def rpc_url(self) -> str:
        return self.url

    def web3_provider(self) -> HTTPProvider:
        return HTTPProvider(self.url, request_kwargs={"timeout": RECEIPT_TIMEOUT_S})

    def rpc(self, method: str, params: list | None = None) -> Any:
        response = self.w3.provider.make_request(method, params or [])
        if "error" in response:
            raise NodeError(f"{method} failed: {response['error'].get('message')}")
        return response.get("result")

    @contextmanager
    def blocks_on_demand(self) -> Iterator[None]:
        """Within: on a node that mines at an interval, each transaction this client sends is
        mined at once (`evm_mine` right after the send) instead of waiting for the node's next
        block, so a deployment of some sixty transactions on 0.75 s blocks takes seconds, not
        45. Other senders' transactions are unaffected (they ride in those blocks or wait for
        the interval as before)."""
        self._mine_on_send = True
        try:
            yield
        finally:
            self._mine_on_send = False

    def _after_block(self) -> None:
        if self._mine_on_send:
            self.rpc("evm_mine", [])
        super()._after_block()

    def _before_block(self) -> None:
        if self.stamp_blocks:
            self.rpc("evm_setNextBlockTimestamp", [self.clock.next_timestamp])

    def _send(self, tx: dict) -> Any:
        return self.w3.eth.send_transaction(tx)

    def _receipt(self, tx_hash: Any) -> Any:
        # a node may answer the send before the block with the receipt is in
        return self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=RECEIPT_TIMEOUT_S, poll_latency=0.01)

    def send_pipelined(self, txs: list[dict]) -> list[dict]:
        """On a node that keeps its own time: every transaction sent (numbered by this client,
        consecutive nonces per sender) before any receipt is awaited, so a chain that mines on a
        timer puts them in one block, in this order. A send the node refuses for a transient
        reason (TRANSIENT_REFUSALS) is tried again after a backoff; any other refusal raises."""
        if self.stamp_blocks:
            return super().send_pipelined(txs)
        nonces: dict[str, int] = {}
        hashes = [self._send_numbered(_complete(tx), nonces) for tx in txs]
        return [self._receipt(tx_hash) for tx_hash in hashes]

    def send_unmined(self, tx: dict) -> str:
        """Sends `tx` (the devnet's gas and fees where it names none) and returns its hash at
        once: on a node that mines at an interval it waits in the public mempool, where
        others (a searcher, docs/mev.md) can read it before it is mined."""
        return Web3.to_hex(self._send(_complete(tx)))

    def receipt_of(self, tx_hash: str) -> dict:
        """The receipt of a transaction sent with `send_unmined`, once it is mined."""
        return self._receipt(tx_hash)

    def _send_numbered(self, tx: dict, nonces: dict[str, int]) -> Any:
        """eth_sendTransaction of `tx` with the sender's next nonce (`nonces`: this batch's)."""
        sender = to_checksum_address(tx["from"])
        delays_s = iter(SEND_RETRY_DELAYS_S)
        while True:
            if sender not in nonces:
                nonces[sender] = max(self._next_nonces.get(sender, 0), self.node_nonce(sender))
            try:
                tx_hash = self.w3.eth.send_transaction({**tx, "nonce": nonces[sender]})
            except NodeError:
                raise
            except Exception as exc:  # noqa: BLE001 - web3 raises ValueError subclasses for a refusal
                delay_s = next(delays_s, None)
                if delay_s is None or not any(r in str(exc).lower() for r in TRANSIENT_REFUSALS):
                    raise
                time.sleep(delay_s)
                del nonces[sender]  # asked again: the node has caught up
                continue
            nonces[sender] += 1
            self._next_nonces[sender] = nonces[sender]
            return tx_hash

    def node_nonce(self, sender: str) -> int:
        """The sender's next nonce as the node counts it (its pending block included). Right
        after a receipt a node can answer the old count: pipelined sends take the larger of
        this and the last nonce they used (`forget_nonces` drops those)."""
        return self.w3.eth.get_transaction_count(sender, "pending")

    def _revert_data(self, tx_hash: Any) -> bytes:
        trace = self.rpc("debug_traceTransaction", [Web3.to_hex(tx_hash), {"tracer": "callTracer"}])
        output = (trace or {}).get("output") or "0x"
        return bytes.fromhex(output[2:])

    def _call(self, tx: dict, block: int | str) -> bytes:
        try:
            return bytes(self.w3.eth.call(tx, block))
        except Web3RPCError as exc:
            data = (exc.rpc_response or {}).get("error", {}).get("data")
            raise TransactionReverted(_hex_bytes(data)) from None
        except NodeError:
            raise
        except Exception as exc:
            data = getattr(exc, "data", None)
            if data is None:
                raise
            raise TransactionReverted(_hex_bytes(data)) from None

    def _hold_time(self, held: bool) -> None:
        if not self.stamp_blocks:
            return
        # transactions sent around `send` (a plain web3 script) get the held time too
        if held:
            self.rpc("anvil_setBlockTimestampInterval", [0])
        else:
            self.rpc("anvil_removeBlockTimestampInterval")

    def _send_block(self, txs: list[dict]) -> list[dict]:
        if not self.stamp_blocks:  # a shared live node mines on its own
            return super()._send_block(txs)
        self.rpc("evm_setAutomine", [False])
        try:
            hashes = [self._send(tx) for tx in txs]
            self._mine_at(self.clock.next_ms)
        finally:
            self.rpc("evm_setAutomine", [True])
        return [self._receipt(h) for h in hashes]

    def _mine_at(self, stamp_ms: int) -> None:
        # One call a block, not a JSON-RPC batch (anvil runs a batch's calls concurrently, so an
        # evm_mine could take another's timestamp), nor anvil_mine(blocks, step) (its steps add
        # to the node's wall clock, so its timestamps drift with the time between calls).
        self.rpc("evm_mine", [stamp_ms // 1000] if self.stamp_blocks else [])  # a live node keeps its own time
        if self.stamp_blocks:
            self.clock.head_ms = stamp_ms

    def _snapshot(self) -> Any:
        return self.rpc("evm_snapshot")

    def _revert(self, snap: Any) -> None:
        if not self.rpc("evm_revert", [snap]):
            raise NodeError(f"evm_revert({snap}) refused by the node")

    def forget_nonces(self) -> None:
        """Forgets the nonces this client used: the next pipelined send asks the node."""
        self._next_nonces.clear()

    def _after_revert(self) -> None:
        self.forget_nonces()  # the chain went back, and its nonces with it


def _hex_bytes(data: Any) -> bytes:
    if isinstance(data, (bytes, bytearray)):
        return bytes(data)
    if isinstance(data, dict):  # some nodes nest it
        data = data.get("data")
    if isinstance(data, str) and data.startswith("0x"):
        try:
            return bytes.fromhex(data[2:])
        except ValueError:
            return b""
    return b""


class AnvilDevnet(RpcDevnet):
    """Starts its own anvil with the profile's chain id and stops it on close."""

    backend_name = "anvil"

    def __init__(self, profile: ChainProfile, *, port: int | None = None, fork_url: str | None = None,
                 stamp_blocks: bool = True, accounts: int = 10, block_time_s: float | None = None):
        """`block_time_s`: anvil mines a block every that many seconds (interval mining, as
        the chain does) instead of one block per transaction."""
        extra = ["--block-time", str(block_time_s)] if block_time_s else None
        self.block_time_s = block_time_s
        """The node's mining interval in seconds; None: one block per transaction."""
        self.process = AnvilProcess(profile.chain_id, port=port, fork_url=fork_url, hardfork=profile.evm_version,
                                    accounts=accounts, extra_args=extra)
        try:
            super().__init__(profile, self.process.url, stamp_blocks=stamp_blocks)
        except BaseException:
            self.process.stop()
            raise

    def close(self) -> None:
        self.process.stop()
