"""`make bench`: gas per operation on a fresh devnet and with 1,000 positions open, both
chain profiles, against the targets of the performance issue. Writes build/bench.json."""

from __future__ import annotations

import json
import resource
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from .client import Alpsim
from .compiler import compile_contracts
from .paths import find_project

TARGETS = {"open_total": 300_000, "close_total": 200_000, "liquidate": 120_000,
           "liquidate_batch_per_position": 60_000, "deposit": 120_000, "withdraw": 120_000}
OPS = ["request_open", "execute_open", "request_close", "execute_close", "liquidate",
       "liquidate_batch_per_position", "execute_open_batch_per_request", "deposit", "withdraw", "price_update"]
TRADER, LP, NEW_LP = 1, 7, 6


def _measure(sim: Alpsim) -> dict[str, int | None]:
    """Each operation once, in the state `sim` is in (snapshotted and restored)."""
    snap = sim.snapshot()
    gas: dict[str, int | None] = {}
    try:
        sim.keeper.set_prices({"BTC/USD": 60_000})
        gas["price_update"] = sim.keeper.push_prices([0])["gasUsed"]
        sim.fund(NEW_LP, 10_000)
        sim.deposit(NEW_LP, 1)  # approval and first mint out of the way
        gas["deposit"] = sim.deposit(NEW_LP, 1_000).gas_used
        sim.devnet.advance_time(48 * 3600)
        sim.keeper.set_prices({"BTC/USD": 60_000})
        sim.keeper.push_prices()
        gas["withdraw"] = sim.withdraw(NEW_LP, 100).gas_used
        # the anchor trade: a 50x BTC long opened and closed at an unchanged price
        sim.fund(TRADER, 100_000)
        sim.open(TRADER, "ETH/USD", "short", 100, 10)  # approval out of the way
        opened = sim.open(TRADER, "BTC/USD", "long", 1_000, 50)
        gas["request_open"], gas["execute_open"] = opened.gas_request, opened.gas_execute
        request_id, receipt = sim.request_close(TRADER, opened.position.id)
        gas["request_close"] = receipt["gasUsed"]
        gas["execute_close"] = sim.keeper.execute_close(request_id)["gasUsed"]
        # liquidation: one position, then 50 in one keeper call
        one = sim.open(TRADER, "BTC/USD", "long", 100, 1001).position.id
        sim.keeper.set_prices({"BTC/USD": 59_900})
        gas["liquidate"] = sim.keeper.run_triggers([one])["gasUsed"]
        sim.keeper.set_prices({"BTC/USD": 60_000})
        ids = [sim.open(TRADER, "BTC/USD", "long", 100, 1001).position.id for _ in range(50)]
        sim.keeper.set_prices({"BTC/USD": 59_900})
        receipt = sim.keeper.run_triggers(ids)
        assert len(sim.closed_from(receipt)) == 50
        gas["liquidate_batch_per_position"] = receipt["gasUsed"] // 50
        gas["execute_open_batch_per_request"] = None  # no batched executeOpen yet
    finally:
        sim.revert(snap)
    return gas


def _open_many(sim: Alpsim, count: int) -> None:
    pairs = ["BTC/USD", "ETH/USD", "SOL/USD", "AAPL/USD"]
    for account in (1, 2, 3, 4, 5):
        sim.fund(account, 1_000_000)
    for i in range(count):
        sim.open(1 + i % 5, pairs[i % 4], "long" if i % 3 else "short", 200, 10)


def run_bench(console: Console | None = None, positions: int = 1_000) -> dict[str, Any]:
    console = console or Console()
    build = compile_contracts()
    result: dict[str, Any] = {"gas": {}, "targets": TARGETS}
    started = time.perf_counter()
    for chain in ("bnb", "arbitrum"):
        with Alpsim.launch(chain, build=build, seed=1) as sim:
            sim.fund(LP, 50_000_000)
            sim.deposit(LP, 50_000_000)
            sim.keeper.set_prices({"BTC/USD": 60_000, "ETH/USD": 3_000, "SOL/USD": 150, "AAPL/USD": 200})
            fresh = _measure(sim)
            _open_many(sim, positions)
            loaded = _measure(sim)
        result["gas"][chain] = {"fresh": fresh, f"with_{positions}_positions": loaded}
    result["bench_s"] = round(time.perf_counter() - started, 1)
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    _print(console, result, positions)
    out = find_project().build / "bench.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    console.print(f"written: {out}")
    return result


def _print(console: Console, result: dict[str, Any], positions: int) -> None:
    for chain, runs in result["gas"].items():
        fresh, loaded = runs["fresh"], runs[f"with_{positions}_positions"]
        table = Table(title=f"gas on {chain}: fresh devnet and with {positions:,} positions open")
        for col in ("operation", "fresh", f"{positions:,} open", "change"):
            table.add_column(col, justify="right")
        for op in OPS:
            a, b = fresh[op], loaded[op]
            change = "-" if a is None else f"{(b - a) / a * 100:+.1f}%"
            table.add_row(op, "-" if a is None else f"{a:,}", "-" if b is None else f"{b:,}", change)
        console.print(table)
        totals = Table(title=f"{chain}: against the targets")
        for col in ("measure", "gas (fresh)", "target", "met"):
            totals.add_column(col, justify="right")
        measures = {"open_total": fresh["request_open"] + fresh["execute_open"],
                    "close_total": fresh["request_close"] + fresh["execute_close"],
                    "liquidate": fresh["liquidate"], "liquidate_batch_per_position": fresh["liquidate_batch_per_position"],
                    "deposit": fresh["deposit"], "withdraw": fresh["withdraw"]}
        for name, value in measures.items():
            totals.add_row(name, f"{value:,}", f"{TARGETS[name]:,}", "yes" if value <= TARGETS[name] else "no")
        console.print(totals)
