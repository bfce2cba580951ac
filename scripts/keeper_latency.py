"""Keeper latency soak: an `alpsim devnet`-equivalent (anvil, the system deployed, the pool
funded, the keeper loop in its own thread) for each chain profile, and N traders, each on its
own connection (all in a process of their own, as a devnet's clients), opening and closing
for a while. For every request: the block it was mined in and the block the keeper executed
(or rejected) it in, from the chain's logs afterwards. Prints median / p99 / max blocks to
execution and the expired requests; writes build/keeper_latency.json.

`--mining interval` (the default) is `alpsim devnet`'s node: a block every block time of the
chain's profile (0.75 s BNB Chain, 0.25 s Arbitrum), as the chain. `--mining auto` is
`alpsim devnet --block-time 0`: a block per transaction, so every trader's transaction is a
block too and blocks count transactions.

    .venv/bin/python scripts/keeper_latency.py --chain bnb --chain arbitrum --seconds 60
    .venv/bin/python scripts/keeper_latency.py --chain bnb --chain arbitrum --seconds 60 --mining auto \
        --out build/keeper_latency_automine.json
"""

from __future__ import annotations

import json
import multiprocessing
import random
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from alpsim.deployment import deploy_system
from alpsim.devnet import AnvilDevnet
from alpsim.keeper import event_topics
from alpsim.paths import find_project
from alpsim.profiles import get_profile
from alpsim.service import GbmPrices, KeeperLoop, connect

RESERVED_ACCOUNTS = {0, 7, 8, 9}
"""Deployer, LP, treasury, keeper: the traders are the other dev accounts."""
LP = 7
PENDING, EXECUTED = 1, 2  # RequestStatus in Types.sol
TRADER_CLOSE = 0  # CloseReason in Types.sol
POLL_S = 0.02
"""How often a trader reads its request's status."""
THINK_S = (0.0, 0.3)
"""A trader waits this long (uniform) between seeing an outcome and its next request."""

DEFAULT_OUT = find_project().root / "build" / "keeper_latency.json"

console = Console(width=None if sys.stdout.isatty() else 200)


class Mining(str, Enum):
    auto = "auto"
    interval = "interval"


def _trader_accounts(count: int) -> list[int]:
    return [i for i in range(1, count + len(RESERVED_ACCOUNTS) + 1) if i not in RESERVED_ACCOUNTS][:count]


def _percentile(values: list[int], pct: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return float(ordered[max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))])


def _summary(blocks: list[int], waits_s: list[float]) -> dict:
    if not blocks:
        return {"count": 0}
    return {"count": len(blocks), "median_blocks": statistics.median(blocks), "p99_blocks": _percentile(blocks, 99),
            "max_blocks": max(blocks), "median_wait_s": round(statistics.median(waits_s), 3) if waits_s else None,
            "p99_wait_s": round(_percentile([round(w * 1000) for w in waits_s], 99) / 1000, 3) if waits_s else None}


def run_traders(url: str, path: str, accounts: list[int], seconds: float, seed: int
                ) -> tuple[dict[int, float], list[int]]:
    """One thread per trader: open, wait for the outcome, close, wait, until `seconds` have
    passed. The seconds from each request's receipt to its outcome seen, and the requests seen
    expire."""
    deadline = time.monotonic() + seconds
    waits: dict[int, float] = {}
    expired: list[int] = []
    lock = threading.Lock()

    def wait(sim, rid: int, block: int, sent_s: float) -> int:  # noqa: ANN001
        trading = sim.contracts["trading"]
        expiry = sim.settings.request_expiry_blocks
        while True:
            status = trading.call("request", rid)["status"]
            if status != PENDING:
                with lock:
                    waits[rid] = time.monotonic() - sent_s
                return status
            if sim.devnet.block_number > block + expiry:
                with lock:
                    expired.append(rid)
                return PENDING
            time.sleep(POLL_S)

    def trade(who: int) -> None:
        sim, rng = connect(url, path), random.Random(seed * 1000 + who)
        while time.monotonic() < deadline:
            pending = sim.request_open(who, rng.choice(["BTC/USD", "ETH/USD", "SOL/USD"]),
                                       rng.choice(["long", "short"]), rng.choice([20, 50, 100]),
                                       rng.choice([5, 10, 20, 50]))
            status = wait(sim, pending.request_id, pending.receipt["blockNumber"], time.monotonic())
            time.sleep(rng.uniform(*THINK_S))
            if status != EXECUTED or sim.position(pending.request_id) is None:
                continue
            close_id, receipt = sim.request_close(who, pending.request_id)
            wait(sim, close_id, receipt["blockNumber"], time.monotonic())
            time.sleep(rng.uniform(*THINK_S))

    threads = [threading.Thread(target=trade, args=(who,), daemon=True) for who in accounts]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=seconds + 60)
    return waits, expired


def _start_node(chain: str, accounts: int, mining: str):  # noqa: ANN202
    """`alpsim devnet`'s node: anvil mining one block every block time of the chain's profile
    ("interval", as the chain itself), or a block per transaction ("auto")."""
    profile = get_profile(chain)
    block_time_s = float(profile.block_time_s) if mining == "interval" else None
    return AnvilDevnet(profile, stamp_blocks=False, accounts=accounts, block_time_s=block_time_s)


def soak(chain: str, seconds: float, traders: int, seed: int, mining: str = "interval") -> dict:
    accounts = _trader_accounts(traders)
    devnet = _start_node(chain, max(10, max(accounts) + 1), mining)
    loop = None
    try:
        deployment, _ = deploy_system(devnet)
        path = Path(tempfile.mkdtemp(prefix="alpsim-latency-")) / f"{chain}.json"
        deployment.write(path)
        admin = connect(devnet.rpc_url, path)
        admin.fund(LP, 10_000_000)
        admin.deposit(LP, 10_000_000)
        for who in accounts:
            admin.fund(who, 100_000)
        admin.approve_collateral(*accounts)
        lines: list[str] = []
        loop = KeeperLoop(admin, iter(GbmPrices(seed=seed, step_s=1.0)), interval_s=1.0, log=lines.append)
        loop.tick()
        loop.start()
        # the traders run in a process of their own, as a devnet's clients do: their work does
        # not share the keeper's interpreter
        with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
            waits, expired = pool.submit(run_traders, devnet.rpc_url, str(path), accounts, seconds, seed).result()
        loop.stop()
        return {"chain": chain, "mining": mining, "seconds": seconds, "traders": traders,
                **_measure(admin, waits, expired, one_tx_per_block=mining == "auto"),
                "keeper_rounds": loop.ticks, "keeper_executed": loop.executed,
                "keeper_errors": [m for m in lines if "fail" in m or "moving prices" in m][:20]}
    finally:
        if loop is not None:
            loop.stop()
        devnet.close()


def _measure(sim, waits: dict[int, float], expired: list[int], one_tx_per_block: bool) -> dict:  # noqa: ANN001
    """Blocks from each request's block to its outcome's, from the engine's logs; with one
    transaction per block (automine), also without the other requests' blocks in between."""
    trading = sim.contracts["trading"]
    names = ("OpenRequested", "CloseRequested", "PositionOpened", "OpenRejected", "PositionClosed", "CloseRejected")
    topics = event_topics(sim.deployment.contracts["trading"].abi, names)
    logs = sim.session.logs(trading.address, [list(topics.values())], sim.deployment.block)
    requested: dict[int, tuple[str, int, int]] = {}  # request id -> (kind, block, position id)
    request_blocks: set[int] = set()
    done: dict[int, int] = {}
    close_of_position: dict[int, int] = {}
    for log in logs:
        event, block = sim.session.decode_log(log), log["blockNumber"]
        name = event["event"]
        if name in ("OpenRequested", "CloseRequested"):
            request_blocks.add(block)
        if name == "OpenRequested":
            requested[event["requestId"]] = ("open", block, 0)
        elif name == "CloseRequested":
            requested[event["requestId"]] = ("close", block, event["positionId"])
            close_of_position[event["positionId"]] = event["requestId"]
        elif name in ("PositionOpened", "OpenRejected", "CloseRejected"):
            done.setdefault(event["requestId"], block)
        elif name == "PositionClosed" and event["settlement"]["reason"] == TRADER_CLOSE:
            done.setdefault(close_of_position[event["positionId"]], block)
    by_kind: dict[str, list[int]] = {"open": [], "close": []}
    waits_by_kind: dict[str, list[float]] = {"open": [], "close": []}
    without_requests: list[int] = []  # the same, not counting the blocks of other requests
    for rid, (kind, block, _) in requested.items():
        if rid in done:
            by_kind[kind].append(done[rid] - block)
            without_requests.append(done[rid] - block - sum(1 for b in range(block + 1, done[rid])
                                                            if b in request_blocks))
            if rid in waits:
                waits_by_kind[kind].append(waits[rid])
    every = by_kind["open"] + by_kind["close"]
    return {"requests": len(requested), "executed": len(done), "expired": len(expired),
            "unresolved": len(requested) - len(done),
            "all": _summary(every, waits_by_kind["open"] + waits_by_kind["close"]),
            "open": _summary(by_kind["open"], waits_by_kind["open"]),
            "close": _summary(by_kind["close"], waits_by_kind["close"]),
            "histogram_blocks": {str(k): every.count(k) for k in sorted(set(every))},
            "without_other_requests": {
                "median_blocks": statistics.median(without_requests) if without_requests else None,
                "p99_blocks": _percentile(without_requests, 99) if without_requests else None,
                "max_blocks": max(without_requests, default=None)} if one_tx_per_block else None}


def main(
    chain: Annotated[list[str], typer.Option("--chain", "-c", help="Chain profile, repeatable: bnb, arbitrum.")
                     ] = ["bnb"],  # noqa: B006
    seconds: Annotated[float, typer.Option("--seconds", help="Trading time per chain.")] = 120.0,
    traders: Annotated[int, typer.Option("--traders", help="Trader threads, each its own account.")] = 8,
    seed: Annotated[int, typer.Option("--seed", help="Seed of prices and orders.")] = 0,
    mining: Annotated[Mining, typer.Option("--mining", help="interval: a block every block time of the chain, as "
                                        "`alpsim devnet`; auto: a block per transaction.")] = Mining.interval,
    out: Annotated[Path, typer.Option("--out", help="JSON report.")] = DEFAULT_OUT,
) -> None:
    """Blocks from a request's inclusion to its execution, with the devnet's keeper loop."""
    results = {}
    for name in chain:
        console.print(f"{name}: {traders} traders for {seconds:.0f} s, {mining.value} mining ...")
        results[name] = soak(name, seconds, traders, seed, mining.value)
    table = Table(title="keeper latency (blocks from a request's block to its execution's)")
    for col in ("chain", "requests", "executed", "expired", "median", "p99", "max", "median*", "p99*", "max*",
                "median wait s", "p99 wait s", "rounds"):
        table.add_column(col, justify="right")
    for name, r in results.items():
        s, w = r["all"], r["without_other_requests"] or {"median_blocks": "-", "p99_blocks": "-", "max_blocks": "-"}
        table.add_row(name, str(r["requests"]), str(r["executed"]), str(r["expired"]), str(s.get("median_blocks")),
                      str(s.get("p99_blocks")), str(s.get("max_blocks")), str(w["median_blocks"]),
                      str(w["p99_blocks"]), str(w["max_blocks"]), str(s.get("median_wait_s")),
                      str(s.get("p99_wait_s")), str(r["keeper_rounds"]))
    console.print(table)
    console.print("*: automine only, not counting the blocks of other traders' requests in between", soft_wrap=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    console.print(f"written: {out}", soft_wrap=True)


if __name__ == "__main__":
    typer.run(main)
