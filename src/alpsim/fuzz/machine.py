"""The stateful machines (hypothesis RuleBasedStateMachine): every rule draws its parameters,
records one scenario step (or a few) and runs it through the Executor, whose checks run after
every step. `ExchangeMachine`: traders, LPs, the basket, the keeper and its gaps, the reference,
hostile orders and admin changes; `EconomicMachine`: the same with the keeper's prices fixed
(no price rules, no basket), checking E1-E4 too. `machine_class(build, chain, economic)` makes
one for a user's contracts."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, rule

PAIRS = {"BTC/USD": 60_000, "ETH/USD": 3_000, "SOL/USD": 150, "AAPL/USD": 200}
"""The pairs' start prices (USD)."""
PAIR_NAMES = sorted(PAIRS)
LEVERAGE_CAPS = {"BTC/USD": 1001, "ETH/USD": 1001, "SOL/USD": 100, "AAPL/USD": 50}
TRADERS = ["t1", "t2", "t3", "t4"]
LPS = ["lp5", "lp6"]
GRIEFER = "g10"
"""Sends open requests the keeper cannot use."""
TRADER_FUNDS_USD, LP_FUNDS_USD, GRIEFER_FUNDS_USD = 50_000, 2_000_000, 1_000
NOMINAL_USD = {"USDT": 1, "USDC": 1, "BNB": 600, "ETH": 3_000, "BTC": 60_000}
BASKET_FUNDS_USD = 500_000
"""What each LP holds of each basket asset besides the payout stablecoin, in USD."""
SEED = 99
"""The deployment's seed (salts, encryption randomness)."""
STATS: Counter = Counter()
"""Steps, checks and basket outcomes over every machine of this process."""
_SIMS: dict[tuple, Any] = {}


def launch(chain: str, build: Any = None, backend: str = "revm") -> Any:
    """The system a machine runs on: launched once per (chain, build) and process, reverted after
    each example; a checked scenario launches the same (seed, accounts)."""
    from ..client import Alpsim

    key = (chain, backend, id(build))
    if key not in _SIMS:
        _SIMS[key] = Alpsim.launch(chain, backend, build=build, seed=SEED)
    return _SIMS[key]


def funds_for(sim: Any, basket: bool) -> dict[str, Any]:
    """The machine's accounts (t1..t4, lp5, lp6, g10 = dev accounts 1..7) and their funds."""
    lp: Any = LP_FUNDS_USD
    if basket:
        payout = sim.deployment.basket[0].symbol
        lp = {payout: LP_FUNDS_USD} | {e.symbol: BASKET_FUNDS_USD // NOMINAL_USD[e.symbol]
                                      for e in sim.deployment.basket if e.role != "collateral"}
    return {**{t: TRADER_FUNDS_USD for t in TRADERS}, **{name: lp for name in LPS}, GRIEFER: GRIEFER_FUNDS_USD}


def _quantize(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.0001"))


class ExchangeMachine(RuleBasedStateMachine):
    chain = "bnb"
    build: Any = None
    prices_fixed = False
    basket_rules = True
    checks: tuple[str, ...] = ("invariants", "model")
    pendings = Bundle("pendings")
    last_failure: dict | None = None
    """The steps of the last failing example (hypothesis replays the shrunk one last)."""
    first_failure: dict | None = None
    """The steps of the first failing example (before shrinking)."""

    def __init__(self) -> None:
        from .executor import Executor

        super().__init__()
        self.sim = launch(self.chain, self.build)
        self.snap = self.sim.snapshot()  # taken each example: a revert consumes it
        self.funds = funds_for(self.sim, self.basket_rules)
        self.steps: list[dict] = []
        self.ex = Executor(self.sim, self.funds, self.checks)
        self.asset_prices = {e.symbol: Decimal(NOMINAL_USD[e.symbol]) for e in self.sim.deployment.basket
                             if e.price_id >= 128}
        self.basket_assets = self.ex.basket_assets

    def do(self, kind: str, /, **body: Any) -> None:
        """Records the step, then runs it (so a failing step is the last recorded)."""
        step = {kind: body}
        self.steps.append(step)
        STATS["steps"] += 1
        try:
            self.ex.run(step)
        except BaseException:
            record = {"steps": list(self.steps), "funds": self.funds}
            if type(self).first_failure is None:
                type(self).first_failure = record
            type(self).last_failure = record
            raise

    def teardown(self) -> None:
        STATS.update({f"basket {k}": v for k, v in self.ex.stats.items()})
        self.sim.revert(self.snap)

    def name_to_units(self, name: str) -> int:
        return self.sim.collateral_units(self.ex.who(name))

    def has(self, name: str, amount: Any) -> bool:
        return self.name_to_units(name) >= self.sim.to_units(amount)

    @initialize()
    def start(self) -> None:
        self.do("prices", **{p: Decimal(v) for p, v in PAIRS.items()})
        self.do("deposit", who=LPS[0], amount=LP_FUNDS_USD)

    # ----- LPs
    @rule(lp=st.sampled_from(LPS), amount=st.integers(min_value=1, max_value=500_000))
    def deposit(self, lp: str, amount: int) -> None:
        if self.has(lp, amount):
            self.do("deposit", who=lp, amount=amount)

    @rule(lp=st.sampled_from(LPS), share=st.integers(min_value=1, max_value=100))
    def withdraw(self, lp: str, share: int) -> None:
        held = self.sim.alp_balance_wad(self.ex.who(lp))
        if held:
            self.do("withdraw", who=lp, alp=alp_text(max(held * share // 100, 1)))

    @rule(lp=st.sampled_from(LPS), index=st.integers(min_value=0, max_value=3),
          usd=st.sampled_from([1, 100, 5_000, 50_000, 200_000]), dust=st.booleans())
    def basket_deposit(self, lp: str, index: int, usd: int, dust: bool) -> None:
        """`usd` worth (at the start price; one token unit more with `dust`) of a basket asset."""
        e = self.basket_assets[index % len(self.basket_assets)]
        amount = (Decimal(usd) / NOMINAL_USD[e.symbol]).quantize(Decimal(1).scaleb(-min(e.decimals, 8)))
        if dust:
            amount += Decimal(1).scaleb(-e.decimals)
        from ..units import to_units

        if self.sim.asset_units(self.ex.who(lp), e.symbol) >= to_units(amount, e.decimals):
            self.do("deposit", who=lp, asset=e.symbol, amount=amount)

    @rule(lp=st.sampled_from(LPS), index=st.integers(min_value=0, max_value=3),
          share=st.integers(min_value=1, max_value=100))
    def basket_withdraw(self, lp: str, index: int, share: int) -> None:
        """`share`% of its ALP, at most of what the pool's holdings of an asset it holds are
        worth, once its cooldown is over (when the pool holds none, `lp` deposits 50,000 USD first)."""
        who = self.ex.who(lp)
        held = self.sim.alp_balance_wad(who)
        if held == 0:
            return
        model = self.ex.mirror.model
        held_assets = [a for a in self.basket_assets if model.pool.holdings_of(a.address)]
        if not held_assets:
            self.basket_deposit(lp=lp, index=index, usd=50_000, dust=False)
            held_assets = [a for a in self.basket_assets if model.pool.holdings_of(a.address)]
        e = held_assets[index % len(held_assets)] if held_assets else self.basket_assets[index % len(self.basket_assets)]
        sim, pool = self.sim, self.sim.pool_contract
        asset_usd = pool.call("holdingsOf", e.address) * 10 ** (18 - e.decimals) \
            * sim.contracts["oracle"].call("keeperPrice", e.price_id)[0] // 10**18
        nav, supply = pool.call("nav"), sim.contracts["alp"].call("totalSupply")
        worth_alp = supply * asset_usd // nav if nav else 0
        alp = max(min(sim.alp_balance_wad(who), worth_alp) * share // 100, 1)
        unlocks = sim.contracts["alp"].call("unlocksAt", sim.address(who))
        if unlocks > sim.devnet.timestamp:
            self.do("wait", seconds=unlocks - sim.devnet.timestamp)
        self.do("withdraw", who=lp, alp=alp_text(alp), asset=e.symbol)

    @rule(index=st.integers(min_value=0, max_value=4), bps=st.one_of(st.integers(-30, 30), st.integers(-800, 800)),
          gap_bps=st.one_of(st.integers(-90, 90), st.sampled_from([-150, 150])))
    def move_asset_price(self, index: int, bps: int, gap_bps: int) -> None:
        """An asset-only price moves (the stablecoins by a tenth as much), its reference `gap_bps` apart."""
        symbols = sorted(self.asset_prices)
        if not symbols:
            return
        symbol = symbols[index % len(symbols)]
        step_bps = bps if NOMINAL_USD[symbol] > 1 else bps // 10
        price = _quantize(self.asset_prices[symbol] * (10_000 + step_bps) / 10_000)
        self.asset_prices[symbol] = price
        self.do("asset_price", symbol=symbol, price=price, reference=_quantize(price * (10_000 + gap_bps) / 10_000))

    # ----- traders
    @rule(trader=st.sampled_from(TRADERS), pair=st.sampled_from(PAIR_NAMES), long=st.booleans(),
          leverage=st.sampled_from([1, 3, 10, 50, 100, 250, 499, 500, 777, 999, 1000, 1001, 1500]),
          amount=st.integers(min_value=1, max_value=20_000), tp=st.sampled_from([None, 0.002, 0.05, 5.0]),
          sl=st.sampled_from([None, 0.001, 0.02]))
    def open(self, trader: str, pair: str, long: bool, leverage: int, amount: int, tp, sl) -> None:  # noqa: ANN001
        if not self.has(trader, amount):
            return
        price, sign = self.ex.prices[pair], 1 if long else -1
        take_profit = None if tp is None else max(_quantize(price * (1 + sign * Decimal(str(tp)))), Decimal(0)) or None
        stop_loss = None if sl is None else max(_quantize(price * (1 - sign * Decimal(str(sl)))), Decimal(0)) or None
        self.do("open", id=f"p{len(self.steps)}", who=trader, pair=pair, side="long" if long else "short",
                amount=amount, leverage=leverage, tp=take_profit, sl=stop_loss)

    @rule(target=pendings, trader=st.sampled_from(TRADERS), pair=st.sampled_from(PAIR_NAMES),
          long=st.booleans(), leverage=st.sampled_from([5, 50, 500, 1001]),
          amount=st.integers(min_value=10, max_value=5_000))
    def request_during_keeper_outage(self, trader: str, pair: str, long: bool, leverage: int, amount: int):  # noqa: ANN201
        if not self.has(trader, amount):
            return None
        sid = f"r{len(self.steps)}"
        self.do("open", id=sid, who=trader, pair=pair, side="long" if long else "short", amount=amount,
                leverage=min(leverage, LEVERAGE_CAPS[pair]), pending=True)
        return sid

    @rule(pending=pendings)
    def keeper_back(self, pending: str | None) -> None:
        p = self.ex.pendings.get(pending) if pending else None
        if p is not None and self.ex.mirror.model.requests[p.request_id].status == "pending":
            self.do("execute", id=pending)

    @rule(pending=pendings)
    def cancel(self, pending: str | None) -> None:
        if pending and pending in self.ex.pendings:
            self.do("cancel", id=pending)

    @rule(index=st.integers(min_value=0, max_value=50))
    def close(self, index: int) -> None:
        by_position = {pid: sid for sid, pid in self.ex.positions.items()}
        ids = sorted(pid for pid in self.ex.mirror.model.positions if pid in by_position)
        if ids:
            self.do("close", id=by_position[ids[index % len(ids)]])

    @rule(trader=st.sampled_from(TRADERS))
    def bind_referral(self, trader: str) -> None:
        self.do("referral", who=trader)

    @rule(trader=st.sampled_from(TRADERS), enabled=st.booleans(), funded=st.booleans())
    def platform_token_fees(self, trader: str, enabled: bool, funded: bool) -> None:
        self.do("fee_token", who=trader, enabled=enabled, funded=funded)

    # ----- market and keeper
    @rule(pair=st.sampled_from(PAIR_NAMES), bps=st.one_of(st.integers(-30, 30), st.integers(-800, 800)))
    def move_price(self, pair: str, bps: int) -> None:
        self.do("prices", **{pair: _quantize(self.ex.prices[pair] * (10_000 + bps) / 10_000)})

    @rule(pair=st.sampled_from(PAIR_NAMES), bps=st.integers(min_value=101, max_value=500), up=st.booleans())
    def reference_gap(self, pair: str, bps: int, up: bool) -> None:
        """The reference feed jumps away from the keeper's price: over 1% trips the breaker."""
        factor = (10_000 + bps) if up else (10_000 - bps)
        self.do("reference", pair=pair, price=_quantize(self.ex.prices[pair] * factor / 10_000))

    @rule(seconds=st.sampled_from([1, 30, 61, 600, 3600, 86_400, 172_800]))
    def time_passes(self, seconds: int) -> None:
        self.do("wait", seconds=seconds)

    @rule()
    def keeper_runs_triggers(self) -> None:
        self.do("keeper")

    # ----- hostile actors
    @rule(seconds=st.sampled_from([3600, 6 * 3600, 86_400, 3 * 86_400, 7 * 86_400]))
    def keeper_gap(self, seconds: int) -> None:
        self.do("keeper_gap", seconds=seconds)

    @rule(kind=st.sampled_from(["random_bytes", "garbage_plaintext", "wrong_commitment"]),
          amount=st.integers(min_value=1, max_value=50), seed=st.integers(min_value=0, max_value=2**32 - 1))
    def bad_order(self, kind: str, amount: int, seed: int) -> None:
        if self.has(GRIEFER, amount):
            self.do("bad_order", who=GRIEFER, kind=kind, amount=amount, seed=seed)

    @rule(lp=st.sampled_from(LPS), share=st.integers(min_value=1, max_value=100),
          seconds=st.sampled_from([0, 61, 3600, 86_400]), move_bps=st.sampled_from([0, 3, -25]))
    def lp_withdraws_after_price_push(self, lp: str, share: int, seconds: int, move_bps: int) -> None:
        """A bare price push (after a while without the keeper, and a new price where prices
        move), at once the other LP deposits and this one withdraws: refused exactly when the
        model refuses (PriceNotSettled where the push changed a price with open interest)."""
        who = self.ex.who(lp)
        held = self.sim.alp_balance_wad(who)
        if held == 0:
            return
        alp = max(held * share // 100, 1)
        if move_bps and not self.prices_fixed:
            if seconds:
                self.do("wait", seconds=seconds)
                seconds = 0
            traded = sorted({p.pair_id for p in self.ex.mirror.model.positions.values()})
            pair = self.sim.deployment.pairs[traded[0]] if traded else "BTC/USD"
            self.do("prices", **{pair: _quantize(self.ex.prices[pair] * (10_000 + move_bps) / 10_000)})
        self.do("push", after_s=seconds)
        other = LPS[1] if lp == LPS[0] else LPS[0]
        if self.has(other, 1_000):
            self.do("deposit", who=other, amount=1_000, settle=False)
        self.do("withdraw", who=lp, alp=alp_text(alp), settle=False)

    @rule(minutes=st.sampled_from([5, 10, 30, 60, 180]), lp=st.sampled_from(LPS),
          trader=st.sampled_from(TRADERS), pair=st.sampled_from(PAIR_NAMES), long=st.booleans())
    def reference_outage(self, minutes: int, lp: str, trader: str, pair: str, long: bool) -> None:
        self.do("outage", minutes=minutes, lp=lp, trader=trader, pair=pair, side="long" if long else "short",
                id=f"p{len(self.steps)}")

    @rule(pair=st.sampled_from(PAIR_NAMES), bps=st.integers(min_value=101, max_value=500), up=st.booleans(),
          minutes=st.sampled_from([1, 5, 15, 30, 90]), lp=st.sampled_from(LPS), trader=st.sampled_from(TRADERS),
          long=st.booleans())
    def breaker_trip(self, pair: str, bps: int, up: bool, minutes: int, lp: str, trader: str, long: bool) -> None:
        self.do("breaker_trip", pair=pair, bps=bps if up else -bps, minutes=minutes, lp=lp, trader=trader,
                side="long" if long else "short", id=f"p{len(self.steps)}")

    @rule(target=pendings, fee=st.sampled_from(["0", "0.01", "0.2", "5", "100", "20000"]),
          then=st.sampled_from(["execute", "cancel", "leave"]), restore=st.booleans(),
          trader=st.sampled_from(TRADERS), pair=st.sampled_from(PAIR_NAMES), long=st.booleans(),
          amount=st.integers(min_value=10, max_value=5_000), griefer_amount=st.integers(min_value=1, max_value=50),
          seed=st.integers(min_value=0, max_value=2**32 - 1))
    def fee_raise(self, fee: str, then: str, restore: bool, trader: str, pair: str, long: bool, amount: int,
                  griefer_amount: int, seed: int):  # noqa: ANN201
        sid = f"r{len(self.steps)}"
        self.do("fee_raise", fee_usd=Decimal(fee), then=then, restore=restore, id=sid, who=trader, pair=pair,
                side="long" if long else "short", amount=amount, griefer=GRIEFER, griefer_amount=griefer_amount,
                seed=seed)
        return sid if then == "leave" and sid in self.ex.pendings else None

    @rule(kind=st.sampled_from(["max_age", "breaker", "rates"]), level=st.integers(min_value=0, max_value=2),
          before=st.sampled_from([30, 600, 3600, 86_400]), after=st.sampled_from([30, 600, 3600, 86_400]),
          mid_round=st.booleans())
    def settings_change(self, kind: str, level: int, before: int, after: int, mid_round: bool) -> None:
        self.do("settings_change", kind=kind, level=level, before_s=before, after_s=after, mid_round=mid_round)

    @rule(kind=st.sampled_from(["request_amount", "request_max", "deposit_amount", "price_high", "price_zero",
                                "price_pair", "withdraw_more", "guard_age", "rates"]))
    def extreme_inputs(self, kind: str) -> None:
        self.do("extreme", kind=kind)

    @invariant()
    def counted(self) -> None:
        STATS["checks"] += 1
        STATS[f"steps {type(self).__name__}"] += 1


class EconomicMachine(ExchangeMachine):
    """The same actors with the keeper's prices fixed (no move_price, reference_gap or basket
    rules; the reference may move in breaker_trip), E1-E4 checked after every step."""

    move_price = None
    reference_gap = None
    basket_deposit = basket_withdraw = move_asset_price = None
    prices_fixed = True
    basket_rules = False
    checks = ("invariants", "model", "economics")

    @rule(seconds=st.sampled_from([1, 30, 61, 600, 3600, 86_400, 172_800]))
    def time_passes(self, seconds: int) -> None:
        """Time passes with a live keeper: its round ends the wait."""
        self.do("keeper_gap", seconds=seconds)


def alp_text(alp_wad: int) -> Decimal:
    """ALP wei as an exact decimal of whole ALP."""
    return Decimal(alp_wad).scaleb(-18)


def machine_class(chain: str, economic: bool, build: Any = None) -> type[ExchangeMachine]:
    """A machine for `chain` on `build` (None: the shipped contracts)."""
    base = EconomicMachine if economic else ExchangeMachine
    name = f"{chain.capitalize()}{'Economic' if economic else ''}Machine"
    return type(name, (base,), {"chain": chain, "build": build, "__module__": __name__})
