"""The embedded devnet: eth-tester on py-evm, in process, presenting the profile's chain id."""

from __future__ import annotations

from typing import Any

from eth.vm.forks import CancunVM, PragueVM
from eth_tester import EthereumTester, PyEVMBackend
from eth_tester.exceptions import ValidationError
from eth_tester.backends.pyevm.main import _get_block_by_number
from eth.vm.spoof import SpoofTransaction
from eth._utils.address import generate_contract_address
from eth_utils import to_checksum_address
from hexbytes import HexBytes
from web3.datastructures import AttributeDict
from web3 import EthereumTesterProvider, Web3
from web3.providers.eth_tester.defaults import API_ENDPOINTS

from ..profiles import ChainProfile
from .base import DEV_HD_PATH, DEV_MNEMONIC, GENESIS_TIMESTAMP, Devnet, TransactionReverted

_FORKS = {"cancun": CancunVM, "prague": PragueVM}


def _sub_second_vm(fork: type) -> type:
    """The fork's VM, accepting a block with its parent's timestamp: chains with sub-second
    blocks (BNB Chain 0.75 s, Arbitrum 0.25 s) give consecutive blocks the same timestamp."""

    class SubSecondVM(fork):  # type: ignore[misc,valid-type]
        @classmethod
        def validate_header(cls, header, parent_header):  # noqa: ANN001
            if parent_header is not None and header.timestamp == parent_header.timestamp:
                parent_header = parent_header.copy(timestamp=parent_header.timestamp - 1)
            super().validate_header(header, parent_header)

    SubSecondVM.__name__ = f"SubSecond{fork.__name__}"
    return SubSecondVM


class _ClockedBackend(PyEVMBackend):
    """py-evm backend whose pending block is always stamped by the devnet's clock, and which
    keeps the revert data of failed transactions (eth-tester discards it)."""

    def __init__(self, devnet: "EmbeddedDevnet", **kwargs: Any):
        self._devnet = devnet
        self.revert_data: dict[bytes, bytes] = {}
        super().__init__(**kwargs)

    def stamp_pending(self, stamp_ms: int) -> None:
        self.chain.header = self.chain.header.copy(timestamp=stamp_ms // 1000)

    def mine_blocks(self, num_blocks=1, coinbase=None):  # noqa: ANN001
        hashes = []
        for _ in range(num_blocks):
            self.stamp_pending(self._devnet.clock.next_ms)
            hashes += super().mine_blocks(1, coinbase) if coinbase else super().mine_blocks(1)
            self._devnet.clock.head_ms = self._devnet.clock.next_ms
        self.stamp_pending(self._devnet.clock.next_ms)
        return tuple(hashes)

    @property
    def _key_lookup(self):  # noqa: ANN202 - eth-tester rebuilds it (a keccak per account) per send
        keys = self.account_keys
        if getattr(self, "_key_cache", (None,))[0] is not keys:
            self._key_cache = (keys, {key.public_key.to_canonical_address(): key for key in keys})
        return self._key_cache[1]

    def _keep_revert(self, signed: Any) -> bytes:
        _, _, computation = self.chain.apply_transaction(signed)
        if computation.is_error:
            self.revert_data[signed.hash] = bytes(computation.output or b"")
        return signed.hash

    def apply_block_transactions(self, transactions: list[dict]) -> list[tuple[Any, Any, Any]]:
        """Signs and applies `transactions` (eth-tester's raw form, no nonce) to the pending
        block in one go: eth-tester's per-transaction path rebuilds the block's transaction
        and receipt tries after each one (quadratic in the block's size). Returns (signed
        transaction, receipt, computation) of each; the caller mines the block."""
        chain = self.chain
        vm = chain.get_vm(chain.header)
        base_block = vm.get_block()
        header = base_block.header
        nonces: dict[bytes, int] = {}
        applied = []
        for tx in transactions:
            sender = tx["from"]
            nonce = nonces[sender] if sender in nonces else vm.state.get_nonce(sender)
            nonces[sender] = nonce + 1
            signed = self._get_normalized_and_signed_evm_transaction({**tx, "nonce": nonce})
            receipt, computation = vm.apply_transaction(header, signed)
            header = vm.add_receipt_to_header(header, receipt)
            if computation.is_error:
                self.revert_data[signed.hash] = bytes(computation.output or b"")
            applied.append((signed, receipt, computation))
        vm.state.persist()
        new_header = header.copy(state_root=vm.state.state_root)
        block = vm.set_block_transactions_and_withdrawals(
            base_block, new_header, base_block.transactions + tuple(a[0] for a in applied),
            base_block.get_receipts(chain.chaindb) + tuple(a[1] for a in applied))
        chain.header = block.header
        return applied

    def send_transaction(self, transaction):  # noqa: ANN001
        return self._keep_revert(self._get_normalized_and_signed_evm_transaction(transaction))

    def send_signed_transaction(self, signed_transaction, block_number="latest"):  # noqa: ANN001
        normalized = self._normalize_transaction(signed_transaction, block_number)
        return self._keep_revert(self._create_type_aware_signed_transaction(normalized))

    def send_raw_transaction(self, raw_transaction):  # noqa: ANN001
        # py-evm does not check a signed transaction's chain id; a real node refuses a
        # transaction signed for another chain (replay protection), and so does this one.
        signed = self.chain.get_vm().get_transaction_builder().decode(raw_transaction)
        tx_chain_id = signed.chain_id
        if tx_chain_id is not None and tx_chain_id != self._devnet.profile.chain_id:
            raise ValidationError(
                f"transaction signed for chain id {tx_chain_id}, this chain is {self._devnet.profile.chain_id}"
            )
        return self._keep_revert(signed)

    def estimate_gas(self, transaction, block_number="latest"):  # noqa: ANN001
        # eth-tester estimates in a child of the latest block stamped with the wall clock; a
        # node estimates in its pending block: the next number, at the devnet clock's time
        if block_number not in ("latest", "pending"):
            return super().estimate_gas(transaction, block_number)
        unsigned = self._get_normalized_and_unsigned_evm_transaction({**transaction, "gas": 21000}, "latest")
        vm = self.chain.get_vm()
        header = vm.get_header().copy(base_fee_per_gas=0)
        state = vm.build_state(vm.chaindb.db, header, vm.chain_context, vm.previous_hashes)
        return self.chain.gas_estimator(state, SpoofTransaction(unsigned, from_=transaction["from"]))

    def revert_to_snapshot(self, snapshot):  # noqa: ANN001
        super().revert_to_snapshot(snapshot)
        self._fix_chain_id()

    def _fix_chain_id(self) -> None:
        type(self.chain).chain_id = self._devnet.profile.chain_id


class EmbeddedDevnet(Devnet):
    """eth-tester + py-evm in this process: nothing to start, nothing to stop."""

    backend_name = "embedded"

    def __init__(self, profile: ChainProfile, accounts: int = 10):
        super().__init__(profile)
        if accounts < 10:
            raise ValueError("the embedded devnet has at least the ten dev accounts")
        vm = _sub_second_vm(_FORKS[profile.evm_version])
        genesis = PyEVMBackend.generate_genesis_params(overrides={"timestamp": GENESIS_TIMESTAMP})
        # the first `accounts` accounts of the dev mnemonic, as anvil's `--accounts`
        state = PyEVMBackend.generate_genesis_state(num_accounts=accounts, mnemonic=DEV_MNEMONIC, hd_path=DEV_HD_PATH)
        self.backend = _ClockedBackend(
            self,
            genesis_parameters=genesis,
            genesis_state=state,
            vm_configuration=((0, vm),),
            mnemonic=DEV_MNEMONIC,
            hd_path=DEV_HD_PATH,
        )
        self.block_gas_limit = genesis["gas_limit"]
        self.backend._fix_chain_id()  # the `chainid` opcode and tx validation read the class
        self.backend.stamp_pending(self.clock.next_ms)
        self.tester = EthereumTester(backend=self.backend)
        endpoints = {ns: dict(methods) for ns, methods in API_ENDPOINTS.items()}
        chain_id = profile.chain_id
        endpoints["eth"]["chainId"] = lambda *_: chain_id
        self.w3 = Web3(EthereumTesterProvider(self.tester, api_endpoints=endpoints))
        self._accounts = [to_checksum_address(a) for a in self.tester.get_accounts()]
        self._receipts: dict[bytes, Any] = {}
        self._call_state: tuple[bytes, Any] | None = None

    @property
    def accounts(self) -> list[str]:
        return list(self._accounts)

    @property
    def chain_id(self) -> int:
        return self.profile.chain_id

    def _send(self, tx: dict) -> Any:
        receipt = self._send_block([tx])[0]
        self._receipts[bytes(receipt["transactionHash"])] = receipt
        return receipt["transactionHash"]

    def _receipt(self, tx_hash: Any) -> Any:
        receipt = self._receipts.pop(bytes(tx_hash), None)
        return receipt if receipt is not None else super()._receipt(tx_hash)

    def _revert_data(self, tx_hash: Any) -> bytes:
        return self.backend.revert_data.get(bytes(tx_hash), b"")

    def _call(self, tx: dict, block: int | str) -> bytes:
        backend = self.backend
        state = self._state_for_calls(block)
        sender = bytes.fromhex(tx["from"][2:])
        raw = {**_raw_tx({"gas": backend._max_available_gas(), **tx}), "nonce": state.get_nonce(sender)}
        unsigned = backend._get_normalized_and_unsigned_evm_transaction(raw, block)
        snapshot = state.snapshot()
        try:
            computation = state.apply_transaction(SpoofTransaction(unsigned, from_=sender))
        finally:
            state.revert(snapshot)
        if computation.is_error:
            raise TransactionReverted(bytes(computation.output or b""))
        return bytes(computation.output)

    def _state_for_calls(self, block: int | str) -> Any:
        """The py-evm state calls at `block` run in, kept while that block stays the same (a
        block's hash fixes its state): each call is applied and reverted on it, so the accounts
        and storage it has read stay cached for the next call. eth-tester builds a new state,
        and reads the sender's nonce through another one, for every call."""
        header = _get_block_by_number(self.backend.chain, block).header
        if self._call_state is None or self._call_state[0] != header.hash:
            self._call_state = (header.hash, self.backend.chain.get_vm(at_header=header).state)
        return self._call_state[1]

    def _mine_at(self, stamp_ms: int) -> None:
        self.clock.head_ms = stamp_ms - self.clock.block_time_ms  # next_ms == stamp_ms
        self._mine_pending()

    def _mine_pending(self) -> HexBytes:
        """Mines the pending block; its hash. eth-tester's own mine_blocks then reads each new
        block back to feed web3 block and log filters (about a third of an empty block's
        time): that path is taken only while someone has a filter installed."""
        tester = self.tester
        feeds_filters = tester._block_filters or tester._log_filters or not tester.auto_mine_transactions
        (block_hash,) = (tester if feeds_filters else self.backend).mine_blocks(1)
        return HexBytes(block_hash)

    def _snapshot(self) -> Any:
        return self.tester.take_snapshot()

    def _revert(self, snap: Any) -> None:
        self.tester.revert_to_snapshot(snap)

    def _after_revert(self) -> None:
        self.backend.stamp_pending(self.clock.next_ms)

    def _hold_time(self, held: bool) -> None:
        self.backend.stamp_pending(self.clock.next_ms)

    def _send_block(self, txs: list[dict]) -> list[dict]:
        """Signs the transactions with their senders' dev keys and mines them in one block,
        straight on the backend; the receipts are built from what py-evm returned (web3's
        request formatting and eth-tester's validation and receipt lookup cost more than the
        EVM for most transactions)."""
        raws = []
        for tx in txs:
            raw = _raw_tx(tx)
            raw["max_fee_per_gas"] = tx["maxFeePerGas"]
            raw["max_priority_fee_per_gas"] = tx["maxPriorityFeePerGas"]
            raws.append(raw)
        try:
            applied = self.backend.apply_block_transactions(raws)
        finally:
            block_hash = self._mine_pending()
        number = self.backend.chain.get_canonical_head().block_number
        return _receipts(applied, block_hash, number)

    # the backend's mine_blocks already moved the clock
    def _after_block(self) -> None:
        pass


def _receipts(applied: list[tuple[Any, Any, Any]], block_hash: HexBytes, number: int) -> list[AttributeDict]:
    """web3-shaped receipts of a block's transactions (as `eth_getTransactionReceipt`)."""
    out, cumulative, log_index = [], 0, 0
    for index, (signed, receipt, _) in enumerate(applied):
        tx_hash = HexBytes(signed.hash)
        logs = []
        for log in receipt.logs:
            logs.append(AttributeDict({
                "address": to_checksum_address(log.address),
                "topics": [HexBytes(t.to_bytes(32, "big")) for t in log.topics],
                "data": HexBytes(log.data), "blockNumber": number, "blockHash": block_hash,
                "transactionHash": tx_hash, "transactionIndex": index, "logIndex": log_index, "removed": False,
            }))
            log_index += 1
        created = None
        if not signed.to:
            created = to_checksum_address(generate_contract_address(signed.sender, signed.nonce))
        out.append(AttributeDict({
            "transactionHash": tx_hash, "transactionIndex": index, "blockHash": block_hash, "blockNumber": number,
            "from": to_checksum_address(signed.sender), "to": to_checksum_address(signed.to) if signed.to else None,
            "cumulativeGasUsed": receipt.gas_used, "gasUsed": receipt.gas_used - cumulative,
            "contractAddress": created, "logs": logs, "status": 1 if receipt.state_root == b"\x01" else 0,
            "type": signed.type_id if signed.type_id is not None else 0,
        }))
        cumulative = receipt.gas_used
    return out


def _raw_tx(tx: dict) -> dict:
    """A web3-style transaction dict in eth-tester's internal (raw bytes, snake_case) form."""
    raw: dict[str, Any] = {"from": bytes.fromhex(tx["from"][2:]), "gas": tx["gas"], "value": tx.get("value", 0)}
    if tx.get("to"):
        raw["to"] = bytes.fromhex(tx["to"][2:])
    else:
        raw["to"] = b""
    data = tx.get("data", b"")
    raw["data"] = bytes.fromhex(data[2:]) if isinstance(data, str) else bytes(data)
    return raw
