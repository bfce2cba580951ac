"""`alpsim quote`: what an order would do, offline, from the profile's defaults (an empty
book), computed by the reference model the contracts are tested against.

`alpsim quote-lp` / `Alpsim.quote_lp`: what a deposit or withdrawal of a basket asset would give
now: the reference model's pool (`PoolModel`) built from the chain's state (`read_lp_state`:
basket, holdings, supply, claims, fee settings, and each price the action reads: the oracle's
`assetPriceBounds` where fresh, the keeper's price where it would push it first, else the last
keeper price on chain, marked stale), and its own quote (`PoolModel.quote_deposit` /
`quote_withdraw`, to the unit of `AlpPool`'s)."""

from __future__ import annotations

from decimal import Decimal, localcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import ConfigError, UnknownNameError
from .model.errors import ModelRefusal
from .model.pool import FACE_VALUE, BasketAsset, DepositQuote, PoolModel, WithdrawQuote
from .model.quote import QuoteRefused, quote
from .model.engine_settings import Settings
from .model.pair_registry import default_pairs
from .model.trading_engine import ExchangeModel
from .profiles import ChainProfile
from .protocol import RejectReason
from .units import BPS, WAD, Number, from_units, to_decimal, to_units, wad_to_decimal

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

LP_QUOTE_KEYS = ["asset", "amount", "fee_bps", "fee_usd", "alp_out", "amount_out", "weights_before_bps",
                 "weights_after_bps", "targets_bps"]
"""The keys of `alpsim quote-lp --json` (`alp_out` for a deposit, `amount_out` for a
withdrawal, not both), then `chain`, `withdraw`, `prices` (per asset the pool reads: `low`,
`high` and `source`) and `units` (the integers: `fee_wad`, `action_usd_wad`, `alp_out_wad`,
`amount_out_units`, `toward_usd_wad`, `action_price_wad`, `base_fee_bps`, `spread_bps`, and per
asset `values_before_usd_wad` / `values_after_usd_wad`, the weights' terms)."""
PRICE_SOURCES = ("oracle", "keeper", "stale", "face value")
"""Where a quote's price comes from: the oracle's fresh `assetPriceBounds`; the keeper's price
and the reference feed (the keeper pushes it before the action: `Keeper.fresh_basket_prices`);
the last keeper price on chain, stale (the action would revert `PriceStale` unless a keeper
pushes one); exactly 1 USD (`FACE_VALUE`)."""
QUOTE_HOLDER = "quote"
"""The model's one ALP holder in a quote: it holds the whole supply, unlocked (a quote is for
any holder; the holder's balance and cooldown are the pool's to check)."""


class LpQuoteError(ConfigError):
    """A deposit or withdrawal the pool would refuse, with the contract's error name."""


@dataclass(frozen=True)
class ChainPrices:
    """The model pool's price source in a quote: the (low, high) read from chain per price id.
    Only the ids the action reads are there (a holding of zero reads no price)."""

    bounds_wad: dict[int, tuple[int, int]]

    def asset_price_bounds(self, price_id: int, now: int) -> tuple[int, int]:
        return self.bounds_wad[price_id]


@dataclass(frozen=True)
class LpState:
    """The pool as an LP action on one asset would read it: the reference model's pool (assets
    keyed by symbol, the payout stablecoin first) and each read price's source."""

    pool: PoolModel
    index: int
    """The action's asset, in listing order."""
    sources: dict[str, str]


def basket_symbols(sim: "AlpsimReader", tokens: list[str]) -> list[str]:
    """The alpsim symbol of each basket token (the deployments file's; the collateral's own
    symbol for a deployment from before the basket)."""
    by_address = {e.address.lower(): e.symbol for e in sim.deployment.basket}
    return [by_address.get(t.lower(), sim.profile.collateral.symbol if j == 0 else t) for j, t in enumerate(tokens)]


def _price_bounds(sim: "AlpsimReader", price_id: int, symbol: str, allow_stale: bool) -> tuple[int, int, str]:
    """The (low, high) the pool will read for `price_id` at the next LP action, and its source
    (PRICE_SOURCES). Not `allow_stale`: a price the oracle refuses raises its error."""
    from .errors import AlpsimError

    if price_id == FACE_VALUE:
        return WAD, WAD, "face value"
    oracle = sim.contracts["oracle"]
    keeper = getattr(sim, "keeper", None)
    if keeper is not None and keeper.online:
        mine = keeper.price_wad(price_id)
        if mine is not None and keeper.aging_prices({price_id}):
            ref = oracle.call("referencePrice", price_id)[0] or mine
            return min(mine, ref), max(mine, ref), "keeper"
    try:
        low, high = oracle.call("assetPriceBounds", price_id)
        return low, high, "oracle"
    except AlpsimError:
        if not allow_stale:
            raise
        mark = oracle.call("markPrice", price_id)
        if mark == 0:
            raise LpQuoteError(f"no price for {symbol} (price id {price_id}): the keeper has never priced it; "
                               f"set one first (keeper.set_prices({{{symbol!r}: ...}}))") from None
        return mark, mark, "stale"


def pool_claims_usd(sim: "AlpsimReader") -> tuple[int, int]:
    """The pool's claims on open positions (deposits', withdrawals') from its NAV source, as
    `AlpPool` reads them; none while it has no NAV source."""
    source = sim.pool_contract.call("navSource").lower()
    if int(source, 16) == 0:
        return 0, 0
    for role, entry in sim.deployment.contracts.items():
        if entry.address.lower() == source:
            return tuple(sim.contracts[role].call("poolClaimsUsd"))
    raise ConfigError(f"the pool's NAV source {source} is no contract of the deployments file")


def read_lp_state(sim: "AlpsimReader", token: str, allow_stale: bool = True) -> LpState:
    """The pool's basket, supply, claims and settings now as the reference model's pool, with
    the prices an action on basket `token` would read (assets with holdings and its own)."""
    pool = sim.pool_contract
    tokens, decimals, targets, price_ids, holdings = pool.call("basket")
    symbols = basket_symbols(sim, tokens)
    index = [t.lower() for t in tokens].index(token.lower())
    bounds, sources = {}, {}
    for j, symbol in enumerate(symbols):
        if holdings[j] or j == index:
            low, high, sources[symbol] = _price_bounds(sim, price_ids[j], symbol, allow_stale)
            bounds[price_ids[j]] = (low, high)
    claim, redeem = pool_claims_usd(sim)
    supply = sim.contracts["alp"].call("totalSupply")
    model = PoolModel(
        decimals=decimals[0], mint_fee_bps=pool.call("mintFeeBps"), burn_fee_bps=pool.call("burnFeeBps"),
        max_reserve_bps=pool.call("maxReserveBps"), pool_balance=holdings[0], reserve_usd=pool.call("reserveUsd"),
        pool_claim_usd=claim, redeem_claim_usd=redeem, alp_supply=supply, alp={QUOTE_HOLDER: supply},
        payout_key=symbols[0], fee_spread_bps=pool.call("feeSpreadBps"),
        assets=[BasketAsset(s, d, t, pid, s) for s, d, t, pid in zip(symbols, decimals, targets, price_ids)],
        holdings=dict(zip(symbols[1:], holdings[1:])), price_source=ChainPrices(bounds))
    return LpState(model, index, sources)


def _weights_bps(values: list[int], symbols: list[str]) -> dict[str, Decimal]:
    total = sum(values)
    return {s: (Decimal(0) if total == 0 else Decimal(v * BPS) / Decimal(total)).quantize(Decimal("0.01"))
            for s, v in zip(symbols, values)}


def _run_quote(pool: PoolModel, symbol: str, units: int,
               withdraw: bool) -> tuple[DepositQuote | WithdrawQuote, int, list[int], list[int]]:
    """The model's quote of the action on a pool of its own: the quote, the action's USD (the
    deposit's value, the withdrawal's gross) and each asset's USD before and after the action
    at the action's prices (the action applied to the model's pool)."""
    now = 0  # the prices are read already: the price source takes no time
    if withdraw:
        q = pool.quote_withdraw(QUOTE_HOLDER, units, now, symbol)
        pool.check_holdings_after(q)
        before = pool.basket_values_usd(q.index, False, now)[0]
        pool.apply_withdraw(QUOTE_HOLDER, units, q)
        return q, q.gross_usd, before, pool.basket_values_usd(q.index, False, now)[0]
    q = pool.quote_deposit(units, now, symbol)
    before = pool.basket_values_usd(q.index, True, now)[0]
    pool.apply_deposit(QUOTE_HOLDER, units, now, q)
    return q, q.amount_usd, before, pool.basket_values_usd(q.index, True, now)[0]


def quote_lp(sim: "AlpsimReader", asset: str, amount: Number, withdraw: bool = False, *,
             allow_stale: bool = True) -> dict[str, Any]:
    """A deposit of `amount` whole tokens of basket `asset` (or, `withdraw`, a withdrawal of
    `amount` ALP for it) as `alpsim quote-lp --json` prints it: LP_QUOTE_KEYS, then `chain`,
    `withdraw`, `prices`, `units`; amounts as exact Decimals. The reference model's quote
    (`PoolModel.quote_deposit` / `quote_withdraw`) at the chain's state: the fee is the
    event's `feeUsd` (the exact fee rounded down). Refuses a bad asset or amount (ConfigError)
    and an action the pool would refuse (LpQuoteError, the contract's error); not
    `allow_stale`, a price the oracle refuses raises its error instead of quoting at it."""
    if not isinstance(asset, str):
        raise ConfigError(f"asset must be a basket symbol, got {asset!r}")
    asset_decimals = sim.asset_decimals(asset)
    number = to_decimal(amount, "amount")
    if number <= 0:
        raise ConfigError(f"amount must be positive, got {amount}")
    units = to_units(number, 18 if withdraw else asset_decimals, "amount")
    state = read_lp_state(sim, sim.asset_token(asset).address, allow_stale)
    pool = state.pool
    symbols = [a.key for a in pool.assets]
    symbol = symbols[state.index]
    try:
        q, action_usd, before, after = _run_quote(pool, symbol, units, withdraw)
    except ModelRefusal as refused:
        detail = ", ".join(f"{k}={v}" for k, v in refused.fields.items() if v != QUOTE_HOLDER)
        raise LpQuoteError(f"{refused.name}({detail}): the pool would refuse this "
                           f"{'withdrawal' if withdraw else 'deposit'} of {amount} "
                           f"{'ALP for ' + symbol if withdraw else symbol}") from None
    fee_bps = Decimal(0) if action_usd == 0 else (Decimal(q.fee_usd * BPS) / Decimal(action_usd))
    out: dict[str, Any] = {
        "asset": symbol, "amount": number, "fee_bps": fee_bps.quantize(Decimal("0.0001")),
        "fee_usd": wad_to_decimal(q.fee_usd),
    }
    if withdraw:
        out["amount_out"] = from_units(q.amount_out, asset_decimals)
    else:
        out["alp_out"] = wad_to_decimal(q.alp_out)
    bounds = pool.price_source.bounds_wad
    low, high = bounds[pool.assets[q.index].price_id]
    out.update({
        "weights_before_bps": _weights_bps(before, symbols), "weights_after_bps": _weights_bps(after, symbols),
        "targets_bps": {a.key: a.target_bps for a in pool.assets},
        "chain": sim.deployment.chain, "withdraw": withdraw,
        "prices": {a.key: {"low": wad_to_decimal(bounds[a.price_id][0]), "high": wad_to_decimal(bounds[a.price_id][1]),
                           "source": state.sources[a.key]} for a in pool.assets if a.key in state.sources},
        "units": {"fee_wad": q.fee_usd, "action_usd_wad": action_usd, "alp_out_wad": 0 if withdraw else q.alp_out,
                  "amount_out_units": q.amount_out if withdraw else 0, "toward_usd_wad": q.toward_usd,
                  "action_price_wad": high if withdraw else low,
                  "base_fee_bps": pool.burn_fee_bps if withdraw else pool.mint_fee_bps, "spread_bps": q.spread_bps,
                  "values_before_usd_wad": dict(zip(symbols, before)),
                  "values_after_usd_wad": dict(zip(symbols, after))},
    })
    return out


DEFAULT_POOL_USD = 1_000_000
"""`alpsim quote-lp` without --rpc: the embedded devnet's pool holds this much, at the targets."""
DEFAULT_POOL_LP = 7


def seed_default_pool(sim: Any, pool_usd: int = DEFAULT_POOL_USD) -> None:
    """Prices the pairs at `alpsim devnet`'s start prices and has account DEFAULT_POOL_LP
    deposit `pool_usd` spread over the basket at its target weights (each asset's share at its
    start price, rounded down to 8 decimals), the payout stablecoin first."""
    from .service import DEFAULT_START_PRICES

    sim.keeper.set_prices(dict(DEFAULT_START_PRICES))  # BNB and the stablecoins: the profile's start prices
    sim.deposit_at_targets(DEFAULT_POOL_LP, pool_usd)
