"""Gas per test and operation: the recorder (a session receipt listener), the snapshot file
(`--gas-snapshot` writes it, `--gas-check` compares against it) and the report tables.

A snapshot line is `<test id> <Contract.function>#<n> (gas: <units>)`: the n-th call of that
function within the test's own body (fixtures' transactions are not counted), sorted, one per
line, so that a change shows as a one-line diff."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from statistics import mean
from typing import TYPE_CHECKING

from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:
    from ..client import Alpsim

SNAPSHOT_HEADER = "# alpsim gas snapshot: <test> <Contract.function>#<n-th call in the test> (gas: <gas units>)"
_LINE = re.compile(r"^(?P<test>.+) (?P<op>\S+) \(gas: (?P<gas>\d+)\)$")


@dataclass(frozen=True)
class GasCall:
    """One successful transaction sent by a test's body. `gas` is None on revm (not exact)."""

    test: str
    operation: str
    gas: int | None


class GasRecorder:
    """Collects the transactions of the running test (`current_test`) from every system it is
    attached to."""

    def __init__(self) -> None:
        self.current_test: str | None = None
        self.calls: list[GasCall] = []

    def attach(self, sim: "Alpsim") -> None:
        exact = sim.devnet.exact_gas
        session = sim.session

        def heard(tx: dict, receipt: dict) -> None:
            if self.current_test is None or not tx.get("to"):
                return
            contract, function, _ = session.describe_call(tx.get("to"), tx.get("data"))
            gas = receipt["gasUsed"] if exact else None
            self.calls.append(GasCall(self.current_test, f"{contract}.{function or 'fallback'}", gas))

        session.receipt_listeners.append(heard)

    def to_json(self) -> list[list]:
        return [[c.test, c.operation, c.gas] for c in self.calls]

    def add_json(self, rows: list[list]) -> None:
        self.calls += [GasCall(t, op, g) for t, op, g in rows]


def snapshot_entries(calls: list[GasCall]) -> dict[tuple[str, str], int]:
    """(test, `Contract.function#n`) -> gas, for the calls whose gas was measured."""
    seen: dict[tuple[str, str], int] = {}
    out: dict[tuple[str, str], int] = {}
    for call in calls:
        n = seen[(call.test, call.operation)] = seen.get((call.test, call.operation), 0) + 1
        if call.gas is not None:
            out[(call.test, f"{call.operation}#{n}")] = call.gas
    return out


def write_snapshot(path: Path, entries: dict[tuple[str, str], int]) -> None:
    lines = [f"{test} {op} (gas: {gas})" for (test, op), gas in sorted(entries.items())]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([SNAPSHOT_HEADER, *lines]) + "\n")


def read_snapshot(path: Path) -> dict[tuple[str, str], int]:
    """A snapshot file's entries; a malformed line raises ValueError naming it."""
    out = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        match = _LINE.match(line)
        if match is None:
            raise ValueError(f"{path}:{number}: not a gas snapshot line: {line!r}")
        out[(match["test"], match["op"])] = int(match["gas"])
    return out


@dataclass(frozen=True)
class GasChange:
    test: str
    operation: str
    before: int
    after: int
    failed: bool
    """An increase beyond the tolerance."""

    @property
    def delta(self) -> int:
        return self.after - self.before

    @property
    def percent(self) -> float:
        return 100.0 * self.delta / self.before if self.before else float("inf")


@dataclass(frozen=True)
class GasComparison:
    changes: list[GasChange]
    new: list[tuple[str, str]]
    """Measured now, not in the snapshot."""
    missing: list[tuple[str, str]]
    """In the snapshot, not measured by this run's tests (of tests that ran)."""

    @property
    def failed(self) -> list[GasChange]:
        return [c for c in self.changes if c.failed]


def compare(before: dict[tuple[str, str], int], after: dict[tuple[str, str], int],
            tolerance_pct: float) -> GasComparison:
    """Every changed entry; an increase of more than `tolerance_pct` percent fails. Tests not
    run in this session are left out of `missing`."""
    changes = [GasChange(t, op, before[(t, op)], gas, gas > before[(t, op)] * (1 + tolerance_pct / 100))
               for (t, op), gas in sorted(after.items()) if (t, op) in before and before[(t, op)] != gas]
    ran = {t for t, _ in after}
    return GasComparison(changes, sorted(k for k in after if k not in before),
                         sorted(k for k in before if k not in after and k[0] in ran))


def comparison_table(result: GasComparison, tolerance_pct: float) -> Table:
    table = Table(title=f"gas changes against the snapshot (tolerance {tolerance_pct:g}%)")
    for column in ("test", "operation", "before", "after", "change", "%", ""):
        table.add_column(column, justify="right" if column in ("before", "after", "change", "%") else "left",
                         overflow="fold")
    for c in result.changes:
        table.add_row(escape(c.test), escape(c.operation), f"{c.before:,}", f"{c.after:,}", f"{c.delta:+,}", f"{c.percent:+.2f}",
                      "FAIL" if c.failed else "ok")
    return table


def report_table(calls: list[GasCall]) -> Table:
    """Calls, min, mean, max gas per Contract.function (measured calls only)."""
    by_op: dict[str, list[int]] = {}
    for call in calls:
        if call.gas is not None:
            by_op.setdefault(call.operation, []).append(call.gas)
    table = Table(title="gas per contract function (exact-gas backends)")
    table.add_column("contract.function")
    for column in ("calls", "min", "mean", "max"):
        table.add_column(column, justify="right")
    for op, gases in sorted(by_op.items()):
        table.add_row(escape(op), str(len(gases)), f"{min(gases):,}", f"{round(mean(gases)):,}", f"{max(gases):,}")
    return table
