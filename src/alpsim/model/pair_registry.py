"""The tradable pairs and the notional tiers, mirroring `contracts/trading/PairRegistry.sol`
(docs/mechanics.md section 3): each pair's settings, the default listing, and the leverage cap a
position's notional allows.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..units import WAD


@dataclass(frozen=True)
class PairParams:
    """Mirrors `PairRegistry.PairConfig`."""

    name: str
    max_leverage: int
    spread_bps: int
    depth_1pct_usd: int
    max_oi_per_side_usd: int
    tiered: bool
    listed: bool = True
    paused: bool = False


DEFAULT_TIERS = ((1_000_000 * WAD, 0), (5_000_000 * WAD, 250), (20_000_000 * WAD, 100))


def default_pairs() -> list[PairParams]:
    """docs/mechanics.md section 3."""
    usd = WAD
    return [
        PairParams("BTC/USD", 1001, 1, 100_000_000 * usd, 50_000_000 * usd, True),
        PairParams("ETH/USD", 1001, 1, 50_000_000 * usd, 25_000_000 * usd, True),
        PairParams("SOL/USD", 100, 2, 10_000_000 * usd, 5_000_000 * usd, False),
        PairParams("AAPL/USD", 50, 3, 5_000_000 * usd, 2_000_000 * usd, False),
    ]


class PairRegistry:
    """The registry's views of `ExchangeModel` (trading_engine.py holds `pairs` and `tiers`)."""

    def leverage_cap(self, pair_id: int, notional_usd: int) -> tuple[int, bool]:
        pair = self.pairs[pair_id]
        cap = pair.max_leverage
        if not pair.tiered:
            return cap, False
        for max_notional, tier_cap in self.tiers:
            if notional_usd <= max_notional:
                return (cap if tier_cap == 0 or tier_cap > cap else tier_cap), False
        return cap, True
