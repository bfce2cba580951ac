"""Keeper prices guarded by reference prices, mirroring `contracts/oracle/PriceOracle.sol`
(docs/mechanics.md section 8): staleness, the circuit breaker and the worse-price rule at
execution; settled prices (the triggers ran at them with the guard passing) and the check that
LPs are priced only at them; basket assets' prices (ids 128 to 255 asset-only, below 128 a
pair's) and their bounds for LPs (docs/mechanics.md section 10). A reference price set here stands for the pair's Chainlink feed
(`contracts/oracle/MockAggregator.sol` on a devnet).
"""

from __future__ import annotations

from ..protocol import RejectReason
from ..units import BPS
from .errors import ModelRefusal

FIRST_ASSET_PRICE_ID = 128
"""The first price id that is not a pair (`PriceOracle.FIRST_ASSET_PRICE_ID`)."""
MAX_PRICE = 2**128 - 1


class PriceOracle:
    """The oracle of `ExchangeModel` (trading_engine.py holds `keeper_prices`, `reference_prices`,
    `settled_until`, the guard settings and `platform_token_price`)."""

    def set_reference(self, pair_id: int, price: int, now: int) -> None:
        self.reference_feeds.add(pair_id)
        self.reference_prices[pair_id] = (price, now)

    def set_reference_feed(self, price_id: int) -> None:
        """`setReferenceFeed` with a feed that has no round yet: the id takes keeper prices."""
        self.reference_feeds.add(price_id)

    def set_guard_settings(self, max_age_s: int, breaker_bps: int, worse_bps: int, now: int) -> None:
        self.accrue_all(now)
        self.max_price_age_s, self.circuit_breaker_bps, self.worse_price_bps = max_age_s, breaker_bps, worse_bps

    def set_price(self, pair_id: int, price: int, now: int) -> None:
        """As `PriceOracle.setPrice`: a new price is not settled; the same price again keeps
        its settlement."""
        until = 0
        if self.keeper_prices.get(pair_id, (0, 0))[0] == price:
            until = self.settled_until.get(pair_id, 0)
        self._record_price(pair_id, price, now, until)

    def set_settled_price(self, pair_id: int, price: int, now: int) -> None:
        """As `PriceOracle.setSettledPrice`: the triggers run at this price; it is settled while
        the guard passes now, until the reference price ages past the maximum age."""
        ref, ref_at = self.reference_prices.get(pair_id, (0, 0))
        age = self.max_price_age_s
        until = 0
        if ref != 0 and now <= ref_at + age and abs(price - ref) * BPS <= self.circuit_breaker_bps * ref:
            until = ref_at + age
        self._record_price(pair_id, price, now, until)

    def _record_price(self, pair_id: int, price: int, now: int, settled_until: int) -> None:
        self.keeper_prices[pair_id] = (price, now)
        self.settled_until[pair_id] = settled_until

    def guarded_price(self, pair_id: int, trader_buys: bool, now: int) -> tuple[int, RejectReason]:
        keeper, keeper_at = self.keeper_prices.get(pair_id, (0, 0))
        ref, ref_at = self.reference_prices.get(pair_id, (0, 0))
        age = self.max_price_age_s
        if keeper == 0 or ref == 0 or now > keeper_at + age or now > ref_at + age:
            return 0, RejectReason.PRICE_STALE
        gap_bps = abs(keeper - ref) * BPS
        if gap_bps > self.circuit_breaker_bps * ref:
            return 0, RejectReason.CIRCUIT_BREAKER
        if gap_bps > self.worse_price_bps * ref:
            keeper_worse = keeper > ref if trader_buys else keeper < ref
            return (keeper if keeper_worse else ref), RejectReason.NONE
        return keeper, RejectReason.NONE

    def settled_mark_price(self, pair_id: int, now: int) -> int:
        """As `PriceOracle.settledMarkPrice`: the last keeper price when fresh and settled; else
        refused with why, from the guard as it stands now."""
        age = self.max_price_age_s
        price, at = self.keeper_prices.get(pair_id, (0, 0))
        if price == 0 or now > at + age:
            raise ModelRefusal("PriceStale", pairId=pair_id, updatedAt=at, maxAge=age)
        until = self.settled_until.get(pair_id, 0)
        if now > until:  # not settled: why, from the guard as it stands now
            ref, ref_at = self.reference_prices.get(pair_id, (0, 0))
            if ref == 0 or now > ref_at + age:
                raise ModelRefusal("ReferenceStale", pairId=pair_id, updatedAt=ref_at, maxAge=age)
            if abs(price - ref) * BPS > self.circuit_breaker_bps * ref:
                raise ModelRefusal("CircuitBreakerTripped", pairId=pair_id, keeperPrice=price,
                                   referencePrice=ref)
            raise ModelRefusal("PriceNotSettled", pairId=pair_id, updatedAt=at, settledUntil=until)
        return price

    def set_asset_prices(self, ids: list[int], prices: list[int], now: int) -> None:
        """As `PriceOracle.setAssetPrices`: asset-only ids (128 to 255) only, each price
        non-zero, within 128 bits, for an id with a reference feed; all or nothing."""
        if len(ids) != len(prices):
            raise ModelRefusal("InvalidPriceInput", pairId=len(ids))
        for price_id, price in zip(ids, prices):
            if price_id < FIRST_ASSET_PRICE_ID or price_id > 255:
                raise ModelRefusal("InvalidPriceInput", pairId=price_id)
            if price == 0 or price > MAX_PRICE or price_id not in self.reference_feeds:
                raise ModelRefusal("InvalidPriceInput", pairId=price_id)
        for price_id, price in zip(ids, prices):
            self._record_price(price_id, price, now, 0)

    def asset_price_bounds(self, price_id: int, now: int) -> tuple[int, int]:
        """As `PriceOracle.assetPriceBounds`: (lower, higher) of the keeper and reference
        prices, both fresh and within the circuit breaker (a pair-backed asset reads its pair's
        keeper price the same way)."""
        age = self.max_price_age_s
        price, at = self.keeper_prices.get(price_id, (0, 0))
        if price == 0 or now > at + age:
            raise ModelRefusal("PriceStale", pairId=price_id, updatedAt=at, maxAge=age)
        ref, ref_at = self.reference_prices.get(price_id, (0, 0))
        if ref == 0 or now > ref_at + age:
            raise ModelRefusal("ReferenceStale", pairId=price_id, updatedAt=ref_at, maxAge=age)
        if abs(price - ref) * BPS > self.circuit_breaker_bps * ref:
            raise ModelRefusal("CircuitBreakerTripped", pairId=price_id, keeperPrice=price, referencePrice=ref)
        return (price, ref) if price < ref else (ref, price)

    def mark_price(self, price_id: int) -> int:
        """As `PriceOracle.markPrice`: the last keeper price, whatever its age; 0 when never set."""
        return self.keeper_prices.get(price_id, (0, 0))[0]
