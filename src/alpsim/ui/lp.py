"""The trading page's LP quote: what a deposit or a withdrawal of one basket asset would pay in
mint or burn fee (bp and USD), and the asset's weight before and after, at the prices the pool
will read. The numbers are `alpsim quote-lp`'s (`alpsim.quote.quote_lp`: the reference model's
`PoolModel.quote_deposit` / `quote_withdraw` on the chain's basket), in the page's camelCase
JSON; the fee is the Deposit/Withdraw event's `feeUsd` (rounded down, as the pool's).

Before reading, the basket's prices are brought fresh on chain (`Keeper.fresh_basket_prices`,
and the reference feeds they are guarded by): the page sends its transaction right after the
quote, and the pool refuses a stale price. The quoting keeper is seeded from the chain (the
prices the running keeper last sent), so it only repeats them: it never moves a price."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ..model.pool import FACE_VALUE
from ..profiles import FIRST_ASSET_PRICE_ID
from ..quote import quote_lp
from ..units import BPS


def _usd(wad: int) -> str:
    """18-decimal fixed point -> its exact decimal text."""
    return format(Decimal(wad).scaleb(-18).normalize(), "f")


def _bps(part: int, whole: int) -> str:
    return format(Decimal(part) * BPS / whole, ".4f") if whole else "0"


def seed_keeper_from_chain(sim: Any) -> None:
    """Gives the quoting client's keeper what the chain holds for the basket's price ids, which
    the keeper's own `adopt_asset_prices` does not: the latest keeper price of every id (pairs
    too, and replacing what its book holds: another process's keeper moves them), the reference
    feeds' answers and ages (so that its `refresh_stale_references` refreshes feeds another
    keeper set), an asset-only price no keeper sent at its reference feed's answer, and a
    reference feed never set at the keeper price. So `fresh_basket_prices` repeats the running
    keeper's prices instead of inventing any; an asset-only price with neither is left to
    `adopt_asset_prices` (the profile's start price)."""
    keeper, oracle = sim.keeper, sim.contracts["oracle"]
    unset_refs = {}
    for pid in {e.price_id for e in sim.deployment.basket} - {FACE_VALUE}:
        price = oracle.call("keeperPrice", pid)[0]
        ref, ref_at = oracle.call("referencePrice", pid)
        if pid >= FIRST_ASSET_PRICE_ID:
            price = price or ref
        if price:
            keeper.price_book(pid)[pid] = price
        if ref:
            keeper.reference_prices[pid], keeper.reference_updated_at[pid] = ref, ref_at
        elif price:
            unset_refs[pid] = price
    keeper.set_references(unset_refs)


def fresh_prices(sim: Any, entry: Any) -> None:
    """The prices an LP action on `entry` (a BasketEntry) reads, fresh on chain: the keeper's
    (`Keeper.fresh_basket_prices`, which refreshes their reference feeds first)."""
    seed_keeper_from_chain(sim)
    sim.keeper.fresh_basket_prices(entry.symbol)


def lp_quote(sim: Any, entry: Any, is_deposit: bool, amount: int) -> dict[str, Any]:
    """The quote of a deposit of `amount` token units of `entry`, or of a withdrawal of `amount`
    ALP (18 decimals) for it. Prices are read as the pool reads them: a stale or broken price
    raises the oracle's error, a refused action the pool's (the page shows them)."""
    q = quote_lp(sim, entry.symbol, Decimal(amount).scaleb(-(entry.decimals if is_deposit else 18)),
                 withdraw=not is_deposit, allow_stale=False)
    u = q["units"]
    before, after = u["values_before_usd_wad"], u["values_after_usd_wad"]
    total_before, total_after = sum(before.values()), sum(after.values())
    action_usd, fee = u["action_usd_wad"], u["fee_wad"]
    out: dict[str, Any] = {"action": "deposit" if is_deposit else "withdraw", "asset": entry.symbol,
                           "decimals": entry.decimals, "actionPrice": _usd(u["action_price_wad"])}
    if is_deposit:
        out.update(amountUnits=str(amount), alpOut=_usd(u["alp_out_wad"]))
    else:
        amount_out = u["amount_out_units"]
        out.update(alp=_usd(amount), amountOut=format(Decimal(amount_out).scaleb(-entry.decimals), "f"),
                   amountOutUnits=str(amount_out))
    out.update(
        actionUsd=_usd(action_usd), feeUsd=_usd(fee), feeBps=_bps(fee, action_usd), towardUsd=_usd(u["toward_usd_wad"]),
        baseFeeBps=u["base_fee_bps"], spreadBps=u["spread_bps"], targetBps=q["targets_bps"][entry.symbol],
        weightBeforeBps=_bps(before[entry.symbol], total_before), weightAfterBps=_bps(after[entry.symbol], total_after),
        weights=[{"symbol": s, "targetBps": t, "valueUsd": _usd(before[s]), "weightBps": _bps(before[s], total_before)}
                 for s, t in q["targets_bps"].items()],
    )
    return out
