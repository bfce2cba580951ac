"""`alpsim economics`: the keeper's books per chain (docs/economics.md). Each keeper operation's
gas measured on the embedded EVM (exact), priced at the profile's gas prices (median and tail,
plus the L1 data cost on a rollup), against what it earns (the execution fee, on opens and on
rejected orders only); then the keeper's day at N opens and its break-even."""

from __future__ import annotations

import math
import sys
import zlib
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable, TextIO

from rich.console import Console
from rich.table import Table

from .bench import REJECT_UNDECRYPTABLE, TRADER, next_second, open_together, prepare_fresh
from .client import Alpsim, OpenRequest
from .errors import ConfigError
from .profiles import ChainProfile, get_profile

CHAINS = ("bnb", "arbitrum")
"""The chain profiles `alpsim economics` prices (`--chain` picks some)."""
LIQUIDATED_SHARE = Decimal("0.30")
"""The keeper's day: this share of opens ends liquidated, the rest are closed by their trader."""
SECONDS_PER_DAY = 86_400
GWEI = Decimal("1e-9")
BATCHES = (10, 50)
BATCH_TRADERS = (1, 2, 3, 4, 5)


@dataclass(frozen=True)
class Operation:
    key: str
    label: str
    earns_fee: bool
    """Whether the keeper is paid the execution fee for it (opens and rejected orders)."""


OPERATIONS = (
    Operation("price_push", "price push (per block)", False),
    Operation("open", "open, executed alone", True),
    *(Operation(f"open_batch_{n}", f"open, batch of {n} (per open)", True) for n in BATCHES),
    Operation("close", "close", False),
    Operation("take_profit", "take-profit", False),
    Operation("stop_loss", "stop-loss", False),
    Operation("liquidation", "liquidation, alone", False),
    *(Operation(f"liquidation_batch_{n}", f"liquidation, batch of {n} (per position)", False) for n in BATCHES),
    Operation("reject_open", "rejected order", True),
)


# ----------------------------------------------------------------------------- measuring
def compressed_bytes(data: bytes) -> int:
    """Bytes of `data` after raw DEFLATE at level 9: a stand-in for the Brotli Arbitrum
    compresses a transaction with to estimate its L1 size (Brotli is not a dependency)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    return len(packer.compress(data) + packer.flush())


class _Recorder:
    """The calldata of each transaction the session sends, by transaction hash."""

    def __init__(self, sim: Alpsim):
        self.data: dict[str, bytes] = {}
        sim.session.receipt_listeners.append(self._heard)

    def _heard(self, tx: dict, receipt: dict) -> None:
        data = tx.get("data") or b""
        self.data[_hash(receipt["transactionHash"])] = bytes.fromhex(data[2:]) if isinstance(data, str) else bytes(data)

    def measured(self, receipt: dict, count: int = 1) -> dict[str, int]:
        """Gas, calldata bytes and compressed calldata bytes of `receipt`'s transaction, per
        one of the `count` operations it carries."""
        data = self.data[_hash(receipt["transactionHash"])]
        return {"operations_in_tx": count, "gas": round(receipt["gasUsed"] / count),
                "calldata_bytes": round(len(data) / count), "compressed_bytes": round(compressed_bytes(data) / count)}


def _hash(tx_hash: Any) -> str:
    return tx_hash if isinstance(tx_hash, str) else "0x" + bytes(tx_hash).hex()


def measure_operations(sim: Alpsim) -> dict[str, dict[str, int]]:
    """Each keeper operation once in the state `sim` is in (snapshotted and restored): its
    keeper transaction's gas (the trader's request is the trader's), calldata and compressed
    calldata bytes, per operation."""
    recorder = _Recorder(sim)
    snap = sim.snapshot()
    out: dict[str, dict[str, int]] = {}
    keeper = sim.keeper
    try:
        sim.approve_collateral(TRADER, *BATCH_TRADERS)
        for account in dict.fromkeys((TRADER, *BATCH_TRADERS)):
            sim.fund(account, 1_000_000)
        # a block's price push: every pair the keeper prices, no trade
        keeper.set_prices({"BTC/USD": 60_000})
        next_second(sim)
        out["price_push"] = recorder.measured(keeper.push_prices())
        sim.open(TRADER, "ETH/USD", "short", 100, 10)  # the trader's first position out of the way
        # an open alone, and its close by the trader
        next_second(sim)
        pending = sim.request_open(TRADER, "BTC/USD", "long", 1_000, 50)
        next_second(sim)
        receipt = keeper.execute_open(pending.request_id, pending.ciphertext)
        out["open"] = recorder.measured(receipt)
        position_id = sim.session.events(receipt, "PositionOpened")[0]["positionId"]
        next_second(sim)
        request_id, _ = sim.request_close(TRADER, position_id)
        next_second(sim)
        out["close"] = recorder.measured(keeper.execute_close(request_id))
        # opens in keeper batches: different traders, both sides, two pairs
        for n in BATCHES:
            pending = sim.request_opens([
                OpenRequest(BATCH_TRADERS[i % len(BATCH_TRADERS)], "BTC/USD" if i % 2 else "ETH/USD",
                            "long" if i % 3 else "short", 200, 10) for i in range(n)])
            next_second(sim)
            receipt = keeper.execute_open_batch([p.request_id for p in pending], [p.ciphertext for p in pending])
            if len(sim.session.events(receipt, "PositionOpened")) != n:
                raise RuntimeError(f"economics: a batch of {n} opens did not open {n} positions")
            out[f"open_batch_{n}"] = recorder.measured(receipt, n)
        # triggers: a 10x long closed at its take-profit, another at its stop-loss
        tp = sim.open(TRADER, "BTC/USD", "long", 1_000, 10, take_profit=60_500).position.id
        keeper.set_prices({"BTC/USD": 60_600})
        next_second(sim)
        out["take_profit"] = _closing(sim, recorder, keeper.run_triggers([tp]), 1, "take-profit")
        keeper.set_prices({"BTC/USD": 60_000})
        sl = sim.open(TRADER, "BTC/USD", "long", 1_000, 10, stop_loss=59_500).position.id
        keeper.set_prices({"BTC/USD": 59_400})
        next_second(sim)
        out["stop_loss"] = _closing(sim, recorder, keeper.run_triggers([sl]), 1, "stop-loss")
        # liquidations: 1001x longs pushed past their line by a 1/6 % drop
        for n in (1, *BATCHES):
            keeper.set_prices({"BTC/USD": 60_000})
            ids = open_together(sim, [OpenRequest(TRADER, "BTC/USD", "long", 100, 1001)] * n)
            keeper.set_prices({"BTC/USD": 59_900})
            next_second(sim)
            key = "liquidation" if n == 1 else f"liquidation_batch_{n}"
            out[key] = _closing(sim, recorder, keeper.run_triggers(ids), n, "liquidation")
        # the rejection of an order the keeper cannot decrypt (148 random bytes)
        keeper.set_prices({"BTC/USD": 60_000})
        trading = sim.contracts["trading"]
        receipt = trading.transact("requestOpen", b"\x11" * 32, b"\x5a" * 148, sim.to_units(100),
                                   sender=sim.address(TRADER))
        rid = sim.session.events(receipt, "OpenRequested")[0]["requestId"]
        next_second(sim)
        out["reject_open"] = recorder.measured(keeper.reject_open(rid, REJECT_UNDECRYPTABLE))
    finally:
        sim.revert(snap)
        sim.session.receipt_listeners.remove(recorder._heard)
    return out


def _closing(sim: Alpsim, recorder: _Recorder, receipt: dict, n: int, what: str) -> dict[str, int]:
    if len(sim.closed_from(receipt)) != n:
        raise RuntimeError(f"economics: the {what} trigger did not close {n} position(s)")
    return recorder.measured(receipt, n)


def measure_chain(chain: str | ChainProfile, *, build: Any = None) -> dict[str, dict[str, int]]:
    """A fresh embedded devnet of `chain` (bench.prepare_fresh's), each operation measured."""
    with Alpsim.launch(chain, "embedded", build=build, seed=1) as sim:
        prepare_fresh(sim)
        return measure_operations(sim)


# ----------------------------------------------------------------------------- pricing
def gas_cost_usd(gas: int | Decimal, gwei: Decimal, native_usd: Decimal) -> Decimal:
    """gas x gwei x 1e-9 x the native coin's USD price."""
    return Decimal(gas) * gwei * GWEI * native_usd


def price_operation(profile: ChainProfile, op: Operation, measured: dict[str, int]) -> dict[str, Any]:
    """One row of the table: the operation's cost at the median and the tail gas price (with
    the L1 data cost on a rollup) and what the keeper earns for it, in USD."""
    gas_model = _gas_model(profile)
    native = gas_model.native_usd
    l1 = gas_model.l1_data
    row: dict[str, Any] = {"label": op.label, **measured,
                           "execution_median_usd": gas_cost_usd(measured["gas"], gas_model.median_gwei, native),
                           "execution_p99_usd": gas_cost_usd(measured["gas"], gas_model.p99_gwei, native)}
    if l1 is None:
        row["l1_bytes"] = None
        row["l1_data_median_usd"] = row["l1_data_p99_usd"] = Decimal(0)
    else:
        # the signed transaction's overhead, shared by the operations a batch carries
        l1_bytes = Decimal(measured["compressed_bytes"]) + Decimal(l1.tx_overhead_bytes) / measured["operations_in_tx"]
        row["l1_bytes"] = l1_bytes
        blob_gas = l1_bytes * l1.blob_gas_per_byte
        row["l1_data_median_usd"] = gas_cost_usd(blob_gas, l1.blob_base_fee_median_gwei, native)
        row["l1_data_p99_usd"] = gas_cost_usd(blob_gas, l1.blob_base_fee_p99_gwei, native)
    row["cost_median_usd"] = row["execution_median_usd"] + row["l1_data_median_usd"]
    row["cost_p99_usd"] = row["execution_p99_usd"] + row["l1_data_p99_usd"]
    row["revenue_usd"] = profile.execution_fee_usd if op.earns_fee else Decimal(0)
    row["profit_median_usd"] = row["revenue_usd"] - row["cost_median_usd"]
    row["profit_p99_usd"] = row["revenue_usd"] - row["cost_p99_usd"]
    return row


def keeper_day(profile: ChainProfile, rows: dict[str, dict[str, Any]], opens_per_day: int,
               liquidated_share: Decimal = LIQUIDATED_SHARE) -> dict[str, Any]:
    """The keeper's day: one price push per block, `opens_per_day` opens each executed alone
    (at a few thousand a day they rarely share a block), `liquidated_share` of them liquidated
    alone and the rest closed; revenue, cost and profit at the median and the tail gas price,
    the opens a day that break even, and the execution fee that breaks even at this volume."""
    pushes = Decimal(SECONDS_PER_DAY) / profile.block_time_s
    opens = Decimal(opens_per_day)
    fee = profile.execution_fee_usd
    day: dict[str, Any] = {"price_pushes_per_day": pushes, "opens_per_day": opens,
                           "closes_per_day": opens * (1 - liquidated_share),
                           "liquidations_per_day": opens * liquidated_share, "liquidated_share": liquidated_share,
                           "revenue_usd": opens * fee}
    for tail in ("median", "p99"):
        push_usd = pushes * rows["price_push"][f"cost_{tail}_usd"]
        # what one open costs the keeper over its life: its execution and its end
        lifecycle_usd = (rows["open"][f"cost_{tail}_usd"] + (1 - liquidated_share) * rows["close"][f"cost_{tail}_usd"]
                         + liquidated_share * rows["liquidation"][f"cost_{tail}_usd"])
        cost = push_usd + opens * lifecycle_usd
        day[f"push_cost_{tail}_usd"] = push_usd
        day[f"cost_per_open_{tail}_usd"] = lifecycle_usd
        day[f"cost_{tail}_usd"] = cost
        day[f"profit_{tail}_usd"] = day["revenue_usd"] - cost
        margin = fee - lifecycle_usd
        day[f"break_even_opens_per_day_{tail}"] = math.ceil(push_usd / margin) if margin > 0 else None
        day[f"break_even_execution_fee_{tail}_usd"] = push_usd / opens + lifecycle_usd if opens > 0 else None
    return day


def _gas_model(profile: ChainProfile):  # noqa: ANN202
    if profile.gas is None:
        raise ConfigError(f"chain profile {profile.name!r} has no [{profile.name}.gas] table: "
                          f"its gas prices are needed to price the keeper's operations")
    return profile.gas


def chain_books(profile: ChainProfile, measured: dict[str, dict[str, int]], opens_per_day: int,
                liquidated_share: Decimal = LIQUIDATED_SHARE) -> dict[str, Any]:
    """The per-operation table and the day of one chain, from its measured gas."""
    gas_model = _gas_model(profile)
    rows = {op.key: price_operation(profile, op, measured[op.key]) for op in OPERATIONS}
    l1 = gas_model.l1_data
    return {
        "display_name": profile.display_name,
        "native_coin": profile.native_coin,
        "execution_fee_usd": profile.execution_fee_usd,
        "block_time_s": profile.block_time_s,
        "gas_prices": {"native_usd": gas_model.native_usd, "median_gwei": gas_model.median_gwei,
                       "p99_gwei": gas_model.p99_gwei,
                       "l1_blob_base_fee_median_gwei": l1.blob_base_fee_median_gwei if l1 else None,
                       "l1_blob_base_fee_p99_gwei": l1.blob_base_fee_p99_gwei if l1 else None},
        "operations": rows,
        "day": keeper_day(profile, rows, opens_per_day, liquidated_share),
    }


def refused_input(chains: tuple[str, ...], opens_per_day: int) -> tuple[str, str] | None:
    """The first input `alpsim economics` refuses, as (its option, why), or None."""
    unknown = [c for c in chains if c not in CHAINS]
    if unknown or not chains:
        return "--chain", f"unknown: {', '.join(unknown) or 'none given'} (known: {', '.join(CHAINS)})"
    if opens_per_day < 0:
        return "--opens-per-day", f"must be 0 or more, got {opens_per_day}"
    return None


def run_economics(chains: tuple[str, ...] = CHAINS, opens_per_day: int = 1_000, *,
                  profiles_file: str | None = None, build: Any = None,
                  progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The books of each of `chains`, gas measured now (nothing cached)."""
    refused = refused_input(chains, opens_per_day)
    if refused:
        raise ConfigError(f"{refused[0]}: {refused[1]}")
    profiles = {chain: get_profile(chain, profiles_file) for chain in dict.fromkeys(chains)}
    for profile in profiles.values():
        _gas_model(profile)  # refused before minutes of measuring
    out: dict[str, Any] = {"opens_per_day": opens_per_day, "liquidated_share": LIQUIDATED_SHARE, "chains": {}}
    for chain, profile in profiles.items():
        if progress:
            progress(f"economics: measuring the keeper's gas on {chain} (embedded EVM, exact; a few seconds)")
        out["chains"][chain] = chain_books(profile, measure_chain(profile, build=build), opens_per_day)
    return out


# ----------------------------------------------------------------------------- output
def to_json(value: Any) -> Any:
    """Decimals as floats (rounded to 9 significant digits), recursively."""
    if isinstance(value, Decimal):
        return float(f"{value:.9g}")
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    return value


def _usd(value: Decimal | None) -> str:
    if value is None:
        return "never"
    return f"{value:,.2f}" if abs(value) >= 1 else f"{value:.4g}" if value else "0"


def print_books(console: Console, result: dict[str, Any]) -> None:
    """The per-operation table (chains side by side) and the keeper's day."""
    if not console.is_terminal and console.width < 150:  # piped to a file: wide enough for both chains
        console = Console(file=console.file, width=150)
    chains = result["chains"]
    table = Table(title="The keeper's operations: gas (embedded EVM, exact) and USD per operation, "
                        "cost at the median / p99 gas price (Arbitrum: L1 data included)")
    table.add_column("operation")
    for chain in chains:
        for col in ("gas", "median USD", "p99 USD", "earns USD"):
            table.add_column(f"{chain} {col}", justify="right")
    for op in OPERATIONS:
        cells = [op.label]
        for books in chains.values():
            row = books["operations"][op.key]
            cells += [f"{row['gas']:,}", _usd(row["cost_median_usd"]), _usd(row["cost_p99_usd"]), _usd(row["revenue_usd"])]
        table.add_row(*cells)
    console.print(table)
    day = Table(title=f"The keeper's day at {result['opens_per_day']:,} opens "
                      f"({result['liquidated_share'] * 100:.0f}% liquidated, the rest closed; one price push a block)")
    day.add_column("")
    for chain, books in chains.items():
        day.add_column(f"{chain} (fee {books['execution_fee_usd']} USD)", justify="right")
    rows: list[tuple[str, Callable[[dict], str]]] = [
        ("price pushes", lambda d: f"{d['price_pushes_per_day']:,.0f}"),
        ("revenue USD", lambda d: _usd(d["revenue_usd"])),
    ]
    for tail in ("median", "p99"):
        rows += [
            (f"cost USD, {tail} gas", lambda d, t=tail: _usd(d[f"cost_{t}_usd"])),
            (f"  of which price pushes, {tail}", lambda d, t=tail: _usd(d[f"push_cost_{t}_usd"])),
            (f"profit USD, {tail} gas", lambda d, t=tail: _usd(d[f"profit_{t}_usd"])),
            (f"break-even opens/day, {tail}", lambda d, t=tail: "never" if d[f"break_even_opens_per_day_{t}"] is None
             else f"{d[f'break_even_opens_per_day_{t}']:,}"),
            (f"break-even fee USD at this volume, {tail}",
             lambda d, t=tail: "-" if d[f"break_even_execution_fee_{t}_usd"] is None
             else _usd(d[f"break_even_execution_fee_{t}_usd"])),
        ]
    for label, cell in rows:
        day.add_row(label, *(cell(books["day"]) for books in chains.values()))
    console.print(day)


def progress_line(stream: TextIO = sys.stderr) -> Callable[[str], None]:
    def say(message: str) -> None:
        print(message, file=stream, flush=True)
    return say
