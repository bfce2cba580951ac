"""The ALP basket's half of `contracts/pool/AlpPool.sol` (docs/mechanics.md section 10,
docs/mechanics.md section 10): the listed assets, the admin that lists and weighs them,
their prices (the action's conservative bounds, the unguarded mark for NAV) and the dynamic fee
curve. `PoolModel` (pool.py) is a `Basket` with the LPs' books.

The fee (section 6): each USD of an action that moves its asset toward its target weight pays
`base - spread` bp, each USD that moves it away `base + spread` (20 and 30 around 25). It is a
potential: splitting an action changes nothing, a round trip costs 2 x base, and a one-asset
basket (target 100%) pays `base`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..units import BPS, USD
from .errors import ModelRefusal

FACE_VALUE = 65_535
"""A price id that values its asset at exactly 1 USD per token (`AlpPool.FACE_VALUE`)."""
MAX_BASKET_ASSETS = 8
MAX_UINT = 2**256 - 1
PAYOUT = "payout"
"""The payout token's key when the model is not told its address."""


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def toward_usd(value_usd: int, total_usd: int, target_bps: int, action_usd: int, is_deposit: bool) -> int:
    """The part of `action_usd` that moves the asset toward its target, rounded down.

    `value_usd` is the asset's holdings value and `total_usd` the basket's (holdings only, no
    claim), both before the action, at the action's prices. The signed deviation
    `e = value x BPS - target x total` moves by `action x (BPS - target)` per USD: up for a
    deposit, down for a withdrawal.
    """
    k = BPS - target_bps
    if k == 0:
        return 0  # a one-asset basket: its weight never moves (see fee_usd)
    e = value_usd * BPS - target_bps * total_usd
    if is_deposit and e < 0:
        return min(action_usd, (-e) // k)
    if not is_deposit and e > 0:
        return min(action_usd, e // k)
    return 0


def fee_times_bps(toward_usd_: int, action_usd: int, base_bps: int, spread_bps: int) -> int:
    """An action's fee times BPS, exact: `base - spread` on the part toward the target, `base +
    spread` on the rest (AlpPool's `_netTimesBps` is the action's USD times BPS less this). The
    one fee formula of the model: the pool's books, its events (this // BPS) and `fee_usd`."""
    return toward_usd_ * (base_bps - spread_bps) + (action_usd - toward_usd_) * (base_bps + spread_bps)


def fee_usd(value_usd: int, total_usd: int, target_bps: int, action_usd: int, is_deposit: bool,
            base_bps: int = 25, spread_bps: int = 5) -> int:
    """The mint (deposit) or burn (withdrawal) fee in 18-decimal USD, rounded up (a bound: the
    pool's event rounds the same exact fee down)."""
    if target_bps == BPS:
        return ceil_div(fee_times_bps(0, action_usd, base_bps, 0), BPS)
    toward = toward_usd(value_usd, total_usd, target_bps, action_usd, is_deposit)
    return ceil_div(fee_times_bps(toward, action_usd, base_bps, spread_bps), BPS)


def value_usd(amount: int, decimals: int, price_wad: int) -> int:
    """Token units at an 18-decimal USD price -> 18-decimal USD, rounded down."""
    return amount * 10 ** (18 - decimals) * price_wad // 10**18


def tokens_for_usd(usd: int, decimals: int, price_wad: int) -> int:
    """18-decimal USD -> token units at an 18-decimal USD price, rounded down (payouts)."""
    return usd * 10**18 // (price_wad * 10 ** (18 - decimals))


def checked_u256(x: int) -> int:
    """A checked uint256 result (Solidity 0.8 reverts `Panic(0x11)` past 2^256 - 1)."""
    if x > MAX_UINT:
        raise ModelRefusal("Panic", code=0x11)
    return x


@dataclass
class BasketAsset:
    """One `AlpPool.Asset`: the token (its address, or any key), decimals, target, price id."""

    key: str
    decimals: int
    target_bps: int = 0
    price_id: int = FACE_VALUE
    symbol: str = ""

    @property
    def scale(self) -> int:
        return 10 ** (18 - self.decimals)


class Basket:
    """The basket's listing, admin, prices and fee pieces of `PoolModel` (which holds `assets`,
    `holdings`, `pool_balance`, `payout_key`, `fee_spread_bps` and `price_source`)."""

    # ----- the basket
    def index_of(self, asset: str | None) -> int:
        """`_indexOf`: None names the payout token; an unlisted asset is refused."""
        if asset is None or asset == self.payout_key:
            return 0
        for j, a in enumerate(self.assets):
            if a.key == asset:
                return j
        raise ModelRefusal("AssetNotInBasket", asset=asset)

    def holding_of(self, index: int) -> int:
        return self.pool_balance if index == 0 else self.holdings.get(self.assets[index].key, 0)

    def holdings_of(self, asset: str | None) -> int:
        return self.holding_of(self.index_of(asset))

    def basket(self) -> list[tuple[str, int, int, int, int]]:
        """`basket()`: (key, decimals, target bp, price id, holdings) per asset, listing order."""
        return [(a.key, a.decimals, a.target_bps, a.price_id, self.holding_of(j)) for j, a in enumerate(self.assets)]

    def _book(self, index: int, holdings: int) -> None:
        if index == 0:
            self.pool_balance = holdings
        else:
            self.holdings[self.assets[index].key] = holdings

    # ----- admin
    def set_price_source(self, source: Any) -> None:
        self.price_source = source

    def _check_price_id(self, price_id: int) -> None:
        if price_id != FACE_VALUE:
            if price_id > 255:
                raise ModelRefusal("InvalidPriceInput", pairId=price_id)
            if self.price_source is None:
                raise ModelRefusal("ZeroAddress")

    def list_asset(self, key: str, decimals: int, price_id: int, symbol: str = "") -> int:
        """`listAsset`: target 0 until `set_targets`; its index."""
        if not key or key == "0x" + "00" * 20:
            raise ModelRefusal("ZeroAddress")
        if key == self.payout_key or any(a.key == key for a in self.assets):
            raise ModelRefusal("AssetAlreadyListed", asset=key)
        if len(self.assets) >= MAX_BASKET_ASSETS:
            raise ModelRefusal("TooManyAssets", max=MAX_BASKET_ASSETS)
        self._check_price_id(price_id)
        if decimals > 18:
            raise ModelRefusal("UnsupportedDecimals", decimals=decimals)
        self.assets.append(BasketAsset(key, decimals, 0, price_id, symbol))
        return len(self.assets) - 1

    def set_targets(self, targets_bps: list[int]) -> None:
        total = 0
        for t in targets_bps:
            total += t
            if total > MAX_UINT:  # the contract refuses a sum past uint256 as the largest sum
                raise ModelRefusal("InvalidTargets", sumBps=MAX_UINT)
        if len(targets_bps) != len(self.assets) or total != BPS:
            raise ModelRefusal("InvalidTargets", sumBps=total)
        for a, t in zip(self.assets, targets_bps):
            a.target_bps = t

    def set_fee_spread(self, spread_bps: int) -> None:
        if spread_bps >= BPS:
            raise ModelRefusal("InvalidBps", bps=spread_bps)
        self.fee_spread_bps = spread_bps

    def set_price_id(self, asset: str | None, price_id: int) -> None:
        """`setPriceId`: re-prices a listed asset (e.g. the payout token from FACE_VALUE to a feed)."""
        index = self.index_of(asset)
        self._check_price_id(price_id)
        self.assets[index].price_id = price_id

    def set_settings(self, mint_fee_bps: int, burn_fee_bps: int, cooldown_s: int, max_reserve_bps: int) -> None:
        for bps, limit in ((mint_fee_bps, BPS - 1), (burn_fee_bps, BPS - 1), (max_reserve_bps, BPS)):
            if bps > limit:
                raise ModelRefusal("InvalidBps", bps=bps)
        if cooldown_s >= 2**64:
            raise ModelRefusal("SafeCastOverflowedUintDowncast", bits=64, value=cooldown_s)
        self.mint_fee_bps, self.burn_fee_bps = mint_fee_bps, burn_fee_bps
        self.cooldown_s, self.max_reserve_bps = cooldown_s, max_reserve_bps

    # ----- prices and NAV
    def _price_bounds(self, price_id: int, now: int) -> tuple[int, int]:
        if price_id == FACE_VALUE:
            return USD, USD
        return self.price_source.asset_price_bounds(price_id, now)

    def basket_values_usd(self, index: int, is_deposit: bool, now: int) -> tuple[list[int], int]:
        """`_basketUsd`'s terms: each asset's holdings in USD (listing order) and the action's
        price. Every holding at its higher price for a deposit, its lower for a withdrawal; the
        action's own amount the other way. Holdings of zero read no price but the action's
        asset's (valued 0)."""
        values, action_price = [], 0
        for j, a in enumerate(self.assets):
            held = self.holding_of(j)
            if held == 0 and j != index:
                values.append(0)
                continue
            low, high = self._price_bounds(a.price_id, now)
            values.append(held * a.scale * (high if is_deposit else low) // USD)
            if j == index:
                action_price = low if is_deposit else high
        return values, action_price

    def _basket_usd(self, index: int, is_deposit: bool, now: int) -> tuple[int, int, int]:
        """`_basketUsd`: (basket, the asset's holdings among it, the action's price)."""
        values, action_price = self.basket_values_usd(index, is_deposit, now)
        return sum(values), values[index], action_price

    def mark_basket_usd(self) -> int:
        """`_markBasketUsd`: the basket at the last keeper prices, unguarded."""
        total = 0
        for j, a in enumerate(self.assets):
            held = self.holding_of(j)
            if held:
                price = USD if a.price_id == FACE_VALUE else self.price_source.mark_price(a.price_id)
                total += held * a.scale * price // USD
        return total

    def _spread_bps(self, target_bps: int, base_bps: int) -> int:
        """The spread in force around `base_bps`: none for a one-asset basket's asset (its
        weight cannot move), never past 0 or 100% around the base."""
        if target_bps == BPS:
            return 0
        return min(self.fee_spread_bps, base_bps, BPS - base_bps)

    @staticmethod
    def _toward(asset_usd: int, basket_usd: int, target_bps: int, action_usd: int, is_deposit: bool,
                spread: int) -> int:
        """`_towardUsd` (skipped when the spread is 0), its products checked as the contract's."""
        if spread == 0:
            return 0
        checked_u256(asset_usd * BPS), checked_u256(target_bps * basket_usd)  # the contract's products
        return toward_usd(asset_usd, basket_usd, target_bps, action_usd, is_deposit)

