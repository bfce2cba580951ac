"""A study's trader crowd: orders drawn from the profiles of the study file. Its random stream is
the path's own, apart from the prices' (SeedSequence([seed, index, 1])), so adding a crowd never
changes a path's prices."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from .spec import PAIRS, Choice, Distribution, Exponential, Fixed, LogNormal, Lps, Traders, Uniform

CROWD_STREAM = 1
MIN_AMOUNT_USD = 5.0
"""The smallest order drawn: above any profile's execution fee, which an order must exceed."""


@dataclass(frozen=True)
class CrowdOrder:
    profile: str
    pair: str
    side: str
    leverage: int
    amount: Decimal
    """Collateral, USD, to the cent."""
    holding_s: int
    take_profit_move: Decimal | None
    stop_loss_move: Decimal | None


def crowd_rng(study_seed: int, path_index: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([study_seed, path_index, CROWD_STREAM])))


def draw(dist: Distribution, rng: np.random.Generator) -> float:
    if isinstance(dist, Fixed):
        return float(dist.fixed)
    if isinstance(dist, Choice):
        values = [float(v) for v in dist.choice]
        if dist.weights is None:
            return values[int(rng.integers(len(values)))]
        weights = np.array([float(w) for w in dist.weights])
        return values[int(rng.choice(len(values), p=weights / weights.sum()))]
    if isinstance(dist, Uniform):
        return float(rng.uniform(float(dist.uniform[0]), float(dist.uniform[1])))
    if isinstance(dist, LogNormal):
        return float(dist.lognormal.median) * float(np.exp(float(dist.lognormal.sigma) * rng.standard_normal()))
    if isinstance(dist, Exponential):
        return float(rng.exponential(dist.exponential.mean))
    raise TypeError(f"unknown distribution {dist!r}")


class Crowd:
    """Draws the orders of one path, step by step."""

    def __init__(self, traders: Traders, priced_pairs: list[str], rng: np.random.Generator):
        self.traders, self.rng = traders, rng
        self.priced = priced_pairs
        weights = np.array([float(p.weight) for p in traders.profiles])
        self.weights = weights / weights.sum()

    def arrivals(self, step_s: int) -> list[CrowdOrder]:
        count = int(self.rng.poisson(float(self.traders.arrivals_per_hour) * step_s / 3600))
        return [self._order() for _ in range(count)]

    def _order(self) -> CrowdOrder:
        rng = self.rng
        profile = self.traders.profiles[int(rng.choice(len(self.weights), p=self.weights))]
        pairs = profile.pairs or self.priced
        pair = pairs[int(rng.integers(len(pairs)))]
        side = "long" if rng.random() < float(profile.long_share) else "short"
        # a leverage the pair offers, as a trader's slider would allow
        leverage = int(min(max(1, round(draw(profile.leverage, rng))), PAIRS[pair].max_leverage))
        amount = Decimal(f"{max(draw(profile.amount, rng), MIN_AMOUNT_USD):.2f}")
        holding_s = max(1, int(round(draw(profile.holding, rng))))
        tp = profile.take_profit.move if profile.take_profit and rng.random() < float(profile.take_profit.share) else None
        sl = profile.stop_loss.move if profile.stop_loss and rng.random() < float(profile.stop_loss.share) else None
        return CrowdOrder(profile.name, pair, side, leverage, amount, holding_s, tp, sl)


LP_STREAM = 2


def lp_rng(study_seed: int, path_index: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([study_seed, path_index, LP_STREAM])))


@dataclass(frozen=True)
class LpDeposit:
    amount: Decimal
    stay_s: int | None
    """None: to the horizon."""


class LpFlow:
    """Draws a path's LP deposits, step by step, from their own random stream."""

    def __init__(self, lps: Lps, rng: np.random.Generator):
        self.lps, self.rng = lps, rng

    def arrivals(self, step_s: int) -> list[LpDeposit]:
        count = int(self.rng.poisson(float(self.lps.deposits_per_day) * step_s / 86_400))
        out = []
        for _ in range(count):
            amount = Decimal(f"{max(draw(self.lps.amount, self.rng), MIN_AMOUNT_USD):.2f}")
            stay = None if self.lps.stay is None else max(1, int(round(draw(self.lps.stay, self.rng))))
            out.append(LpDeposit(amount, stay))
        return out
