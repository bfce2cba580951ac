"""Study files: a Monte Carlo study on the real contracts, in YAML, validated whole before anything
runs (every mistake refused as `file:line: where: reason`). docs/studies.md describes the format.

A study runs `paths` seeded futures of `horizon.duration`, one price step every `horizon.step`.
Each path starts from the same freshly deployed system (the pool holding `pool.liquidity`), opens
the `cohort` at the first price, and has the keeper apply each step's prices with every trigger
and liquidation in the same transaction; the cohort's survivors close at the horizon."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from ..model.trading import default_pairs
from ..yamlfile import YamlFileError, compose, line_for, validation_problems

PAIRS = {p.name: p for p in default_pairs()}
MAX_STEPS = 100_000
"""Price steps per path: a bound on a typo (a 1 s step over a year), not on the engine."""
MAX_COHORT = 50
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)\s*$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86_400}


class StudyError(YamlFileError):
    """An invalid study file: `file:line: reason` for each problem."""

    kind = "study"


def seconds(value: Any) -> int:
    """A duration: a number of seconds or text such as `90s`, `15m`, `24h`, `7d`."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or text like '15m', '24h', '7d'")
    if isinstance(value, (int, Decimal)):
        out = Decimal(value)
    elif isinstance(value, str) and (m := _DURATION.match(value)):
        out = Decimal(m.group(1)) * _UNIT_S[m.group(2)]
    else:
        raise ValueError(f"{value!r} is not a duration: a number of seconds or text like '15m', '24h', '7d'")
    if out <= 0 or out != out.to_integral_value():
        raise ValueError(f"a duration must be a positive whole number of seconds (got {value!r})")
    return int(out)


Duration = Annotated[int, BeforeValidator(seconds)]
"""Seconds, written as a number or as `90s`, `15m`, `24h`, `7d`."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Horizon(_Strict):
    duration: Duration
    step: Duration

    @model_validator(mode="after")
    def _steps(self) -> "Horizon":
        if self.step > self.duration:
            raise ValueError("step must not exceed duration")
        if self.duration // self.step > MAX_STEPS:
            raise ValueError(f"{self.duration // self.step:,} price steps; at most {MAX_STEPS:,} per path")
        return self

    @property
    def steps(self) -> int:
        return self.duration // self.step


class Pool(_Strict):
    liquidity: Decimal = Field(gt=0)
    """Collateral an LP deposits before the first path (USD)."""


class GbmPrices(_Strict):
    model: Literal["gbm"]
    volatility: Decimal = Field(ge=0)
    """Annual, as a fraction (0.6 = 60%)."""
    drift: Decimal = Decimal(0)


class JumpPrices(_Strict):
    model: Literal["jump"]
    volatility: Decimal = Field(ge=0)
    drift: Decimal = Decimal(0)
    intensity: Decimal = Field(ge=0)
    """Expected jumps per year."""
    jump_mean: Decimal = Decimal(0)
    """Mean of a jump's log size."""
    jump_std: Decimal = Field(default=Decimal(0), ge=0)


class ReplayPrices(_Strict):
    model: Literal["replay"]
    csv: str
    """A CSV with a `price` column, relative to the study file; its log returns are resampled
    in blocks (block bootstrap) and scaled onto the start price."""
    block: int = Field(default=20, ge=1)


PriceSpec = Annotated[Union[GbmPrices, JumpPrices, ReplayPrices], Field(discriminator="model")]


class CohortPosition(_Strict):
    """Positions every path opens at its first price: the subjects of a survival study."""

    pair: str = "BTC/USD"
    side: Literal["long", "short"] = "long"
    leverage: int = Field(ge=1)
    amount: Decimal = Field(gt=0)
    take_profit: Decimal | None = Field(default=None, gt=0)
    """A move in the trader's favour, as a fraction of the entry (0.05: 5%); none: the cap."""
    stop_loss: Decimal | None = Field(default=None, gt=0, lt=1)
    """A move against the trader, as a fraction of the entry."""
    count: int = Field(default=1, ge=1)


class Settings(_Strict):
    """Protocol settings to change before the first path (none: the deployment's defaults)."""

    holding_rate_per_hour: Decimal | None = Field(default=None, ge=0, le=1)
    """As a fraction of notional (the default 0.00001 is 0.001%/h)."""
    funding_rate_per_hour: Decimal | None = Field(default=None, ge=0, le=1)


class Study(_Strict):
    name: str
    description: str = ""
    chain: Literal["bnb", "arbitrum"] = "bnb"
    seed: int = Field(default=0, ge=0)
    paths: int = Field(ge=1, le=1_000_000)
    horizon: Horizon
    pool: Pool
    start_prices: dict[str, Decimal] = Field(default_factory=dict)
    """The first price of each priced pair (default: the devnet keeper's)."""
    prices: dict[str, PriceSpec] = Field(min_length=1)
    correlation: list[list[Decimal]] | None = None
    """Between the gbm and jump pairs, in the order `prices` lists them."""
    cohort: list[CohortPosition] = Field(min_length=1, max_length=MAX_COHORT)
    settings: Settings = Settings()

    @property
    def diffusive_pairs(self) -> list[str]:
        return [p for p, spec in self.prices.items() if not isinstance(spec, ReplayPrices)]


def _semantic_problems(study: Study, lines: dict, base_dir: Path) -> list[tuple[int, str]]:
    import difflib

    problems: list[tuple[int, str]] = []

    def check_pair(pair: str, loc: tuple, priced: bool = True) -> None:
        if pair not in PAIRS:
            close = difflib.get_close_matches(pair, list(PAIRS), n=1)
            problems.append((line_for(loc, lines), f"unknown pair {pair!r}; known: {', '.join(PAIRS)}"
                             + (f" (did you mean {close[0]!r}?)" if close else "")))
        elif priced and pair not in study.prices:
            problems.append((line_for(loc, lines), f"pair {pair!r} has no price model under prices"))

    for pair, spec in study.prices.items():
        check_pair(pair, ("prices", pair), priced=False)
        if isinstance(spec, ReplayPrices):
            from .prices import load_price_csv

            csv = (base_dir / spec.csv)
            try:
                history = load_price_csv(csv)
            except (OSError, ValueError) as exc:
                problems.append((line_for(("prices", pair, "csv"), lines), f"prices.{pair}.csv: {exc}"))
            else:
                if spec.block > len(history) - 1:
                    problems.append((line_for(("prices", pair, "block"), lines),
                                     f"block {spec.block} is longer than the {len(history) - 1} returns of {spec.csv}"))
    for pair in study.start_prices:
        check_pair(pair, ("start_prices", pair))
    if study.correlation is not None:
        k = len(study.diffusive_pairs)
        rows = study.correlation
        if len(rows) != k or any(len(r) != k for r in rows):
            problems.append((line_for(("correlation",), lines), f"correlation must be {k} x {k}: one row and "
                             f"column per gbm or jump pair ({', '.join(study.diffusive_pairs)})"))
        else:
            import numpy as np

            m = np.array([[float(x) for x in r] for r in rows])
            if not np.allclose(m, m.T) or not np.allclose(np.diag(m), 1.0):
                problems.append((line_for(("correlation",), lines), "correlation must be symmetric with 1 on the diagonal"))
            elif np.linalg.eigvalsh(m).min() <= 0:
                problems.append((line_for(("correlation",), lines), "correlation must be positive definite"))
    for i, c in enumerate(study.cohort):
        check_pair(c.pair, ("cohort", i, "pair"))
        if c.pair in PAIRS and c.leverage > PAIRS[c.pair].max_leverage:
            problems.append((line_for(("cohort", i, "leverage"), lines),
                             f"leverage {c.leverage} is above {c.pair}'s maximum of {PAIRS[c.pair].max_leverage}"))
    return problems


def parse_study(text: str, source: str = "<study>", base_dir: Path | None = None) -> Study:
    """Parses and validates a study; raises StudyError listing `source:line: reason`."""
    data, lines = compose(text, source, StudyError)
    if not isinstance(data, dict):
        raise StudyError([f"{source}:1: a study is a mapping with name, paths, horizon, pool, prices and cohort"])
    try:
        study = Study.model_validate(data)
    except ValidationError as exc:
        raise StudyError(validation_problems(exc, source, lines, "study")) from None
    problems = [f"{source}:{line}: {reason}" for line, reason in _semantic_problems(study, lines, base_dir or Path("."))]
    if problems:
        raise StudyError(problems)
    return study


def load_study(path: str | Path) -> Study:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise StudyError([f"{path}: cannot read: {exc.strerror}"]) from None
    return parse_study(text, str(path), path.parent)
