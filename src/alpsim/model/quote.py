"""Quotes and liquidation prices from the reference model: what the chain will do, offline. No
contract mirrors this: it runs the model (docs/mechanics.md sections 5, 6 and 11). LP quotes
are the pool model's own (`PoolModel.quote_deposit` / `quote_withdraw`, run by
`alpsim.quote.quote_lp` on the chain's basket)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..protocol import Order, Position, RejectReason
from .engine_settings import Settings
from .errors import ModelRefusal
from .math import WAD
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
