"""`alpsim quote`: what an order would do, offline, from the profile's defaults (an empty
book), computed by the reference model the contracts are tested against.

`alpsim quote-lp` / `Alpsim.quote_lp`: what a deposit or withdrawal of a basket asset would give
now, from the pool's state read from chain (`read_lp_state`: holdings, supply, claims, fee
settings, and each needed price: the oracle's `assetPriceBounds` where fresh, the keeper's price
where it would push it first, else the last keeper price on chain, marked stale), computed by
the reference model (`model.quote.quote_lp_deposit` / `quote_lp_withdraw`)."""

from __future__ import annotations

from decimal import Decimal, localcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import ConfigError, UnknownNameError
from .model.errors import ModelRefusal
from .model.quote import LpAsset, QuoteRefused, quote, quote_lp_deposit, quote_lp_withdraw
from .model.engine_settings import Settings
from .model.pair_registry import default_pairs
from .model.trading_engine import ExchangeModel
from .profiles import ChainProfile
from .protocol import RejectReason
from .units import BPS, Number, from_units, to_decimal, to_units, wad_to_decimal

if TYPE_CHECKING:
    from .client import AlpsimReader

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


# ----------------------------------------------------------------- LP quotes (the basket)

FACE_VALUE = 2**16 - 1
"""`AlpPool.FACE_VALUE`: a price id valued at exactly 1 USD per token, no oracle read."""
LP_QUOTE_KEYS = ["asset", "amount", "fee_bps", "fee_usd", "alp_out", "amount_out", "weights_before_bps",
                 "weights_after_bps", "targets_bps"]
"""The keys of `alpsim quote-lp --json` (`alp_out` for a deposit, `amount_out` for a
withdrawal, not both), then `chain`, `withdraw`, `prices` (per asset the pool reads: `low`,
`high` and `source`) and `units` (the integers: `fee_wad`, `action_usd_wad`, `alp_out_wad`,
`amount_out_units`)."""
PRICE_SOURCES = ("oracle", "keeper", "stale", "face value")
"""Where a quote's price comes from: the oracle's fresh `assetPriceBounds`; the keeper's price
and the reference feed (the keeper pushes it before the action: `Keeper.fresh_basket_prices`);
the last keeper price on chain, stale (the action would revert `PriceStale` unless a keeper
pushes one); exactly 1 USD (`FACE_VALUE`)."""


class LpQuoteError(ConfigError):
    """A deposit or withdrawal the pool would refuse, with the contract's error name."""


@dataclass(frozen=True)
class LpState:
    """The pool as an LP action on one asset would read it (token units, 18-decimal USD)."""

    assets: list[LpAsset]
    sources: dict[str, str]
    supply: int
    claim_usd: int
    redeem_claim_usd: int
    mint_fee_bps: int
    burn_fee_bps: int
    spread_bps: int
    reserve_usd: int
    max_reserve_bps: int


def basket_symbols(sim: "AlpsimReader", tokens: list[str]) -> list[str]:
    """The alpsim symbol of each basket token (the deployments file's; the collateral's own
    symbol for a deployment from before the basket)."""
    by_address = {e.address.lower(): e.symbol for e in sim.deployment.basket}
    return [by_address.get(t.lower(), sim.profile.collateral.symbol if j == 0 else t) for j, t in enumerate(tokens)]


def _price_bounds(sim: "AlpsimReader", price_id: int, symbol: str) -> tuple[int, int, str]:
    """The (low, high) the pool will read for `price_id` at the next LP action, and its source."""
    from .errors import AlpsimError

    if price_id == FACE_VALUE:
        return USD_WAD, USD_WAD, "face value"
    oracle = sim.contracts["oracle"]
    keeper = getattr(sim, "keeper", None)
    if keeper is not None and keeper.online:
        from .keeper.executions import FRESH_MARGIN_S
        from .profiles import FIRST_ASSET_PRICE_ID

        book = keeper.asset_prices if price_id >= FIRST_ASSET_PRICE_ID else keeper.prices
        deadline = keeper.clock.next_timestamp + FRESH_MARGIN_S - oracle.call("maxPriceAgeSeconds")
        if price_id in book and oracle.call("keeperPrice", price_id)[1] < deadline:
            mine, ref = book[price_id], oracle.call("referencePrice", price_id)[0] or book[price_id]
            return min(mine, ref), max(mine, ref), "keeper"
    try:
        low, high = oracle.call("assetPriceBounds", price_id)
        return low, high, "oracle"
    except AlpsimError:
        mark = oracle.call("markPrice", price_id)
        if mark == 0:
            raise LpQuoteError(f"no price for {symbol} (price id {price_id}): the keeper has never priced it; "
                               f"set one first (keeper.set_prices({{{symbol!r}: ...}}))") from None
        return mark, mark, "stale"


USD_WAD = 10**18


def read_lp_state(sim: "AlpsimReader", index: int) -> LpState:
    """The pool's basket, supply, claims and settings now, with the prices an action on asset
    `index` would read (assets with holdings and the action's own)."""
    pool = sim.pool_contract
    tokens, decimals, targets, price_ids, holdings = pool.call("basket")
    symbols = basket_symbols(sim, tokens)
    assets, sources = [], {}
    for j, symbol in enumerate(symbols):
        low = high = None
        if holdings[j] or j == index:
            low, high, sources[symbol] = _price_bounds(sim, price_ids[j], symbol)
        assets.append(LpAsset(symbol, decimals[j], targets[j], holdings[j], low, high))
    claim, redeem = sim.contracts["market"].call("poolClaimsUsd")
    return LpState(assets, sources, sim.contracts["alp"].call("totalSupply"), claim, redeem, pool.call("mintFeeBps"),
                   pool.call("burnFeeBps"), pool.call("feeSpreadBps"), pool.call("reserveUsd"),
                   pool.call("maxReserveBps"))


def _weights_bps(values: tuple[int, ...], symbols: list[str]) -> dict[str, Decimal]:
    total = sum(values)
    return {s: (Decimal(0) if total == 0 else Decimal(v * BPS) / Decimal(total)).quantize(Decimal("0.01"))
            for s, v in zip(symbols, values)}


def quote_lp(sim: "AlpsimReader", asset: str, amount: Number, withdraw: bool = False) -> dict[str, Any]:
    """A deposit of `amount` whole tokens of basket `asset` (or, `withdraw`, a withdrawal of
    `amount` ALP for it) as `alpsim quote-lp --json` prints it: LP_QUOTE_KEYS, then `chain`,
    `withdraw`, `prices`; amounts as exact Decimals. Refuses a bad asset or amount
    (ConfigError) and an action the pool would refuse (LpQuoteError, the contract's error)."""
    if not isinstance(asset, str):
        raise ConfigError(f"asset must be a basket symbol, got {asset!r}")
    symbol_decimals = sim.asset_decimals(asset)
    number = to_decimal(amount, "amount")
    if number <= 0:
        raise ConfigError(f"amount must be positive, got {amount}")
    units = to_units(number, 18 if withdraw else symbol_decimals, "amount")
    token = sim.asset_token(asset).address
    tokens = sim.pool_contract.call("basket")[0]
    index = [t.lower() for t in tokens].index(token.lower())
    state = read_lp_state(sim, index)
    symbols = [a.symbol for a in state.assets]
    try:
        if withdraw:
            q = quote_lp_withdraw(state.assets, index, units, state.supply, state.redeem_claim_usd, state.burn_fee_bps,
                                  state.spread_bps, state.reserve_usd, state.max_reserve_bps)
        else:
            q = quote_lp_deposit(state.assets, index, units, state.supply, state.claim_usd, state.mint_fee_bps,
                                 state.spread_bps)
    except ModelRefusal as refused:
        detail = ", ".join(f"{k}={v}" for k, v in refused.fields.items())
        raise LpQuoteError(f"{refused.name}({detail}): the pool would refuse this "
                           f"{'withdrawal' if withdraw else 'deposit'} of {amount} "
                           f"{'ALP for ' + symbols[index] if withdraw else symbols[index]}") from None
    fee_bps = Decimal(0) if q.action_usd == 0 else (Decimal(q.fee_usd * BPS) / Decimal(q.action_usd))
    out: dict[str, Any] = {
        "asset": symbols[index], "amount": number, "fee_bps": fee_bps.quantize(Decimal("0.0001")),
        "fee_usd": wad_to_decimal(q.fee_usd),
    }
    if withdraw:
        out["amount_out"] = from_units(q.amount_out, state.assets[index].decimals)
    else:
        out["alp_out"] = wad_to_decimal(q.alp_out)
    out.update({
        "weights_before_bps": _weights_bps(q.values_before_usd, symbols),
        "weights_after_bps": _weights_bps(q.values_after_usd, symbols),
        "targets_bps": {a.symbol: a.target_bps for a in state.assets},
        "chain": sim.deployment.chain, "withdraw": withdraw,
        "prices": {s: {"low": wad_to_decimal(a.low_wad), "high": wad_to_decimal(a.high_wad), "source": state.sources[s]}
                   for s, a in zip(symbols, state.assets) if s in state.sources},
        "units": {"fee_wad": q.fee_usd, "action_usd_wad": q.action_usd, "alp_out_wad": q.alp_out,
                  "amount_out_units": q.amount_out},
    })
    return out


DEFAULT_POOL_USD = 1_000_000
"""`alpsim quote-lp` without --rpc: the embedded devnet's pool holds this much, at the targets."""
DEFAULT_POOL_LP = 7


def seed_default_pool(sim: Any, pool_usd: int = DEFAULT_POOL_USD) -> None:
    """Prices the pairs at `alpsim devnet`'s start prices and has account DEFAULT_POOL_LP
    deposit `pool_usd` spread over the basket at its target weights (each asset's share at its
    start price, rounded down to 8 decimals), the payout stablecoin first."""
    from decimal import ROUND_DOWN

    from .service import DEFAULT_START_PRICES

    sim.keeper.set_prices(dict(DEFAULT_START_PRICES))
    sim.keeper.adopt_asset_prices()  # BNB and the stablecoins at the profile's start prices
    for entry in sim.deployment.basket:
        price = wad_to_decimal(sim.keeper.asset_prices.get(entry.price_id) or sim.keeper.prices[entry.price_id])
        tokens = (Decimal(pool_usd) * entry.target_bps / BPS / price).quantize(
            Decimal(1).scaleb(-min(entry.decimals, 8)), rounding=ROUND_DOWN)
        if tokens > 0:
            sim.fund(DEFAULT_POOL_LP, tokens, asset=entry.symbol)
            sim.deposit(DEFAULT_POOL_LP, tokens, asset=entry.symbol)
