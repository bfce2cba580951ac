"""A study's LPs in the ALP basket: the pool's first liquidity deposited as a basket (`lp.basket`,
the pool's targets by default) with the targets the study sets (`basket_targets`), the LPs that
come and go during a path (`lps`), and the run (`lps.run`): when the redemption ALP price has
fallen by the run's threshold from its start, every LP of `lps` withdraws all its ALP, asking for
the assets in the run's order (the payout stablecoin first by default), each withdrawal paying
the dynamic burn fee."""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal
from typing import Any

from ..client import Alpsim
from ..errors import ContractRevert
from ..service import DEFAULT_START_PRICES
from ..units import WAD
from .crowd import LpFlow
from .ledger import PoolLedger
from .spec import Study, chain_basket


def asset_start_prices(study: Study) -> dict[str, Decimal]:
    """The first price of every basket asset by symbol: the study's (its own or its pair's), or
    the profile's `start_price_usd`, or the pair's devnet start price."""
    out = {}
    for symbol, asset in chain_basket(study.chain).items():
        key = asset.pair or symbol
        default = DEFAULT_START_PRICES[asset.pair] if asset.pair else asset.start_price_usd
        out[symbol] = Decimal(study.start_prices.get(key, default))
    return out


def targets_bps(study: Study) -> list[int]:
    """The pool's targets in listing order (bp): the study's `basket_targets` or the profile's."""
    basket = chain_basket(study.chain)
    if study.basket_targets is None:
        return [a.target_bps for a in basket.values()]
    return [int(study.basket_targets.get(symbol, 0) * 100) for symbol in basket]


def lp_split(study: Study) -> dict[str, Decimal]:
    """The LP's deposit in % of USD per symbol, in listing order: `lp.basket` or the targets."""
    basket = chain_basket(study.chain)
    if study.lp.basket is not None:
        return {s: Decimal(study.lp.basket.get(s, 0)) for s in basket}
    return {s: Decimal(bps) / 100 for s, bps in zip(basket, targets_bps(study))}


def deposit_basket(sim: Alpsim, who: int, usd: Decimal, split: dict[str, Decimal], prices: dict[str, Decimal]) -> None:
    """Funds `who` and deposits `usd` split as `split` (% per symbol), each asset's tokens at
    its start price, cut down to its decimals; in listing order."""
    for symbol, pct in split.items():
        if pct <= 0:
            continue
        decimals = sim.asset_decimals(symbol)
        tokens = (usd * pct / 100 / prices[symbol]).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_DOWN)
        if tokens > 0:
            sim.fund(who, tokens, asset=symbol)
            sim.deposit(who, tokens, asset=symbol)


class PathLps:
    """A path's LPs: each deposit from a free account; a withdrawal of all its ALP once its stay
    is over, or at once in a run. A withdrawal the pool refuses (cooldown, reserve, holdings) is
    counted by reason and tried again at the next step. Nobody deposits into a run."""

    def __init__(self, sim: Alpsim, study: Study, flow: LpFlow | None, accounts: list[int], holders: list[int],
                 ledger: PoolLedger):
        self.sim, self.flow, self.ledger = sim, flow, ledger
        self.free = [a for a in accounts if a not in holders]
        self.staying: dict[int, int | None] = dict.fromkeys(holders)  # account -> when it leaves (s); None: never
        run = study.lps.run if study.lps is not None else None
        self.run = run
        self.run_assets = (run.assets or list(chain_basket(study.chain))) if run is not None else []
        self.start_price = ledger.prices[0]
        self.running = False
        self.flows: dict[str, Any] = {"deposits": 0, "deposited_usd": 0.0, "withdrawals": 0, "withdrawn_usd": 0.0,
                                      "no_free_account": 0, "refused": {}}
        self.run_flows: dict[str, Any] | None = None if run is None else {
            "started_s": None, "withdrawals": 0, "withdrawn_usd": 0.0, "fees_usd": 0.0, "by_asset": {}, "refused": {},
            "left_in_pool": 0}

    def step(self, step_s: int, now_s: int) -> None:
        sim = self.sim
        if self.run is not None and not self.running:
            price = sim.pool_contract.call("redeemAlpPrice") / WAD
            if price <= self.start_price * (1 - float(self.run.drawdown)):
                self.running, self.run_flows["started_s"] = True, now_s
        for account, leaves_s in sorted(self.staying.items()):
            if self.running:
                self._run_out(account)
            elif leaves_s is not None and leaves_s <= now_s:
                self._leave(account)
        arrivals = self.flow.arrivals(step_s) if self.flow is not None else []  # drawn even in a run: same stream
        for deposit in arrivals:
            if self.running:
                continue
            if not self.free:
                self.flows["no_free_account"] += 1
                continue
            account = self.free.pop(0)
            out = sim.deposit(account, deposit.amount)
            self.ledger.on_lp_action(out.fee_wad)
            self.flows["deposits"] += 1
            self.flows["deposited_usd"] += float(deposit.amount)
            self.staying[account] = None if deposit.stay_s is None else now_s + deposit.stay_s

    def _withdraw(self, account: int, asset: str | None, refused: dict[str, int]) -> Any:
        try:
            out = self.sim.withdraw(account, "all", asset=asset)
        except ContractRevert as exc:
            refused[exc.error_name] = refused.get(exc.error_name, 0) + 1
            return None
        self.ledger.on_lp_action(out.fee_wad)
        del self.staying[account]
        self.free.append(account)
        return out

    def _leave(self, account: int) -> None:
        out = self._withdraw(account, None, self.flows["refused"])
        if out is not None:
            self.flows["withdrawals"] += 1
            self.flows["withdrawn_usd"] += out.amount_out_units / 10**self.sim.decimals

    def _run_out(self, account: int) -> None:
        flows = self.run_flows
        for asset in self.run_assets:
            out = self._withdraw(account, asset, flows["refused"])
            if out is not None:
                flows["withdrawals"] += 1
                flows["fees_usd"] += out.fee_wad / WAD
                usd = self._usd(asset, out.amount_out_units)
                flows["withdrawn_usd"] += usd
                flows["by_asset"][asset] = flows["by_asset"].get(asset, 0.0) + usd
                return

    def _usd(self, asset: str, units: int) -> float:
        entry = self.sim.deployment.basket_asset(asset)
        return units * 10 ** (18 - entry.decimals) * self.ledger.prices_wad[entry.price_id] / WAD / WAD

    def result(self) -> dict[str, Any]:
        out = dict(self.flows)
        if self.run_flows is not None:
            self.run_flows["left_in_pool"] = sum(1 for a in self.staying if self.sim.alp_balance_wad(a))
            out["run"] = self.run_flows
        return out
