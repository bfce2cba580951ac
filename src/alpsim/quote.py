"""`alpsim quote`: what an order would do, offline, from the profile's defaults (an empty
book), computed by the reference model the contracts are tested against."""

from __future__ import annotations

from decimal import Decimal, localcontext
from typing import Any

from .errors import ConfigError, UnknownNameError
from .model.quote import QuoteRefused, quote
from .model.engine_settings import Settings
from .model.pair_registry import default_pairs
from .model.trading_engine import ExchangeModel
from .profiles import ChainProfile
from .protocol import RejectReason
from .units import Number, to_decimal, to_units, wad_to_decimal

QUOTE_KEYS = ["chain", "pair", "side", "leverage", "amount_in_usd", "oracle_price", "tier", "execution_fee_usd",
              "open_fee_usd", "margin_usd", "notional_usd", "qty", "entry_price", "take_profit_cap_price",
              "max_profit_usd", "liquidation_price", "liquidation_move_pct", "round_trip_cost_usd"]


class QuoteError(ConfigError):
    """An order the exchange would refuse, with the reason."""


def _explain(reason: RejectReason, pair: Any, leverage: int, notional: Decimal | None) -> str:
    text = {
        RejectReason.LEVERAGE_OUT_OF_RANGE: f"leverage {leverage} is outside 1..{pair.max_leverage} for {pair.name}",
        RejectReason.EXTREME_LEVERAGE_NOT_OFFERED:
            f"{pair.name} does not offer the extreme tier (500x and above); its maximum is {pair.max_leverage}x",
        RejectReason.LEVERAGE_ABOVE_NOTIONAL_TIER: f"leverage {leverage} is above the cap of the notional tier of "
                                                   f"{notional:,.2f} USD",
        RejectReason.NOTIONAL_TOO_LARGE: f"notional {notional:,.2f} USD is above the largest tier (20,000,000 USD)",
        RejectReason.NOTIONAL_TOO_SMALL: f"notional {notional:,.2f} USD is under the minimum of 100 USD",
        RejectReason.OPEN_INTEREST_CAP_EXCEEDED: f"notional {notional:,.2f} USD is above {pair.name}'s open-interest cap",
        RejectReason.OPEN_LOSS_TOO_HIGH: "slippage would cost 80% of the margin or more at open",
    }.get(reason, reason.label)
    return f"{reason.label}: {text}"


def quote_order(profile: ChainProfile, pair: str, side: str, amount: Number, leverage: int, price: Number, *,
                referral: bool = False, fee_token: bool = False) -> dict[str, Any]:
    """The quote as a dict with exactly QUOTE_KEYS; USD and base-asset amounts as Decimals."""
    pairs = default_pairs()
    names = [p.name for p in pairs]
    if pair not in names:
        raise UnknownNameError("pair", pair, names)
    if side not in ("long", "short"):
        raise ConfigError(f"side must be 'long' or 'short', got {side!r}")
    pair_id = names.index(pair)
    decimals = profile.collateral.decimals
    amount_units = to_units(amount, decimals, "amount")
    price_wad = to_units(price, 18, "price")
    if amount_units <= 0 or price_wad <= 0:
        raise ConfigError("amount and price must be positive")
    model = ExchangeModel(decimals=decimals, settings=Settings(execution_fee_usd=profile.execution_fee_wad), pairs=pairs)
    if amount_units <= model.execution_fee_tokens():
        raise QuoteError(f"AmountBelowExecutionFee: {amount} does not cover the {profile.execution_fee_usd} USD "
                         "execution fee")
    try:
        q = quote(model, pair_id, side == "long", amount_units, int(leverage), price_wad, referral=referral,
                  fee_token=fee_token)
    except QuoteRefused as refused:
        notional = to_decimal(amount) * int(leverage)
        raise QuoteError(_explain(refused.reason, pairs[pair_id], int(leverage), notional)) from None
    usd = wad_to_decimal
    with localcontext() as ctx:
        ctx.prec = 60
        move_pct = (Decimal(q.liquidation_price) - Decimal(q.entry_price)) / Decimal(q.entry_price) * 100
    return {
        "chain": profile.name, "pair": pair, "side": side, "leverage": int(leverage),
        "amount_in_usd": to_decimal(amount), "oracle_price": usd(price_wad), "tier": q.tier,
        "execution_fee_usd": usd(q.execution_fee_tokens * model.scale), "open_fee_usd": usd(q.open_fee_usd),
        "margin_usd": usd(q.margin_usd), "notional_usd": usd(q.notional_usd), "qty": usd(q.qty),
        "entry_price": usd(q.entry_price), "take_profit_cap_price": usd(q.take_profit_cap_price),
        "max_profit_usd": usd(q.max_profit_usd), "liquidation_price": usd(q.liquidation_price),
        "liquidation_move_pct": move_pct.quantize(Decimal("1e-12")), "round_trip_cost_usd": usd(q.round_trip_cost_usd),
    }


def dumps_exact(value: Any) -> str:
    """JSON with Decimals written as exact JSON numbers (no float rounding)."""
    import json

    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)}: {dumps_exact(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(dumps_exact(v) for v in value) + "]"
    if isinstance(value, Decimal):
        text = format(value.normalize(), "f")
        return text if text not in ("-0",) else "0"
    return json.dumps(value)
