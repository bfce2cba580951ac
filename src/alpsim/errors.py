"""One exception root for alpsim, and Solidity reverts decoded into Python exceptions.

Every revert becomes a subclass of :class:`ContractRevert` named after the Solidity custom
error (``InsufficientAlpOut``, ``CooldownActive``, OpenZeppelin's
``AccessControlUnauthorizedAccount``...), its decoded arguments as attributes::

    try:
        client.deposit("lp", 100, min_alp_out=10**30)
    except errors.InsufficientAlpOut as err:
        err.alpOut, err.minAlpOut

``Error(string)`` decodes to :class:`ErrorString` and ``Panic(uint256)`` to :class:`Panic`.
Classes for custom errors are made from the compiled ABIs; ``alpsim.errors.<Name>`` returns the
class for any error the project's contracts declare.
"""

from __future__ import annotations

import difflib
from typing import Any, Callable, Iterable

from eth_abi import decode as abi_decode
from eth_utils import keccak, to_checksum_address


class AlpsimError(Exception):
    """Root of every exception alpsim raises."""


class ConfigError(AlpsimError, ValueError):
    """Bad input: an unknown name, a malformed file, a value out of range."""


class UnknownNameError(ConfigError, KeyError):
    """A name (chain profile, pair, account) that is not known, with the known ones."""

    def __init__(self, kind: str, name: str, known: Iterable[str]):
        self.kind, self.name, self.known = kind, name, sorted(known)
        close = difflib.get_close_matches(name, self.known, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        super().__init__(f"unknown {kind} {name!r}; known: {', '.join(self.known)}.{hint}")

    def __str__(self) -> str:  # KeyError would repr() the message
        return self.args[0]


class CompileError(AlpsimError):
    """Solidity sources that do not compile. `messages` holds `file:line:column: message`."""

    def __init__(self, messages: list[str]):
        self.messages = messages
        super().__init__("compilation failed:\n" + "\n".join(messages))


class NodeError(AlpsimError, RuntimeError):
    """A node that could not be started, reached, or that went away."""


class ContractRevert(AlpsimError):
    """A reverted call or transaction. Subclasses are named after the Solidity error."""

    error_name: str = "ContractRevert"
    signature: str = ""
    contract: str | None = None
    """The contract called (its Solidity name), when the call went through a bound contract."""
    function: str | None = None
    """The function called on `contract`."""
    call_args: dict[str, Any] | None = None
    """The call's decoded arguments, by parameter name."""
    tracer: Any = None
    """A callable giving the failed transaction's call trace as lines (set by the session)."""

    def __init__(self, args: dict[str, Any] | None = None, *, data: bytes = b"", tx_hash: str | None = None):
        self.error_args = dict(args or {})
        self.data = data
        self.tx_hash = tx_hash
        for key, value in self.error_args.items():
            setattr(self, key, value)
        super().__init__(self._message())

    def _message(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self.error_args.items())
        return f"{self.error_name}({fields})"

    def call_trace(self) -> list[str]:
        """The failed transaction's call trace, one line per frame (empty when unknown)."""
        return list(self.tracer()) if self.tracer is not None else []


class ErrorString(ContractRevert):
    """`revert("...")` / `require(cond, "...")`: Solidity's `Error(string)`."""

    error_name = "Error"
    signature = "Error(string)"


class Panic(ContractRevert):
    """Solidity's `Panic(uint256)`: an assert, overflow, division by zero, bad index..."""

    error_name = "Panic"
    signature = "Panic(uint256)"
    DESCRIPTIONS = {
        0x00: "generic compiler panic",
        0x01: "assert failed",
        0x11: "arithmetic overflow or underflow",
        0x12: "division or modulo by zero",
        0x21: "invalid enum value",
        0x22: "corrupt storage byte array",
        0x31: "pop on an empty array",
        0x32: "array index out of bounds",
        0x41: "out of memory",
        0x51: "call to a zero-initialized function",
    }

    def _message(self) -> str:
        code = self.error_args.get("code", -1)
        return f"Panic(0x{code:02x}: {self.DESCRIPTIONS.get(code, 'unknown code')})"


class UnknownRevert(ContractRevert):
    """A revert whose data matches no error in the ABIs (or that carried no data)."""

    error_name = "UnknownRevert"

    def _message(self) -> str:
        return f"reverted with unknown data 0x{self.data.hex()}" if self.data else "reverted without data"


_BUILTIN_SELECTORS = {
    keccak(text="Error(string)")[:4]: (ErrorString, ["string"], ["reason"]),
    keccak(text="Panic(uint256)")[:4]: (Panic, ["uint256"], ["code"]),
}

# name -> class, shared by every decoder so that `except errors.X` matches whatever raised it
_ERROR_CLASSES: dict[str, type[ContractRevert]] = {}


def _abi_type(param: dict) -> str:
    if param["type"].startswith("tuple"):
        inner = ",".join(_abi_type(c) for c in param["components"])
        return f"({inner}){param['type'][5:]}"
    return param["type"]


def error_class(name: str, signature: str = "") -> type[ContractRevert]:
    """The exception class for the Solidity error `name`, made once."""
    cls = _ERROR_CLASSES.get(name)
    if cls is None:
        cls = type(name, (ContractRevert,), {"error_name": name, "signature": signature,
                                              "__doc__": f"Solidity error `{signature or name}`."})
        cls.__module__ = __name__
        _ERROR_CLASSES[name] = cls
    return cls


class ErrorDecoder:
    """Turns revert data into exceptions, knowing the custom errors of the given ABIs."""

    def __init__(self, abis: Iterable[list[dict]] = ()):
        self._by_selector: dict[bytes, tuple[type[ContractRevert], list[str], list[str]]] = dict(_BUILTIN_SELECTORS)
        for abi in abis:
            self.add_abi(abi)

    def add_abi(self, abi: list[dict]) -> None:
        for entry in abi:
            if entry.get("type") != "error":
                continue
            types = [_abi_type(p) for p in entry["inputs"]]
            signature = f"{entry['name']}({','.join(types)})"
            names = [p["name"] or f"arg{i}" for i, p in enumerate(entry["inputs"])]
            self._by_selector[keccak(text=signature)[:4]] = (error_class(entry["name"], signature), types, names)

    def decode(self, data: bytes | str | None, tx_hash: str | None = None) -> ContractRevert:
        raw = _to_bytes(data)
        entry = self._by_selector.get(raw[:4]) if len(raw) >= 4 else None
        if entry is None:
            return UnknownRevert(data=raw, tx_hash=tx_hash)
        cls, types, names = entry
        try:
            values = abi_decode(types, raw[4:])
        except Exception:  # malformed payload: keep the raw data
            return UnknownRevert(data=raw, tx_hash=tx_hash)
        args = {n: _pythonic(t, v) for n, t, v in zip(names, types, values)}
        return cls(args, data=raw, tx_hash=tx_hash)


def _to_bytes(data: bytes | str | None) -> bytes:
    if data is None:
        return b""
    if isinstance(data, (bytes, bytearray)):
        return bytes(data)
    text = data[2:] if data.startswith("0x") else data
    return bytes.fromhex(text)


def _pythonic(abi_type: str, value: Any) -> Any:
    if abi_type == "address":
        return to_checksum_address(value)
    return value


_ABI_SOURCES: list[Callable[[], Iterable[list[dict]]]] = []
"""Where `alpsim.errors.<Name>` looks for errors not seen yet: callables giving ABIs (the
compiler registers the project's build, so this module needs no import of it)."""


def add_abi_source(source: Callable[[], Iterable[list[dict]]]) -> None:
    """Registers `source` (a callable giving ABIs) for `alpsim.errors.<Name>`; it may raise
    AlpsimError when it has nothing to give (no build yet)."""
    _ABI_SOURCES.append(source)


def _load_project_errors() -> None:
    """Registers the errors of every ABI source (the project's compiled contracts, if built)."""
    for source in _ABI_SOURCES:
        try:
            ErrorDecoder(source())
        except AlpsimError:
            pass


def __getattr__(name: str) -> type[ContractRevert]:
    if name.startswith("_"):
        raise AttributeError(name)
    if name not in _ERROR_CLASSES:
        _load_project_errors()
    if name in _ERROR_CLASSES:
        return _ERROR_CLASSES[name]
    close = difflib.get_close_matches(name, list(_ERROR_CLASSES), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise AttributeError(f"module 'alpsim.errors' has no error {name!r}{hint}")
