"""Study files: a Monte Carlo study on the real contracts, in YAML, validated whole before anything
runs (every mistake refused as `file:line: where: reason`). docs/studies.md describes the format.

A study runs `paths` seeded futures of `horizon.duration`, one price step every `horizon.step`.
Each path starts from the same freshly deployed system (the pool holding `pool.liquidity`), opens
the `cohort` at the first price, lets `traders` send orders as a Poisson process, and has the
keeper apply each step's prices with every trigger and liquidation in the same transaction
before it executes the step's requests; positions still open close at the horizon."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, Tag, ValidationError, model_validator

from .keeper_spec import KeeperSpec, keeper_problems
from .basket_spec import PAIRS, asset_problem, basket_pairs, basket_problems, chain_basket  # noqa: F401 - re-exported
from ..yamlfile import YamlFileError, compose, line_for, read, validation_problems

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


def _amount(value: Any) -> Any:
    """A number, or a duration written as text (`30m`, `4h`): its seconds."""
    if isinstance(value, str):
        try:
            return Decimal(value)
        except ArithmeticError:
            return seconds(value)
    return value


Quantity = Annotated[Decimal, BeforeValidator(_amount)]
"""A number; where a distribution gives durations (holding), text such as `30m` also works."""


class Fixed(_Strict):
    fixed: Quantity = Field(gt=0)


class Choice(_Strict):
    choice: list[Quantity] = Field(min_length=1)
    weights: list[Decimal] | None = None

    @model_validator(mode="after")
    def _weights(self) -> "Choice":
        if any(c <= 0 for c in self.choice):
            raise ValueError("choice: every value must be positive")
        if self.weights is not None and (len(self.weights) != len(self.choice) or any(w < 0 for w in self.weights)
                                         or sum(self.weights) <= 0):
            raise ValueError("weights: one non-negative weight per choice, not all zero")
        return self


class Uniform(_Strict):
    uniform: tuple[Quantity, Quantity]

    @model_validator(mode="after")
    def _ordered(self) -> "Uniform":
        if not 0 < self.uniform[0] <= self.uniform[1]:
            raise ValueError("uniform: [low, high] with 0 < low <= high")
        return self


class LogNormalParams(_Strict):
    median: Quantity = Field(gt=0)
    sigma: Decimal = Field(ge=0)


class LogNormal(_Strict):
    lognormal: LogNormalParams


class ExponentialParams(_Strict):
    mean: Duration
    """A duration (`4h`) or a number of seconds."""


class Exponential(_Strict):
    exponential: ExponentialParams


def _distribution_kind(value: Any) -> str | None:
    if isinstance(value, dict) and len(value) >= 1:
        return next(iter(value))
    return type(value).__name__.lower() if isinstance(value, BaseModel) else None  # a parsed one: its tag


Distribution = Annotated[
    Union[Annotated[Fixed, Tag("fixed")], Annotated[Choice, Tag("choice")], Annotated[Uniform, Tag("uniform")],
          Annotated[LogNormal, Tag("lognormal")], Annotated[Exponential, Tag("exponential")]],
    Discriminator(_distribution_kind, custom_error_type="distribution",
                  custom_error_message="a distribution is one of {fixed: x}, {choice: [...]}, {uniform: [low, high]}, "
                                       "{lognormal: {median, sigma}}, {exponential: {mean}}")]
"""One of `{fixed: x}`, `{choice: [...], weights: [...]}`, `{uniform: [low, high]}`,
`{lognormal: {median, sigma}}`, `{exponential: {mean}}` (the last for holding times)."""


class Habit(_Strict):
    """A share of a profile's orders that set a take-profit (or stop-loss) `move` from the price."""

    share: Decimal = Field(ge=0, le=1)
    move: Decimal = Field(gt=0, lt=1)


class TraderProfile(_Strict):
    name: str
    weight: Decimal = Field(gt=0)
    pairs: list[str] | None = None
    """The pairs this profile trades, each equally likely (default: every priced pair)."""
    long_share: Decimal = Field(default=Decimal("0.5"), ge=0, le=1)
    leverage: Distribution
    amount: Distribution
    """Collateral per order, USD."""
    holding: Distribution
    """Seconds a trader keeps a position before closing it (`{exponential: {mean: 2h}}`, ...)."""
    take_profit: Habit | None = None
    stop_loss: Habit | None = None


class Traders(_Strict):
    """A crowd: orders arrive as a Poisson process, each from a profile drawn by weight."""

    arrivals_per_hour: Decimal = Field(ge=0)
    profiles: list[TraderProfile] = Field(min_length=1)
    accounts: int = Field(default=20, ge=1, le=200)
    """Accounts the orders rotate over (each funded to trade all horizon long)."""


ENGINE_SETTINGS = (
    "executionFeeUsd", "minNotionalUsd", "extremeLeverage", "maxRoiLeverage", "openFeeBps", "closeFeeBps",
    "extremeMinCloseFeeBps", "extremeProfitFeeBps", "referralDiscountBps", "tokenDiscountBps", "poolFeeShareBps",
    "roiCapStandardBps", "roiCapExtremeBps", "roiCapMaxLeverageBps", "openLossGuardBps",
    "liquidationThresholdStandardBps", "liquidationThresholdExtremeBps", "requestExpiryBlocks",
    "maxExecutionsPerPairPerBlock")
"""The fields of the engine's `Settings` (contracts/trading/EngineStorage.sol), in order."""
EngineSetting = Literal[ENGINE_SETTINGS]  # type: ignore[valid-type]
PoolSetting = Literal["mintFeeBps", "burnFeeBps", "cooldownSeconds", "maxReserveBps"]
PairSetting = Literal["maxLeverage", "spreadBps", "depth1PctUsd", "maxOiPerSideUsd"]


class Run(_Strict):
    """A run on the pool: when the redemption ALP price has fallen `drawdown` below its start,
    every LP of `lps` holding ALP withdraws all of it, in the first of `assets` the pool pays
    (each withdrawal pays the dynamic burn fee, so the weights move)."""

    drawdown: Decimal = Field(gt=0, lt=1)
    """The fall of the redemption ALP price from the path's start that sets off the run (0.01: 1%)."""
    share: Decimal = Field(default=Decimal(0), ge=0, lt=1)
    """Of `pool.liquidity`, the part the `lps` accounts hold at the start (in the LP's basket,
    past their cooldown); the pool's LP holds the rest."""
    assets: list[str] | None = None
    """The order the leaving LPs ask for assets in (default: the basket's listing order, the
    payout stablecoin first, as a run would)."""


class Lps(_Strict):
    """LPs coming and going during a path (besides the pool's first liquidity): deposits of the
    payout stablecoin arrive as a Poisson process, each from a free LP account, which withdraws
    all its ALP after its stay (once the pool's cooldown allows; none: it stays to the horizon).
    With `run`, they all leave when the ALP price falls by its threshold."""

    deposits_per_day: Decimal = Field(default=Decimal(0), ge=0)
    amount: Distribution | None = None
    """Collateral per deposit, USD (needed when `deposits_per_day` is above 0)."""
    stay: Distribution | None = None
    """How long an LP stays (`{exponential: {mean: 3d}}`); the pool's cooldown (48 h by default)
    comes first."""
    accounts: int = Field(default=10, ge=1, le=100)
    run: Run | None = None

    @model_validator(mode="after")
    def _amount_given(self) -> "Lps":
        if self.deposits_per_day > 0 and self.amount is None:
            raise ValueError("deposits_per_day above 0 needs an amount distribution")
        return self


class Lp(_Strict):
    """The pool's LP (the one whose return the report splits)."""

    basket: dict[str, Decimal] | None = None
    """How `pool.liquidity` is deposited, in % of its USD per basket symbol, summing to 100
    (`{USDT: 50, USDC: 30, BNB: 8, ETH: 6, BTC: 6}`); default: the pool's targets."""


class Settings(_Strict):
    """Protocol settings to change before the first path (none: the deployment's defaults)."""

    holding_rate_per_hour: Decimal | None = Field(default=None, ge=0, le=1)
    """As a fraction of notional (the default 0.00001 is 0.001%/h)."""
    funding_rate_per_hour: Decimal | None = Field(default=None, ge=0, le=1)
    engine: dict[EngineSetting, Annotated[Decimal, Field(ge=0)]] = Field(default_factory=dict)
    """The trading engine's settings by name (docs/mechanics.md), e.g. `liquidationThresholdExtremeBps:
    8000`; the `...Usd` ones in USD."""
    pool: dict[PoolSetting, Annotated[Decimal, Field(ge=0)]] = Field(default_factory=dict)
    pairs: dict[str, dict[PairSetting, Annotated[Decimal, Field(ge=0)]]] = Field(default_factory=dict)
    """Per pair name, its registry settings, e.g. `maxOiPerSideUsd: 2_000_000` (USD)."""


class Study(_Strict):
    name: str
    description: str = ""
    chain: Literal["bnb", "arbitrum"] = "bnb"
    seed: int = Field(default=0, ge=0)
    paths: int = Field(ge=1, le=1_000_000)
    horizon: Horizon
    pool: Pool
    lp: Lp = Lp()
    basket_targets: dict[str, Decimal] | None = None
    """The pool's target weights in % per basket symbol (0.01% steps), summing to 100; symbols
    left out get 0 (`{USDT: 100}`: a 100% stable pool). Default: the chain profile's."""
    start_prices: dict[str, Decimal] = Field(default_factory=dict)
    """The first price of each priced pair or basket asset (default: the devnet keeper's, or the
    profile's `start_price_usd`)."""
    prices: dict[str, PriceSpec] = Field(min_length=1)
    """Per pair (`BTC/USD`) or asset-only basket symbol (`BNB`, `USDC`, `USDT`): its price model.
    BTC and ETH the assets are their pairs' prices."""
    correlation: list[list[Decimal]] | None = None
    """Between the gbm and jump prices (pairs and assets), in the order `prices` lists them."""
    cohort: list[CohortPosition] = Field(default_factory=list, max_length=MAX_COHORT)
    traders: Traders | None = None
    lps: Lps | None = None
    settings: Settings = Settings()
    keeper: KeeperSpec = KeeperSpec()
    """The keeper's books and push mode (omitted: pushes every block, the profile's gas prices)."""
    sweep: dict[str, list[Any]] = Field(default_factory=dict)
    """A grid: per dotted path into this file (`prices.BTC/USD.volatility`, `cohort.0.leverage`,
    `settings.pairs.BTC/USD.maxOiPerSideUsd`), the values to try; every combination is a study of
    its own (a cell)."""

    @model_validator(mode="after")
    def _someone_trades(self) -> "Study":
        if not self.cohort and self.traders is None:
            raise ValueError("a study needs a cohort, traders, or both")
        return self

    @property
    def diffusive_pairs(self) -> list[str]:
        """The gbm and jump prices (pairs and basket assets), in `prices` order: the correlation's."""
        return [p for p, spec in self.prices.items() if not isinstance(spec, ReplayPrices)]

    @property
    def priced_pairs(self) -> list[str]:
        """The tradable pairs among `prices` (the crowd trades these)."""
        return [p for p in self.prices if p in PAIRS]


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

    def check_price_key(name: str, loc: tuple) -> None:
        problem = asset_problem(study.chain, name, priced=True)
        if problem is not None:
            problems.append((line_for(loc, lines), problem))

    for pair, spec in study.prices.items():
        check_price_key(pair, ("prices", pair))
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
        check_price_key(pair, ("start_prices", pair))
        if pair in PAIRS and pair not in study.prices and pair not in basket_pairs(study.chain):
            check_pair(pair, ("start_prices", pair))  # a basket asset's pair may stay at its start
    problems += basket_problems(study, lines)
    if study.correlation is not None:
        k = len(study.diffusive_pairs)
        rows = study.correlation
        if len(rows) != k or any(len(r) != k for r in rows):
            problems.append((line_for(("correlation",), lines), f"correlation must be {k} x {k}: one row and "
                             f"column per gbm or jump price ({', '.join(study.diffusive_pairs)})"))
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
    for pair in study.settings.pairs:
        check_pair(pair, ("settings", "pairs", pair), priced=False)
    problems += keeper_problems(study, lines)
    if study.traders is not None:
        for i, profile in enumerate(study.traders.profiles):
            for j, pair in enumerate(profile.pairs or []):
                check_pair(pair, ("traders", "profiles", i, "pairs", j))
    return problems


def parse_study(text: str, source: str = "<study>", base_dir: Path | None = None) -> Study:
    """Parses and validates a study; raises StudyError listing `source:line: reason`."""
    data, lines = compose(text, source, StudyError)
    if not isinstance(data, dict):
        raise StudyError([f"{source}:1: a study is a mapping with name, paths, horizon, pool, prices, and a cohort "
                          "or traders"])
    try:
        study = Study.model_validate(data)
    except ValidationError as exc:
        raise StudyError(validation_problems(exc, source, lines, "study")) from None
    problems = [f"{source}:{line}: {reason}" for line, reason in _semantic_problems(study, lines, base_dir or Path("."))]
    if problems:
        raise StudyError(problems)
    for problem in _sweep_problems(study, data, lines, source, base_dir or Path(".")):
        problems.append(problem)
    if problems:
        raise StudyError(problems)
    return study


MAX_CELLS = 400


def sweep_cells(study: Study) -> list[tuple[dict[str, Any], Study]]:
    """Every combination of the sweep's values, with its study (no sweep: the study alone)."""
    import itertools

    if not study.sweep:
        return [({}, study)]
    data = study.model_dump(mode="json", exclude={"sweep"}, exclude_defaults=False)
    keys = list(study.sweep)
    cells = []
    for values in itertools.product(*(study.sweep[k] for k in keys)):
        cell = dict(zip(keys, values))
        cells.append((cell, Study.model_validate(_with_values(data, cell))))
    return cells


def _with_values(data: dict, cell: dict[str, Any]) -> dict:
    import copy

    out = copy.deepcopy(data)
    for path, value in cell.items():
        node: Any = out
        parts = path.split(".")
        for part in parts[:-1]:
            node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
        last = parts[-1]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    return out


def _sweep_problems(study: Study, data: dict, lines: dict, source: str, base_dir: Path) -> list[str]:
    """Each sweep path must lead into the file (or a settings name) and each value must make a
    valid study."""
    if not study.sweep:
        return []
    problems = []
    cells = 1
    for path, values in study.sweep.items():
        line = line_for(("sweep", path), lines)
        if not values:
            problems.append(f"{source}:{line}: sweep.{path}: give at least one value")
            continue
        cells *= len(values)
        if path.split(".")[0] in ("sweep", "name", "description", "seed", "paths"):
            problems.append(f"{source}:{line}: sweep.{path}: cannot sweep {path.split('.')[0]}")
            continue
        for value in values:
            try:
                cell = Study.model_validate(_with_values(study.model_dump(mode="json", exclude={"sweep"}), {path: value}))
            except (ValidationError, KeyError, IndexError, ValueError, TypeError) as exc:
                reason = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else f"no such field ({exc})"
                where = ".".join(str(p) for p in exc.errors()[0]["loc"]) if isinstance(exc, ValidationError) else path
                problems.append(f"{source}:{line}: sweep.{path} = {value!r}: {where}: {reason}")
                break
            semantic = _semantic_problems(cell, {}, base_dir)
            if semantic:
                problems.append(f"{source}:{line}: sweep.{path} = {value!r}: {semantic[0][1]}")
                break
    if cells > MAX_CELLS:
        problems.append(f"{source}:{line_for(('sweep',), lines)}: sweep: {cells:,} cells; at most {MAX_CELLS}")
    return problems


def load_study(path: str | Path) -> Study:
    path = Path(path)
    return parse_study(read(path, StudyError), str(path), path.parent)
