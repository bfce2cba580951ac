"""Quotes and liquidation prices from the reference model: what the chain will do, offline. No
contract mirrors this: it runs the model (docs/mechanics.md sections 5, 6 and 11).

LP quotes (`quote_lp_deposit`, `quote_lp_withdraw`): what `AlpPool.deposit` / `withdraw` give
for a basket state (holdings, price bounds, supply, claim), to the unit, from the pool model's
fee and valuation functions (docs/mechanics.md section 10)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..protocol import Order, Position, RejectReason
from .engine_settings import Settings
from .errors import ModelRefusal
from .math import WAD
from .pool import MINIMUM_LIQUIDITY, tokens_for_usd, toward_usd, value_usd
from .trading_engine import ExchangeModel

QUOTE_TRADER = "trader"
QUOTE_KEEPER = "keeper"


def liquidation_price(model: ExchangeModel, p: Position, now: int) -> int:
    """The price at which `p` becomes liquidatable now (long: the highest such price; short:
    the lowest), to the unit of the contract's check, holding and funding included."""
    def liquidatable(price: int) -> bool:
        return model.is_liquidatable(p, price, now)

    if p.is_long:
        lo, hi = 0, p.entry_price * 2
        if liquidatable(hi):
            return hi
        while hi - lo > 1:  # invariant: liquidatable(lo), not liquidatable(hi)
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if liquidatable(mid) else (lo, mid)
        return lo
    lo, hi = p.entry_price // 2, p.entry_price * 4
    if liquidatable(lo):
        return lo
    while hi - lo > 1:  # invariant: not liquidatable(lo), liquidatable(hi)
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if liquidatable(mid) else (mid, hi)
    return hi


def fresh_liquidation_price(settings: Settings, decimals: int, p: Position, referred: bool) -> int:
    """Liquidation price before any holding or funding accrues (what a quote shows)."""
    model = ExchangeModel(decimals=decimals, settings=settings)
    if referred:
        model.referred.add(p.trader)
    fresh = replace(p, holding_index=0, funding_index=0)
    return liquidation_price(model, fresh, p.opened_at)


class QuoteRefused(ModelRefusal):
    """The order would be rejected; `reason` names why."""

    def __init__(self, reason: RejectReason):
        self.reason = reason
        super().__init__(reason.label)


@dataclass(frozen=True)
class QuoteResult:
    tier: str
    execution_fee_tokens: int
    open_fee_usd: int
    margin_usd: int
    notional_usd: int
    qty: int
    entry_price: int
    take_profit_cap_price: int
    max_profit_usd: int
    liquidation_price: int
    round_trip_cost_usd: int
    position: Position


def quote(model: ExchangeModel, pair_id: int, is_long: bool, amount_tokens: int, leverage: int, price: int,
          *, referral: bool = False, fee_token: bool = False, now: int = 1_767_225_600) -> QuoteResult:
    """Opens on an empty book at `price` (keeper and reference agree), then closes at once at
    the same price, on a copy of `model`. Raises QuoteRefused with the reason a check fails."""
    m = model.copy()
    m.pool.pool_balance = max(m.pool.pool_balance, 10**40)  # an empty book: reserve is no limit
    trader = QUOTE_TRADER
    m.balances[trader] = amount_tokens
    m.balances.setdefault("pool", m.pool.pool_balance)
    if referral:
        m.referred.add(trader)
    if fee_token:
        m.fee_in_token.add(trader)
        m.platform_token_price = m.platform_token_price or WAD
        m.token_balances[trader] = 10**40
        m.token_allowance_ok[trader] = True
    m.set_reference(pair_id, price, now)
    rid = m.request_open(trader, amount_tokens, b"", block=1)
    opened = m.execute_open(rid, Order(pair_id, is_long, leverage), {pair_id: price}, now, 2, QUOTE_KEEPER)
    if opened.reason is not RejectReason.NONE:
        raise QuoteRefused(opened.reason)
    p, charges = opened.position, opened.charges
    liq = liquidation_price(m, p, now)
    close_rid = m.request_close(trader, p.id, block=2)
    settled = m.execute_close(close_rid, {pair_id: price}, now, 3)
    token_fees_usd = (charges.open_fee_usd if p.fee_in_token else 0) + (settled.close_fee_usd if settled.fee_in_token else 0)
    round_trip = amount_tokens * m.scale - settled.payout_tokens * m.scale + token_fees_usd
    return QuoteResult(
        tier="extreme" if leverage >= m.settings.extreme_leverage else "standard",
        execution_fee_tokens=charges.execution_fee_tokens, open_fee_usd=charges.open_fee_usd,
        margin_usd=p.margin_usd, notional_usd=p.notional_usd, qty=p.qty, entry_price=p.entry_price,
        take_profit_cap_price=p.take_profit, max_profit_usd=p.max_profit_usd, liquidation_price=liq,
        round_trip_cost_usd=round_trip, position=p,
    )


# ----------------------------------------------------------------- LP quotes (the basket)

LP_BPS = 10_000


@dataclass(frozen=True)
class LpAsset:
    """One basket asset as an LP action sees it: holdings in token units and the price bounds
    (18-decimal USD, low <= high) the pool would read; None where the pool reads no price
    (no holdings, not the action's asset)."""

    symbol: str
    decimals: int
    target_bps: int
    holdings: int
    low_wad: int | None = None
    high_wad: int | None = None


@dataclass(frozen=True)
class LpQuote:
    """A deposit's or withdrawal's result. `action_usd`: the deposit's value at the low price,
    or the withdrawal's gross (ALP x NAV / supply); `fee_usd` as the contract's event reports it;
    `values_before_usd` / `values_after_usd`: each asset's holdings at the action's prices."""

    action_usd: int
    toward_usd: int
    fee_usd: int
    alp_out: int
    amount_out: int
    values_before_usd: tuple[int, ...]
    values_after_usd: tuple[int, ...]


def spread_in_force(target_bps: int, base_bps: int, spread_bps: int) -> int:
    """The dynamic fee's spread the pool applies: none for a one-asset basket's asset (its
    weight cannot move), never past 0 or 100% around the base."""
    if target_bps == LP_BPS:
        return 0
    return min(spread_bps, base_bps, LP_BPS - base_bps)


def _values(assets: list[LpAsset], high: bool, holdings: dict[int, int] | None = None) -> tuple[int, ...]:
    out = []
    for j, a in enumerate(assets):
        held = a.holdings if holdings is None or j not in holdings else holdings[j]
        price = a.high_wad if high else a.low_wad
        out.append(0 if held == 0 or price is None else value_usd(held, a.decimals, price))
    return tuple(out)


def _priced(assets: list[LpAsset], index: int) -> None:
    for j, a in enumerate(assets):
        if (a.holdings or j == index) and (a.low_wad is None or a.high_wad is None):
            raise ValueError(f"basket asset {a.symbol} needs its price bounds")


def quote_lp_deposit(assets: list[LpAsset], index: int, amount: int, supply: int, claim_usd: int, base_bps: int,
                     spread_bps: int) -> LpQuote:
    """`AlpPool.deposit(asset index, amount)`: ALP out (18 decimals) and the fee, or a
    ModelRefusal named as the contract's error. The basket at its high prices, the amount at
    the asset's low (docs/mechanics.md section 10)."""
    if amount <= 0:
        raise ModelRefusal("ZeroAmount")
    a = assets[index]
    max_amount = (2**256 - 1) // (10 ** (18 - a.decimals) * LP_BPS)
    if amount > max_amount:
        raise ModelRefusal("AmountTooLarge", amount=amount, max=max_amount)
    _priced(assets, index)
    before = _values(assets, high=True)
    basket_usd = sum(before)
    amount_usd = value_usd(amount, a.decimals, a.low_wad)
    spread = spread_in_force(a.target_bps, base_bps, spread_bps)
    toward = toward_usd(before[index], basket_usd, a.target_bps, amount_usd, True) if spread else 0
    net_times_bps = amount_usd * (LP_BPS - base_bps - spread) + 2 * spread * toward
    if supply == 0:
        alp_out = max(net_times_bps // LP_BPS - MINIMUM_LIQUIDITY, 0)
    else:
        nav_usd = basket_usd + claim_usd
        if nav_usd <= 0:
            raise ModelRefusal("PoolInsolvent", navUsd=nav_usd, alpSupply=supply)
        alp_out = net_times_bps * supply // (nav_usd * LP_BPS)
    if alp_out == 0:
        raise ModelRefusal("AmountTooSmall", amount=amount)
    after = _values(assets, high=True, holdings={index: a.holdings + amount})
    return LpQuote(amount_usd, toward, (amount_usd * LP_BPS - net_times_bps) // LP_BPS, alp_out, 0, before, after)


def quote_lp_withdraw(assets: list[LpAsset], index: int, alp_amount: int, supply: int, redeem_claim_usd: int,
                      base_bps: int, spread_bps: int, reserve_usd: int = 0, max_reserve_bps: int = 8_000) -> LpQuote:
    """`AlpPool.withdraw(alp_amount, asset index)`: token units out and the fee, or a
    ModelRefusal named as the contract's error (the holder's balance and cooldown are the
    caller's to check). The basket at its low prices, the amount out at the asset's high; the
    payout stablecoin (index 0) must keep covering the reserve."""
    if alp_amount <= 0:
        raise ModelRefusal("ZeroAmount")
    if alp_amount > supply:
        raise ModelRefusal("InsufficientAlpBalance", balance=supply, requested=alp_amount)
    _priced(assets, index)
    a = assets[index]
    before = _values(assets, high=False)
    basket_usd = sum(before)
    nav_usd = basket_usd + redeem_claim_usd
    if nav_usd <= 0:
        raise ModelRefusal("PoolInsolvent", navUsd=nav_usd, alpSupply=supply)
    spread = spread_in_force(a.target_bps, base_bps, spread_bps)
    gross_usd = alp_amount * nav_usd // supply
    toward = toward_usd(before[index], basket_usd, a.target_bps, gross_usd, False) if spread else 0
    rebate = 2 * spread * toward * supply
    out_usd = (alp_amount * (LP_BPS - base_bps - spread) * nav_usd + rebate) // (supply * LP_BPS)
    fee = (alp_amount * (base_bps + spread) * nav_usd - rebate) // (supply * LP_BPS)
    amount_out = tokens_for_usd(out_usd, a.decimals, a.high_wad)
    if amount_out == 0:
        raise ModelRefusal("AmountTooSmall", amount=alp_amount)
    scale = 10 ** (18 - a.decimals)
    if index == 0:
        left = max(a.holdings - amount_out, 0)
        if amount_out > a.holdings or left * scale * max_reserve_bps < reserve_usd * LP_BPS:
            raise ModelRefusal("ReserveNotCovered", poolBalanceAfterUsd=left * scale, reserveUsd=reserve_usd)
    elif amount_out > a.holdings:
        raise ModelRefusal("BasketHoldingsShort", holdings=a.holdings, amountOut=amount_out)
    after = _values(assets, high=False, holdings={index: a.holdings - amount_out})
    return LpQuote(gross_usd, toward, fee, 0, amount_out, before, after)
