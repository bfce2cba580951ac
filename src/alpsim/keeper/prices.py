"""The keeper's prices: what it prices each pair at (18-decimal USD), and the reference feeds
(the Chainlink mocks) it moves and refreshes.

`price_inputs` only reads: the prices as the engine takes them. Refreshing the reference feeds
that have aged past REFERENCE_REFRESH_S (Chainlink's heartbeat) sends transactions, and is a
step of its own (`refresh_stale_references`) that every keeper transaction carrying prices takes
first."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..deployment import feed_role
from ..profiles import FIRST_ASSET_PRICE_ID
from ..errors import AlpsimError
from ..units import Number, to_units

if TYPE_CHECKING:
    from ..contracts import BoundContract, Session
    from ..deployment import Deployment
    from ..devnet.base import ChainClock

REFERENCE_DECIMALS = 8
REFERENCE_REFRESH_S = 30
"""The devnet's reference feeds are refreshed when older than this (Chainlink's heartbeat)."""
REFERENCE_GAS = 500_000
"""Explicit gas of a reference feed's `setAnswer`."""


class PriceFeeder:
    """`prices`: the keeper's price per pair id; `reference_prices` and `reference_updated_at`:
    each reference feed's answer (18-decimal USD) and timestamp as this keeper last set it."""

    def __init__(self, session: "Session", deployment: "Deployment", contracts: dict[str, "BoundContract"],
                 clock: "ChainClock", address: str):
        self.session, self.deployment, self.contracts, self.clock = session, deployment, contracts, clock
        self.address = address
        self.prices: dict[int, int] = {}
        self.asset_prices: dict[int, int] = {}
        """The keeper's price per asset-only price id (BNB, the stablecoins: ids 128-255)."""
        self.reference_updated_at: dict[int, int] = {}
        self.reference_prices: dict[int, int] = {}
        self.auto_refresh_reference = True
        """Whether `refresh_stale_references` refreshes (off: the feeds age, an outage)."""

    def pair_id(self, pair: str | int) -> int:
        """The id of `pair`: its name, or an id checked to exist."""
        return self.deployment.pair_id(pair)

    def price_id(self, name: str | int) -> int:
        """The oracle id of a pair (name or id) or of a basket asset (its symbol: BTC the asset
        is BTC/USD the pair)."""
        return self.deployment.price_id(name)

    def book(self, price_id: int) -> dict[int, int]:
        """The book an oracle id's price lives in: `asset_prices` (ids 128-255) or `prices` (pairs)."""
        return self.asset_prices if price_id >= FIRST_ASSET_PRICE_ID else self.prices

    def price_wad(self, price_id: int) -> int | None:
        """The keeper's price of any oracle id (a pair, or an asset-only id), or None."""
        return self.book(price_id).get(price_id)

    def _feed(self, price_id: int) -> "BoundContract":
        if price_id < FIRST_ASSET_PRICE_ID:
            return self.contracts[feed_role(self.deployment.pairs[price_id])]
        return self.contracts[next(e.feed_role for e in self.deployment.basket if e.price_id == price_id)]

    # ----- the keeper's prices
    def set_prices(self, prices: dict[str | int, Number], *, reference: bool = True) -> None:
        """Moves the keeper's prices (and, by default, the reference feeds) to `prices`: pairs by
        name or id, basket assets by symbol."""
        moved = {}
        for name, price in prices.items():
            price_id = self.price_id(name)
            self.book(price_id)[price_id] = moved[price_id] = to_units(price, 18, f"price of {name}")
        if reference:
            self.set_references(moved)

    def asset_price_inputs(self, price_ids: set[int] | list[int] | None = None) -> tuple[list[int], list[int]]:
        """The keeper's asset-only prices (of `price_ids`, default all) as
        `PriceOracle.setAssetPrices` takes them: ids and prices. A read."""
        ids = sorted(self.asset_prices if price_ids is None else (set(price_ids) & set(self.asset_prices)))
        return ids, [self.asset_prices[i] for i in ids]

    def price_inputs(self, pair_ids: set[int] | list[int]) -> list[tuple[int, int]]:
        """The keeper's prices of `pair_ids` (those it has), as the engine takes them: (pair id,
        price) by pair id. A read: nothing is sent."""
        return [(pair_id, self.prices[pair_id]) for pair_id in sorted(p for p in set(pair_ids) if p in self.prices)]

    # ----- the reference feeds
    def set_reference(self, pair: str | int, price: Number) -> None:
        """Moves only the pair's (or basket asset's) reference feed (the Chainlink mock)."""
        self.set_references({self.price_id(pair): to_units(price, 18, f"price of {pair}")})

    def set_references(self, prices_wad: dict[int, int]) -> None:
        """Moves the reference feeds of the pairs of `prices_wad` (pair id -> 18-decimal USD,
        kept to the feeds' 8 decimals), their transactions sent together."""
        scale = 10 ** (18 - REFERENCE_DECIMALS)
        answers = {pair_id: wad // scale for pair_id, wad in prices_wad.items()}
        feeds = {pair_id: self._feed(pair_id) for pair_id in answers}
        outcomes = self.session.send_each([{"from": self.address, "to": feeds[pair_id].address, "gas": REFERENCE_GAS,
                                            "data": feeds[pair_id].encode("setAnswer", answer)}
                                           for pair_id, answer in answers.items()])
        if not outcomes:
            return
        now = self.clock.timestamp
        for (pair_id, answer), outcome in zip(answers.items(), outcomes):
            if not isinstance(outcome, AlpsimError):
                self.reference_prices[pair_id], self.reference_updated_at[pair_id] = answer * scale, now
        failed = [o for o in outcomes if isinstance(o, AlpsimError)]
        if failed:
            raise failed[0]

    def follow_references(self, max_gap_bps: int) -> list[int]:
        """Moves the reference feed of every priced pair whose keeper price is more than
        `max_gap_bps` from it (or that this keeper never set), as a Chainlink feed updates on
        deviation; the heartbeat is `refresh_stale_references`'s. The pairs moved."""
        moved = {}
        for pair_id, wad in sorted({**self.prices, **self.asset_prices}.items()):
            ref = self.reference_prices.get(pair_id)
            if ref is None or abs(wad - ref) * 10_000 > max_gap_bps * ref:
                moved[pair_id] = wad
        self.set_references(moved)
        return list(moved)

    def refresh_stale_references(self, pair_ids: set[int] | list[int]) -> list[int]:
        """Refreshes (a new round at their own answers) the reference feeds of the priced pairs
        of `pair_ids` that this keeper set and that will be older than REFERENCE_REFRESH_S in
        the next block; nothing while `auto_refresh_reference` is off. The pairs refreshed."""
        if not self.auto_refresh_reference:
            return []
        seen = [p for p in sorted(p for p in set(pair_ids) if p in self.prices or p in self.asset_prices)
                if p in self.reference_updated_at]
        next_timestamp = self.clock.next_timestamp if seen else 0
        stale = [p for p in seen if next_timestamp - self.reference_updated_at[p] > REFERENCE_REFRESH_S]
        self.set_references({p: self.contracts["oracle"].call("referencePrice", p)[0] for p in stale})
        return stale
