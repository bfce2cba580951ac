"""Reference model of the ALP basket's dynamic mint and burn fee (docs/basket-design.md, to become
docs/mechanics.md section 10): to the unit of `AlpPool.sol`'s `_basketFeeUsd` once it exists.

Each USD of an action that moves the asset toward its target weight pays `base - spread` bp,
each USD that moves it away pays `base + spread` bp (defaults 20 and 30 around 25). The fee is a
potential: splitting an action changes nothing, a round trip a -> b -> a costs 2 x base, and a
one-asset basket (target 100%) pays `base` exactly, as the single-stablecoin pool did.
"""

from __future__ import annotations

from ..units import BPS


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


def fee_usd(value_usd: int, total_usd: int, target_bps: int, action_usd: int, is_deposit: bool,
            base_bps: int = 25, spread_bps: int = 5) -> int:
    """The mint (deposit) or burn (withdrawal) fee in 18-decimal USD, rounded up."""
    if target_bps == BPS:
        return ceil_div(action_usd * base_bps, BPS)
    toward = toward_usd(value_usd, total_usd, target_bps, action_usd, is_deposit)
    away = action_usd - toward
    return ceil_div(toward * (base_bps - spread_bps) + away * (base_bps + spread_bps), BPS)


def value_usd(amount: int, decimals: int, price_wad: int) -> int:
    """Token units at an 18-decimal USD price -> 18-decimal USD, rounded down."""
    return amount * 10 ** (18 - decimals) * price_wad // 10**18


def tokens_for_usd(usd: int, decimals: int, price_wad: int) -> int:
    """18-decimal USD -> token units at an 18-decimal USD price, rounded down (payouts)."""
    return usd * 10**18 // (price_wad * 10 ** (18 - decimals))
