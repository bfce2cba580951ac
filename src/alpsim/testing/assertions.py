"""Assertions for contract tests: `reverts` (a revert with its decoded arguments), `emits` /
`assert_event` (an event with given arguments) and `balance_change` (token balances of named
accounts moved by given amounts). Each failure says what happened instead."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Iterator

from ..errors import AlpsimError, ContractRevert
from ..units import from_units

if TYPE_CHECKING:
    from ..client import Alpsim
    from ..contracts import Session

_MISSING = object()


@dataclass
class RevertInfo:
    """What `reverts` caught: `value` is the exception once the block has run."""

    value: AlpsimError | None = None


def _describe_error(expected: type[BaseException] | str) -> str:
    return expected if isinstance(expected, str) else expected.__name__


def _matches(exc: BaseException, expected: type[BaseException] | str) -> bool:
    if isinstance(expected, str):
        return isinstance(exc, ContractRevert) and exc.error_name == expected
    return isinstance(exc, expected)


def _argument(exc: BaseException, name: str) -> Any:
    args = getattr(exc, "error_args", None)
    if isinstance(args, dict) and name in args:
        return args[name]
    return getattr(exc, name, _MISSING)


def _same(actual: Any, expected: Any) -> bool:
    """Equality, with a dict expectation matching the keys it names (nested structs) and an
    address matching whatever its case."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        return all(k in actual and _same(actual[k], v) for k, v in expected.items())
    if isinstance(expected, str) and isinstance(actual, str) and expected.startswith("0x"):
        return expected.lower() == actual.lower()
    address = getattr(expected, "address", None)
    if isinstance(address, str) and isinstance(actual, str):
        return address.lower() == actual.lower()
    return actual == expected


@contextmanager
def reverts(error: type[BaseException] | str, **expected_args: Any) -> Iterator[RevertInfo]:
    """Asserts that the block raises `error` (a class of `alpsim.errors`, e.g.
    `errors.CooldownActive`, any alpsim exception such as `OrderRejected`, or an error's
    name) with the given decoded arguments (the others are not checked), as `ape.reverts`::

        with reverts(errors.InsufficientAlpOut, minAlpOut=10**30) as caught:
            lp.deposit(100, min_alp_out=10**12)
        caught.value.alpOut
    """
    info = RevertInfo()
    try:
        yield info
    except AlpsimError as exc:
        info.value = exc
        if not _matches(exc, error):
            raise AssertionError(f"expected {_describe_error(error)} but got {type(exc).__name__}: {exc}") from exc
        wrong = {k: (_argument(exc, k), v) for k, v in expected_args.items() if not _same(_argument(exc, k), v)}
        if wrong:
            lines = [f"  {k}: got {'(no such argument)' if got is _MISSING else repr(got)}, expected {want!r}"
                     for k, (got, want) in wrong.items()]
            raise AssertionError(f"{type(exc).__name__} reverted with other arguments:\n" + "\n".join(lines)
                                 + f"\n  all: {exc}") from exc
    else:
        raise AssertionError(f"expected {_describe_error(error)}, but nothing reverted")


def _session(target: "Alpsim | Session") -> "Session":
    return getattr(target, "session", target)


def assert_event(target: "Alpsim | Session", receipts: dict | list[dict], name: str, **expected: Any) -> dict:
    """The first `name` event of `receipts` (one or many) whose arguments include `expected`
    (nested structs as dicts of the fields to check); fails listing the events emitted."""
    session = _session(target)
    receipts = [receipts] if isinstance(receipts, dict) else list(receipts)
    events = [e for r in receipts for e in session.events(r)]
    for event in events:
        if event["event"] == name and all(_same(event.get(k, _MISSING), v) for k, v in expected.items()):
            return event
    same_name = [e for e in events if e["event"] == name]
    if same_name:
        shown = "\n".join(f"  {name}({', '.join(f'{k}={e.get(k, _MISSING)!r}' for k in expected)})"
                          for e in same_name)
        raise AssertionError(f"no {name} event with {expected}; the {name} events emitted:\n{shown}")
    emitted = ", ".join(e["event"] for e in events) or "none"
    raise AssertionError(f"no {name} event emitted; events emitted: {emitted}")


@dataclass
class EventCapture:
    """The receipts of the transactions sent within an `emits` block, and the event found."""

    receipts: list[dict] = field(default_factory=list)
    event: dict | None = None


@contextmanager
def emits(sim: "Alpsim", name: str, **expected: Any) -> Iterator[EventCapture]:
    """Asserts that a transaction sent within the block emits `name` with `expected`
    arguments (see `assert_event`); `capture.event` is the event::

        with emits(alpsim, "Deposit", lp=lp.address) as capture:
            lp.deposit(1_000)
    """
    capture = EventCapture()
    listener = lambda tx, receipt: capture.receipts.append(receipt)  # noqa: E731
    sim.session.receipt_listeners.append(listener)
    try:
        yield capture
    finally:
        sim.session.receipt_listeners.remove(listener)
    capture.event = assert_event(sim, capture.receipts, name, **expected)


@dataclass
class BalanceChange:
    """Balances (whole tokens) of named accounts before and after a `balance_change` block."""

    token: str
    before: dict[str, Decimal]
    after: dict[str, Decimal] = field(default_factory=dict)

    @property
    def deltas(self) -> dict[str, Decimal]:
        return {name: self.after[name] - self.before[name] for name in self.before}

    def __getitem__(self, name: str) -> Decimal:
        return self.deltas[name]

    def check(self, tolerance: Decimal | int | str = 0, **expected: Decimal | int | str) -> None:
        """Fails unless each named account's change is `expected` (whole tokens, signed)
        within `tolerance`, with a table of every account."""
        tol = Decimal(str(tolerance))
        unknown = sorted(set(expected) - set(self.before))
        if unknown:
            raise AssertionError(f"no account named {', '.join(unknown)} in this balance_change "
                                 f"(named: {', '.join(self.before)})")
        wrong = [n for n, v in expected.items() if abs(self.deltas[n] - Decimal(str(v))) > tol]
        if wrong:
            rows = [f"  {n:<16} {self.before[n]:>24} {self.after[n]:>24} {self.deltas[n]:>+24} "
                    f"{'' if n not in expected else format(Decimal(str(expected[n])), '+')}"
                    f"{'  <-- differs' if n in wrong else ''}" for n in self.before]
            header = f"  {'account':<16} {'before':>24} {'after':>24} {'change':>24} expected"
            raise AssertionError(f"{self.token} balances did not change as expected "
                                 f"(tolerance {tol}):\n{header}\n" + "\n".join(rows))


def _token_decimals(sim: "Alpsim", token: str) -> int:
    return sim.decimals if token == "collateral" else sim.contracts[token].call("decimals")


@contextmanager
def balance_change(sim: "Alpsim", accounts: dict[str, Any], *, token: str = "collateral",
                   tolerance: Decimal | int | str = 0, **expected: Decimal | int | str) -> Iterator[BalanceChange]:
    """Records the `token` balances ("collateral", "alp", "platform_token") of `accounts`
    (name -> an actor handle, account index or address) around the block; `expected` (name ->
    signed change in whole tokens) is checked at its end within `tolerance`::

        with balance_change(alpsim, {"trader": trader, "pool": alpsim.pool_contract}, trader=-100):
            ...
    """
    contract = sim.contracts[token]
    decimals = _token_decimals(sim, token)
    addresses = {name: sim.address(getattr(who, "address", who)) for name, who in accounts.items()}

    def balances() -> dict[str, Decimal]:
        return {n: from_units(contract.call("balanceOf", a), decimals) for n, a in addresses.items()}

    change = BalanceChange(token, balances())
    yield change
    change.after = balances()
    if expected:
        change.check(tolerance, **expected)
