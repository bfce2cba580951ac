"""The searcher's attacks on one victim's open, each played with real transactions on alpsim's own
anvil with interval mining (docs/mev.md): the victim's request goes to the public mempool, the
searcher reads it there and answers with transactions that carry a higher priority fee, the
keeper executes, and the searcher's profit is read from its balances (collateral, and ALP at the
pool's own withdrawal quote), never from a formula.

- `trader`: open the victim's pair and side first, close after the victim fills (needs the
  pair and side: a hidden order's searcher does not act).
- `jit_lp`: deposit the payout token into the pool ahead of the victim's execution and withdraw
  after it fills, for a share of what the victim pays the pool (its slippage, marked into NAV,
  and the pool's half of the open fee) less the LP round trip. `lp_cooldown_s` None keeps the
  deployed 48 h cooldown (the withdrawal is then refused); 0 is the research setting that
  shows what the cooldown protects.
- `hunt`: after the victim's position is public, open on its side to make that side heavier
  (funding is paid by the heavier side), hold `HUNT_HOURS`, close; against the same hold
  without the searcher."""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Callable

from ..errors import AlpsimError
from ..units import WAD, from_units
from .searcher import Searcher, SeenRequest, wait_next_block

if TYPE_CHECKING:
    from ..client import Alpsim

VICTIM_GAS = 500_000
HUNT_HOURS = 8
"""How long the hunter holds its skew (and the baseline waits): 8 hours."""
BLIND_LEVERAGE = 20
"""A hidden order's searcher sees the escrow, not the leverage: it guesses notional = escrow x
20 (a placeholder prior, docs/mev.md)."""
LP_ROUND_TRIP_BPS = 50
"""The pool's deposit and withdrawal fees, 25 bp each (docs/mechanics.md section 10): the
JIT LP's cost per dollar deposited, before the dynamic fee's spread."""
MAX_JIT_DEPOSIT_USD = 50_000_000


@dataclass(frozen=True)
class Victim:
    """One order of the flow."""

    account: int
    pair: str
    side: str
    notional_usd: Decimal
    leverage: int

    @property
    def margin_usd(self) -> Decimal:
        return (self.notional_usd / self.leverage).quantize(Decimal("0.000001"))


def _usd(units: int, sim: "Alpsim") -> float:
    return float(from_units(units, sim.decimals))


def alp_value_units(sim: "Alpsim", who: str) -> int:
    """What `who`'s ALP would withdraw as payout tokens now, at the pool's own prices and fee
    (the withdrawal quote; 0 for no ALP). Cooldown not considered: a locked balance's value."""
    from ..quote import quote_lp

    alp = sim.alp_balance_wad(who)
    if alp == 0:
        return 0
    symbol = sim.deployment.basket[0].symbol if sim.deployment.basket else sim.profile.collateral.symbol
    try:
        out = quote_lp(sim, symbol, Decimal(alp) / WAD, withdraw=True)["amount_out"]
    except AlpsimError:
        return 0
    return sim.to_units(out)


def wealth_units(sim: "Alpsim", who: str) -> int:
    """Payout tokens held plus the ALP's withdrawal value."""
    return sim.collateral_units(who) + alp_value_units(sim, who)


class Play:
    """One victim's open played once: mempool race, execution, the searcher's follow-up."""

    def __init__(self, sim: "Alpsim", searcher: Searcher, victim: Victim, plain: bool):
        self.sim, self.searcher, self.victim, self.plain = sim, searcher, victim, plain
        self.out: dict[str, Any] = {"acted": False, "seen_pending": False, "landed_first": None,
                                    "searcher_profit_usd": 0.0, "searcher_gas": 0, "blocked": None}

    def on_demand(self):  # noqa: ANN201
        return self.sim.devnet.blocks_on_demand()

    def race(self, react: Callable[[SeenRequest], list[str]]) -> dict:
        """The victim's request into the mempool right after a block; the searcher's answer
        (`react`, its transaction hashes) sent while it is pending. The victim's receipt."""
        sim, v = self.sim, self.victim
        _, tx, *_ = sim._open_request(v.account, v.pair, v.side, v.margin_usd + self.fee_usd(), v.leverage, 0, 0, 0,
                                      self.plain)
        wait_next_block(sim)
        victim_hash = sim.devnet.send_unmined({**tx, "gas": VICTIM_GAS, "maxPriorityFeePerGas": 0})
        block_time_s = float(sim.devnet.block_time_s)
        seen = self.searcher.wait_for(victim_hash, 2 * block_time_s)
        hashes = []
        if seen is not None:
            self.out["seen_pending"] = seen.pending_when_read
            hashes = react(seen)
        victim_receipt = self.searcher.receipt(victim_hash)
        for h in hashes:
            r = self.searcher.receipt(h)
            self.out["searcher_gas"] += r["gasUsed"]
            first = (r["blockNumber"], r["transactionIndex"]) < (victim_receipt["blockNumber"],
                                                                victim_receipt["transactionIndex"])
            self.out["landed_first"] = first if self.out["landed_first"] is None else self.out["landed_first"] and first
        return victim_receipt

    def fee_usd(self) -> Decimal:
        return self.sim.profile.execution_fee_usd

    def execute(self) -> None:
        """The keeper's round on the pending requests; the victim's fill recorded."""
        with self.on_demand():
            receipts = self.sim.keeper.execute_pending()
        trader = self.sim.address(self.victim.account)
        for r in receipts:
            for e in self.sim.session.events(r, "PositionOpened"):
                if e["position"]["trader"] == trader:
                    self.out["victim_position_id"] = e["positionId"]
                    self.out["victim_entry_wad"] = e["position"]["entryPrice"]
                    self.out["victim_slippage_wad"] = e["charges"]["slippageWad"]
            for e in self.sim.session.events(r, "OpenRejected"):
                self.out["rejected"] = e["reason"]

    def searcher_wealth(self) -> int:
        return wealth_units(self.sim, self.searcher.address)

    def close_searcher_positions(self) -> None:
        sim = self.sim
        with self.on_demand():
            for p in sim.positions(self.searcher.address):
                receipt = sim.contracts["trading"].transact("requestClose", p.id, sender=self.searcher.address)
                self.out["searcher_gas"] += receipt["gasUsed"]
            sim.keeper.execute_pending()


def pair_config(sim: "Alpsim", pair_id: int) -> dict:
    """The pair's public configuration (spread, depth, caps) from the registry."""
    return sim.contracts["pairs"].call("pair", pair_id)


def side_oi_usd(sim: "Alpsim", pair_id: int, is_long: bool) -> Decimal:
    return Decimal(sim.contracts["market"].call("side", pair_id, is_long)["oiUsd"]) / WAD


def notional_of(sim: "Alpsim", margin_usd: Decimal, leverage: int) -> Decimal:
    """The notional a request of `margin_usd` (escrow less the execution fee) opens at
    `leverage`: the open fee (standard tier) comes out of the margin, `N = m x L / (1 + L x
    openFee)` (docs/mechanics.md section 5)."""
    settings = sim.settings
    if leverage >= settings.extreme_leverage:
        return margin_usd * leverage
    return margin_usd * leverage / (1 + Decimal(leverage * settings.open_fee_bps) / 10_000)


def margin_for(sim: "Alpsim", notional_usd: Decimal, leverage: int) -> Decimal:
    """The margin that opens `notional_usd` at `leverage` (`notional_of` inverted), to 6 decimals."""
    settings = sim.settings
    fee = 0 if leverage >= settings.extreme_leverage else Decimal(leverage * settings.open_fee_bps) / 10_000
    return (notional_usd / leverage * (1 + fee)).quantize(Decimal("0.000001"))


def searcher_leverage(sim: "Alpsim", pair: str, notional_usd: Decimal) -> int:
    """The highest leverage the pair and its notional tier allow (the cheapest fees: the
    extreme tier pays no open fee)."""
    cfg = pair_config(sim, sim.pair_id(pair))
    cap, tiered = cfg["maxLeverage"], cfg["tiered"]
    if tiered and notional_usd > 1_000_000:
        cap = min(cap, 250 if notional_usd <= 5_000_000 else 100)
    return int(cap)


def play_baseline(sim: "Alpsim", searcher: Searcher, victim: Victim, plain: bool) -> dict:
    play = Play(sim, searcher, victim, plain)
    play.race(lambda seen: [])
    play.execute()
    return play.out


def play_trader(sim: "Alpsim", searcher: Searcher, victim: Victim, plain: bool) -> dict:
    play = Play(sim, searcher, victim, plain)
    with play.on_demand():
        sim.fund(searcher.address, 2 * victim.margin_usd + 1_000)
        sim.approve_collateral(searcher.address)
    before = play.searcher_wealth()

    def react(seen: SeenRequest) -> list[str]:
        if seen.order is None:  # hidden: no pair, no side; any blind open only pays fees
            return []
        order = seen.order
        escrow = Decimal(seen.escrow_units) / 10**sim.decimals
        notional = notional_of(sim, escrow - play.fee_usd(), order.leverage)  # the victim's, from the plain order
        pair = sim.deployment.pairs[order.pair_id]
        leverage = min(searcher_leverage(sim, pair, notional), 1001)
        side = "long" if order.is_long else "short"
        play.out["acted"] = True
        margin = margin_for(sim, notional, leverage)
        return [searcher.send_ahead(searcher.request_open_tx(order.pair_id, side, margin + play.fee_usd(), leverage))]

    play.race(react)
    play.execute()
    play.close_searcher_positions()
    play.out["searcher_profit_usd"] = _usd(play.searcher_wealth() - before, sim)
    return play.out


def jit_deposit_usd(sim: "Alpsim", seen: SeenRequest, fee_usd: Decimal) -> tuple[Decimal, Decimal]:
    """(the searcher's estimate of what the victim pays the pool, the deposit that maximises
    share x that - round trip): plain, from the order; hidden, from the escrow x BLIND_LEVERAGE
    on the average listed pair. Share = D / (NAV + D); best D = sqrt(V x NAV / c) - NAV."""
    escrow = Decimal(seen.escrow_units) / 10**sim.decimals - fee_usd
    settings = sim.settings
    leverage = seen.order.leverage if seen.order is not None else BLIND_LEVERAGE
    notional = notional_of(sim, escrow, leverage)
    pairs = [seen.order.pair_id] if seen.order is not None else list(range(len(sim.deployment.pairs)))
    extreme = leverage >= settings.extreme_leverage
    paid = Decimal(0)
    for pid in pairs:  # public: each pair's spread and depth
        cfg = pair_config(sim, pid)
        depth = Decimal(cfg["depth1PctUsd"]) / WAD
        slippage = Decimal(cfg["spreadBps"]) / 10_000 + notional / depth / 100
        open_fee_share = Decimal(0) if extreme else Decimal(settings.open_fee_bps * settings.pool_fee_share_bps) / 10**8
        paid += notional * (slippage + open_fee_share)
    paid /= len(pairs)
    nav = Decimal(sim.pool_contract.call("nav")) / WAD
    c = Decimal(LP_ROUND_TRIP_BPS) / 10_000
    best = Decimal(math.sqrt(float(paid * nav / c))) - nav
    return paid, min(max(best, Decimal(0)), Decimal(MAX_JIT_DEPOSIT_USD)).quantize(Decimal(1))


def set_lp_cooldown(sim: "Alpsim", seconds: int) -> None:
    pool, admin = sim.pool_contract, sim.deployment.deployer
    with sim.devnet.blocks_on_demand():
        pool.transact("setSettings", pool.call("mintFeeBps"), pool.call("burnFeeBps"), seconds,
                      pool.call("maxReserveBps"), sender=admin)


def play_jit(sim: "Alpsim", searcher: Searcher, victim: Victim, plain: bool) -> dict:
    play = Play(sim, searcher, victim, plain)
    token = sim.contracts["collateral"]
    with play.on_demand():  # the keeper's every-block work: prices fresh and settled for LPs
        sim.fund(searcher.address, MAX_JIT_DEPOSIT_USD)
        token.transact("approve", sim.pool_contract.address, 2**256 - 1, sender=searcher.address)
        sim.keeper.run_triggers()
        sim.keeper.fresh_basket_prices()
    before = play.searcher_wealth()

    def react(seen: SeenRequest) -> list[str]:
        paid, deposit = jit_deposit_usd(sim, seen, play.fee_usd())
        play.out["estimated_paid_usd"], play.out["deposit_usd"] = float(paid), float(deposit)
        if deposit <= 0:
            return []
        play.out["acted"] = True
        return [searcher.send_ahead(searcher.call_tx("pool", "deposit", token.address, sim.to_units(deposit), 0))]

    play.race(react)
    play.execute()
    alp = sim.alp_balance_wad(searcher.address)
    if alp:
        with play.on_demand():
            sim.keeper.run_triggers()
            sim.keeper.fresh_basket_prices()
            try:
                receipt = sim.pool_contract.transact("withdraw", alp, token.address, 0, sender=searcher.address)
                play.out["searcher_gas"] += receipt["gasUsed"]
            except AlpsimError as exc:
                play.out["blocked"] = type(exc).__name__
    play.out["searcher_profit_usd"] = _usd(play.searcher_wealth() - before, sim)
    return play.out


def _hold(sim: "Alpsim", hours: int) -> None:
    """Time passes (`evm_increaseTime`); the keeper's round then prices and runs triggers."""
    sim.devnet.rpc("evm_increaseTime", [hours * 3600])
    with sim.devnet.blocks_on_demand():
        sim.devnet.rpc("evm_mine", [])
        sim.keeper.run_triggers()


def _victim_outcome(play: Play) -> None:
    """Closes the victim's position if still open; records its payout or its liquidation."""
    sim = play.sim
    pid = play.out.get("victim_position_id")
    trader = sim.address(play.victim.account)
    before = sim.collateral_units(trader)
    if pid is None:
        return
    if sim.position(pid) is None:
        play.out["victim_liquidated"], play.out["victim_payout_usd"] = True, 0.0
        return
    with play.on_demand():
        sim.contracts["trading"].transact("requestClose", pid, sender=trader)
        sim.keeper.execute_pending()
    play.out["victim_liquidated"] = False
    play.out["victim_payout_usd"] = _usd(sim.collateral_units(trader) - before, sim)


def play_hunt(sim: "Alpsim", searcher: Searcher, victim: Victim, plain: bool, hunt: bool) -> dict:
    """The victim's position held HUNT_HOURS; `hunt`: with the searcher's skew on its side."""
    play = Play(sim, searcher, victim, plain)
    play.race(lambda seen: [])
    play.execute()
    before = play.searcher_wealth()
    pair_id = sim.pair_id(victim.pair)
    if hunt and "victim_position_id" in play.out:
        is_long = victim.side == "long"
        side_oi, other_oi = side_oi_usd(sim, pair_id, is_long), side_oi_usd(sim, pair_id, not is_long)
        room = Decimal(pair_config(sim, pair_id)["maxOiPerSideUsd"]) / WAD - side_oi
        skew = min(max(3 * other_oi, Decimal(100_000)), room / 2, Decimal(2_000_000)).quantize(Decimal(1))
        if skew >= 100:
            with play.on_demand():
                sim.fund(searcher.address, skew)
                sim.approve_collateral(searcher.address)
            before = play.searcher_wealth()
            try:
                with play.on_demand():
                    opened = sim.open(searcher.address, victim.pair, victim.side,
                                      (skew / 20).quantize(Decimal("0.000001")) + play.fee_usd(), 20)
                play.out["searcher_gas"] += opened.gas_request or 0
                play.out["acted"] = True
            except AlpsimError as exc:
                play.out["blocked"] = type(exc).__name__
    _hold(sim, HUNT_HOURS)
    _victim_outcome(play)
    play.close_searcher_positions()
    play.out["searcher_profit_usd"] = _usd(play.searcher_wealth() - before, sim)
    return play.out
