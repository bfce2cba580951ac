"""The formulas of docs/mechanics.md sections 3 to 11 in integers, line for line as
`contracts/libraries/TradeMath.sol` (18-decimal fixed point, rounding in the pool's favour)."""

from __future__ import annotations

from ..units import BPS, WAD

BP_WAD = 10**14


def ceil_div(a: int, b: int) -> int:
    return -((-a) // b)


def mul_div_down(a: int, b: int, d: int) -> int:
    return a * b // d


def mul_div_up(a: int, b: int, d: int) -> int:
    return ceil_div(a * b, d)


def discounted_rate_wad(rate_bps: int, discount_bps: int) -> int:
    """A bps rate after a discount, as a WAD fraction (exact)."""
    return rate_bps * BP_WAD * (BPS - discount_bps) // BPS


def mul_wad_floor_signed(a: int, b: int) -> int:
    return (a * b) // WAD


def mul_wad_ceil_signed(a: int, b: int) -> int:
    return -((-a * b) // WAD)


def slippage_wad_up(spread_bps: int, side_oi_usd: int, notional_usd: int, depth_1pct_usd: int) -> int:
    """spread + (sideOI + notional) / depth1pct x 1%, rounded up."""
    return spread_bps * BP_WAD + mul_div_up(side_oi_usd + notional_usd, WAD // 100, depth_1pct_usd)


def fill_price(oracle_price: int, slippage_wad: int, trader_buys: bool) -> int:
    if trader_buys:
        return mul_div_up(oracle_price, WAD + slippage_wad, WAD)
    if slippage_wad >= WAD:
        return 0
    return mul_div_down(oracle_price, WAD - slippage_wad, WAD)


def margin_tokens_down(net_tokens: int, leverage: int, open_fee_rate_wad: int) -> int:
    """(A - X) / (1 + L x f), rounded down."""
    return mul_div_down(net_tokens, WAD, WAD + leverage * open_fee_rate_wad)


def pnl_usd_floor(is_long: bool, qty: int, entry_price: int, exit_price: int) -> int:
    move = exit_price - entry_price if is_long else entry_price - exit_price
    return mul_wad_floor_signed(move, qty)


def take_profit_cap_price(is_long: bool, entry_price: int, qty: int, max_profit_usd: int) -> int:
    move = mul_div_down(max_profit_usd, WAD, qty)
    if is_long:
        return entry_price + move
    return 0 if move >= entry_price else entry_price - move


def close_fee_usd_up(extreme: bool, pnl_usd: int, close_notional_usd: int, notional_rate_wad: int,
                     profit_rate_wad: int) -> int:
    by_notional = mul_div_up(close_notional_usd, notional_rate_wad, WAD)
    if not extreme or pnl_usd <= 0:
        return by_notional
    return max(by_notional, mul_div_up(pnl_usd, profit_rate_wad, WAD))


def index_charge_usd_up(notional_usd: int, index_delta: int) -> int:
    return mul_wad_ceil_signed(index_delta, notional_usd)
