"""The LP's return on one study path, split by source (docs/studies.md, "The LP's return by
source"). The pool's redemption ALP price P is read after every step; between two readings its
change is put together from what moved NAV:

- basket beta: the holdings of the reading before, revalued at the step's new prices (a step's
  prices move first, before any trade or LP action of the step);
- trader pnl: the payout token the pool received from settlements less the fees and the funding
  and holding in them, plus the change in the pool's claim on open positions (their unrealized
  pnl, and the fees they owe until they pay them);
- fees: the pool's share of open and close fees, and every mint and burn fee (an LP action of
  fee f leaves P higher by exactly f / supply after it);
- funding/holding: what settlements paid the pool in funding and holding.

Trading moves NAV at the supply of the reading before (LP actions come after the step's trades);
each source's USD is divided by the supply it met, so the sources add up to P's change up to the
contracts' rounding (`residual`)."""

from __future__ import annotations

from typing import Any

from ..client import Alpsim
from ..units import WAD

SOURCES = ("basket_beta", "trader_pnl", "fees", "funding_holding")
BPS = 10_000


class PoolLedger:
    """A path's pool readings and its return by source. `prices_wad` (price id -> 18-decimal
    USD) is the runner's: the prices the oracle marks the basket at, moved before `record`."""

    def __init__(self, sim: Alpsim, prices_wad: dict[int, int]):
        self.sim = sim
        self.prices_wad = prices_wad
        basket = sim.deployment.basket
        self.ids = [e.price_id for e in basket]
        self.symbols = [e.symbol for e in basket]
        self.scales = [10 ** (18 - e.decimals) for e in basket]
        self.payout_id = self.ids[0]
        self.payout_scale = 10 ** (18 - sim.decimals)
        self.fee_share_bps = sim.settings.pool_fee_share_bps
        self.usd_per_alp = dict.fromkeys(SOURCES, 0.0)
        """Each source's change of the ALP price so far, USD per ALP."""
        self.lp_fees_usd = 0.0
        self.trading_fees_usd = 0.0
        self._step = self._empty_step()
        self.prices: list[float] = []
        self.peak_reserve_share = 0.0
        self._last: dict[str, Any] | None = None
        self.record()

    @staticmethod
    def _empty_step() -> dict[str, Any]:
        return {"delta_tokens": 0, "fee_tokens": 0, "funding_wad": 0, "lp_per_alp": 0.0}

    # ----- what happens between readings
    def on_open_fee(self, open_fee_tokens: int, in_token: bool) -> None:
        """An open charged outside a receipt the ledger sees (the cohort's): the pool's share of
        its fee, as `Settlement.splitFee` computes it."""
        if not in_token and open_fee_tokens:
            pool_tokens = open_fee_tokens - open_fee_tokens * (BPS - self.fee_share_bps) // BPS
            self._step["delta_tokens"] += pool_tokens
            self._step["fee_tokens"] += pool_tokens

    def on_receipt(self, receipt: dict) -> None:
        """A trading receipt's settlements and fee splits."""
        step = self._step
        for event in self.sim.session.events(receipt, ("FeeSplit", "PositionClosed")):
            if event["event"] == "FeeSplit":
                if not event["inPlatformToken"]:  # platform-token fees are held outside NAV
                    step["fee_tokens"] += event["poolAmount"]
                    if event["isOpen"]:
                        step["delta_tokens"] += event["poolAmount"]
            else:
                st = event["settlement"]
                step["delta_tokens"] += st["poolDeltaTokens"]
                step["funding_wad"] += st["holdingUsd"] + st["fundingUsd"]

    def on_lp_action(self, fee_wad: int) -> None:
        """A deposit or withdrawal just done: its fee over the supply after it."""
        supply_wad = self.sim.contracts["alp"].call("totalSupply")
        if supply_wad:
            self._step["lp_per_alp"] += fee_wad / supply_wad
            self.lp_fees_usd += fee_wad / WAD

    # ----- readings
    def record(self) -> None:
        sim = self.sim
        pool = sim.pool_contract
        price_wad = pool.call("redeemAlpPrice")
        supply_wad = sim.contracts["alp"].call("totalSupply")
        claim_wad = sim.contracts["market"].call("poolClaimsUsd")[1]
        holdings = list(pool.call("basket")[4])
        prices = [self.prices_wad[i] for i in self.ids]
        balance_usd = holdings[0] * self.payout_scale
        if balance_usd:
            self.peak_reserve_share = max(self.peak_reserve_share, pool.call("reserveUsd") / balance_usd)
        last, step = self._last, self._step
        if last is not None and last["supply_wad"]:
            supply = last["supply_wad"]
            beta_wad = sum(h * s * (p - q) for h, s, p, q in zip(last["holdings"], self.scales, prices, last["prices"]))
            payout_price = prices[0]
            trading_wad = step["delta_tokens"] * self.payout_scale * payout_price // WAD
            fee_wad = step["fee_tokens"] * self.payout_scale * payout_price // WAD
            funding_wad = step["funding_wad"] * payout_price // WAD
            self.usd_per_alp["basket_beta"] += beta_wad / WAD / supply
            self.usd_per_alp["fees"] += fee_wad / supply + step["lp_per_alp"]
            self.usd_per_alp["funding_holding"] += funding_wad / supply
            claim_change_wad = claim_wad - last["claim_wad"]
            self.usd_per_alp["trader_pnl"] += (trading_wad - fee_wad - funding_wad + claim_change_wad) / supply
            self.trading_fees_usd += fee_wad / WAD
        self.prices.append(price_wad / WAD)
        self._last = {"supply_wad": supply_wad, "claim_wad": claim_wad, "holdings": holdings, "prices": prices}
        self._step = self._empty_step()

    def split(self) -> dict[str, Any]:
        """The path's return by source (fractions of the start price), their residual against
        the total, the weights at the end and the fees by kind (USD)."""
        start, end = self.prices[0], self.prices[-1]
        total = end / start - 1
        out = {name: value / start for name, value in self.usd_per_alp.items()}
        out["total"] = total
        out["residual"] = total - sum(out[name] for name in SOURCES)
        last = self._last
        values = [h * s * p / WAD / WAD for h, s, p in zip(last["holdings"], self.scales, last["prices"])]
        basket_usd = sum(values)
        return {"return": out,
                "weights_end": {sym: (v / basket_usd if basket_usd else 0.0) for sym, v in zip(self.symbols, values)},
                "fees_usd": {"trading": self.trading_fees_usd, "mint_burn": self.lp_fees_usd}}
