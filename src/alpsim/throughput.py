"""`make bench`, throughput: a fixed, seeded workload of one-click round trips (open, then
close) by many traders, with price moves and liquidations between them, run two ways on the
same devnet from the same snapshot:

- fast: explicit gas limits, the traders' requests of a round in one block, the keeper's
  batches (`executeOpenBatch`, `executeCloseBatch`, `runTriggers` of every open position, one
  price update each), and no per-position reads (the keeper tracks positions from events);
- naive: what a plain web3.py script does: `contract.functions.X(...).transact(...)`, gas
  estimated for every transaction (at the pending block, plus web3's buffer), waiting for each
  receipt, one keeper transaction per request and per position, one `position(id)` read per
  position.

Both paths do the same work in the same order at the same (held) block times, so they end in
the same state: `run_workload` returns the counts and the final pool figures for a test to
compare."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Callable

from web3 import Web3
from web3.logs import DISCARD as _DISCARD

from .client import ZERO_ADDRESS, Alpsim, OpenRequest
from .deployment import KEEPER_ACCOUNT, feed_role
from .keys import dev_private_key
from .orders import commitment, seal, unseal
from .protocol import CloseReason, Order
from .service import DEFAULT_START_PRICES
from .units import to_units

PAIRS = ("BTC/USD", "ETH/USD", "SOL/USD", "AAPL/USD")
START_PRICES = DEFAULT_START_PRICES
LEVERAGES = {"BTC/USD": (2, 5, 10, 25, 50, 100, 250, 500, 1001), "ETH/USD": (2, 5, 10, 25, 50, 100, 250, 500, 1001),
             "SOL/USD": (2, 5, 10, 25, 50, 100), "AAPL/USD": (2, 5, 10, 25, 50)}
AMOUNTS = (60, 100, 150, 250)
"""Collateral per trade (whole tokens): with 2x the notional is above the 100 USD minimum."""
MAX_MOVE = Decimal("0.004")
"""Largest price move between rounds (0.4%): liquidates most 500x and 1001x positions caught
on the wrong side, few of the others."""
ROUND_S = 60
FIRST_TRADER = 10
"""Traders are the dev accounts from this index on (0-9 are the deployment's)."""
LP, POOL_LIQUIDITY, TRADER_FUNDS = 7, 50_000_000, 100_000
NAIVE_GAS_BUFFER = 100_000
"""What web3's `transact` adds to its estimate (`get_buffered_gas_estimate`)."""


@dataclass(frozen=True)
class Trip:
    """One round trip: the trader (index among the workload's traders) opens, and closes in the
    next round unless a trigger closed the position first."""

    trader: int
    pair: str
    side: str
    amount: int
    leverage: int


@dataclass(frozen=True)
class Round:
    prices: dict[str, Decimal]
    """The prices the round starts with (the keeper's and the reference feeds')."""
    trips: list[Trip]


@dataclass(frozen=True)
class Workload:
    seed: int
    traders: int
    round_trips: int
    rounds: list[Round]
    """The last round only moves prices and closes what the one before opened."""

    @property
    def accounts(self) -> int:
        """Dev accounts the devnet needs."""
        return FIRST_TRADER + self.traders


def make_workload(seed: int = 1, traders: int = 200, round_trips: int = 1_000, per_round: int = 50) -> Workload:
    """The seeded workload: `round_trips` trips in rounds of `per_round` (at most one open
    position per trader at any time), prices moving by up to MAX_MOVE between rounds."""
    if traders < 1 or round_trips < 1:
        raise ValueError("the workload needs traders and round trips")
    rng = random.Random(seed)
    per_round = min(per_round, traders)
    prices = dict(START_PRICES)
    rounds, done = [], 0
    while True:
        trips = []
        for j in range(min(per_round, round_trips - done)):
            pair = rng.choice(PAIRS)
            trips.append(Trip(trader=(done + j) % traders, pair=pair, side=rng.choice(("long", "short")),
                              amount=rng.choice(AMOUNTS), leverage=rng.choice(LEVERAGES[pair])))
        rounds.append(Round(dict(prices), trips))
        done += len(trips)
        if not trips:
            break
        prices = {p: (v * (1 + MAX_MOVE * Decimal(rng.uniform(-1, 1)))).quantize(Decimal("0.01"))
                  for p, v in prices.items()}
    return Workload(seed, traders, round_trips, rounds)


def prepare(sim: Alpsim, workload: Workload) -> None:
    """Not timed: pool liquidity, the traders' collateral and approvals, the start prices."""
    if len(sim.devnet.accounts) < workload.accounts:
        raise ValueError(f"the workload needs {workload.accounts} dev accounts, the devnet has "
                         f"{len(sim.devnet.accounts)} (Alpsim.launch(..., accounts={workload.accounts}))")
    sim.fund(LP, POOL_LIQUIDITY)
    sim.deposit(LP, POOL_LIQUIDITY)
    collateral = sim.contracts["collateral"]
    deployer, units = sim.deployment.deployer, sim.to_units(TRADER_FUNDS)
    traders = [sim.address(FIRST_TRADER + i) for i in range(workload.traders)]
    sim.session.send_many([{"from": deployer, "to": collateral.address, "gas": 200_000,
                            "data": collateral.encode("mint", t, units)} for t in traders])
    sim.approve_collateral(*traders)
    sim.keeper.set_prices(START_PRICES)


@dataclass
class Outcome:
    """What a run did, the same for both paths and both backends."""

    round_trips: int = 0
    """Positions opened and closed again (by the trader or a trigger)."""
    opened: int = 0
    rejected: int = 0
    closed_by_trader: int = 0
    liquidations: int = 0
    other_triggers: int = 0
    transactions: int = 0
    reads: int = 0
    seconds: float = 0.0
    final: dict[str, int] = field(default_factory=dict)

    def count_closed(self, reasons: list[int]) -> None:
        for reason in reasons:
            self.round_trips += 1
            if reason == CloseReason.TRADER_CLOSE:
                self.closed_by_trader += 1
            elif reason == CloseReason.LIQUIDATION:
                self.liquidations += 1
            else:
                self.other_triggers += 1

    def summary(self) -> dict[str, Any]:
        return {"round_trips": self.round_trips, "opened": self.opened, "rejected": self.rejected,
                "closed_by_trader": self.closed_by_trader, "liquidations": self.liquidations,
                "other_triggers": self.other_triggers, **self.final}


def _trader(sim: Alpsim, trip: Trip) -> str:
    return sim.address(FIRST_TRADER + trip.trader)


def run_fast(sim: Alpsim, workload: Workload) -> Outcome:
    """The workload through the client's batched paths."""
    out, keeper, devnet = Outcome(), sim.keeper, sim.devnet
    last: list[tuple[str, int]] = []  # (trader, position id) opened in the previous round
    started = time.perf_counter()
    with devnet.hold_time():
        for i, rnd in enumerate(workload.rounds):
            if i:
                devnet.advance_time(ROUND_S)
                keeper.set_prices(rnd.prices)
                out.transactions += len(rnd.prices)
            if keeper.open_positions:
                receipt = keeper.run_triggers()
                out.count_closed([e["settlement"]["reason"] for e in sim.session.events(receipt, "PositionClosed")])
                out.transactions += 1
            closes = [(t, pid) for t, pid in last if pid in keeper.open_positions]
            if closes:
                request_ids = sim.request_closes(closes)
                receipt = keeper.execute_close_batch(request_ids, [pid for _, pid in closes])
                out.count_closed([e["settlement"]["reason"] for e in sim.session.events(receipt, "PositionClosed")])
                out.transactions += len(closes) + 1
            last = []
            if rnd.trips:
                pending = sim.request_opens([OpenRequest(_trader(sim, t), t.pair, t.side, t.amount, t.leverage)
                                             for t in rnd.trips])
                receipt = keeper.execute_open_batch([p.request_id for p in pending], [p.ciphertext for p in pending])
                out.transactions += len(pending) + 1
                by_trader = {p.request_id: p.trader for p in pending}
                for event in sim.session.events(receipt, ("PositionOpened", "OpenRejected")):
                    if event["event"] == "PositionOpened":
                        out.opened += 1
                        last.append((by_trader[event["requestId"]], event["positionId"]))
                    elif event["event"] == "OpenRejected":
                        out.rejected += 1
    out.seconds = time.perf_counter() - started
    return out


def run_naive(sim: Alpsim, workload: Workload) -> Outcome:
    """The workload as a plain web3.py script would run it, connected as an outside script
    connects (`Web3(provider)`: the node's URL on anvil, the in-process provider otherwise)."""
    out, devnet = Outcome(), sim.devnet
    w3 = Web3(devnet.web3_provider())
    entries = sim.deployment.contracts
    trading = w3.eth.contract(address=entries["trading"].address, abi=entries["trading"].abi)
    feeds = {pair: w3.eth.contract(address=entries[feed_role(pair)].address, abi=entries[feed_role(pair)].abi)
             for pair in PAIRS}
    keeper, key = sim.deployment.keeper, dev_private_key(KEEPER_ACCOUNT)
    public_key = bytes(trading.functions.keeperPublicKey().call())
    events = trading.events

    def transact(fn: Any, sender: str) -> Any:
        # web3's own estimate (inside `transact`) runs at "latest", where a request sent in the
        # latest block is not executable yet; estimated at "pending" with web3's buffer instead
        gas = fn.estimate_gas({"from": sender}, "pending") + NAIVE_GAS_BUFFER
        tx_hash = fn.transact({"from": sender, "gas": gas})
        out.transactions += 1
        return w3.eth.wait_for_transaction_receipt(tx_hash)

    def closed(receipt: Any) -> None:
        out.count_closed([e["args"]["settlement"]["reason"]
                          for e in events.PositionClosed().process_receipt(receipt, errors=_DISCARD)])

    prices: dict[int, int] = {}
    last: list[tuple[str, int]] = []
    started = time.perf_counter()
    with devnet.hold_time():
        for i, rnd in enumerate(workload.rounds):
            if i:
                devnet.advance_time(ROUND_S)
            for pair, price in rnd.prices.items():
                pair_id = PAIRS.index(pair)
                prices[pair_id] = to_units(price, 18)
                if i:
                    transact(feeds[pair].functions.setAnswer(to_units(price, 8)), keeper)
            # the keeper checks each position it knows of, one transaction each
            for _, pid in last:
                position = trading.functions.position(pid).call()
                out.reads += 1
                if position[0] != ZERO_ADDRESS:
                    pair_id = position[1]
                    closed(transact(trading.functions.runTriggers([pid], [(pair_id, prices[pair_id])]), keeper))
            for trader, pid in last:
                position = trading.functions.position(pid).call()
                out.reads += 1
                if position[0] == ZERO_ADDRESS:
                    continue  # a trigger closed it
                receipt = transact(trading.functions.requestClose(pid), trader)
                request_id = events.CloseRequested().process_receipt(receipt, errors=_DISCARD)[0]["args"]["requestId"]
                pair_id = position[1]
                closed(transact(trading.functions.executeClose(request_id, [(pair_id, prices[pair_id])]), keeper))
            last = []
            for trip in rnd.trips:
                trader = _trader(sim, trip)
                order = _order(trip)
                salt = sim.rng.getrandbits(256).to_bytes(32, "big")
                randomness = sim.rng.getrandbits(8 * 48).to_bytes(48, "big")
                receipt = transact(trading.functions.requestOpen(
                    commitment(trader, order, salt), seal(order, salt, public_key, randomness),
                    sim.to_units(trip.amount)), trader)
                requested = events.OpenRequested().process_receipt(receipt, errors=_DISCARD)[0]["args"]
                revealed, revealed_salt = unseal(bytes(requested["encryptedOrder"]), key)
                receipt = transact(trading.functions.executeOpen(
                    requested["requestId"], (revealed.pair_id, revealed.is_long, revealed.leverage,
                                             revealed.take_profit, revealed.stop_loss, revealed.acceptable_price),
                    revealed_salt, [(revealed.pair_id, prices[revealed.pair_id])]), keeper)
                opened = events.PositionOpened().process_receipt(receipt, errors=_DISCARD)
                if opened:
                    out.opened += 1
                    last.append((trader, opened[0]["args"]["positionId"]))
                else:
                    out.rejected += 1
    out.seconds = time.perf_counter() - started
    return out


def _order(trip: Trip) -> Order:
    return Order(PAIRS.index(trip.pair), trip.side == "long", trip.leverage, 0, 0, 0)


def _final(sim: Alpsim, workload: Workload) -> dict[str, int]:
    pool = sim.pool()
    traders = sum(sim.collateral_units(FIRST_TRADER + i) for i in range(workload.traders))
    return {"final_nav_wad": pool.nav_wad, "final_pool_balance_units": pool.balance_units,
            "final_reserve_wad": pool.reserve_wad, "traders_collateral_units": traders,
            "keeper_collateral_units": sim.collateral_units(sim.deployment.keeper)}


def run_workload(sim: Alpsim, workload: Workload, path: str) -> Outcome:
    """Runs `workload` on `sim` (prepared) through `path` ("fast" or "naive") and records the
    final state; the caller snapshots and reverts around it."""
    runner: Callable[[Alpsim, Workload], Outcome] = {"fast": run_fast, "naive": run_naive}[path]
    out = runner(sim, workload)
    out.final = _final(sim, workload)
    return out


def measure(sim: Alpsim, workload: Workload) -> dict[str, Any]:
    """Both paths from the same prepared state (fast first, then reverted, then naive); the
    figures of the throughput bench for this backend."""
    runs = {}
    for path in ("fast", "naive"):
        snap = sim.snapshot()  # a node may forget a snapshot once reverted to: one per run
        try:
            runs[path] = run_workload(sim, workload, path)
        finally:
            sim.revert(snap)
    fast, naive = runs["fast"], runs["naive"]
    if fast.summary() != naive.summary():
        raise AssertionError(f"the two paths disagree: fast {fast.summary()} naive {naive.summary()}")
    result: dict[str, Any] = {"round_trips": fast.round_trips, "liquidations": fast.liquidations,
                              "outcome": fast.summary()}
    for name, run in (("fast", fast), ("naive", naive)):
        result[name] = {"seconds": round(run.seconds, 3), "round_trips_per_s": round(run.round_trips / run.seconds, 2),
                        "transactions": run.transactions, "reads": run.reads}
    result["ratio"] = round(result["fast"]["round_trips_per_s"] / result["naive"]["round_trips_per_s"], 2)
    return result


def run_throughput(chain: str = "bnb", backend: str = "embedded", *, traders: int = 200, round_trips: int = 1_000,
                   seed: int = 1, build: Any = None) -> dict[str, Any]:
    """Launches `backend` for `chain` with the workload's accounts and measures both paths."""
    workload = make_workload(seed, traders, round_trips)
    with Alpsim.launch(chain, backend, build=build, seed=seed, accounts=workload.accounts) as sim:
        prepare(sim, workload)
        return measure(sim, workload)
