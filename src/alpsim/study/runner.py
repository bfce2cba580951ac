"""One study path on a real chain: the engine a process (or a Dask worker) keeps for a study, and
the compact result of each path. A path's numbers depend only on (study seed, path index): every
path starts from the same snapshot of the same deployment, and its prices come from its own
random stream (`prices.path_rng`), so any worker gives the same result for it."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from ..client import Alpsim, OrderRejected
from ..compiler import BuildResult
from ..service import DEFAULT_START_PRICES
from .prices import Gbm, Jump, Replay, load_price_csv, path_rng, price_paths
from .spec import GbmPrices, JumpPrices, Study

WAD = 10**18
LP = 7
"""The dev account that provides the pool's liquidity (0 deploys, 8 is the treasury, 9 the keeper)."""
RESERVED = {0, LP, 8, 9}
PRICE_DECIMALS = 8
"""Prices are cut to the reference feeds' 8 decimals, so keeper and reference agree exactly."""


def price_models(study: Study, base_dir: Path) -> dict[str, Gbm | Jump | Replay]:
    out: dict[str, Gbm | Jump | Replay] = {}
    for pair, spec in study.prices.items():
        if isinstance(spec, GbmPrices):
            out[pair] = Gbm(float(spec.volatility), float(spec.drift))
        elif isinstance(spec, JumpPrices):
            out[pair] = Jump(float(spec.volatility), float(spec.drift), float(spec.intensity), float(spec.jump_mean),
                             float(spec.jump_std))
        else:
            out[pair] = Replay(load_price_csv(base_dir / spec.csv), spec.block)
    return out


def start_prices(study: Study) -> dict[str, Decimal]:
    return {pair: Decimal(study.start_prices.get(pair, DEFAULT_START_PRICES[pair])) for pair in study.prices}


@dataclass(frozen=True)
class Subject:
    """One cohort position of a path: who holds it and what was asked."""

    label: str
    account: int
    pair: str
    side: str
    leverage: int
    amount: Decimal
    take_profit: Decimal | None
    stop_loss: Decimal | None


def cohort_subjects(study: Study) -> list[Subject]:
    accounts = iter(i for i in range(1, 10_000) if i not in RESERVED)
    out = []
    for c in study.cohort:
        for k in range(c.count):
            label = f"{c.pair} {c.side} {c.leverage}x" + (f" #{k + 1}" if c.count > 1 else "")
            out.append(Subject(label, next(accounts), c.pair, c.side, c.leverage, c.amount, c.take_profit, c.stop_loss))
    return out


class StudyEngine:
    """A deployed system for one study (its chain and settings), snapshotted after set-up; each
    `run_path` starts from that snapshot."""

    def __init__(self, study: Study, build: BuildResult, base_dir: Path, backend: str = "revm"):
        self.study, self.base_dir = study, base_dir
        self.models = price_models(study, base_dir)
        self.start = start_prices(study)
        self.subjects = cohort_subjects(study)
        accounts = max([s.account for s in self.subjects] + [9]) + 1
        self.sim = sim = Alpsim.launch(study.chain, backend, build=build, seed=study.seed, accounts=accounts)
        settings = study.settings
        if settings.holding_rate_per_hour is not None or settings.funding_rate_per_hour is not None:
            market = sim.contracts["market"]
            holding = market.call("holdingRatePerHourWad") if settings.holding_rate_per_hour is None \
                else int(settings.holding_rate_per_hour * WAD)
            funding = market.call("fundingRatePerHourWad") if settings.funding_rate_per_hour is None \
                else int(settings.funding_rate_per_hour * WAD)
            market.transact("setRates", holding, funding, sender=sim.deployment.deployer)
        sim.fund(LP, study.pool.liquidity)
        sim.deposit(LP, study.pool.liquidity)
        for s in self.subjects:
            sim.fund(s.account, s.amount)
        sim.keeper.set_prices(self.start)
        sim.keeper.push_prices()
        self.base = sim.snapshot()

    def close(self) -> None:
        self.sim.stop()

    def run_path(self, index: int) -> dict[str, Any]:
        """The path's compact result: per cohort position its fate, and the pool's redemption
        ALP price at every step."""
        sim, study = self.sim, self.study
        sim.revert(self.base)
        self.base = sim.snapshot()  # a revert consumes a snapshot (revm): take the next one now
        step_s, steps = study.horizon.step, study.horizon.steps
        paths = price_paths(self.models, {p: float(v) for p, v in self.start.items()}, steps, float(step_s),
                            path_rng(study.seed, index), _correlation(study))
        alp_price = [sim.pool_contract.call("redeemAlpPrice") / WAD]
        fates: dict[int, dict[str, Any]] = {}  # position id -> fate
        rows: list[dict[str, Any]] = []
        for s in self.subjects:
            row: dict[str, Any] = {"label": s.label, "pair": s.pair, "side": s.side, "leverage": s.leverage,
                                   "amount": float(s.amount), "refused": None, "liquidated_s": None,
                                   "closed_by": None, "closed_s": None, "payout": 0.0, "fees": {}}
            rows.append(row)
            start = self.start[s.pair]
            sign = 1 if s.side == "long" else -1
            tp = start * (1 + sign * s.take_profit) if s.take_profit else 0
            sl = start * (1 - sign * s.stop_loss) if s.stop_loss else 0
            try:
                opened = sim.open(s.account, s.pair, s.side, s.amount, s.leverage, take_profit=_cut(tp),
                                  stop_loss=_cut(sl))
            except OrderRejected as exc:
                row["refused"] = exc.reason
                row["payout"] = exc.refund_tokens / 10**sim.decimals
                continue
            row["fees"] = {"open": opened.open_fee_wad / WAD, "execution": opened.execution_fee_tokens / 10**sim.decimals}
            row["liquidation_price"] = opened.position.liquidation_price_wad / WAD
            fates[opened.position.id] = row
        all_pairs = {sim.pair_id(p) for p in study.prices}
        for k in range(1, steps + 1):
            sim.devnet.advance_time(step_s)
            sim.keeper.set_prices({pair: _cut(Decimal(float(series[k]))) for pair, series in paths.items()})
            receipt = sim.keeper.run_triggers(price_pairs=all_pairs)
            for closed in sim.closed_from(receipt):
                _settled(fates.pop(closed.position.id), closed, k * step_s, sim.decimals)
            alp_price.append(sim.pool_contract.call("redeemAlpPrice") / WAD)
        for position_id, row in list(fates.items()):  # survivors: their traders close at the horizon
            closed = sim.close(_account_of(self.subjects, row), position_id)
            _settled(row, closed, steps * step_s, sim.decimals, censored=True)
        alp_price.append(sim.pool_contract.call("redeemAlpPrice") / WAD)
        return {"index": index, "positions": rows, "alp_price": alp_price,
                "final_prices": {pair: float(series[-1]) for pair, series in paths.items()}}


def _account_of(subjects: list[Subject], row: dict[str, Any]) -> int:
    return next(s.account for s in subjects if s.label == row["label"])


def _settled(row: dict[str, Any], closed: Any, at_s: int, decimals: int, censored: bool = False) -> None:
    row["closed_by"] = "horizon" if censored and closed.reason == "close" else closed.reason
    row["closed_s"] = at_s
    if closed.reason == "liquidation":
        row["liquidated_s"] = at_s
    row["payout"] = closed.payout_tokens / 10**decimals
    row["fees"].update({"close": closed.close_fee_wad / WAD, "holding": closed.holding_wad / WAD,
                        "funding": closed.funding_wad / WAD})


def _cut(price: Decimal | float | int) -> Decimal:
    return Decimal(price).quantize(Decimal(1).scaleb(-PRICE_DECIMALS)) if price else Decimal(0)


def _correlation(study: Study):  # noqa: ANN202 - numpy array or None
    if study.correlation is None:
        return None
    import numpy as np

    return np.array([[float(x) for x in row] for row in study.correlation])
