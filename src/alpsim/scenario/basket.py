"""The ALP basket as a scenario reports it: the keeper's asset prices and the record of each
LP action (deposit or withdrawal, in any basket asset). Holdings and weights are the client's
(`Alpsim.pool()`)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING, Any

from ..units import wad_to_decimal

if TYPE_CHECKING:
    from ..client import Alpsim

BPS_QUANTUM = Decimal("0.01")
"""Fee rates are reported in basis points to 2 decimals (half-even), as the client reports weights."""


def bps(part: int | Decimal, whole: int | Decimal) -> Decimal:
    """`part / whole` in basis points, 2 decimals; 0 for an empty whole."""
    if not whole:
        return Decimal(0).quantize(BPS_QUANTUM)
    return (Decimal(part) * 10_000 / Decimal(whole)).quantize(BPS_QUANTUM, rounding=ROUND_HALF_EVEN)


@dataclass
class LpAction:
    """A deposit or withdrawal as the run made it. `amount` is whole tokens of `asset` (in for a
    deposit, out for a withdrawal); `alp` the ALP minted or burnt; `fee_usd` the pool's fee from
    the event; `fee_bps` that fee over the action's USD at the keeper's price of the asset."""

    id: str | None
    step: int
    kind: str
    who: str
    asset: str
    amount: Decimal
    alp: Decimal
    fee_usd: Decimal
    fee_bps: Decimal

    def report(self) -> dict[str, Any]:
        return {"id": self.id, "step": self.step, "kind": self.kind, "who": self.who, "asset": self.asset,
                "amount": self.amount, "alp": self.alp, "fee_usd": self.fee_usd, "fee_bps": self.fee_bps}


def action_usd(sim: "Alpsim", asset: str, amount: Decimal, fee_usd: Decimal, kind: str) -> Decimal:
    """The USD the fee was charged on: a deposit's value in, a withdrawal's gross (what left
    plus the fee), at the keeper's price of the asset."""
    price_id = sim.deployment.price_id(asset)
    value = amount * wad_to_decimal(sim.keeper.price_wad(price_id))
    return value if kind == "deposit" else value + fee_usd


def keeper_asset_prices(sim: "Alpsim") -> dict[str, Decimal]:
    """The keeper's price of each basket asset it prices, by symbol (BTC the asset: the pair's)."""
    out = {}
    for entry in sim.deployment.basket:
        wad = sim.keeper.price_wad(entry.price_id)
        if wad is not None:
            out[entry.symbol] = wad_to_decimal(wad)
    return out


def payout_symbol(sim: "Alpsim") -> str:
    """The payout stablecoin's symbol (USDT on BNB Chain, USDC on Arbitrum)."""
    return sim.deployment.basket[0].symbol if sim.deployment.basket else sim.profile.collateral.symbol


def lp_action(sim: "Alpsim", body: Any, step: int, kind: str, amount: Decimal, alp_wad: int, fee_wad: int) -> LpAction:
    """The record of a deposit or withdraw step (`body`) the chain took."""
    asset = body.asset or payout_symbol(sim)
    fee_usd = wad_to_decimal(fee_wad)
    usd = action_usd(sim, asset, amount, fee_usd, kind) if sim.deployment.basket else amount
    return LpAction(body.id, step, kind, body.who, asset, amount, wad_to_decimal(alp_wad), fee_usd, bps(fee_usd, usd))
