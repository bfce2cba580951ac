"""Numbers for study reports: rounding for a stable report.json, percentiles, VaR and CVaR."""

from __future__ import annotations

import numpy as np

PERCENTILES = (5, 10, 25, 50, 75, 90, 95)


def rounded(x: float | None, digits: int = 10) -> float | None:
    """Rounded for the report (floats from one machine's arithmetic, written stably)."""
    return None if x is None else float(f"{x:.{digits}g}")


def percentiles(values: np.ndarray) -> dict[str, float | None]:
    if values.size == 0:
        return {f"p{p}": None for p in PERCENTILES}
    return {f"p{p}": rounded(float(np.percentile(values, p))) for p in PERCENTILES}


def var(returns: np.ndarray, level: float) -> float:
    """Value at risk: the loss (as a positive fraction) not exceeded with probability `level`."""
    return float(-np.quantile(returns, 1 - level)) + 0.0  # + 0.0: no "-0" for a source that never moved


def cvar(returns: np.ndarray, level: float) -> float:
    """Expected shortfall: the mean loss in the worst (1 - level) of paths."""
    cut = np.quantile(returns, 1 - level)
    return float(-returns[returns <= cut].mean())
