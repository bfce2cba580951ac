"""The trading page's LP quote: what a deposit or a withdrawal of one basket asset would pay in
mint or burn fee (bp and USD), and the asset's weight before and after, at the prices the pool
will read. The numbers are the reference model's (`alpsim.model.pool`: `value_usd`,
`toward_usd`, `fee_usd`, `tokens_for_usd`) on the chain's holdings, targets and guarded price
bounds (`PriceOracle.assetPriceBounds`: the deposit's asset at the low, the basket at the high;
the other way round for a withdrawal), as `AlpPool` prices them (docs/mechanics.md section 10
sections 5 and 6).

Before reading, the basket's prices are brought fresh on chain (`Keeper.fresh_basket_prices`,
and the reference feeds they are guarded by): the page sends its transaction right after the
quote, and the pool refuses a stale price. The quoting keeper is seeded from the chain (the
prices the running keeper last sent), so it only repeats them: it never moves a price."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ..model.pool import MINIMUM_LIQUIDITY, fee_usd, tokens_for_usd, toward_usd, value_usd
from ..profiles import FIRST_ASSET_PRICE_ID
from ..units import BPS, to_units

FACE_VALUE = 65_535
"""`AlpPool.FACE_VALUE`: exactly 1 USD per token, no oracle read."""
WAD = 10**18


def _usd(wad: int) -> str:
    """18-decimal fixed point -> its exact decimal text."""
    return format(Decimal(wad).scaleb(-18).normalize(), "f")


def _bps(part: int, whole: int) -> str:
    return format(Decimal(part) * BPS / whole, ".4f") if whole else "0"


def seed_keeper_from_chain(sim: Any, price_ids: set[int]) -> None:
    """Gives the quoting client's keeper the prices the chain holds for `price_ids` (its own
    price book and the reference feeds' answers and ages), so that `fresh_basket_prices`
    repeats the running keeper's prices instead of inventing any. An asset-only price the
    keeper never sent starts at its reference feed's answer, else at the profile's start price
    (a devnet whose keeper has not priced BNB yet); a reference feed never set is set to it."""
    keeper, oracle = sim.keeper, sim.contracts["oracle"]
    start = {sim.deployment.price_id(a.symbol): to_units(a.start_price_usd, 18)
             for a in sim.profile.basket if a.price_id is not None}
    unset_refs = {}
    for pid in price_ids:
        if pid == FACE_VALUE:
            continue
        price = oracle.call("keeperPrice", pid)[0]
        ref, ref_at = oracle.call("referencePrice", pid)
        if pid >= FIRST_ASSET_PRICE_ID:
            price = price or ref or start.get(pid, 0)
        if price:
            (keeper.asset_prices if pid >= FIRST_ASSET_PRICE_ID else keeper.prices)[pid] = price
        if ref:
            keeper.reference_prices[pid], keeper.reference_updated_at[pid] = ref, ref_at
        elif price:
            unset_refs[pid] = price
    if unset_refs:
        keeper.set_references(unset_refs)


def fresh_prices(sim: Any, entry: Any) -> None:
    """The prices an LP action on `entry` (a BasketEntry) reads, fresh on chain: the keeper's
    (`fresh_basket_prices`) and the reference feeds (refreshed near the heartbeat)."""
    basket = sim.deployment.basket
    holdings = sim.pool_contract.call("basket")[4]
    needed = {e.price_id for e, held in zip(basket, holdings) if held > 0 or e.symbol == entry.symbol}
    seed_keeper_from_chain(sim, needed)
    sim.keeper.refresh_stale_references(needed)
    sim.keeper.fresh_basket_prices(entry.symbol)


def lp_quote(sim: Any, entry: Any, is_deposit: bool, amount: int) -> dict[str, Any]:
    """The quote of a deposit of `amount` token units of `entry`, or of a withdrawal of `amount`
    ALP (18 decimals) for it. Prices are read as the pool reads them: a stale or broken price
    raises the oracle's error (the page shows it)."""
    pool, oracle = sim.pool_contract, sim.contracts["oracle"]
    basket = sim.deployment.basket
    _, decimals, targets, price_ids, holdings = pool.call("basket")
    index = next(j for j, e in enumerate(basket) if e.symbol == entry.symbol)
    values, total = [], 0
    action_price = 0
    for j, (dec, pid, held) in enumerate(zip(decimals, price_ids, holdings)):
        if held == 0 and j != index:
            values.append(0)
            continue
        low, high = (WAD, WAD) if pid == FACE_VALUE else oracle.call("assetPriceBounds", pid)
        values.append(value_usd(held, dec, high if is_deposit else low))
        total += values[-1]
        if j == index:
            action_price = low if is_deposit else high
    target = targets[index]
    base = pool.call("mintFeeBps" if is_deposit else "burnFeeBps")
    spread = 0 if target == BPS else min(pool.call("feeSpreadBps"), base, BPS - base)
    claim_usd, redeem_claim_usd = _claims_usd(sim)
    supply = sim.contracts["alp"].call("totalSupply")
    out: dict[str, Any] = {"action": "deposit" if is_deposit else "withdraw", "asset": entry.symbol,
                           "decimals": entry.decimals, "actionPrice": _usd(action_price)}
    if is_deposit:
        action_usd = value_usd(amount, entry.decimals, action_price)
        fee = fee_usd(values[index], total, target, action_usd, True, base, spread)
        net_times_bps = action_usd * BPS - fee * BPS  # the model's fee, rounded up: the pool's way
        if supply == 0:
            alp_out = max(net_times_bps // BPS - MINIMUM_LIQUIDITY, 0)
        else:
            nav = total + claim_usd
            alp_out = net_times_bps * supply // (nav * BPS) if nav > 0 else 0
        after_value, after_total = values[index] + action_usd, total + action_usd
        out.update(amountUnits=str(amount), alpOut=_usd(alp_out))
    else:
        nav = total + redeem_claim_usd
        action_usd = amount * nav // supply if supply and nav > 0 else 0
        fee = fee_usd(values[index], total, target, action_usd, False, base, spread)
        net_usd = action_usd - fee
        amount_out = tokens_for_usd(net_usd, entry.decimals, action_price) if action_price else 0
        after_value, after_total = max(values[index] - net_usd, 0), max(total - net_usd, 0)
        out.update(alp=_usd(amount), amountOut=format(Decimal(amount_out).scaleb(-entry.decimals), "f"),
                   amountOutUnits=str(amount_out))
    toward = toward_usd(values[index], total, target, action_usd, is_deposit) if spread else 0
    out.update(
        actionUsd=_usd(action_usd), feeUsd=_usd(fee), feeBps=_bps(fee, action_usd), towardUsd=_usd(toward),
        baseFeeBps=base, spreadBps=spread, targetBps=target,
        weightBeforeBps=_bps(values[index], total), weightAfterBps=_bps(after_value, after_total),
        weights=[{"symbol": e.symbol, "targetBps": t, "valueUsd": _usd(v), "weightBps": _bps(v, total)}
                 for e, t, v in zip(basket, targets, values)],
    )
    return out


def _claims_usd(sim: Any) -> tuple[int, int]:
    """The pool's claims on open positions (deposits', withdrawals'), from its NAV source."""
    source = sim.pool_contract.call("navSource").lower()
    for role, entry in sim.deployment.contracts.items():
        if entry.address.lower() == source:
            return tuple(sim.contracts[role].call("poolClaimsUsd"))
    return 0, 0
