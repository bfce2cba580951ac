"""Contracts bound to a devnet: encode calls, send transactions, decode results, events and
reverts (into the exceptions of `alpsim.errors`). The Session is the package's one seam to a
backend: sends (one, many per block, or pipelined), calls, logs, blocks, code."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable, Iterable

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import keccak, to_checksum_address

from .devnet import Devnet, TransactionReverted
from .devnet.base import Block
from .errors import ConfigError, ContractRevert, ErrorDecoder, _abi_type


@dataclass(frozen=True)
class _Function:
    name: str
    selector: bytes
    input_types: list[str]
    output_types: list[str]
    outputs: list[dict]
    input_names: tuple[str, ...] = ()


@lru_cache(maxsize=65_536)
def _checksum(address: str) -> str:
    """`to_checksum_address`, remembered: the same few addresses recur in every event."""
    return to_checksum_address(address)


def _named(param: dict, value: Any) -> Any:
    """Struct outputs as dicts keyed by their component names (arrays of them as lists)."""
    kind = param["type"]
    if kind.startswith("tuple"):
        if kind.endswith("]"):
            inner = {**param, "type": kind[: kind.rindex("[")]}
            return [_named(inner, v) for v in value]
        return {c["name"]: _named(c, v) for c, v in zip(param["components"], value)}
    if kind == "address":
        return _checksum(value)
    if kind == "address[]":
        return [_checksum(v) for v in value]
    return value


@dataclass(frozen=True)
class _Event:
    """An event's ABI, split once into what its topics and its data carry."""

    name: str
    indexed: list[dict]
    indexed_types: list[str]
    data: list[dict]
    data_types: list[str]
    order: list[str]

    @classmethod
    def of(cls, entry: dict) -> "_Event":
        indexed = [p for p in entry["inputs"] if p.get("indexed")]
        data = [p for p in entry["inputs"] if not p.get("indexed")]
        return cls(entry["name"], indexed, [_abi_type(p) for p in indexed], data, [_abi_type(p) for p in data],
                   [p["name"] for p in entry["inputs"]])

    def decode(self, log: Any) -> dict:
        """{"event", "address", then each argument by name}: structs as dicts, addresses
        checksummed, as web3's `get_event_data` gives them (decoded in one pass per log)."""
        values: dict[str, Any] = {}
        for param, kind, topic in zip(self.indexed, self.indexed_types, log["topics"][1:]):
            dynamic = kind in ("string", "bytes") or kind.endswith("]") or kind.startswith("(")
            values[param["name"]] = bytes(topic) if dynamic else _named(param, abi_decode([kind], bytes(topic))[0])
        for param, value in zip(self.data, abi_decode(self.data_types, bytes(log["data"]))):
            values[param["name"]] = _named(param, value)
        return {"event": self.name, "address": _checksum(log["address"]), **{k: values[k] for k in self.order}}


class BoundContract:
    """One deployed contract. `call` reads, `transact` writes; both raise decoded reverts."""

    def __init__(self, session: "Session", name: str, address: str, abi: list[dict]):
        self.session, self.name, self.abi = session, name, abi
        self.address = to_checksum_address(address)
        self._functions: dict[str, _Function] = {}
        for entry in abi:
            if entry.get("type") == "function":
                inputs = [_abi_type(p) for p in entry["inputs"]]
                outputs = [_abi_type(p) for p in entry.get("outputs", [])]
                selector = keccak(text=f"{entry['name']}({','.join(inputs)})")[:4]
                self._functions[entry["name"]] = _Function(entry["name"], selector, inputs, outputs,
                                                           entry.get("outputs", []),
                                                           tuple(p["name"] or f"arg{i}"
                                                                 for i, p in enumerate(entry["inputs"])))
        self._by_selector = {fn.selector: fn for fn in self._functions.values()}
        self.other_names: dict[bytes, str] = {}
        """Names of functions the ABI leaves out, by selector (an external library's functions
        that take storage parameters: `Session.bind(..., method_identifiers=)`)."""
        session.decoder.add_abi(abi)

    def decode_call(self, data: bytes | str) -> tuple[str, dict[str, Any]] | None:
        """(function name, arguments by name) of calldata to this contract ((name, {}) for a
        function its ABI leaves out, `other_names`), or None when its selector is none of this
        contract's functions."""
        raw = bytes.fromhex(data[2:] if data.startswith("0x") else data) if isinstance(data, str) else bytes(data)
        fn = self._by_selector.get(raw[:4])
        if fn is None:
            name = self.other_names.get(raw[:4])
            return None if name is None else (name, {})
        try:
            values = abi_decode(fn.input_types, raw[4:])
        except Exception:  # noqa: BLE001 - malformed calldata: the name is still worth having
            return fn.name, {}
        return fn.name, dict(zip(fn.input_names, values))

    def _function(self, name: str) -> _Function:
        try:
            return self._functions[name]
        except KeyError:
            raise ConfigError(f"{self.name} has no function {name!r}") from None

    def encode(self, function: str, *args: Any) -> str:
        fn = self._function(function)
        return "0x" + (fn.selector + abi_encode(fn.input_types, list(args))).hex()

    def call(self, function: str, *args: Any, sender: str | None = None) -> Any:
        fn = self._function(function)
        tx = {"to": self.address, "data": self.encode(function, *args),
              "from": sender or self.session.devnet.accounts[0]}
        try:
            out = self.session.devnet.call(tx)
        except TransactionReverted as exc:
            raise self.session.located(self.session.decoder.decode(exc.data), tx) from None
        values = [_named(p, v) for p, v in zip(fn.outputs, abi_decode(fn.output_types, out))]
        return values[0] if len(values) == 1 else tuple(values)

    def transact(self, function: str, *args: Any, sender: str, gas: int | None = None) -> dict:
        """Sends the call (with an explicit gas limit: `gas`, or the devnet's default)."""
        tx = {"from": sender, "to": self.address, "data": self.encode(function, *args)}
        if gas is not None:
            tx["gas"] = gas
        return self.session.send(tx)


class Session:
    """A devnet plus the error decoder and event ABIs of every contract bound to it: what the
    package reads and sends through (no web3 outside `alpsim.devnet`)."""

    def __init__(self, devnet: Devnet):
        self.devnet = devnet
        self.decoder = ErrorDecoder()
        self._events: dict[bytes, _Event] = {}
        self.bound: dict[str, BoundContract] = {}
        """Every contract bound to this session, by lower-case address."""
        self.receipt_listeners: list[Callable[[dict, dict], None]] = []
        """Called with (transaction, receipt) after each successful `send`/`send_many`
        transaction (the testing plugin's gas report listens here)."""

    def bind(self, name: str, address: str, abi: list[dict],
             method_identifiers: dict[str, str] | None = None) -> BoundContract:
        for entry in abi:
            if entry.get("type") == "event":
                signature = f"{entry['name']}({','.join(_abi_type(p) for p in entry['inputs'])})"
                self._events[keccak(text=signature)] = _Event.of(entry)
        contract = BoundContract(self, name, address, abi)
        contract.other_names = {bytes.fromhex(selector): signature.split("(")[0]
                                for signature, selector in (method_identifiers or {}).items()}
        self.bound[contract.address.lower()] = contract
        return contract

    def contract(self, name: str, address: str, abi: list[dict]) -> BoundContract:
        """The contract bound at `address`, bound now if it is not yet."""
        return self.bound.get(address.lower()) or self.bind(name, address, abi)

    # ----- the chain
    @property
    def pipelined(self) -> bool:
        """Whether `send_each` sends back to back: on a node that keeps its own time (not
        stamped block by block by this client)."""
        return not self.devnet.stamp_blocks

    @property
    def block_gas_limit(self) -> int:
        return self.devnet.block_gas_limit

    def block(self, number: int | str = "latest") -> Block:
        """Block `number` (or "latest"): its number, timestamp and hash."""
        return self.devnet.block(number)

    def code_at(self, address: str) -> bytes:
        return self.devnet.code_at(address)

    def logs(self, address: str, topics: list, from_block: int, to_block: int | str = "latest") -> list[Any]:
        """The raw logs of `address` matching `topics` in blocks `from_block` to `to_block`
        (one eth_getLogs); `decode_log` decodes one."""
        return self.devnet.get_logs(address, topics, from_block, to_block)

    def send(self, tx: dict) -> dict:
        try:
            receipt = self.devnet.send(tx)
        except TransactionReverted as exc:
            raise self.located(self.decoder.decode(exc.data, exc.tx_hash), tx) from None
        self._heard(tx, receipt)
        return receipt

    def send_many(self, txs: list[dict]) -> list[dict]:
        """`Devnet.send_many` (many transactions per block), reverts decoded."""
        try:
            receipts = self.devnet.send_many(txs)
        except TransactionReverted as exc:
            tx = self.mined_transaction(exc.tx_hash)
            raise self.located(self.decoder.decode(exc.data, exc.tx_hash), tx) from None
        for tx, receipt in zip(txs, receipts):
            self._heard(tx, receipt)
        return receipts

    def send_each(self, txs: list[dict]) -> list[dict | ContractRevert]:
        """Each transaction's receipt, or its revert decoded (a revert is not retried, and does
        not stop the others). On a node that keeps its own time all are sent before any receipt
        is awaited (`Devnet.send_pipelined`: a chain that mines on a timer puts them in one
        block, in this order); elsewhere each is sent when the one before it is mined. A node
        that fails (NodeError) raises."""
        out: list[dict | ContractRevert] = []
        for tx, receipt in zip(txs, self.devnet.send_pipelined(txs)):
            if receipt["status"] == 1:
                self._heard(tx, receipt)
                out.append(receipt)
                continue
            tx_hash = receipt["transactionHash"]
            hex_hash = tx_hash if isinstance(tx_hash, str) else "0x" + bytes(tx_hash).hex()
            out.append(self.located(self.decoder.decode(self.devnet.revert_data(tx_hash), hex_hash), tx))
        return out

    def mined_transaction(self, tx_hash: str | None) -> dict:
        """{"to", "data"} of a mined transaction (empty when the node does not say)."""
        try:
            return self.devnet.mined_transaction(tx_hash)
        except Exception:  # noqa: BLE001 - only a description is at stake
            return {}

    def _heard(self, tx: dict, receipt: dict) -> None:
        for listener in self.receipt_listeners:
            listener(tx, receipt)

    def describe_call(self, to: str | None, data: bytes | str | None) -> tuple[str, str | None, dict[str, Any]]:
        """(contract name, function name, arguments) of a call, as far as the bound ABIs
        know it; an unknown contract is named by its address."""
        contract = self.bound.get((to or "").lower())
        if contract is None:
            return (to or "<create>"), None, {}
        decoded = contract.decode_call(data or b"") if data else None
        return (contract.name, *decoded) if decoded else (contract.name, None, {})

    def located(self, exc: ContractRevert, tx: dict) -> ContractRevert:
        """`exc` with the contract, function and arguments of `tx`, and (for a mined
        transaction) a call tracer."""
        exc.contract, exc.function, exc.call_args = self.describe_call(tx.get("to"), tx.get("data"))
        if exc.tx_hash:
            exc.tracer = lambda: self.call_trace(exc.tx_hash, tx, exc)
        return exc

    def call_trace(self, tx_hash: str, tx: dict, exc: ContractRevert) -> list[str]:
        """The call tree of a mined transaction, one line per frame (`Contract.function`,
        decoded error): from the node's `debug_traceTransaction` (callTracer) on anvil; the
        embedded backends expose no call tree, so only the top-level call is given there."""
        rpc = getattr(self.devnet, "rpc", None)
        if rpc is not None:
            try:
                root = rpc("debug_traceTransaction", [tx_hash, {"tracer": "callTracer"}])
            except Exception as trace_error:  # noqa: BLE001 - a trace is a courtesy: say why there is none
                return [f"(no call trace: debug_traceTransaction failed: {trace_error})"]
            lines: list[str] = []
            self._trace_lines(root or {}, 0, lines)
            return lines
        contract, function, _ = self.describe_call(tx.get("to"), tx.get("data"))
        return [f"{contract}.{function or '?'} -> reverted {exc}",
                f"(the {self.devnet.backend_name} backend gives no call tree: top-level call only; "
                "run with --alpsim-backend anvil for the full trace)"]

    def _trace_lines(self, frame: dict, depth: int, lines: list[str], caller: str | None = None) -> None:
        kind = frame.get("type", "CALL")
        to = frame.get("to")
        if kind == "DELEGATECALL" and (to or "").lower() not in self.bound and caller:
            # code the caller runs in its own storage that this session does not know (a user's
            # proxy or module): the caller's ABI names the function. alpsim's own libraries are bound.
            contract, function, _ = self.describe_call(caller, frame.get("input"))
            contract = f"{contract}'s module at {to}"
        else:
            contract, function, _ = self.describe_call(to, frame.get("input"))
        line = f"{'  ' * depth}{kind} {contract}.{function or '?'}"
        if frame.get("error"):
            output = frame.get("output") or "0x"
            decoded = self.decoder.decode(output) if len(output) > 2 else None
            line += f" -> {frame['error']}" + (f": {decoded}" if decoded is not None else "")
        lines.append(line)
        for child in frame.get("calls") or []:
            self._trace_lines(child, depth + 1, lines, to if kind != "DELEGATECALL" else caller)

    def deploy(self, artifact: Any, constructor_types: Iterable[str], args: Iterable[Any], sender: str) -> str:
        data = artifact.bytecode + abi_encode(list(constructor_types), list(args)).hex()
        receipt = self.send({"from": sender, "data": data})
        return to_checksum_address(receipt["contractAddress"])

    def decode_log(self, log: Any) -> dict:
        return self._events[bytes(log["topics"][0])].decode(log)

    def events(self, receipt: dict, name: str | Iterable[str] | None = None) -> list[dict]:
        """Decoded logs of `receipt` (all known events, or those called `name`, or named in
        it): the others are not decoded at all."""
        names = None if name is None else {name} if isinstance(name, str) else set(name)
        decoded = []
        for log in receipt["logs"]:
            if not log["topics"]:
                continue
            known = self._events.get(bytes(log["topics"][0]))
            if known is None or (names is not None and known.name not in names):
                continue
            decoded.append(known.decode(log))
        return decoded

