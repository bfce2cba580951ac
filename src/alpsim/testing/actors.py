"""The plugin's handles: a named dev account acting on a deployed system (`Actor`: the
`trader` and `lp` fixtures), the keeper's price control (`PriceControl`: the `prices`
fixture) and the ALP basket (`Basket`: the `basket` fixture). Thin: every method is the public
`alpsim.client.Alpsim` call of the same name."""

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

    def balance_of(self, asset: str) -> Decimal:
        """Basket `asset` (its symbol) held, in whole tokens."""
        from ..units import from_units

        return from_units(self.sim.asset_units(self.index, asset), self.sim.asset_decimals(asset))

    def fund(self, amount: "Number", *, asset: str | None = None) -> None:
        """Gives the account `amount` whole tokens of collateral, or of basket `asset`."""
        self.sim.fund(self.index, amount, asset=asset)

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
        """The keeper's price of a pair, or of a basket asset by its symbol (`prices["BNB"]`)."""
        from ..units import wad_to_decimal

        price_id = self.sim.deployment.price_id(pair)
        return wad_to_decimal(self.sim.keeper.price_book(price_id)[price_id])

    def push(self) -> dict:
        """Records the keeper's prices on chain with no trade (`updatePrices`); the receipt."""
        return self.sim.keeper.push_prices()


class Basket:
    """The ALP basket of the system under test: its assets, LP actions on any of them, the
    pool's state and quotes. `deposit(actor, "BNB", 10)` funds the actor with the asset and
    deposits it; `fill(actor, usd)` deposits `usd` spread over the basket at its target weights
    (at the keeper's prices: set the pairs' first, e.g. with the `prices` fixture)."""

    def __init__(self, sim: "Alpsim"):
        self.sim = sim

    @property
    def symbols(self) -> list[str]:
        """The basket's symbols in listing order (the payout stablecoin first)."""
        return [e.symbol for e in self.sim.deployment.basket]

    @property
    def payout(self) -> str:
        """The symbol of the payout stablecoin (the traders' margin and payouts)."""
        return self.symbols[0]

    def deposit(self, actor: Actor, asset: str, amount: "Number", **options: Any) -> "DepositResult":
        """Funds `actor` with `amount` of `asset`, then deposits it (options: `min_alp_out`)."""
        actor.fund(amount, asset=asset)
        return actor.deposit(amount, asset=asset, **options)

    def withdraw(self, actor: Actor, alp: "Number | str" = "all", asset: str | None = None,
                 **options: Any) -> "WithdrawResult":
        return actor.withdraw(alp, asset=asset, **options)

    def fill(self, actor: Actor, usd: "Number") -> list["DepositResult"]:
        """Deposits `usd` spread over the basket at its target weights (`Alpsim.deposit_at_targets`:
        each asset's share at the keeper's price, to 8 decimals, rounded down), the payout
        stablecoin first."""
        return self.sim.deposit_at_targets(actor.index, usd)

    def state(self) -> Any:
        """`sim.pool()`: holdings, weights_bps, targets_bps, prices, reserve_capacity..."""
        return self.sim.pool()

    def quote(self, asset: str, amount: "Number", withdraw: bool = False) -> dict:
        """`sim.quote_lp`: the fee, ALP (or asset) out and the weights before and after."""
        return self.sim.quote_lp(asset, amount, withdraw)
