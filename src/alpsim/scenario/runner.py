"""Runs a scenario on a devnet, step by step, and gathers its report."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Callable

from ..client import Alpsim, CloseRejected, OrderRejected, PendingOpen
from ..errors import AlpsimError, NodeError
from ..model.math import WAD, pnl_usd_floor, index_charge_usd_up
from ..positions import ClosedPosition, OpenedPosition
from ..units import from_units, to_units, wad_to_decimal
from .basket import LpAction, keeper_asset_prices, lp_action, payout_symbol
from .schema import Approx, ExpectStep, OpenStep, PathStep, Scenario

PRICE_QUANTUM = Decimal("0.00000001")
"""Scenario prices are kept to 8 decimals, the reference feeds' precision."""
SECONDS_PER_YEAR = 365 * 24 * 3600
REFERRAL_CODE = "alpsim"
PLATFORM_TOKEN_PRICE = "1"
PLATFORM_TOKEN_FUNDS = 1_000_000


@dataclass
class PositionRecord:
    id: str
    who: str
    step: OpenStep
    status: str = "pending"
    pending: PendingOpen | None = None
    position_id: int | None = None
    opened: OpenedPosition | None = None
    closed: ClosedPosition | None = None
    reject_reason: str | None = None
    execution_fee_tokens: int = 0
    exit_t: int | None = None
    """Seconds from the start of the run to the close."""


@dataclass
class Sample:
    t: int
    prices: dict[str, Decimal]
    nav: Decimal
    alp_price: Decimal
    equity: dict[str, Decimal]
    asset_prices: dict[str, Decimal] = field(default_factory=dict)
    """The keeper's price per basket asset symbol, as `prices` has the pairs' (BTC the asset:
    BTC/USD the pair); the weights are at the oracle's mark prices, the same but in an outage."""
    holdings: dict[str, Decimal] = field(default_factory=dict)
    """The pool's holdings per basket asset, whole tokens."""
    weights_bps: dict[str, Decimal] = field(default_factory=dict)


@dataclass
class ExpectationResult:
    step: int
    subject: str
    expected: Any
    actual: Any
    passed: bool


class StepFailed(AlpsimError):
    """A step the chain refused (a revert, a stale price): the run stops there."""

    def __init__(self, step: int, kind: str, cause: Exception):
        self.step, self.kind, self.cause = step, kind, cause
        super().__init__(f"step {step} ({kind}) failed: {type(cause).__name__}: {cause}")


@dataclass
class ScenarioRun:
    scenario: Scenario
    sim: Alpsim
    accounts: dict[str, str]
    positions: dict[str, PositionRecord] = field(default_factory=dict)
    samples: list[Sample] = field(default_factory=list)
    expectations: list[ExpectationResult] = field(default_factory=list)
    gas: dict[str, list[int]] = field(default_factory=dict)
    steps_done: int = 0
    error: str | None = None
    interrupted: bool = False
    start_time: int = 0
    report: dict[str, Any] = field(default_factory=dict)
    """The report, gathered before the devnet stops."""
    alp_holdings: dict[str, Decimal] = field(default_factory=dict)
    """ALP held at the end, by account name."""
    lp_actions: list[LpAction] = field(default_factory=list)
    """Every deposit and withdrawal, in order."""
    failure: "StepFailed | None" = None
    """The step the chain refused, with its cause (the contract error), when one did."""


class ScenarioRunner:
    """Executes `scenario` on a fresh deployment (`backend`: embedded or anvil)."""

    def __init__(self, scenario: Scenario, *, backend: str = "embedded", chain: str | None = None,
                 build: Any = None, on_step: Callable[[int, int, int], None] | None = None,
                 on_launch: Callable[[Alpsim], None] | None = None):
        """`on_step` hears each step's progress; `on_launch` is handed the launched simulator
        before the first step (to instrument it, or to inject a fault)."""
        if scenario.checks is not None:
            raise ValueError(f"{scenario.name}: a checked scenario (checks: ...) runs on the fuzzer's executor: "
                             "alpsim.fuzz.replay.run_checked (alpsim run does so)")
        self.scenario = scenario
        self.backend = backend
        self.chain = chain or scenario.chain
        self.build = build
        self.on_step = on_step
        self.on_launch = on_launch
        self.keeper_online = True
        self._referrer_ready = False

    # ----- running
    def run(self) -> ScenarioRun:
        sim = Alpsim.launch(self.chain, self.backend, build=self.build, seed=self.scenario.seed)
        try:
            if self.on_launch is not None:
                self.on_launch(sim)
            run = self._run(sim)
            try:
                run.report = build_report(run, self.chain)
                run.alp_holdings = {name: wad_to_decimal(sim.alp_balance_wad(addr))
                                    for name, addr in run.accounts.items()}
            except NodeError as exc:
                # the node is gone: report what the steps recorded, and nothing from the chain
                run.error = run.error or str(exc)
                run.report = build_report(run, self.chain, chain_reachable=False)
            return run
        finally:
            sim.stop()

    def _run(self, sim: Alpsim) -> ScenarioRun:
        names = self.scenario.accounts
        run = ScenarioRun(self.scenario, sim, {name: sim.devnet.accounts[i + 1] for i, name in enumerate(names)})
        self.run_state = run
        sim.contracts["oracle"].transact("setPlatformTokenPrice", to_units(PLATFORM_TOKEN_PRICE, 18),
                                         sender=sim.keeper.address)
        for name in names:
            for asset, amount in self.scenario.funds_of(name).items():
                if amount > 0:
                    sim.fund(run.accounts[name], amount, asset=asset)
        run.start_time = sim.devnet.timestamp
        self._sample(run)
        total = len(self.scenario.steps)
        try:
            for index, step in enumerate(self.scenario.steps):
                try:
                    getattr(self, f"_step_{step.kind}")(run, index, step.body)
                    if step.kind not in ("expect", "path"):
                        self._sample(run)
                except (AlpsimError, ValueError) as exc:
                    if isinstance(exc, StepFailed):
                        raise
                    raise StepFailed(index, step.kind, exc) from exc
                run.steps_done = index + 1
                if self.on_step:
                    self.on_step(index + 1, total, sim.devnet.timestamp - run.start_time)
        except StepFailed as exc:
            run.error, run.failure = str(exc), exc
        except KeyboardInterrupt:
            run.interrupted = True
        return run

    def _gas(self, run: ScenarioRun, op: str, receipt: dict | int) -> None:
        used = receipt if isinstance(receipt, int) or receipt is None else receipt["gasUsed"]
        if used is not None:  # None: the backend cannot measure gas exactly (revm)
            run.gas.setdefault(op, []).append(used)

    # ----- steps
    def _step_prices(self, run: ScenarioRun, index: int, prices: dict[str, Decimal]) -> None:
        """Pairs by name, asset-only basket prices (BNB, the stablecoins) by symbol."""
        sim = run.sim
        quantized = {name: price.quantize(PRICE_QUANTUM) for name, price in prices.items()}
        pairs = [name for name in quantized if name in sim.deployment.pairs]
        asset_ids = [sim.deployment.price_id(name) for name in quantized if name not in sim.deployment.pairs]
        if self.keeper_online:
            sim.keeper.set_prices(quantized)
            if pairs:
                self._gas(run, "price_update", sim.keeper.push_prices([sim.pair_id(p) for p in pairs]))
            if asset_ids:
                self._gas(run, "asset_price_update", sim.keeper.push_asset_prices(asset_ids))
        else:  # the reference feeds still move; the keeper's own prices wait for it
            for name, price in quantized.items():
                sim.keeper.set_reference(name, price)
                price_id = sim.deployment.price_id(name)
                sim.keeper.price_book(price_id)[price_id] = to_units(price, 18)

    def _fresh_prices(self, run: ScenarioRun) -> None:
        """Deposits and withdrawals need settled prices for pairs with open interest: the
        keeper's triggers run at its prices first (docs/mechanics.md section 10)."""
        if self.keeper_online and run.sim.keeper.open_positions:
            self._triggers(run)

    def _step_deposit(self, run: ScenarioRun, index: int, body: Any) -> None:
        sim = run.sim
        self._fresh_prices(run)
        result = sim.deposit(run.accounts[body.who], body.amount, asset=body.asset)
        self._gas(run, "deposit" if body.asset in (None, payout_symbol(sim)) else f"deposit_{body.asset}",
                  result.gas_used)
        self._record_action(run, index, body, "deposit", from_units(result.amount_units, sim.asset_decimals(body.asset)),
                            result.alp_out_wad, result.fee_wad)

    def _step_withdraw(self, run: ScenarioRun, index: int, body: Any) -> None:
        sim = run.sim
        self._fresh_prices(run)
        result = sim.withdraw(run.accounts[body.who], "all" if body.alp == "all" else body.alp, asset=body.asset)
        self._gas(run, "withdraw" if body.asset in (None, payout_symbol(sim)) else f"withdraw_{body.asset}",
                  result.gas_used)
        self._record_action(run, index, body, "withdraw",
                            from_units(result.amount_out_units, sim.asset_decimals(body.asset)),
                            result.alp_in_wad, result.fee_wad)

    def _record_action(self, run: ScenarioRun, index: int, body: Any, kind: str, amount: Decimal, alp_wad: int,
                       fee_wad: int) -> None:
        run.lp_actions.append(lp_action(run.sim, body, index, kind, amount, alp_wad, fee_wad))

    def _step_open(self, run: ScenarioRun, index: int, body: OpenStep) -> None:
        sim = run.sim
        trader = run.accounts[body.who]
        if body.referral and not sim.has_referral(trader):
            if not self._referrer_ready:
                sim.register_referral_code(0, REFERRAL_CODE)
                self._referrer_ready = True
            sim.bind_referral(trader, REFERRAL_CODE)
        if body.fee_token:
            sim.fund_platform_token(trader, PLATFORM_TOKEN_FUNDS)
            sim.set_fee_in_token(trader, True)
        pending = sim.request_open(trader, body.pair, body.side, body.amount, body.leverage,
                                   take_profit=body.tp or 0, stop_loss=body.sl or 0,
                                   acceptable_price=body.acceptable_price or 0)
        self._gas(run, "request_open", pending.receipt)
        record = PositionRecord(body.id, body.who, body, pending=pending)
        run.positions[body.id] = record
        if self.keeper_online:
            self._execute_open(run, record)

    def _execute_open(self, run: ScenarioRun, record: PositionRecord) -> None:
        sim = run.sim
        pending = record.pending
        before = sim.collateral_units(pending.trader) + pending.amount_units
        receipt = sim.keeper.execute_open(pending.request_id, pending.ciphertext)
        self._gas(run, "execute_open", receipt)
        try:
            opened = sim.opened_from(pending, before, receipt)
        except OrderRejected as rejected:
            record.status, record.reject_reason = "rejected", rejected.reason
            record.execution_fee_tokens = rejected.execution_fee_tokens
            return
        record.status, record.opened, record.position_id = "open", opened, opened.position.id
        record.execution_fee_tokens = opened.execution_fee_tokens

    def _by_position_id(self, run: ScenarioRun, position_id: int) -> PositionRecord | None:
        return next((r for r in run.positions.values() if r.position_id == position_id), None)

    def _record_closes(self, run: ScenarioRun, receipt: dict) -> None:
        for closed in run.sim.closed_from(receipt):
            record = self._by_position_id(run, closed.position.id)
            if record is not None:
                record.closed = closed
                record.exit_t = run.sim.session.block(closed.block).timestamp - run.start_time
                record.status = "liquidated" if closed.reason == "liquidation" else "closed"

    def _step_close(self, run: ScenarioRun, index: int, body: Any) -> None:
        record = run.positions[body.id]
        if record.status != "open":
            raise ValueError(f"position {body.id!r} is {record.status}, not open")
        sim = run.sim
        request_id, receipt = sim.request_close(run.accounts[record.who], record.position_id)
        self._gas(run, "request_close", receipt)
        if self.keeper_online:
            receipt = sim.keeper.execute_close(request_id)
            self._gas(run, "execute_close", receipt)
            rejected = sim.session.events(receipt, "CloseRejected")
            if rejected:
                raise CloseRejected(request_id, record.position_id, str(rejected[0]["reason"]))
            self._record_closes(run, receipt)

    def _step_cancel(self, run: ScenarioRun, index: int, body: Any) -> None:
        record = run.positions[body.id]
        if record.status != "pending":
            raise ValueError(f"position {body.id!r} is {record.status}: only a pending request can be cancelled")
        receipt = run.sim.cancel(run.accounts[record.who], record.pending.request_id)
        self._gas(run, "cancel_request", receipt)
        record.status = "cancelled"

    def _step_wait(self, run: ScenarioRun, index: int, body: Any) -> None:
        run.sim.devnet.advance_time(float(body.seconds))

    def _step_keeper(self, run: ScenarioRun, index: int, body: Any) -> None:
        if body.online is False:  # the client's keeper stops pushing basket prices before LP actions too
            self.keeper_online = run.sim.keeper.online = False
            return
        if body.online is True and not self.keeper_online:
            self.keeper_online = run.sim.keeper.online = True
            self._catch_up(run)
        self._triggers(run)

    def _catch_up(self, run: ScenarioRun) -> None:
        """A keeper back online executes the pending requests that have not expired."""
        sim = run.sim
        for record in run.positions.values():
            if record.status != "pending":
                continue
            request = sim.contracts["trading"].call("request", record.pending.request_id)
            if request["status"] == 1 and sim.devnet.block_number + 1 <= request["blockNumber"] + 10:
                self._execute_open(run, record)

    def _triggers(self, run: ScenarioRun, price_pairs: set[int] | None = None) -> None:
        sim = run.sim
        if not sim.keeper.open_positions and not price_pairs:
            return
        receipt = sim.keeper.run_triggers(price_pairs=price_pairs)
        closed_before = sum(1 for r in run.positions.values() if r.closed)
        self._record_closes(run, receipt)
        closed_now = sum(1 for r in run.positions.values() if r.closed) - closed_before
        self._gas(run, "keeper_triggers" if closed_now == 0 else "liquidate_or_trigger", receipt)

    def _step_path(self, run: ScenarioRun, index: int, body: PathStep) -> None:
        sim = run.sim
        pair_id = sim.pair_id(body.pair)
        price = Decimal(sim.keeper.prices.get(pair_id, 0)) / WAD
        if price <= 0:
            raise ValueError(f"path on {body.pair} needs a price first (a prices step)")
        rng = random.Random(body.seed)
        dt = body.step / SECONDS_PER_YEAR
        sigma, mu = float(body.volatility), float(body.drift)
        elapsed = 0
        while elapsed < body.seconds:
            step_s = min(body.step, body.seconds - elapsed)
            shock = rng.gauss(0.0, 1.0)
            factor = math.exp((mu - sigma * sigma / 2) * dt + sigma * math.sqrt(dt) * shock)
            price = (price * Decimal(repr(factor))).quantize(PRICE_QUANTUM)
            sim.devnet.advance_time(step_s)
            elapsed += step_s
            if self.keeper_online:
                sim.keeper.set_prices({body.pair: price})
                self._triggers(run, {pair_id})
            else:
                sim.keeper.set_reference(body.pair, price)
                sim.keeper.prices[pair_id] = to_units(price, 18)
            self._sample(run)

    def _step_expect(self, run: ScenarioRun, index: int, body: ExpectStep) -> None:
        report = position_report(run)
        checks: list[tuple[str, Any, Any]] = []
        if body.position is not None:
            entry = report[body.position]
            if body.status is not None:
                checks.append((f"{body.position}.status", body.status, entry["status"]))
            for key, expected in body.fields.items():
                checks.append((f"{body.position}.{key}", expected, entry.get(key, "<no such field>")))
        elif body.account is not None:
            if body.collateral is not None:
                checks.append((f"{body.account}.collateral", body.collateral, account_report(run)[body.account]))
            for symbol, expected in (body.balances or {}).items():
                units = run.sim.asset_units(run.accounts[body.account], symbol)
                checks.append((f"{body.account}.balances.{symbol}", expected,
                               from_units(units, run.sim.asset_decimals(symbol))))
        elif body.lp_action is not None:
            action = next(a for a in run.lp_actions if a.id == body.lp_action).report()
            for key, expected in body.fields.items():
                checks.append((f"{body.lp_action}.{key}", expected, action[key]))
        else:
            pool = pool_report(run)
            for key, expected in body.pool.items():
                if isinstance(expected, dict):
                    for symbol, value in expected.items():
                        checks.append((f"pool.{key}.{symbol}", value, pool[key].get(symbol, Decimal(0))))
                else:
                    checks.append((f"pool.{key}", expected, pool[key]))
        for subject, expected, actual in checks:
            run.expectations.append(ExpectationResult(index, subject, _plain(expected), actual,
                                                      _matches(expected, actual)))

    # ----- sampling
    def _sample(self, run: ScenarioRun) -> None:
        sim = run.sim
        pool = sim.pool()
        prices = {sim.deployment.pairs[pid]: Decimal(p) / WAD for pid, p in sorted(sim.keeper.prices.items())}
        equity = {}
        for record in run.positions.values():
            if record.status == "open":
                equity[record.id] = position_equity(run, record)
            elif record.closed is not None:
                equity[record.id] = wad_to_decimal(record.closed.payout_wad)
        sample = Sample(sim.devnet.timestamp - run.start_time, prices, pool.nav_usd, pool.alp_price, equity)
        if sim.deployment.basket:
            sample.holdings, sample.weights_bps = dict(pool.holdings), dict(pool.weights_bps)
            sample.asset_prices = keeper_asset_prices(sim)
        run.samples.append(sample)


# ---------------------------------------------------------------- report sections

def _plain(value: Any) -> Any:
    if isinstance(value, Approx):
        return {"approx": value.approx, "tol": value.tol}
    return value


def _matches(expected: Any, actual: Any) -> bool:
    if isinstance(expected, Approx):
        return isinstance(actual, Decimal) and abs(actual - expected.approx) <= expected.tol
    if isinstance(expected, bool) or isinstance(actual, bool):
        return expected == actual
    if isinstance(expected, (Decimal, int)) and isinstance(actual, (Decimal, int)):
        return Decimal(expected) == Decimal(actual)
    return str(expected) == str(actual)


def position_equity(run: ScenarioRun, record: PositionRecord) -> Decimal:
    """Margin + unrealized pnl - holding - funding at the keeper's current price."""
    sim = run.sim
    p = record.opened.position
    price = sim.keeper.prices[p.pair_id]
    pnl = pnl_usd_floor(p.is_long, p.qty_wad, p.entry_price_wad, price)
    idx = sim.contracts["market"].call("indexesNow", p.pair_id)
    funding_index = idx["fundingLong"] if p.is_long else idx["fundingShort"]
    holding = index_charge_usd_up(p.notional_wad, idx["holding"] - p.holding_index)
    funding = index_charge_usd_up(p.notional_wad, funding_index - p.funding_index)
    return wad_to_decimal(p.margin_wad + pnl - holding - funding)


def position_report(run: ScenarioRun, chain_reachable: bool = True) -> dict[str, dict[str, Any]]:
    sim = run.sim
    out = {}
    for pid, r in run.positions.items():
        s = r.step
        entry: dict[str, Any] = {
            "status": r.status, "pair": s.pair, "side": s.side, "leverage": s.leverage,
            "margin_usd": None, "notional_usd": None, "entry_price": None, "exit_price": None,
            "liquidation_price": None, "pnl_usd": None, "open_fee_usd": None, "close_fee_usd": None,
            "execution_fee_usd": from_units(r.execution_fee_tokens, sim.decimals) if r.execution_fee_tokens else None,
            "holding_fee_usd": None, "funding_fee_usd": None, "payout_usd": None, "reject_reason": r.reject_reason,
        }
        if r.opened is not None:
            p = r.opened.position
            entry.update(margin_usd=p.margin_usd, notional_usd=p.notional_usd, entry_price=p.entry_price,
                         liquidation_price=p.liquidation_price, open_fee_usd=r.opened.open_fee_usd)
        if r.closed is not None:
            c = r.closed
            entry.update(exit_price=c.exit_price, pnl_usd=c.pnl_usd, close_fee_usd=wad_to_decimal(c.close_fee_wad),
                         holding_fee_usd=wad_to_decimal(c.holding_wad), funding_fee_usd=wad_to_decimal(c.funding_wad),
                         payout_usd=from_units(c.payout_tokens, sim.decimals))
        elif r.status == "open" and chain_reachable:
            p = r.opened.position
            pnl = pnl_usd_floor(p.is_long, p.qty_wad, p.entry_price_wad, sim.keeper.prices[p.pair_id])
            entry["pnl_usd"] = wad_to_decimal(pnl)
        out[pid] = entry
    return out


def pool_report(run: ScenarioRun) -> dict[str, Any]:
    """The pool: NAV, ALP price and supply, reserve; the basket's holdings (whole tokens) and
    weights (bp of the holdings' value at the keeper's mark prices) by asset symbol."""
    pool = run.sim.pool()
    return {"nav_usd": pool.nav_usd, "alp_price": pool.alp_price, "alp_supply": pool.alp_supply,
            "reserve_usd": pool.reserve_usd, "holdings": dict(pool.holdings), "weights": dict(pool.weights_bps)}


def account_report(run: ScenarioRun) -> dict[str, Decimal]:
    return {name: run.sim.collateral_balance(address) for name, address in run.accounts.items()}


GAS_NOT_MEASURED = ("gas not measured: the {backend} backend cannot measure it exactly (its state stays warm "
                    "between transactions); run on the embedded or anvil backend for gas")


def gas_report(run: ScenarioRun) -> dict[str, dict[str, int]]:
    return {op: {"count": len(v), "min": min(v), "max": max(v), "mean": sum(v) // len(v)}
            for op, v in sorted(run.gas.items())}


def build_report(run: ScenarioRun, chain: str, chain_reachable: bool = True) -> dict[str, Any]:
    """The `--json` object (and report.json without the series). With the node gone, the pool
    and accounts sections are null and open positions carry no unrealized pnl."""
    report: dict[str, Any] = {
        "scenario": run.scenario.name,
        "chain": chain,
        "positions": position_report(run, chain_reachable),
        "pool": pool_report(run) if chain_reachable else None,
        "accounts": account_report(run) if chain_reachable else None,
        "lp_actions": [a.report() for a in run.lp_actions],
        "expectations": [{"step": e.step, "subject": e.subject, "expected": e.expected, "actual": e.actual,
                          "passed": e.passed} for e in run.expectations],
        "gas": gas_report(run) if run.sim.devnet.exact_gas else None,
    }
    if not run.sim.devnet.exact_gas:
        report["gas_note"] = GAS_NOT_MEASURED.format(backend=run.sim.devnet.backend_name)
    if run.error or run.interrupted:
        report["incomplete"] = {"steps_done": run.steps_done, "error": run.error, "interrupted": run.interrupted}
    return report
