"""Long-running services: the keeper loop against any node, and the local devnet (anvil plus
the deployed system plus a background keeper)."""

from __future__ import annotations

import json
import math
import random
import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Callable, Iterator

from .client import Alpsim
from .contracts import Session
from .deployment import Deployment
from .devnet import RpcDevnet
from .errors import ConfigError
from .keeper import Keeper, RoundReport
from .positions import CLOSE_REASONS
from .protocol import CloseReason, RejectReason
from .units import wad_to_decimal

DEFAULT_START_PRICES = {"BTC/USD": Decimal(60_000), "ETH/USD": Decimal(3_000), "SOL/USD": Decimal(150),
                        "AAPL/USD": Decimal(200)}
PRICE_QUANTUM = Decimal("0.00000001")


@dataclass
class GbmPrices:
    """A seeded geometric Brownian motion per pair, one tick every `step_s` seconds."""

    start: dict[str, Decimal] = field(default_factory=lambda: dict(DEFAULT_START_PRICES))
    volatility: float = 0.5
    step_s: float = 1.0
    seed: int = 0

    def __iter__(self) -> Iterator[dict[str, Decimal]]:
        rng = random.Random(self.seed)
        prices = dict(self.start)
        dt = self.step_s / (365 * 24 * 3600)
        while True:
            yield dict(prices)
            for pair, price in prices.items():
                factor = math.exp(-self.volatility**2 / 2 * dt + self.volatility * math.sqrt(dt) * rng.gauss(0, 1))
                prices[pair] = (price * Decimal(repr(factor))).quantize(PRICE_QUANTUM)


def file_prices(path: str | Path) -> Iterator[dict[str, Decimal]]:
    """Prices from a JSON file: a list of {pair: price} objects, one per tick; the last one
    repeats."""
    try:
        rows = json.loads(Path(path).read_text(), parse_float=Decimal)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read prices file {path}: {exc}") from None
    if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
        raise ConfigError(f"{path}: expected a non-empty JSON list of {{pair: price}} objects")
    rows = [{k: Decimal(str(v)) for k, v in r.items()} for r in rows]
    yield from rows
    while True:
        yield rows[-1]


REFERENCE_DEVIATION_BPS = 5
"""The loop moves a pair's reference feed (the Chainlink mock) when the keeper's price is more
than this from it, as a Chainlink feed updates on deviation: half the oracle's 10 bps
worse-price band, so trades still fill at the keeper's price, with one feed transaction every
few price moves instead of one per pair each move."""
ROUND_HISTORY = 1_000
"""Rounds whose reports `KeeperLoop.rounds` keeps (the latest)."""


class KeeperLoop:
    """Follows the chain: polls the head every `poll_s` and runs a round (`tick`) as soon as a
    block brings new requests, and at least every `interval_s`, moving prices to the source's
    next. Errors are logged and the loop goes on; `stop()` ends it. `keeper`: the Keeper to
    run, or a client (`Alpsim`) whose `keeper` it runs."""

    def __init__(self, keeper: Keeper | Alpsim, prices: Iterator[dict[str, Decimal]], interval_s: float = 1.0,
                 log: Callable[[str], None] = print, *, poll_s: float = 0.05):
        self._runs, self.prices, self.interval_s, self.log, self.poll_s = keeper, prices, interval_s, log, poll_s
        self._stop = threading.Event()
        self.thread: threading.Thread | None = None
        self.ticks = 0
        self.executed = 0
        self.rejected = 0
        self.rounds: deque[RoundReport] = deque(maxlen=ROUND_HISTORY)
        """Reports of the latest rounds (receipts left out)."""
        self._next_prices_at_s = 0.0

    @property
    def keeper(self) -> Keeper:
        """The keeper it runs (a client's current one)."""
        return self._runs if isinstance(self._runs, Keeper) else self._runs.keeper

    def tick(self, move_prices: bool = True) -> RoundReport:
        """One round; with `move_prices`, first moves prices to the source's next (and the
        reference feeds that drifted from them)."""
        keeper = self.keeper
        if move_prices:
            self._next_prices_at_s = time.monotonic() + self.interval_s
            try:
                keeper.set_prices(next(self.prices), reference=False)
                keeper.follow_references(REFERENCE_DEVIATION_BPS)
            except Exception as exc:  # noqa: BLE001 - the round runs at the previous prices
                self.log(f"keeper: moving prices: {type(exc).__name__}: {exc}")
        report = keeper.run_round(log=self.log)
        try:  # after the requests (their windows are in blocks): the basket's asset-only prices
            keeper.push_aging_asset_prices()
        except Exception as exc:  # noqa: BLE001 - LPs wait for the next round
            self.log(f"keeper: asset prices: {type(exc).__name__}: {exc}")
        self.ticks += 1
        self.executed += len(report.executed)
        self.rejected += len(report.rejected)
        self.rounds.append(replace(report, receipts=[], trigger_receipt=None))
        if report.expired:
            self.log(f"keeper: requests {report.expired} expired before their execution (their traders cancel)")
        for event in report.events:
            self.log(f"keeper: {event['event']} request {event.get('requestId', '-')} "
                     f"position {event.get('positionId', '-')}"
                     + (f" ({RejectReason(event['reason']).label})" if "reason" in event else ""))
        if report.trigger_receipt is not None and report.triggered:
            try:
                for event in keeper.session.events(report.trigger_receipt, "PositionClosed"):
                    settlement = event["settlement"]
                    self.log(f"keeper: position {event['positionId']} "
                             f"{CLOSE_REASONS[CloseReason(settlement['reason'])]} "
                             f"at {wad_to_decimal(settlement['exitPrice']):.2f}")
            except Exception as exc:  # noqa: BLE001 - only the log line is lost
                self.log(f"keeper: positions {report.triggered} closed by triggers ({type(exc).__name__}: {exc})")
        return report

    def run(self) -> None:
        while not self._stop.is_set():
            wait_s = self.poll_s
            try:
                if time.monotonic() >= self._next_prices_at_s:
                    self.tick()
                    continue
                keeper = self.keeper
                head = keeper.clock.block_number
                if keeper.cursor is None or head > keeper.cursor:
                    if keeper.poll(head):  # new requests: a round now, at the same prices
                        self.tick(move_prices=False)
                        continue
            except Exception as exc:  # noqa: BLE001 - the keeper never stops on an error
                self.log(f"keeper: round failed: {type(exc).__name__}: {exc}")
                wait_s = self.interval_s  # a node that went away is not polled 20 times a second
            self._stop.wait(wait_s)

    def start(self) -> None:
        keeper = self.keeper
        keeper.adopt_asset_prices()
        if keeper.cursor is None:
            keeper.sync()
        self.thread = threading.Thread(target=self.run, name="alpsim-keeper", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self.thread is not None:
            self.thread.join(timeout=30)


def connect(rpc_url: str, deployment_file: str | Path) -> Alpsim:
    """An Alpsim client for a system already deployed on a running node (no block stamping:
    the node keeps its own time)."""
    devnet, deployment = _node(rpc_url, deployment_file)
    return Alpsim(devnet, deployment)


def connect_keeper(rpc_url: str, deployment_file: str | Path, private_key: bytes | None = None) -> Keeper:
    """The keeper of a system already deployed on a running node, on its own session (no
    trader's client); `private_key` decrypts the orders (default: dev account 9's)."""
    devnet, deployment = _node(rpc_url, deployment_file)
    return Keeper(Session(devnet), deployment, devnet.chain_clock, private_key)


def _node(rpc_url: str, deployment_file: str | Path) -> tuple[RpcDevnet, Deployment]:
    """The running node (its own time kept) and the deployment there, checked to match."""
    from .profiles import get_profile

    deployment = Deployment.read(deployment_file)
    devnet = RpcDevnet(get_profile(deployment.chain), rpc_url, stamp_blocks=False)
    if devnet.chain_id != deployment.chain_id:
        raise ConfigError(f"{deployment_file} is for chain id {deployment.chain_id}; {rpc_url} is {devnet.chain_id}")
    return devnet, deployment


def wait_forever(stop: threading.Event | None = None) -> None:
    while stop is None or not stop.is_set():
        time.sleep(0.2)
