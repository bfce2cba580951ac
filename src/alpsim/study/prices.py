"""Seeded price paths for Monte Carlo studies.

Three models of a pair's price: geometric Brownian motion (`Gbm`), Merton jump diffusion
(`Jump`) and a moving-block bootstrap of a historical series (`Replay`). `price_paths` draws
one path per pair from a numpy Generator; `path_rng` makes that Generator from the study seed
and the path's index alone, so path 17 of study 42 is the same array whichever worker draws it
and in whatever order.

GBM and jump paths use the exact discretisation of the log price, so the step length changes
only which instants are sampled, never the distribution at those instants.
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass

import numpy as np

SECONDS_PER_YEAR = 365 * 24 * 3600
"""Volatilities, drifts and jump intensities are annual; steps are in seconds."""


@dataclass(frozen=True)
class Gbm:
    """Geometric Brownian motion: dS/S = drift dt + volatility dW."""

    volatility: float
    """Annual volatility sigma, e.g. 0.6 for 60%."""
    drift: float = 0.0
    """Annual drift mu of the GBM; the log price drifts at mu - sigma^2/2."""


@dataclass(frozen=True)
class Jump:
    """Merton jump diffusion: a GBM plus Poisson jumps in the log price, each jump's log size
    normal(jump_mean, jump_std). The diffusion's drift is compensated, mu - lambda*(exp(m + s^2/2) - 1),
    so that E[S_t] = S_0 exp(drift t) as for a `Gbm` with the same drift."""

    volatility: float
    drift: float = 0.0
    intensity: float = 0.0
    """Expected jumps per year (lambda)."""
    jump_mean: float = 0.0
    """Mean of the log jump size (m)."""
    jump_std: float = 0.0
    """Standard deviation of the log jump size (s)."""


@dataclass(frozen=True)
class Replay:
    """Moving-block bootstrap (Kunsch) of a historical series' log returns: each path is a
    concatenation of blocks of `block` consecutive historical returns, each block starting at a
    uniformly drawn position among the len(prices) - block overlapping ones, scaled onto the
    path's start price. One historical return per step: the history's sampling interval is the
    path's step."""

    prices: tuple[float, ...]
    """The historical prices (>= 3 points, all > 0). Any sequence is stored as a tuple."""
    block: int = 20
    """Block length in steps, 1 <= block <= len(prices) - 1."""

    def __post_init__(self) -> None:
        # A list would make the frozen dataclass unhashable; store a tuple whatever was passed.
        if not isinstance(self.prices, tuple):
            object.__setattr__(self, "prices", tuple(self.prices))


PriceModel = Gbm | Jump | Replay


def path_rng(study_seed: int, path_index: int) -> np.random.Generator:
    """The Generator of one path: PCG64 seeded from SeedSequence([study_seed, path_index]), so
    its numbers depend on nothing else (not on other paths, their order, or the worker)."""
    for field, value in (("study_seed", study_seed), ("path_index", path_index)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"{field} must be a non-negative integer, got {value!r}")
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(study_seed), int(path_index)])))


def _finite(value: object) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) \
        and math.isfinite(value)


def _check_model(pair: str, model: PriceModel) -> None:
    kind = type(model).__name__
    if isinstance(model, (Gbm, Jump)):
        if not _finite(model.volatility) or model.volatility < 0:
            raise ValueError(f"{pair}: {kind}.volatility must be a finite number >= 0, got {model.volatility!r}")
        if not _finite(model.drift):
            raise ValueError(f"{pair}: {kind}.drift must be a finite number, got {model.drift!r}")
    if isinstance(model, Jump):
        if not _finite(model.intensity) or model.intensity < 0:
            raise ValueError(f"{pair}: Jump.intensity must be a finite number >= 0, got {model.intensity!r}")
        if not _finite(model.jump_mean):
            raise ValueError(f"{pair}: Jump.jump_mean must be a finite number, got {model.jump_mean!r}")
        if not _finite(model.jump_std) or model.jump_std < 0:
            raise ValueError(f"{pair}: Jump.jump_std must be a finite number >= 0, got {model.jump_std!r}")
    elif isinstance(model, Replay):
        prices = model.prices
        if len(prices) < 3:
            raise ValueError(f"{pair}: Replay.prices needs at least 3 prices, got {len(prices)}")
        for i, price in enumerate(prices):
            if not _finite(price) or price <= 0:
                raise ValueError(f"{pair}: Replay.prices[{i}] must be a finite number > 0, got {price!r}")
        block = model.block
        if isinstance(block, bool) or not isinstance(block, (int, np.integer)) or not 1 <= block <= len(prices) - 1:
            raise ValueError(f"{pair}: Replay.block must be an integer in [1, {len(prices) - 1}] "
                             f"(len(prices) - 1), got {block!r}")
    elif not isinstance(model, Gbm):
        raise ValueError(f"{pair}: model must be a Gbm, Jump or Replay, got {type(model).__name__}")


def _cholesky(correlation: object, names: list[str]) -> np.ndarray | None:
    """The lower Cholesky factor of the correlation matrix over the diffusive pairs `names`."""
    if correlation is None:
        return None
    k = len(names)
    matrix = np.asarray(correlation, dtype=float)
    if matrix.shape != (k, k):
        raise ValueError(f"correlation must be a {k} x {k} matrix over the Gbm/Jump pairs {names}, "
                         f"got shape {matrix.shape}")
    if not np.all(np.isfinite(matrix)):
        raise ValueError("correlation must contain only finite numbers")
    if not np.allclose(matrix, matrix.T, rtol=0.0, atol=1e-12):
        raise ValueError("correlation must be symmetric")
    if not np.allclose(np.diag(matrix), 1.0, rtol=0.0, atol=1e-12):
        raise ValueError(f"correlation must have a diagonal of 1, got {np.diag(matrix).tolist()}")
    try:
        return np.linalg.cholesky(matrix)
    except np.linalg.LinAlgError:
        raise ValueError("correlation must be positive definite") from None


def price_paths(models: dict[str, PriceModel], start: dict[str, float], steps: int, step_s: float,
                rng: np.random.Generator, correlation: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """For each pair name in `models` (insertion order), an array of steps+1 prices: index 0 is start[pair],
    then one price per step of step_s seconds. Gbm and Jump pairs share correlated Brownian shocks:
    `correlation` is a k x k matrix over the Gbm/Jump pairs in insertion order (None: independent);
    use its Cholesky factor (raise ValueError with a clear message if it is not symmetric positive
    definite, wrong shape, or has a diagonal not 1). Replay pairs draw blocks of the historical log returns
    (overlapping blocks, starting points uniform over len-block+1 positions) and scale them onto start[pair]:
    the path is start * exp(cumsum(sampled log returns)). Exact discretisation: log S_{t+dt} = log S_t +
    (mu - sigma^2/2) dt + sigma sqrt(dt) Z (+ jumps: N ~ Poisson(lambda dt) jumps, total N(N*m, N*s^2)).

    The draws come from `rng` in a fixed order (Brownian shocks, then each Jump pair's jumps, then
    each Replay pair's block starts, pairs in insertion order), so equal inputs and an equally seeded
    `rng` give byte-identical arrays. A Jump with intensity 0 draws no jumps and equals the Gbm."""
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    if not _finite(step_s) or step_s <= 0:
        raise ValueError(f"step_s must be a finite number > 0, got {step_s!r}")
    for pair, model in models.items():
        _check_model(pair, model)
        if pair not in start:
            raise ValueError(f"{pair}: start price missing (no start[{pair!r}])")
        if not _finite(start[pair]) or start[pair] <= 0:
            raise ValueError(f"{pair}: start price must be a finite number > 0, got {start[pair]!r}")

    steps = int(steps)
    dt_y = step_s / SECONDS_PER_YEAR
    diffusive = [pair for pair, model in models.items() if isinstance(model, (Gbm, Jump))]
    chol = _cholesky(correlation, diffusive)

    log_steps: dict[str, np.ndarray] = {}
    if diffusive:
        shocks = rng.standard_normal((steps, len(diffusive)))
        if chol is not None:
            shocks = shocks @ chol.T  # column i = sum_j L[i, j] Z_j: correlation L L^T
        for column, pair in enumerate(diffusive):
            model = models[pair]
            sigma = float(model.volatility)
            mu = float(model.drift)
            if isinstance(model, Jump):
                # E[exp(jump)] - 1 per jump, times the jump rate: the mean growth the jumps add.
                mu -= model.intensity * math.expm1(model.jump_mean + 0.5 * model.jump_std**2)
            log_steps[pair] = (mu - 0.5 * sigma**2) * dt_y + sigma * math.sqrt(dt_y) * shocks[:, column]
        for pair in diffusive:
            model = models[pair]
            if isinstance(model, Jump) and model.intensity > 0:
                counts = rng.poisson(model.intensity * dt_y, size=steps)
                # The sum of N normal(m, s^2) log jumps is normal(N m, N s^2).
                sizes = counts * model.jump_mean + np.sqrt(counts) * model.jump_std * rng.standard_normal(steps)
                log_steps[pair] = log_steps[pair] + sizes

    for pair, model in models.items():
        if isinstance(model, Replay):
            returns = np.diff(np.log(np.asarray(model.prices, dtype=float)))
            block = int(model.block)
            blocks = -(-steps // block)
            # Overlapping blocks: any of the len(returns) - block + 1 starting positions.
            starts = rng.integers(0, len(returns) - block + 1, size=blocks)
            index = (starts[:, None] + np.arange(block)).ravel()[:steps]
            log_steps[pair] = returns[index]

    paths: dict[str, np.ndarray] = {}
    for pair in models:
        log_path = np.concatenate(([0.0], np.cumsum(log_steps[pair])))
        paths[pair] = float(start[pair]) * np.exp(log_path)
    return paths


def load_price_csv(path: str | os.PathLike[str]) -> tuple[float, ...]:
    """The prices of a CSV file whose header row has a `price` column (other columns, such as
    `timestamp`, are ignored), in file order. Blank lines are skipped. ValueError, naming the
    file and line, for a missing column or value, a non-numeric or non-positive price, or fewer
    than 3 prices."""
    name = os.fspath(path)
    with open(name, newline="", encoding="utf-8") as file:
        reader = csv.reader(file)
        header = next(reader, None)
        while header is not None and not any(cell.strip() for cell in header):
            header = next(reader, None)
        if header is None:
            raise ValueError(f"{name}: empty file, expected a header row with a 'price' column")
        columns = [cell.strip().lower() for cell in header]
        if "price" not in columns:
            raise ValueError(f"{name}: line {reader.line_num}: header has no 'price' column "
                             f"(columns: {[cell.strip() for cell in header]})")
        column = columns.index("price")
        prices: list[float] = []
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            if column >= len(row) or not row[column].strip():
                raise ValueError(f"{name}: line {reader.line_num}: missing price")
            text = row[column].strip()
            try:
                price = float(text)
            except ValueError:
                raise ValueError(f"{name}: line {reader.line_num}: price {text!r} is not a number") from None
            if not math.isfinite(price) or price <= 0:
                raise ValueError(f"{name}: line {reader.line_num}: price must be a finite number > 0, got {text!r}")
            prices.append(price)
    if len(prices) < 3:
        raise ValueError(f"{name}: needs at least 3 prices, got {len(prices)}")
    return tuple(prices)
