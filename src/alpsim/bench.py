"""`make bench`: gas per operation on a fresh devnet and with 1,000 positions open, both
chain profiles, against the targets of the performance issue. Writes build/bench.json."""

from __future__ import annotations

import json
import resource
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from .client import Alpsim, OpenRequest
from .compiler import compile_contracts
from .paths import find_project
from .protocol import RejectReason
from .service import DEFAULT_START_PRICES
from .throughput import run_throughput

TARGETS = {"open_total": 300_000, "close_total": 200_000, "liquidate": 120_000,
           "liquidate_batch_per_position": 60_000, "deposit": 120_000, "withdraw": 120_000}
OPS = ["request_open", "execute_open", "request_close", "execute_close", "liquidate",
       "liquidate_batch_per_position", "execute_open_batch_per_request", "execute_close_batch_per_request",
       "deposit", "withdraw", "price_update", "reject_open"]
TRADER, LP, NEW_LP = 1, 7, 6
BATCH_TRADERS = (1, 2, 3, 4, 5)
THROUGHPUT_TARGET = 5.0
"""Embedded throughput of the fast path, as a multiple of the naive path's in the same run."""
THROUGHPUT_BACKENDS = ("embedded", "revm", "anvil")
GAS_CHAINS = ("bnb", "arbitrum")
"""The chain profiles whose gas the bench measures (`--chain` picks some)."""
REVM_TARGET = 20.0
"""revm's fast path, as a multiple of the embedded (eth-tester) fast path's round trips per
second in the same run."""
REJECT_UNDECRYPTABLE = int(RejectReason.UNDECRYPTABLE_ORDER)
OPEN_BATCH = 50
"""Positions one set-up keeper batch opens (the loaded run's 1,000 positions take 20)."""


STUDY_PATHS = 100
STUDY_HORIZON_S = 6 * 3600
STUDY_ROUNDS = 2
"""The reference study: the shipped survival study cut to 100 paths of 6 h (360 one-minute
keeper steps), run twice on each worker count."""
STUDY_SPEEDUP_TARGET = 1.7
"""The reference study on 2 workers, as a multiple of its paths per second on 1 (2 cores)."""


def prepare_fresh(sim: Alpsim) -> None:
    """The "fresh devnet" of the figures: the system deployed, 50M of LP liquidity, and the
    keeper's prices on chain for every pair, pushed twice 10 s apart (a pair's first price
    and first accrual are one-off storage writes of the deployment, not of an operation)."""
    sim.fund(LP, 50_000_000)
    sim.deposit(LP, 50_000_000)
    sim.keeper.set_prices(DEFAULT_START_PRICES)
    sim.keeper.push_prices()
    sim.devnet.advance_time(10)
    sim.keeper.push_prices()


def next_second(sim: Alpsim) -> None:
    """Moves time on by a second, so the next transaction's block is stamped after every
    earlier one's. With sub-second blocks, an operation that shares its second with the last
    accrual accrues nothing (no index writes); each measured operation then pays its accrual,
    on a fresh devnet and with positions open alike."""
    sim.devnet.advance_time(1)


def measure_gas(sim: Alpsim) -> dict[str, int | None]:
    """Each operation once, in the state `sim` is in (snapshotted and restored)."""
    snap = sim.snapshot()
    gas: dict[str, int | None] = {}
    try:
        sim.keeper.set_prices({"BTC/USD": 60_000})
        next_second(sim)
        gas["price_update"] = sim.keeper.push_prices([0])["gasUsed"]
        # LPs need settled prices (docs/mechanics.md section 10): the keeper's round, as a live one runs
        sim.keeper.run_triggers(price_pairs=set(sim.keeper.prices))
        sim.fund(NEW_LP, 10_000)
        sim.deposit(NEW_LP, 1)  # approval and first mint out of the way
        next_second(sim)
        gas["deposit"] = sim.deposit(NEW_LP, 1_000).gas_used
        sim.devnet.advance_time(48 * 3600)
        sim.keeper.set_prices({"BTC/USD": 60_000})
        sim.keeper.run_triggers(price_pairs=set(sim.keeper.prices))
        next_second(sim)
        gas["withdraw"] = sim.withdraw(NEW_LP, 100).gas_used
        # the keeper's rejection of an order it cannot decrypt (148 random bytes)
        sim.approve_collateral(TRADER)
        sim.fund(TRADER, 100_000)
        trading = sim.contracts["trading"]
        receipt = trading.transact("requestOpen", b"\x11" * 32, b"\x5a" * 148, sim.to_units(100), sender=sim.address(TRADER))
        rid = sim.session.events(receipt, "OpenRequested")[0]["requestId"]
        next_second(sim)
        gas["reject_open"] = trading.transact("rejectOpen", rid, REJECT_UNDECRYPTABLE, sender=sim.keeper.address)["gasUsed"]
        # the anchor trade: a 50x BTC long opened and closed at an unchanged price
        sim.open(TRADER, "ETH/USD", "short", 100, 10)  # first position out of the way
        next_second(sim)
        opened = sim.open(TRADER, "BTC/USD", "long", 1_000, 50)
        gas["request_open"], gas["execute_open"] = opened.gas_request, opened.gas_execute
        next_second(sim)
        request_id, receipt = sim.request_close(TRADER, opened.position.id)
        gas["request_close"] = receipt["gasUsed"]
        next_second(sim)
        gas["execute_close"] = sim.keeper.execute_close(request_id)["gasUsed"]
        # liquidation: one position, then 50 in one keeper call
        one = sim.open(TRADER, "BTC/USD", "long", 100, 1001).position.id
        sim.keeper.set_prices({"BTC/USD": 59_900})
        next_second(sim)
        gas["liquidate"] = sim.keeper.run_triggers([one])["gasUsed"]
        sim.keeper.set_prices({"BTC/USD": 60_000})
        ids = open_together(sim, [OpenRequest(TRADER, "BTC/USD", "long", 100, 1001)] * 50)
        sim.keeper.set_prices({"BTC/USD": 59_900})
        next_second(sim)
        receipt = sim.keeper.run_triggers(ids)
        assert len(sim.closed_from(receipt)) == 50
        gas["liquidate_batch_per_position"] = receipt["gasUsed"] // 50
        # 50 requests of different traders in one block, executed in one keeper transaction
        sim.keeper.set_prices({"BTC/USD": 60_000})
        for account in BATCH_TRADERS:
            sim.fund(account, 10_000)
        sim.approve_collateral(*BATCH_TRADERS)
        pending = sim.request_opens([
            OpenRequest(BATCH_TRADERS[i % len(BATCH_TRADERS)], "BTC/USD" if i % 2 else "ETH/USD",
                        "long" if i % 3 else "short", 200, 10) for i in range(50)])
        next_second(sim)
        receipt = sim.keeper.execute_open_batch([p.request_id for p in pending], [p.ciphertext for p in pending])
        opened = sim.session.events(receipt, "PositionOpened")
        assert len(opened) == 50
        gas["execute_open_batch_per_request"] = receipt["gasUsed"] // 50
        # and their 50 close requests in one keeper transaction
        owners = {p.request_id: p.trader for p in pending}
        closes = [(owners[e["requestId"]], e["positionId"]) for e in opened]
        request_ids = sim.request_closes(closes)
        next_second(sim)
        receipt = sim.keeper.execute_close_batch(request_ids, [pid for _, pid in closes])
        assert len(sim.closed_from(receipt)) == 50
        gas["execute_close_batch_per_request"] = receipt["gasUsed"] // 50
    finally:
        sim.revert(snap)
    return gas


BASKET_LP = 5
"""The dev account that fills the basket to its targets before the per-asset figures."""


def fill_basket(sim: Alpsim) -> None:
    """Brings every basket asset to its target weight beside the payout stablecoin the pool
    holds (`prepare_fresh`'s), at the keeper's prices: the pool a basket's LPs keep."""
    basket = sim.deployment.basket
    payout_usd = Decimal(sim.pool_contract.call("poolBalance")) / 10 ** basket[0].decimals
    total_usd = payout_usd * 10_000 / basket[0].target_bps
    for entry in basket[1:]:
        price_usd = _keeper_price_usd(sim, entry)
        amount = (total_usd * entry.target_bps / 10_000 / price_usd).quantize(Decimal(1))
        sim.fund(BASKET_LP, amount, asset=entry.symbol)
        sim.deposit(BASKET_LP, amount, asset=entry.symbol)


def _keeper_price_usd(sim: Alpsim, entry: Any) -> Decimal:
    sim.keeper.adopt_asset_prices()
    return Decimal(sim.keeper.price_wad(entry.price_id)) / 10**18


def measure_basket_gas(sim: Alpsim) -> dict[str, dict[str, int | None]]:
    """A deposit of about 1,000 USD and a withdrawal of 100 ALP in each basket asset, in the
    state `sim` is in (snapshotted and restored): {"deposit": {symbol: gas}, "withdraw": ...}."""
    snap = sim.snapshot()
    out: dict[str, dict[str, int | None]] = {"deposit": {}, "withdraw": {}}
    try:
        sim.keeper.run_triggers(price_pairs=set(sim.keeper.prices))
        for entry in sim.deployment.basket:
            amount = (Decimal(1_000) / _keeper_price_usd(sim, entry)).quantize(Decimal("0.0001"))
            sim.fund(NEW_LP, amount * 3, asset=entry.symbol)
            sim.deposit(NEW_LP, amount, asset=entry.symbol)  # approval and first mint out of the way
            next_second(sim)
            out["deposit"][entry.symbol] = sim.deposit(NEW_LP, amount, asset=entry.symbol).gas_used
        sim.devnet.advance_time(48 * 3600)
        sim.keeper.run_triggers(price_pairs=set(sim.keeper.prices))
        for entry in sim.deployment.basket:
            next_second(sim)
            out["withdraw"][entry.symbol] = sim.withdraw(NEW_LP, 100, asset=entry.symbol).gas_used
    finally:
        sim.revert(snap)
    return out


def open_together(sim: Alpsim, requests: list[OpenRequest]) -> list[int]:
    """Opens `requests` by one block of requests and one
    keeper batch: the ids of the positions, in the requests' order. A setup step, not a
    measured one: a fraction of the blocks of one open after another, the same positions."""
    pending = sim.request_opens(requests)
    receipt = sim.keeper.execute_open_batch([p.request_id for p in pending], [p.ciphertext for p in pending])
    opened = {e["requestId"]: e["positionId"] for e in sim.session.events(receipt, "PositionOpened")}
    missing = [p.request_id for p in pending if p.request_id not in opened]
    if missing:
        raise RuntimeError(f"bench setup: open requests {missing} were not executed")
    return [opened[p.request_id] for p in pending]


def open_many(sim: Alpsim, count: int) -> None:
    pairs = ["BTC/USD", "ETH/USD", "SOL/USD", "AAPL/USD"]
    traders = (1, 2, 3, 4, 5)
    for account in traders:
        sim.fund(account, 1_000_000)
    sim.approve_collateral(*traders)
    requests = [OpenRequest(traders[i % 5], pairs[i % 4], "long" if i % 3 else "short", 200, 10)
                for i in range(count)]
    for start in range(0, count, OPEN_BATCH):
        open_together(sim, requests[start:start + OPEN_BATCH])


def measure_study(build: Any, paths: int = STUDY_PATHS, rounds: int = STUDY_ROUNDS) -> dict[str, Any]:
    """The reference study (the shipped survival study cut to `paths` paths of STUDY_HORIZON_S)
    on 1 process and on a 2-worker local Dask cluster, `rounds` times in turn (1, 2, 1, 2, ...:
    a machine whose speed drifts during the bench moves both alike): paths per second over all
    rounds, and the same report every time."""
    from .study import load_study, run_study
    from .study.spec import Horizon

    path = find_project().root / "studies" / "survival_1001x.yaml"
    full = load_study(path)
    study = full.model_copy(update={"paths": paths,
                                    "horizon": Horizon(duration=STUDY_HORIZON_S, step=full.horizon.step)})
    out: dict[str, Any] = {"study": full.name, "paths": paths, "steps_per_path": study.horizon.steps,
                           "rounds": rounds}
    elapsed_s = {1: 0.0, 2: 0.0}
    flowing = {1: [0, 0.0], 2: [0, 0.0]}  # paths after the first result, and the time they took
    reports = []
    for _ in range(rounds):
        for workers in (1, 2):
            started = time.perf_counter()
            stamps: list[float] = []
            reports.append(run_study(study, path.parent, workers=workers, build=build,
                                     on_result=lambda result: stamps.append(time.perf_counter())).report)
            elapsed_s[workers] += time.perf_counter() - started
            # once paths flow: from the first result to the last (start-up, imports and the
            # first deployment left out, as they are in a long study)
            if len(stamps) > 1:
                flowing[workers][0] += len(stamps) - 1
                flowing[workers][1] += stamps[-1] - stamps[0]
    for workers in (1, 2):
        out[f"workers_{workers}_paths_per_s"] = round(paths * rounds / elapsed_s[workers], 2)
        count, span_s = flowing[workers]
        out[f"workers_{workers}_steady_paths_per_s"] = round(count / span_s, 2) if span_s > 0 else None
    out["speedup"] = round(out["workers_2_paths_per_s"] / out["workers_1_paths_per_s"], 2)
    if out["workers_1_steady_paths_per_s"] and out["workers_2_steady_paths_per_s"]:
        out["steady_speedup"] = round(out["workers_2_steady_paths_per_s"] / out["workers_1_steady_paths_per_s"], 2)
    first = json.dumps(reports[0], sort_keys=True)
    out["same_report"] = all(json.dumps(r, sort_keys=True) == first for r in reports[1:])
    return out


def _test_suite_s() -> float | None:
    """How long the last `make test` took (it times itself into build/test-suite.json); None
    when it has not run in this checkout or did not pass."""
    record = find_project().build / "test-suite.json"
    if not record.is_file():
        return None
    data = json.loads(record.read_text())
    return data["test_suite_s"] if data.get("passed") else None


def refused_choice(backends: tuple[str, ...], chains: tuple[str, ...]) -> tuple[str, str] | None:
    """The first of the bench's choices it cannot make, as (its option, why), or None."""
    for option, values, known in (("--backend", backends, THROUGHPUT_BACKENDS), ("--chain", chains, GAS_CHAINS)):
        unknown = [v for v in values if v not in known]
        if unknown or not values:
            return option, f"unknown: {', '.join(unknown) or 'none given'} (known: {', '.join(known)})"
    return None


def run_bench(console: Console | None = None, positions: int = 1_000, *, round_trips: int = 1_000,
              traders: int = 200, backends: tuple[str, ...] = THROUGHPUT_BACKENDS,
              out: Path | None = None, study_paths: int = STUDY_PATHS,
              study_rounds: int = STUDY_ROUNDS, chains: tuple[str, ...] = GAS_CHAINS) -> dict[str, Any]:
    """Gas on the embedded backend (exact: revm's gas reads low, docs/performance.md) on each of
    `chains`, then the throughput workload on each of `backends`."""
    refused = refused_choice(backends, chains)
    if refused:
        raise ValueError(refused[1])
    console = console or Console()
    build = compile_contracts()
    result: dict[str, Any] = {"gas": {}, "basket_gas": {}, "targets": TARGETS}
    started = time.perf_counter()
    for chain in dict.fromkeys(chains):
        with Alpsim.launch(chain, build=build, seed=1) as sim:
            prepare_fresh(sim)
            result["gas"][chain] = {"fresh": measure_gas(sim)}
            fill_basket(sim)
            result["basket_gas"][chain] = {"fresh": measure_basket_gas(sim)}
            if positions:  # 0: the fresh devnet only
                open_many(sim, positions)
                result["gas"][chain][f"with_{positions}_positions"] = measure_gas(sim)
                result["basket_gas"][chain][f"with_{positions}_positions"] = measure_basket_gas(sim)
    # throughput: the seeded round-trip workload, fast and naive paths, on the bnb profile
    result["throughput"] = {}
    for backend in dict.fromkeys(backends):
        console.print(f"throughput on {backend}: {round_trips:,} round trips by {traders:,} traders, fast then naive")
        result["throughput"][backend] = run_throughput("bnb", backend, traders=traders, round_trips=round_trips,
                                                       seed=1, build=build)
    result["throughput_target"] = THROUGHPUT_TARGET
    result["revm_vs_embedded_fast"] = None  # a ratio in one run, or none
    if {"embedded", "revm"} <= result["throughput"].keys():
        embedded_fast = result["throughput"]["embedded"]["fast"]["round_trips_per_s"]
        result["revm_vs_embedded_fast"] = round(result["throughput"]["revm"]["fast"]["round_trips_per_s"] / embedded_fast, 2)
    result["study"] = measure_study(build, study_paths, study_rounds) if study_paths else None
    result["test_suite_s"] = _test_suite_s()
    result["bench_s"] = round(time.perf_counter() - started, 1)
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print_result(console, result, positions)
    out = out or find_project().build / "bench.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    console.print(f"written: {out}")
    return result


def print_result(console: Console, result: dict[str, Any], positions: int) -> None:
    for chain, runs in result["gas"].items():
        fresh, loaded = runs["fresh"], runs.get(f"with_{positions}_positions")  # no loaded run: --positions 0
        table = Table(title=f"gas on {chain}: fresh devnet" + (f" and with {positions:,} positions open" if loaded else ""))
        for col in ("operation", "fresh") + ((f"{positions:,} open", "change") if loaded else ()):
            table.add_column(col, justify="right")
        for op in OPS:
            a = fresh[op]
            row = [op, "-" if a is None else f"{a:,}"]
            if loaded:
                b = loaded[op]
                row += ["-" if b is None else f"{b:,}", "-" if a is None else f"{(b - a) / a * 100:+.1f}%"]
            table.add_row(*row)
        console.print(table)
        totals = Table(title=f"{chain}: against the targets")
        for col in ("measure", "gas (fresh)", "target", "met"):
            totals.add_column(col, justify="right")
        for name, target, value in _against_targets(fresh):
            totals.add_row(name, f"{value:,}", f"{target:,}", "yes" if value <= target else "no")
        console.print(totals)
    for chain, runs in result.get("basket_gas", {}).items():
        table = Table(title=f"gas on {chain}: a deposit and a withdrawal per basket asset, the basket at its targets")
        for col in ("asset",) + tuple(f"{op}, {state.replace('_', ' ')}" for state in runs for op in ("deposit", "withdraw")):
            table.add_column(col, justify="right")
        for symbol in next(iter(runs.values()))["deposit"]:
            table.add_row(symbol, *(f"{runs[state][op][symbol]:,}" if runs[state][op][symbol] is not None else "-"
                                    for state in runs for op in ("deposit", "withdraw")))
        console.print(table)
    console.print(f"test_suite_s (last make test): {result.get('test_suite_s')}; bench {result['bench_s']} s, "
                  f"peak RSS {result['peak_rss_mb']} MB")
    if result.get("throughput"):
        _print_throughput(console, result["throughput"])
    if result.get("study"):
        st = result["study"]
        console.print(f"study ({st['paths']} paths of {st['steps_per_path']} price steps, {st['rounds']} rounds, revm): "
                      f"{st['workers_1_paths_per_s']} paths/s on 1 process, {st['workers_2_paths_per_s']} on 2 "
                      f"workers ({st['speedup']}x, start-up included; once paths flow {st.get('steady_speedup')}x; "
                      f"target {STUDY_SPEEDUP_TARGET}x: "
                      f"{'met' if st['speedup'] >= STUDY_SPEEDUP_TARGET else 'not met'}); same report: "
                      f"{'yes' if st['same_report'] else 'NO'}")


def _against_targets(gas: dict[str, int | None]) -> list[tuple[str, int, int]]:
    """(measure, target, gas) rows: a lone keeper execution and a 50-request keeper batch."""
    return [
        ("open_total", TARGETS["open_total"], gas["request_open"] + gas["execute_open"]),
        ("open_total, batched", TARGETS["open_total"], gas["request_open"] + gas["execute_open_batch_per_request"]),
        ("close_total", TARGETS["close_total"], gas["request_close"] + gas["execute_close"]),
        ("close_total, batched", TARGETS["close_total"], gas["request_close"] + gas["execute_close_batch_per_request"]),
        ("liquidate", TARGETS["liquidate"], gas["liquidate"]),
        ("liquidate_batch_per_position", TARGETS["liquidate_batch_per_position"], gas["liquidate_batch_per_position"]),
        ("deposit", TARGETS["deposit"], gas["deposit"]),
        ("withdraw", TARGETS["withdraw"], gas["withdraw"]),
    ]


def _print_throughput(console: Console, throughput: dict[str, Any]) -> None:
    table = Table(title=f"throughput on bnb: round trips per second, fast vs naive path "
                        f"(targets: embedded fast >= {THROUGHPUT_TARGET:g}x its naive; revm fast >= "
                        f"{REVM_TARGET:g}x embedded fast)")
    for col in ("backend", "trips", "liq.", "fast rt/s", "naive rt/s", "ratio", "met"):
        table.add_column(col, justify="right")
    embedded_fast = throughput["embedded"]["fast"]["round_trips_per_s"] if "embedded" in throughput else None
    for backend, r in throughput.items():
        met = "-"
        if backend == "embedded":
            met = "yes" if r["ratio"] >= THROUGHPUT_TARGET else "no"
        elif backend == "revm" and embedded_fast:
            vs = r["fast"]["round_trips_per_s"] / embedded_fast
            met = f"{vs:.1f}x embedded: " + ("yes" if vs >= REVM_TARGET else "no")
        table.add_row(backend, f"{r['round_trips']:,}", f"{r['liquidations']:,}", f"{r['fast']['round_trips_per_s']:.1f}",
                      f"{r['naive']['round_trips_per_s']:.2f}", f"{r['ratio']:.1f}x", met)
    console.print(table)
