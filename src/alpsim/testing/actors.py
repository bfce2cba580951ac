"""The plugin's handles: a named dev account acting on a deployed system (`Actor`: the
`trader` and `lp` fixtures) and the keeper's price control (`PriceControl`: the `prices`
fixture). Thin: every method is the public `alpsim.client.Alpsim` call of the same name."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..client import Alpsim, ClosedPosition, DepositResult, OpenedPosition, PendingOpen, WithdrawResult
    from ..positions import PositionInfo
    from ..units import Number

DEFAULT_PRICES_USD: dict[str, int] = {"BTC/USD": 60_000, "ETH/USD": 3_000, "SOL/USD": 150, "AAPL/USD": 200}
"""The keeper's prices (and reference feeds) the `prices` fixture starts every test with."""


@dataclass(frozen=True)
class Actor:
    """A dev account (`index` among the devnet's funded accounts) on the system `sim`."""

    sim: "Alpsim"
    index: int
    name: str

    @property
    def address(self) -> str:
        return self.sim.address(self.index)

    def __str__(self) -> str:
        return f"{self.name} ({self.address})"

    @property
    def balance(self) -> Decimal:
        """Collateral held, in whole tokens."""
        return self.sim.collateral_balance(self.index)

    def fund(self, amount: "Number") -> None:
        self.sim.fund(self.index, amount)

    def open(self, pair: str | int, side: str, amount: "Number", leverage: int, **options: Any) -> "OpenedPosition":
        return self.sim.open(self.index, pair, side, amount, leverage, **options)

    def request_open(self, pair: str | int, side: str, amount: "Number", leverage: int,
                     **options: Any) -> "PendingOpen":
        return self.sim.request_open(self.index, pair, side, amount, leverage, **options)

    def close(self, position_id: int) -> "ClosedPosition":
        return self.sim.close(self.index, position_id)

    def cancel(self, request_id: int) -> dict:
        return self.sim.cancel(self.index, request_id)

    def positions(self) -> list["PositionInfo"]:
        return self.sim.positions(self.index)

    def deposit(self, amount: "Number", **options: Any) -> "DepositResult":
        return self.sim.deposit(self.index, amount, **options)

    def withdraw(self, alp: "Number | str" = "all", **options: Any) -> "WithdrawResult":
        return self.sim.withdraw(self.index, alp, **options)


class PriceControl:
    """The keeper's prices: `prices["BTC/USD"] = 61_000` (or `set({...})`) moves the keeper's
    price and the pair's reference feed; the next execution or `push()` records it on chain."""

    def __init__(self, sim: "Alpsim", initial: dict[str, "Number"] | None = None):
        self.sim = sim
        if initial:
            self.set(initial)

    def set(self, prices: dict[str | int, "Number"], *, reference: bool = True) -> None:
        """Moves the pairs of `prices` (USD); `reference=False` leaves the reference feeds."""
        self.sim.keeper.set_prices(prices, reference=reference)

    def __setitem__(self, pair: str | int, price: "Number") -> None:
        self.set({pair: price})

    def __getitem__(self, pair: str | int) -> Decimal:
        from ..units import wad_to_decimal

        return wad_to_decimal(self.sim.keeper.prices[self.sim.pair_id(pair)])

    def push(self) -> dict:
        """Records the keeper's prices on chain with no trade (`updatePrices`); the receipt."""
        return self.sim.keeper.push_prices()
