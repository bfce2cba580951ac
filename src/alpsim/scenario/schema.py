"""Scenario files: YAML, validated whole before anything runs. A mistake is refused with the
file, the line and the reason."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..model.pair_registry import default_pairs
from ..yamlfile import YamlFileError, compose, line_for, read, validation_problems

PAIR_NAMES = [p.name for p in default_pairs()]
MAX_ACCOUNTS = 7
"""Named accounts map to dev accounts 1..7 (0 deploys, 8 is the treasury, 9 the keeper)."""
POSITION_STATUSES = ("pending", "open", "closed", "liquidated", "rejected", "cancelled")


class ScenarioError(YamlFileError):
    """An invalid scenario file: `file:line: reason` for each problem."""

    kind = "scenario"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Approx(_Strict):
    approx: Decimal
    tol: Decimal = Field(ge=0)


Expected = Decimal | str | bool | Approx


class DepositStep(_Strict):
    who: str
    amount: Decimal = Field(gt=0)
    """Whole tokens of `asset`."""
    asset: str | None = None
    """A basket asset's symbol (BNB, USDC, BTC); none: the payout stablecoin."""
    id: str | None = None
    """Names the action for `expect: {lp_action: id, ...}`."""
    settle: bool = True
    """Checked scenarios: false deposits at once, without the keeper's round first."""


class WithdrawStep(_Strict):
    who: str
    alp: Decimal | Literal["all"] = "all"
    asset: str | None = None
    """The basket asset paid out (its symbol); none: the payout stablecoin."""
    id: str | None = None
    settle: bool = True
    """Checked scenarios: false withdraws at once, without the keeper's round first."""

    @field_validator("alp")
    @classmethod
    def _positive(cls, v: Any) -> Any:
        if v != "all" and v <= 0:
            raise ValueError("alp must be positive or 'all'")
        return v


class OpenStep(_Strict):
    id: str
    who: str
    pair: str
    side: Literal["long", "short"]
    amount: Decimal = Field(gt=0)
    leverage: int = Field(ge=1)
    tp: Decimal | None = None
    sl: Decimal | None = None
    acceptable_price: Decimal | None = None
    referral: bool = False
    fee_token: bool = False
    pending: bool = False
    """Checked scenarios: the request is left pending (for an `execute` or `cancel` step)."""


class CloseStep(_Strict):
    id: str


class CancelStep(_Strict):
    id: str


class WaitStep(_Strict):
    seconds: Decimal = Field(gt=0)


class KeeperStep(_Strict):
    online: bool | None = None
    """false: the keeper stops (requests stay pending and expire); true: it comes back and
    executes what has not expired. Either way (and with no argument) triggers run now."""
    round: bool = False
    """Checked scenarios: the keeper's round (its prices pushed and every trigger, one transaction)."""


class PathStep(_Strict):
    pair: str
    model: Literal["gbm"] = "gbm"
    volatility: Decimal = Field(ge=0)
    """Annualised, e.g. 0.6 for 60%."""
    drift: Decimal = Decimal(0)
    seconds: int = Field(gt=0)
    step: int = Field(gt=0)
    seed: int = 0


POOL_SCALARS = ("nav_usd", "alp_price", "alp_supply", "reserve_usd")
POOL_BY_ASSET = ("holdings", "weights")
"""Pool expectations by basket asset symbol: `holdings` in whole tokens, `weights` in basis
points of the basket's value at the keeper's mark prices (8% is 800)."""
LP_ACTION_FIELDS = ("kind", "who", "asset", "amount", "alp", "fee_usd", "fee_bps")


PoolExpected = Annotated[Union[Expected, dict[str, Expected]], Field(union_mode="left_to_right")]
"""A value, or (holdings, weights) a mapping of asset symbol to value; tried in that order so
`{approx, tol}` stays an Approx."""


class ExpectStep(_Strict):
    position: str | None = None
    status: Literal[POSITION_STATUSES] | None = None  # type: ignore[valid-type]
    account: str | None = None
    collateral: Expected | None = None
    balances: dict[str, Expected] | None = None
    """An account's basket asset balances by symbol, in whole tokens."""
    pool: dict[Literal[POOL_SCALARS + POOL_BY_ASSET], PoolExpected] | None = None  # type: ignore[valid-type]
    lp_action: str | None = None
    """The id of an earlier deposit or withdraw step; its fields are LP_ACTION_FIELDS."""
    fields: dict[str, Expected] = Field(default_factory=dict)
    checks: Literal["held"] | None = None
    """Checked scenarios: every check held up to here (fails when one failed)."""

    @model_validator(mode="before")
    @classmethod
    def _gather_fields(cls, data: Any) -> Any:
        if isinstance(data, dict):
            known = {"position", "status", "account", "collateral", "balances", "pool", "lp_action", "checks"}
            extra = {k: v for k, v in data.items() if k not in known}
            if extra and ("position" in data or "lp_action" in data):
                data = {k: v for k, v in data.items() if k in known} | {"fields": extra}
        return data

    @model_validator(mode="after")
    def _one_subject(self) -> "ExpectStep":
        subjects = [self.position is not None, self.account is not None, self.pool is not None,
                    self.lp_action is not None, self.checks is not None]
        if sum(subjects) != 1:
            raise ValueError("an expectation names exactly one of: position, account, pool, lp_action, checks")
        if self.account is not None and self.collateral is None and self.balances is None:
            raise ValueError("an account expectation needs `collateral` or `balances`")
        for key, value in (self.pool or {}).items():
            if (key in POOL_BY_ASSET) != isinstance(value, dict):
                raise ValueError(f"pool {key}: " + ("a mapping of basket asset symbol to value" if key in POOL_BY_ASSET
                                                    else "a value, not a mapping"))
        unknown = sorted(set(self.fields) - set(LP_ACTION_FIELDS)) if self.lp_action is not None else []
        if unknown:
            raise ValueError(f"unknown lp_action field(s) {', '.join(unknown)}; known: {', '.join(LP_ACTION_FIELDS)}")
        return self


from .checked_steps import (  # noqa: E402 - the checked scenarios' own steps
    AdminStep, AssetPriceStep, BadOrderStep, BreakerTripStep, ExtremeStep, FeeRaiseStep, FeeTokenStep, IdStep,
    KeeperGapStep, OutageStep, PushStep, ReferenceStep, SettingsChangeStep, WhoStep)

CHECKED_KINDS = ("asset_price", "reference", "keeper_gap", "push", "execute", "referral", "fee_token", "bad_order",
                 "outage", "breaker_trip", "fee_raise", "settings_change", "extreme", "admin")
"""Steps only a checked scenario (`checks:`) has: the fuzzer's executor runs them."""
STEP_KINDS = ("prices", "deposit", "withdraw", "open", "close", "cancel", "wait", "keeper", "path",
              "expect") + CHECKED_KINDS


class Step(_Strict):
    prices: dict[str, Decimal] | None = None
    deposit: DepositStep | None = None
    withdraw: WithdrawStep | None = None
    open: OpenStep | None = None
    close: CloseStep | None = None
    cancel: CancelStep | None = None
    wait: WaitStep | None = None
    keeper: KeeperStep | None = None
    path: PathStep | None = None
    expect: ExpectStep | None = None
    asset_price: AssetPriceStep | None = None
    reference: ReferenceStep | None = None
    keeper_gap: KeeperGapStep | None = None
    push: PushStep | None = None
    execute: IdStep | None = None
    referral: WhoStep | None = None
    fee_token: FeeTokenStep | None = None
    bad_order: BadOrderStep | None = None
    outage: OutageStep | None = None
    breaker_trip: BreakerTripStep | None = None
    fee_raise: FeeRaiseStep | None = None
    settings_change: SettingsChangeStep | None = None
    extreme: ExtremeStep | None = None
    admin: AdminStep | None = None

    @model_validator(mode="before")
    @classmethod
    def _exactly_one(cls, data: Any) -> Any:
        if not isinstance(data, dict) or len(data) != 1:
            raise ValueError(f"a step is a mapping with exactly one of: {', '.join(STEP_KINDS)}")
        key = next(iter(data))
        if key in ("keeper", "push") and data[key] is None:
            return {key: {}}
        return data

    @property
    def kind(self) -> str:
        return next(k for k in STEP_KINDS if getattr(self, k) is not None)

    @property
    def body(self) -> Any:
        return getattr(self, self.kind)


class Scenario(_Strict):
    name: str
    chain: Literal["bnb", "arbitrum"]
    seed: int = 0
    description: str = ""
    funds: dict[str, Decimal | dict[str, Decimal]]
    """Per account: a number (whole tokens of the payout stablecoin) or basket asset symbol ->
    whole tokens, e.g. {USDT: 1000000, BNB: 100}."""
    steps: list[Step] = Field(min_length=1)
    checks: list[Literal["invariants", "model", "economics"]] | None = None
    """A checked scenario: run by the fuzzer's executor beside the reference model, these checks
    after every step (docs/fuzz.md); its `expect: {checks: held}` fails when one failed."""

    @field_validator("funds")
    @classmethod
    def _accounts(cls, funds: dict[str, Any]) -> dict[str, Any]:
        if not 1 <= len(funds) <= MAX_ACCOUNTS:
            raise ValueError(f"between 1 and {MAX_ACCOUNTS} named accounts")
        amounts = [v for f in funds.values() for v in (f.values() if isinstance(f, dict) else [f])]
        if any(v < 0 for v in amounts):
            raise ValueError("funds must not be negative")
        return funds

    @property
    def accounts(self) -> list[str]:
        return list(self.funds)

    def funds_of(self, account: str) -> dict[str | None, Decimal]:
        """The account's funds by basket asset symbol (None: the payout stablecoin, given as a number)."""
        f = self.funds[account]
        return dict(f) if isinstance(f, dict) else {None: f}

    def stable_funds(self, account: str, payout_symbol: str) -> Decimal:
        """The account's funds of the payout stablecoin (whole tokens)."""
        f = self.funds_of(account)
        return f.get(None, f.get(payout_symbol, Decimal(0)))


def _checked_problems(step: "Step", checked: bool) -> list[str]:
    """What a step may only be in a checked scenario, or only in a plain one."""
    kind, body = step.kind, step.body
    if not checked:
        if kind in CHECKED_KINDS:
            return [f"the {kind} step runs only in a checked scenario (add `checks: [invariants, model]`)"]
        only = [(kind in ("deposit", "withdraw") and not body.settle, "settle: false"),
                (kind == "open" and body.pending, "pending: true"), (kind == "keeper" and body.round, "round: true"),
                (kind == "expect" and body.checks is not None, "expect checks")]
        return [f"{what} is for checked scenarios only (add `checks: [invariants, model]`)" for bad, what in only if bad]
    refused = [(kind == "path", "the path step"),
               (kind == "keeper" and body.online is not None, "keeper online/offline (use open {pending: true})"),
               (kind == "open" and (body.referral or body.fee_token),
                "open referral/fee_token (use the referral and fee_token steps)"),
               (kind == "open" and body.acceptable_price is not None, "open acceptable_price"),
               (kind == "expect" and body.checks is None, "expectations other than `expect: {checks: held}`")]
    return [f"{what}: not in a checked scenario" for bad, what in refused if bad]


# ---------------------------------------------------------------- loading with line numbers

def parse_scenario(text: str, source: str = "<scenario>") -> Scenario:
    """Parses and validates a scenario; raises ScenarioError listing `source:line: reason`."""
    data, lines = compose(text, source, ScenarioError)
    if not isinstance(data, dict):
        raise ScenarioError([f"{source}:1: a scenario is a mapping with name, chain, seed, funds and steps"])
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(validation_problems(exc, source, lines, "scenario")) from None
    problems = [f"{source}:{line}: {reason}" for line, reason in _semantic_problems(scenario, lines)]
    if problems:
        raise ScenarioError(problems)
    return scenario


class BasketInfo:
    """A chain's basket as its profile lists it: symbol -> (decimals, pair or None), in order."""

    def __init__(self, chain: str):
        from ..profiles import get_profile

        profile = get_profile(chain)
        self.payout = profile.collateral.symbol
        self.assets = {a.symbol: (profile.basket_decimals(a), a.pair) for a in profile.basket} \
            or {self.payout: (profile.collateral.decimals, None)}

    @property
    def symbols(self) -> list[str]:
        return list(self.assets)


def _decimal_places(value: Decimal) -> int:
    return max(0, -value.normalize().as_tuple().exponent)


def _semantic_problems(s: Scenario, lines: dict[tuple, int]) -> list[tuple[int, str]]:
    import difflib

    problems: list[tuple[int, str]] = []
    accounts = set(s.funds)
    opened: set[str] = set()
    actions: set[str] = set()
    basket = BasketInfo(s.chain)
    known_symbols = ", ".join(basket.symbols)

    def check_asset(symbol: str | None, path: tuple, amount: Decimal | None = None, what: str = "amount") -> None:
        if symbol is None:
            symbol = basket.payout
        elif symbol not in basket.assets:
            problems.append((line_for(path, lines), f"unknown basket asset {symbol!r} on {s.chain}; the basket: "
                             f"{known_symbols}" + hint(symbol, basket.symbols)))
            return
        decimals = basket.assets[symbol][0]
        if amount is not None and _decimal_places(amount) > decimals:
            problems.append((line_for(path, lines), f"{what} {amount} has more decimals than {symbol} ({decimals})"))

    def check_price_name(name: str, path: tuple) -> None:
        if name in PAIR_NAMES:
            return
        if name in basket.assets and basket.assets[name][1] is not None:
            problems.append((line_for(path, lines), f"{name} the basket asset is priced by the pair "
                             f"{basket.assets[name][1]}: move {basket.assets[name][1]}"))
        elif name not in basket.assets:
            problems.append((line_for(path, lines), f"unknown pair or basket asset {name!r}; pairs: "
                             f"{', '.join(PAIR_NAMES)}; the {s.chain} basket: {known_symbols}"
                             + hint(name, PAIR_NAMES + basket.symbols)))

    def hint(name: str, known: list[str]) -> str:
        close = difflib.get_close_matches(name, known, n=1)
        return f" (did you mean {close[0]!r}?)" if close else ""

    def check_pair(pair: str, path: tuple) -> None:
        if pair not in PAIR_NAMES:
            problems.append((line_for(path, lines), f"unknown pair {pair!r}; known: {', '.join(PAIR_NAMES)}"
                             + hint(pair, PAIR_NAMES)))

    def check_who(who: str, path: tuple) -> None:
        if who not in accounts:
            problems.append((line_for(path, lines), f"unknown account {who!r}: not in funds" + hint(who, sorted(accounts))))

    def check_id(pid: str, path: tuple) -> None:
        if pid not in opened:
            problems.append((line_for(path, lines), f"unknown position id {pid!r}: no earlier open step has it"
                             + hint(pid, sorted(opened))))

    checked = s.checks is not None
    for i, step in enumerate(s.steps):
        base = ("steps", i, step.kind)
        body = step.body
        for problem in _checked_problems(step, checked):
            problems.append((line_for(base, lines), problem))
        if step.kind in ("referral", "fee_token"):
            check_who(body.who, base + ("who",))
        elif step.kind == "bad_order":
            check_who(body.who, base + ("who",))
            check_asset(None, base + ("amount",), body.amount)
        elif step.kind in ("outage", "breaker_trip", "fee_raise"):
            for key in ("lp", "trader") if step.kind != "fee_raise" else ("who", "griefer"):
                check_who(getattr(body, key), base + (key,))
            check_pair(body.pair, base + ("pair",))
            if body.id in opened:
                problems.append((line_for(base + ("id",), lines), f"position id {body.id!r} is used twice"))
            opened.add(body.id)
        elif step.kind == "reference":
            check_pair(body.pair, base + ("pair",))
        elif step.kind == "asset_price":
            check_price_name(body.symbol, base + ("symbol",))
        elif step.kind == "execute":
            check_id(body.id, base + ("id",))
        if step.kind == "prices":
            for pair, price in body.items():
                check_price_name(pair, base + (pair,))
                if price <= 0:
                    problems.append((line_for(base + (pair,), lines), f"price of {pair} must be positive"))
        elif step.kind in ("deposit", "withdraw"):
            check_who(body.who, base + ("who",))
            check_asset(body.asset, base + ("asset" if body.asset is not None else "who",),
                        body.amount if step.kind == "deposit" else None)
            if step.kind == "withdraw" and body.alp != "all" and _decimal_places(body.alp) > 18:
                problems.append((line_for(base + ("alp",), lines), f"alp {body.alp} has more than 18 decimals"))
            if body.id is not None:
                if body.id in actions:
                    problems.append((line_for(base + ("id",), lines), f"lp action id {body.id!r} is used twice"))
                actions.add(body.id)
        elif step.kind == "open":
            check_who(body.who, base + ("who",))
            check_pair(body.pair, base + ("pair",))
            if body.id in opened:
                problems.append((line_for(base + ("id",), lines), f"position id {body.id!r} is used twice"))
            opened.add(body.id)
        elif step.kind in ("close", "cancel"):
            check_id(body.id, base + ("id",))
        elif step.kind == "path":
            check_pair(body.pair, base + ("pair",))
            if body.step > body.seconds:
                problems.append((line_for(base + ("step",), lines), "step must not exceed seconds"))
        elif step.kind == "expect":
            if body.position is not None:
                check_id(body.position, base + ("position",))
            if body.account is not None:
                check_who(body.account, base + ("account",))
                for symbol in body.balances or {}:
                    check_asset(symbol, base + ("balances", symbol))
            for key in ("holdings", "weights"):
                for symbol in (body.pool or {}).get(key, {}):
                    check_asset(symbol, base + ("pool", key, symbol))
            if body.lp_action is not None and body.lp_action not in actions:
                problems.append((line_for(base + ("lp_action",), lines), f"unknown lp action id {body.lp_action!r}: "
                                 "no earlier deposit or withdraw step has it" + hint(body.lp_action, sorted(actions))))
    for name, funds in s.funds.items():
        if isinstance(funds, dict):
            for symbol, amount in funds.items():
                check_asset(symbol, ("funds", name, symbol), amount, "funds")
        else:
            check_asset(None, ("funds", name), funds, "funds")
    return problems


def load_scenario(path: str | Path) -> Scenario:
    path = Path(path)
    return parse_scenario(read(path, ScenarioError), str(path))
