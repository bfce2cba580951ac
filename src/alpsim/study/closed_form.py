"""Closed-form barrier probabilities, the yardstick for liquidation studies.

With no holding or funding fees a position's liquidation price is fixed, so a leveraged long is
liquidated the first time the price falls to its liquidation price L < S0 (a short: rises to
L > S0). For a GBM price that is the first passage of a Brownian motion with drift
nu = mu - sigma^2/2 through b = ln(L/S0); the reflection principle gives, for b < 0,

    P(hit by T) = Phi((b - nu T)/(sigma sqrt T)) + exp(2 nu b / sigma^2) Phi((b + nu T)/(sigma sqrt T))

and the mirror image for b > 0. A keeper that only looks at the price every dt seconds misses
excursions between looks; Broadie, Glasserman and Kou (1997) show that moving the barrier away
from S0 by the factor exp(beta sigma sqrt dt), beta = -zeta(1/2)/sqrt(2 pi), makes the
continuous formula match discrete monitoring up to o(sqrt dt).
"""

from __future__ import annotations

import math

from scipy.stats import norm

from .prices import SECONDS_PER_YEAR

BGK_BETA = 0.5825971579390106
"""-zeta(1/2) / sqrt(2 pi): Broadie-Glasserman-Kou's continuity correction constant."""


def _check(field: str, value: float, minimum: float | None = None, strict: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{field} must be a finite number, got {value!r}")
    if minimum is not None and (value <= minimum if strict else value < minimum):
        raise ValueError(f"{field} must be {'>' if strict else '>='} {minimum}, got {value!r}")


def hit_probability(start: float, barrier: float, volatility: float, horizon_s: float, drift: float = 0.0,
                    step_s: float | None = None) -> float:
    """Probability that a GBM started at `start` touches `barrier` within horizon_s seconds (annual volatility and
    drift); with step_s, monitored only every step_s seconds (BGK continuity correction). barrier < start: a lower
    barrier; barrier > start: an upper one; barrier == start: 1.0.

    With step_s the looks are at step_s, 2 step_s, ... up to horizon_s, so the horizon used is the
    last look, floor(horizon_s / step_s) * step_s, and no look at all (step_s > horizon_s) gives 0.
    With volatility 0 the path is deterministic, log S_t = log S0 + drift t: 1.0 if it is at or
    beyond the barrier at the horizon (the last look), else 0.0."""
    _check("start", start, 0.0, strict=True)
    _check("barrier", barrier, 0.0, strict=True)
    _check("volatility", volatility, 0.0)
    _check("horizon_s", horizon_s, 0.0)
    _check("drift", drift)
    if step_s is not None:
        _check("step_s", step_s, 0.0, strict=True)
    if barrier == start:
        return 1.0

    if step_s is None:
        horizon_y = horizon_s / SECONDS_PER_YEAR
    else:
        # The relative nudge keeps e.g. 86400 / 432 from flooring to 199 through rounding.
        looks = math.floor(horizon_s / step_s * (1 + 1e-12))
        horizon_y = looks * step_s / SECONDS_PER_YEAR
    if horizon_y == 0:
        return 0.0

    b = math.log(barrier / start)
    if volatility == 0:
        # A deterministic, monotone log path: it has crossed by the horizon iff it is beyond b there.
        end = drift * horizon_y
        return 1.0 if (end <= b if b < 0 else end >= b) else 0.0

    sigma = float(volatility)
    if step_s is not None:
        shift = BGK_BETA * sigma * math.sqrt(step_s / SECONDS_PER_YEAR)
        b = b - shift if b < 0 else b + shift
    nu = drift - 0.5 * sigma**2
    if b > 0:
        # Upper barrier: the lower-barrier formula for the mirrored path -X (drift -nu, barrier -b).
        b, nu = -b, -nu
    spread = sigma * math.sqrt(horizon_y)
    direct = norm.cdf((b - nu * horizon_y) / spread)
    # exp(2 nu b / sigma^2) can overflow where the Phi factor underflows: multiply in log space.
    reflected = math.exp(2 * nu * b / sigma**2 + norm.logcdf((b + nu * horizon_y) / spread))
    return min(1.0, max(0.0, float(direct + reflected)))
