"""One study path on a real chain: the engine a process (or a Dask worker) keeps for a study, and
the compact result of each path. A path's numbers depend only on (study seed, path index): every
path starts from the same snapshot of the same deployment, and its prices come from its own
random stream (`prices.path_rng`), so any worker gives the same result for it."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from ..client import Alpsim, OpenRequest, OrderRejected
from ..compiler import BuildResult
from ..service import DEFAULT_START_PRICES
from ..protocol import RejectReason
from ..units import WAD
from .keeper_books import KeeperCounter, PushPolicy, receipt_items
from .crowd import Crowd, CrowdOrder, LpFlow, crowd_rng, lp_rng
from .ledger import PoolLedger
from .lps import PathLps, asset_start_prices, deposit_basket, lp_split, targets_bps
from .prices import Gbm, Jump, Replay, load_price_csv, path_rng, price_paths
from .spec import PAIRS, GbmPrices, JumpPrices, Study, chain_basket

LP = 7
"""The dev account that provides the pool's liquidity (0 deploys, 8 is the treasury, 9 the keeper)."""
RESERVED = {0, LP, 8, 9}
CROWD_FUNDS_USD = 1_000_000
LP_FUNDS_USD = 100_000_000
"""Each crowd account's collateral: enough for any horizon's orders."""
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
    """The first price of each modelled pair or basket asset, by its `prices` key."""
    assets = asset_start_prices(study)
    return {key: Decimal(study.start_prices.get(key, DEFAULT_START_PRICES[key])) if key in PAIRS else assets[key]
            for key in study.prices}


def constant_prices(study: Study) -> dict[str, Decimal]:
    """The basket's prices the study does not model, which stay at their start all path long:
    pair-backed assets by their pair's name (one price), asset-only ones by symbol."""
    assets = asset_start_prices(study)
    out = {}
    for symbol, asset in chain_basket(study.chain).items():
        key = asset.pair or symbol
        if key not in study.prices:
            out[key] = assets[symbol]
    return out


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
        first_free = max([s.account for s in self.subjects] + [9]) + 1
        crowd_size = study.traders.accounts if study.traders else 0
        self.crowd_accounts = list(range(first_free, first_free + crowd_size))
        lp_size = study.lps.accounts if study.lps else 0
        self.lp_accounts = list(range(first_free + crowd_size, first_free + crowd_size + lp_size))
        run = study.lps.run if study.lps is not None else None
        self.holders = self.lp_accounts if run is not None and run.share > 0 else []
        self.sim = sim = Alpsim.launch(study.chain, backend, build=build, seed=study.seed,
                                       accounts=first_free + crowd_size + lp_size)
        settings = study.settings
        if settings.holding_rate_per_hour is not None or settings.funding_rate_per_hour is not None:
            market = sim.contracts["market"]
            holding = market.call("holdingRatePerHourWad") if settings.holding_rate_per_hour is None \
                else int(settings.holding_rate_per_hour * WAD)
            funding = market.call("fundingRatePerHourWad") if settings.funding_rate_per_hour is None \
                else int(settings.funding_rate_per_hour * WAD)
            market.transact("setRates", holding, funding, sender=sim.deployment.deployer)
        _apply_settings(sim, settings)
        if study.basket_targets is not None:
            sim.pool_contract.transact("setTargets", targets_bps(study), sender=sim.deployment.deployer)
        sim.keeper.set_prices({**self.start, **constant_prices(study)})
        sim.keeper.push_prices()
        sim.keeper.push_asset_prices()
        asset_prices = asset_start_prices(study)
        split = lp_split(study)
        holders_usd = study.pool.liquidity * run.share if self.holders else Decimal(0)
        deposit_basket(sim, LP, study.pool.liquidity - holders_usd, split, asset_prices)
        for account in self.holders:
            deposit_basket(sim, account, holders_usd / len(self.holders), split, asset_prices)
        if self.holders:  # the holders are in the pool from before: past their cooldown at the start
            sim.devnet.advance_time(sim.pool_contract.call("cooldownSeconds") + 1)
        for s in self.subjects:
            sim.fund(s.account, s.amount)
        for account in self.crowd_accounts:
            sim.fund(account, CROWD_FUNDS_USD)
        if self.crowd_accounts:
            sim.approve_collateral(*self.crowd_accounts)
        for account in self.lp_accounts:
            sim.fund(account, LP_FUNDS_USD)
        sim.keeper.set_prices(self.start)
        sim.keeper.push_prices()
        sim.keeper.push_asset_prices()
        self.base = sim.snapshot()
        self.correlation = _correlation(study)
        self.max_price_age_s = sim.contracts["oracle"].call("maxPriceAgeSeconds")

    def close(self) -> None:
        self.sim.stop()

    def run_path(self, index: int) -> dict[str, Any]:
        """The path's compact result: per cohort position and per crowd order its fate, the
        pool's redemption ALP price at every step, and its peak reserve use."""
        sim, study = self.sim, self.study
        sim.revert(self.base)
        self.base = sim.snapshot()  # a revert consumes a snapshot (revm): take the next one now
        step_s, steps = study.horizon.step, study.horizon.steps
        paths = price_paths(self.models, {p: float(v) for p, v in self.start.items()}, steps, float(step_s),
                            path_rng(study.seed, index), self.correlation)
        feeder = sim.keeper.feeder
        pool = PoolLedger(sim, {**feeder.prices, **feeder.asset_prices})
        book = _Book(sim, pool)
        counter = KeeperCounter(sim)  # counts from here: the cohort's opens are the keeper's too
        try:
            for s in self.subjects:
                book.open_cohort(s, self.start[s.pair])
            crowd = Crowd(study.traders, study.priced_pairs, crowd_rng(study.seed, index)) if study.traders else None
            lps = None
            if study.lps is not None:
                flow = LpFlow(study.lps, lp_rng(study.seed, index)) if study.lps.deposits_per_day > 0 else None
                lps = PathLps(sim, study, flow, self.lp_accounts, self.holders, pool)
            all_pairs = set(feeder.prices)  # every pair the keeper prices: the basket's BTC and ETH too
            modelled_assets = any(key not in PAIRS for key in paths)
            policy = PushPolicy(study.keeper, step_s, self.max_price_age_s, dict(feeder.prices))
            for k in range(1, steps + 1):
                now_s = k * step_s
                sim.devnet.advance_time(step_s)
                prices = {pair: _cut(Decimal(float(series[k]))) for pair, series in paths.items()}
                sim.keeper.set_prices(prices)
                pool.prices_wad.update({**feeder.prices, **feeder.asset_prices})
                if modelled_assets:  # the NAV marks at the oracle's last keeper price
                    sim.keeper.push_asset_prices()
                if crowd is not None:
                    book.request_due_closes(now_s)
                    book.request_opens(crowd.arrivals(step_s), self.crowd_accounts, prices, now_s)
                if policy.every_block:  # prices and every trigger in one transaction each step, as before
                    if crowd is None:
                        book.settle(sim.keeper.run_triggers(price_pairs=all_pairs), now_s)
                    else:
                        book.settle_round(sim.keeper.run_round(), now_s)
                else:
                    self._push_when_due(policy, book, now_s)
                    if crowd is not None:  # executions carry their pairs' prices, as the keeper's always do
                        for receipt in sim.keeper.execute_pending():
                            book.settle(receipt, now_s)
                if lps is not None:  # after the round: the prices are fresh, as deposits and withdrawals need
                    lps.step(step_s, now_s)
                pool.record()
            book.close_all(steps * step_s)
        finally:
            keeper_counts = counter.close()
        pool.record()
        return {"index": index, "positions": book.cohort_rows, "crowd": book.crowd_rows, "alp_price": pool.prices,
                "peak_reserve_share": pool.peak_reserve_share, "pending_at_horizon": len(book.pending),
                "lp_flows": lps.result() if lps is not None else None, "lp_split": pool.split(),
                "final_prices": {pair: float(series[-1]) for pair, series in paths.items()},
                "keeper": keeper_counts}

    def _push_when_due(self, policy: PushPolicy, book: "_Book", now_s: int) -> None:
        """on_change / seconds: the pairs due pushed in one trigger run over the positions on
        them (their liquidations, take-profits and stop-losses at the pushed prices); positions
        on the other pairs wait for their pair's next push."""
        keeper = self.sim.keeper
        due = policy.due(keeper.prices, now_s)
        if not due:
            return
        positions = sorted(pid for pid, pair_id in keeper.open_positions.items() if pair_id in due)
        book.settle(keeper.run_triggers(positions, price_pairs=due), now_s)
        policy.pushed(due, keeper.prices, now_s)


class _Book:
    """A path's positions and requests: what was asked, what the chain made of it."""

    def __init__(self, sim: Alpsim, ledger: PoolLedger):
        self.sim, self.ledger = sim, ledger
        self.cohort_rows: list[dict[str, Any]] = []
        self.crowd_rows: list[dict[str, Any]] = []
        self.open: dict[int, tuple[dict[str, Any], int, int]] = {}
        """position id -> (its row, its account, when its trader closes it in s; -1: at the horizon)"""
        self.pending: dict[int, tuple[dict[str, Any], int, int]] = {}
        """open request id -> (row, account, holding s)"""
        self.closing: set[int] = set()
        self.at_horizon = False
        """Set for the closes at the horizon: their traders close because the study ends."""

    def open_cohort(self, s: Subject, start: Decimal) -> None:
        row = _row(s.label, s.pair, s.side, s.leverage, s.amount)
        self.cohort_rows.append(row)
        sign = 1 if s.side == "long" else -1
        tp = start * (1 + sign * s.take_profit) if s.take_profit else 0
        sl = start * (1 - sign * s.stop_loss) if s.stop_loss else 0
        try:
            opened = self.sim.open(s.account, s.pair, s.side, s.amount, s.leverage, take_profit=_cut(tp),
                                   stop_loss=_cut(sl))
        except OrderRejected as exc:
            row["refused"] = exc.reason
            return
        self.ledger.on_open_fee(opened.open_fee_tokens, opened.fee_in_token)
        _opened(row, opened.position, opened.open_fee_wad, opened.execution_fee_tokens, self.sim.decimals, 0)
        row["open_batch"] = 1
        self.open[opened.position.id] = (row, s.account, -1)

    def request_opens(self, orders: list[CrowdOrder], accounts: list[int], prices: dict[str, Decimal],
                      now_s: int) -> None:
        if not orders:
            return
        requests, rows = [], []
        for i, o in enumerate(orders):
            row = _row(o.profile, o.pair, o.side, o.leverage, o.amount)
            row["profile"], row["requested_s"] = o.profile, now_s
            sign = 1 if o.side == "long" else -1
            tp = prices[o.pair] * (1 + sign * o.take_profit_move) if o.take_profit_move else 0
            sl = prices[o.pair] * (1 - sign * o.stop_loss_move) if o.stop_loss_move else 0
            account = accounts[(len(self.crowd_rows) + i) % len(accounts)]
            requests.append(OpenRequest(account, o.pair, o.side, o.amount, o.leverage, take_profit=_cut(tp),
                                        stop_loss=_cut(sl)))
            rows.append((row, account, o.holding_s))
        for pending, (row, account, holding_s) in zip(self.sim.request_opens(requests), rows):
            self.crowd_rows.append(row)
            self.pending[pending.request_id] = (row, account, holding_s)

    def request_due_closes(self, now_s: int) -> None:
        due = [(account, pid) for pid, (_, account, close_s) in self.open.items()
               if 0 <= close_s <= now_s and pid not in self.closing]
        if due:
            self.sim.request_closes(due)
            self.closing.update(pid for _, pid in due)

    def settle_round(self, report: Any, now_s: int) -> None:
        for receipt in report.receipts:
            self.settle(receipt, now_s)

    def settle(self, receipt: dict, now_s: int) -> None:
        sim = self.sim
        self.ledger.on_receipt(receipt)
        items = receipt_items(sim, receipt)
        for event in sim.session.events(receipt, ("PositionOpened", "OpenRejected", "CloseRejected")):
            if event["event"] == "PositionOpened" and event["requestId"] in self.pending:
                row, account, holding_s = self.pending.pop(event["requestId"])
                charges = event["charges"]
                info = sim.position_info(event["positionId"], event["position"])
                _opened(row, info, charges["openFeeUsd"], charges["executionFeeTokens"], sim.decimals, now_s)
                row["open_batch"] = items["open"]
                self.open[event["positionId"]] = (row, account, now_s + holding_s)
            elif event["event"] == "OpenRejected" and event["requestId"] in self.pending:
                row, _, _ = self.pending.pop(event["requestId"])
                row["refused"] = RejectReason(event["reason"]).label
                row["fees"] = {"execution": event["executionFeeTokens"] / 10**sim.decimals}
                row["open_batch"] = items["open"]
            elif event["event"] == "CloseRejected":
                self.closing.discard(event["positionId"])  # asked again at the next step
        for closed in sim.closed_from(receipt):
            entry = self.open.pop(closed.position.id, None)
            if entry is not None:
                self.closing.discard(closed.position.id)
                _settled(entry[0], closed, now_s, sim.decimals, self.at_horizon)
                entry[0]["end_batch"] = items.get(closed.reason, 1)

    def close_all(self, now_s: int) -> None:
        """Every position still open closes at the horizon, by its trader."""
        self.at_horizon = True
        for _ in range(3):  # a close turned down (a guard) is asked again
            remaining = [(account, pid) for pid, (_, account, _) in self.open.items()]
            if not remaining:
                return
            self.sim.request_closes(remaining)
            self.closing.update(pid for _, pid in remaining)
            self.settle_round(self.sim.keeper.run_round(), now_s)


def _row(label: str, pair: str, side: str, leverage: int, amount: Decimal) -> dict[str, Any]:
    return {"label": label, "pair": pair, "side": side, "leverage": leverage, "amount": float(amount),
            "refused": None, "opened_s": None, "liquidated_s": None, "closed_by": None, "closed_s": None,
            "payout": 0.0, "fees": {}}


def _opened(row: dict[str, Any], position: Any, open_fee_wad: int, execution_fee_tokens: int, decimals: int,
            now_s: int) -> None:
    row["opened_s"] = now_s
    row["liquidation_price"] = position.liquidation_price_wad / WAD
    row["fees"] = {"open": open_fee_wad / WAD, "execution": execution_fee_tokens / 10**decimals}


def _settled(row: dict[str, Any], closed: Any, at_s: int, decimals: int, at_horizon: bool = False) -> None:
    row["closed_by"] = "horizon" if at_horizon and closed.reason == "close" else closed.reason
    row["closed_s"] = at_s
    if closed.reason == "liquidation":
        row["liquidated_s"] = at_s
    row["payout"] = closed.payout_tokens / 10**decimals
    row["fees"].update({"close": closed.close_fee_wad / WAD, "holding": closed.holding_wad / WAD,
                        "funding": closed.funding_wad / WAD})


def _apply_settings(sim: Alpsim, settings: Any) -> None:
    """The study's engine, pool and pair settings, by the admin (the deployer)."""
    admin = sim.deployment.deployer
    if settings.engine:
        current = dict(sim.contracts["trading"].call("settings"))
        for name, value in settings.engine.items():
            current[name] = int(value * WAD) if name.endswith("Usd") else int(value)
        sim.contracts["trading"].transact("setSettings", tuple(current.values()), sender=admin)
    if settings.pool:
        pool = sim.pool_contract
        names = ("mintFeeBps", "burnFeeBps", "cooldownSeconds", "maxReserveBps")
        values = {name: int(settings.pool.get(name, pool.call(name))) for name in names}
        pool.transact("setSettings", *values.values(), sender=admin)
    for pair, changes in settings.pairs.items():
        registry = sim.contracts["pairs"]
        pair_id = sim.pair_id(pair)
        config = dict(registry.call("pair", pair_id))
        for name, value in changes.items():
            config[name] = int(value * WAD) if name.endswith("Usd") else int(value)
        registry.transact("updatePair", pair_id, tuple(config.values()), sender=admin)


def _cut(price: Decimal | float | int) -> Decimal:
    return Decimal(price).quantize(Decimal(1).scaleb(-PRICE_DECIMALS)) if price else Decimal(0)


def _correlation(study: Study):  # noqa: ANN202 - numpy array or None
    if study.correlation is None:
        return None
    import numpy as np

    return np.array([[float(x) for x in row] for row in study.correlation])
