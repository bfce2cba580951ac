"""Long-running services: the keeper loop against any node, and the local devnet (anvil plus
the deployed system plus a background keeper)."""

from __future__ import annotations

import json
import math
import random
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Iterator

from .client import Alpsim
from .deployment import Deployment
from .errors import AlpsimError, ConfigError

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


class KeeperLoop:
    """Each tick: move prices, execute pending requests, run triggers. Errors of one tick are
    reported and the loop goes on; `stop()` ends it."""

    def __init__(self, sim: Alpsim, prices: Iterator[dict[str, Decimal]], interval_s: float = 1.0,
                 log=print):  # noqa: ANN001
        self.sim, self.prices, self.interval_s, self.log = sim, prices, interval_s, log
        self._stop = threading.Event()
        self.thread: threading.Thread | None = None
        self.ticks = 0
        self.executed = 0

    def tick(self) -> None:
        keeper = self.sim.keeper
        keeper.set_prices(next(self.prices))
        for receipt in keeper.execute_pending():
            self.executed += 1
            for event in self.sim.session.events(receipt):
                if event["event"] in ("PositionOpened", "OpenRejected", "PositionClosed", "CloseRejected"):
                    self.log(f"keeper: {event['event']} request {event.get('requestId', '-')} "
                             f"position {event.get('positionId', '-')}")
        if keeper.open_positions:
            closed = self.sim.closed_from(keeper.run_triggers())
            for c in closed:
                self.log(f"keeper: position {c.position.id} {c.reason} at {c.exit_price:.2f}")
        else:
            keeper.push_prices()
        self.ticks += 1

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except AlpsimError as exc:
                self.log(f"keeper: tick failed: {exc}")
            self._stop.wait(self.interval_s)

    def start(self) -> None:
        self.sim.keeper.sync()
        self.thread = threading.Thread(target=self.run, name="alpsim-keeper", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self.thread is not None:
            self.thread.join(timeout=30)


def connect(rpc_url: str, deployment_file: str | Path) -> Alpsim:
    """An Alpsim client for a system already deployed on a running node (no block stamping:
    the node keeps its own time)."""
    from .devnet import RpcDevnet
    from .profiles import get_profile

    deployment = Deployment.read(deployment_file)
    devnet = RpcDevnet(get_profile(deployment.chain), rpc_url, stamp_blocks=False)
    if devnet.chain_id != deployment.chain_id:
        raise ConfigError(f"{deployment_file} is for chain id {deployment.chain_id}; {rpc_url} is {devnet.chain_id}")
    return Alpsim(devnet, deployment)


def wait_forever(stop: threading.Event | None = None) -> None:
    while stop is None or not stop.is_set():
        time.sleep(0.2)
