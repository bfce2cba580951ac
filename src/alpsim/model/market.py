"""The market's per-pair, per-side aggregates and cumulative holding and funding indexes,
mirroring `contracts/trading/Market.sol` (docs/mechanics.md sections 9 and 10): indexes
accrued to a time, the lighter side's funding only while the price is settled, and the pool's
claims on open positions (deposits' and withdrawals') from the aggregates alone.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..units import WAD
from .math import mul_div_down

HOUR = 3600


@dataclass
class Side:
    """Mirrors `Market.Side`: a pair side's sums over its open positions."""

    oi_usd: int = 0
    qty: int = 0
    cost_usd: int = 0
    holding_weight: int = 0
    funding_weight: int = 0


@dataclass
class Indexes:
    """Mirrors `Market.Indexes`: a pair's cumulative holding and funding per unit of notional (WAD)."""

    holding: int = 0
    funding_long: int = 0
    funding_short: int = 0
    updated_at: int = 0


class Market:
    """The market of `ExchangeModel` (trading_engine.py holds `indexes`, `longs`, `shorts` and the rates)."""

    def side(self, pair_id: int, is_long: bool) -> Side:
        book = self.longs if is_long else self.shorts
        return book.setdefault(pair_id, Side())

    def indexes_now(self, pair_id: int, now: int) -> Indexes:
        idx = replace(self.indexes.get(pair_id, Indexes()))
        elapsed = 0 if idx.updated_at == 0 else now - idx.updated_at
        idx.updated_at = now
        if elapsed == 0:
            return idx
        idx.holding += self.holding_rate_per_hour_wad * elapsed // HOUR
        long_oi = self.side(pair_id, True).oi_usd
        short_oi = self.side(pair_id, False).oi_usd
        if long_oi == short_oi:
            return idx
        heavier = max(long_oi, short_oi)
        imbalance = heavier - min(long_oi, short_oi)
        step = mul_div_down(self.funding_rate_per_hour_wad * elapsed, imbalance, HOUR * heavier)
        # the lighter side receives only while the pair's price is settled (docs/mechanics.md section 9)
        receipt = mul_div_down(self.funding_rate_per_hour_wad * self._settled_elapsed(pair_id, now - elapsed, now),
                               imbalance, HOUR * heavier)
        if long_oi > short_oi:
            idx.funding_long += step
            idx.funding_short -= receipt
        else:
            idx.funding_short += step
            idx.funding_long -= receipt
        return idx

    def _settled_elapsed(self, pair_id: int, since: int, now: int) -> int:
        """Seconds from `since` to `now` while the pair's price was settled, as
        `Market._settledElapsed` (prices are applied after an accrual, so one price covers it)."""
        until = self.settled_until.get(pair_id, 0)
        if until <= since:
            return 0
        return min(now, until) - since

    def accrue_all(self, now: int) -> None:
        """Every pair with open interest to now (`Market.accrueAll`), as before a setting that
        changes accrual: `setRates`, `setGuardSettings`, `setReferenceFeed`."""
        for pair_id in range(len(self.pairs)):
            if self.side(pair_id, True).oi_usd or self.side(pair_id, False).oi_usd:
                self.accrue(pair_id, now)

    def set_rates(self, holding_per_hour_wad: int, funding_per_hour_wad: int, now: int) -> None:
        self.accrue_all(now)
        self.holding_rate_per_hour_wad, self.funding_rate_per_hour_wad = holding_per_hour_wad, funding_per_hour_wad

    def accrue(self, pair_id: int, now: int) -> Indexes:
        idx = self.indexes_now(pair_id, now)
        self.indexes[pair_id] = idx
        return idx

    def pool_claim_usd(self, now: int) -> int:
        return self.pool_claims_usd(now)[0]

    def pool_claims_usd(self, now: int) -> tuple[int, int]:
        """The pool's claims on open positions (deposits', withdrawals'), as
        `Market.poolClaimsUsd`: deposits count each side's holding and funding owed now;
        withdrawals leave out what a side came to owe since the pair's last accrual."""
        claim = redeem = 0
        for pair_id in range(len(self.pairs)):
            longs, shorts = self.side(pair_id, True), self.side(pair_id, False)
            if longs.oi_usd == 0 and shorts.oi_usd == 0:
                continue
            price = self.keeper_prices.get(pair_id, (0, 0))[0]
            last = self.indexes.get(pair_id, Indexes())
            idx = self.indexes_now(pair_id, now)
            for side, is_long in ((longs, True), (shorts, False)):
                if side.oi_usd == 0:
                    continue
                value = mul_div_down(side.qty, price, WAD)
                pnl = value - side.cost_usd if is_long else side.cost_usd - value
                funding_now, funding_last = ((idx.funding_long, last.funding_long) if is_long
                                             else (idx.funding_short, last.funding_short))
                fees_now = self._side_fees(side, idx.holding, funding_now)
                # what the side came to owe since the last accrual, from the indexes' steps
                since = (side.oi_usd * (idx.holding - last.holding) // WAD
                         + side.oi_usd * (funding_now - funding_last) // WAD)
                claim += fees_now - pnl
                redeem += fees_now - max(since, 0) - pnl
        return claim, redeem

    @staticmethod
    def _side_fees(s: Side, holding_index: int, funding_index: int) -> int:
        """A side's holding and funding owed to the pool (negative: the pool owes), floored."""
        holding = (s.oi_usd * holding_index - s.holding_weight) // WAD
        funding = (s.oi_usd * funding_index - s.funding_weight) // WAD
        return holding + funding

    def require_settled_prices(self, now: int) -> None:
        """As `Market.requireSettledPrices`: `settled_mark_price` (the oracle's check) for every
        pair with open interest, so LPs are priced only at settled prices."""
        for pair_id in range(len(self.pairs)):
            if self.side(pair_id, True).oi_usd or self.side(pair_id, False).oi_usd:
                self.settled_mark_price(pair_id, now)
