"""Invariants under random play (hypothesis RuleBasedStateMachine) on the embedded devnet,
both chain profiles. Every action of every actor is a rule; after every step:

- the chain equals the reference model (positions, balances, indexes, aggregates, NAV, ALP
  price: the Mirror compares after each action),
- conservation: the collateral held by pool, escrow, treasury, keeper, traders and LPs sums to
  what was minted, to the unit,
- the pool covers its reserve; the escrow holds exactly the pending requests plus the open
  margins (so every request can still end executed, rejected or cancelled with its refund),
- no trader receives more than margin plus the capped profit,
- a deposit or withdrawal moves the ALP price only up, and by no more than its fee.

`make test` runs a fixed, seeded budget; `make soak` a long one (ALPSIM_SOAK_EXAMPLES).
"""

from __future__ import annotations

import os
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, rule

from alpsim.client import Alpsim, CloseRejected, OrderRejected
from alpsim.errors import ContractRevert
from alpsim.mirror import Mirror
from alpsim.model.trading import ESCROW, POOL, TREASURY, ModelRefusal

PAIRS = {"BTC/USD": (60_000, 1001), "ETH/USD": (3_000, 1001), "SOL/USD": (150, 100), "AAPL/USD": (200, 50)}
TRADERS = [1, 2, 3, 4]
LPS = [5, 6]
EXAMPLES = int(os.environ.get("ALPSIM_SOAK_EXAMPLES", "6"))
STEPS = int(os.environ.get("ALPSIM_SOAK_STEPS", "25"))
STATS = {"steps": 0, "checks": 0}

_SIMS: dict[str, Alpsim] = {}
NAMES = {1: "t1", 2: "t2", 3: "t3", 4: "t4", 5: "lp5", 6: "lp6"}
FAILURE_FILE = "build/stateful-failure.yaml"


def _dump_on_failure(method):  # noqa: ANN001, ANN201
    """On a failure, the sequence so far is written (and printed) as a scenario file; the last
    one written is hypothesis's shrunk sequence."""
    import functools

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        try:
            return method(self, *args, **kwargs)
        except Exception:
            self.write_scenario()
            raise

    return wrapper


def _sim(chain: str) -> Alpsim:
    if chain not in _SIMS:
        _SIMS[chain] = Alpsim.launch(chain, seed=99)
    return _SIMS[chain]


class ExchangeMachine(RuleBasedStateMachine):
    chain = "bnb"
    pendings = Bundle("pendings")

    def __init__(self) -> None:
        super().__init__()
        self.sim = _sim(self.chain)
        self.snap = self.sim.snapshot()
        self.mirror = Mirror(self.sim)
        self.minted = 0
        self.prices = {pair: Decimal(p) for pair, (p, _) in PAIRS.items()}
        self.script: list[str] = []
        self.scenario_ids: dict[int, str] = {}  # position id -> scenario id
        self.request_ids: dict[int, str] = {}
        self.flags: dict[int, dict] = {}

    def step(self, line: str) -> None:
        self.script.append(line)

    def write_scenario(self) -> None:
        from pathlib import Path

        funds = ", ".join(f"{NAMES[a]}: {50_000 if a in TRADERS else 2_000_000}" for a in TRADERS + LPS)
        text = "\n".join([f"name: stateful failure ({self.chain})", f"chain: {self.chain}", "seed: 99",
                          f"funds: {{{funds}}}", "steps:", *("  " + line for line in self.script)]) + "\n"
        Path(FAILURE_FILE).parent.mkdir(exist_ok=True)
        Path(FAILURE_FILE).write_text(text)
        print(f"\n--- the failing sequence as a scenario ({FAILURE_FILE}) ---\n{text}")

    def teardown(self) -> None:
        self.sim.revert(self.snap)

    # ----- helpers
    def _fund(self, who: int, amount: int) -> None:
        self.mirror.fund(who, amount)
        self.minted += self.sim.to_units(amount)

    def _same_refusal(self, chain_action, model_action) -> None:  # noqa: ANN001
        """The chain reverts exactly when the model refuses, with the same error."""
        model = self.mirror.model.copy()
        try:
            model_action(model)
            model_error = None
        except ModelRefusal as refusal:
            model_error = refusal.name
        try:
            chain_action()
        except ContractRevert as revert:
            assert revert.error_name == model_error, (revert, model_error)
            return
        assert model_error is None, f"the model refuses ({model_error}) what the chain did"

    # ----- set-up
    @initialize()
    def start(self) -> None:
        for lp in LPS:
            self._fund(lp, 2_000_000)
        self.mirror.deposit(LPS[0], 2_000_000)
        for trader in TRADERS:
            self._fund(trader, 50_000)
        self.mirror.set_prices({p: v for p, v in self.prices.items()})
        self.step("- prices: {" + ", ".join(f"{p}: {v}" for p, v in self.prices.items()) + "}")
        self.step(f"- deposit: {{who: {NAMES[LPS[0]]}, amount: 2000000}}")
        self.mirror.set_platform_token_price(1)

    # ----- LPs
    @rule(lp=st.sampled_from(LPS), amount=st.integers(min_value=1, max_value=500_000))
    @_dump_on_failure
    def deposit(self, lp: int, amount: int) -> None:
        if self.sim.collateral_units(lp) < self.sim.to_units(amount):
            return
        self.step(f"- deposit: {{who: {NAMES[lp]}, amount: {amount}}}")
        self._push_prices()
        before = self.sim.pool().alp_price_wad
        result = []
        self._same_refusal(lambda: result.append(self.mirror.deposit(lp, amount)),
                           lambda m: m.deposit(self.sim.address(lp), self.sim.to_units(amount),
                                               self.sim.devnet.clock.next_timestamp))
        if result:  # the depositor gets at most the amount less the fee, at the ALP price (which
            # only grows between the read and the deposit's block: fees accrue to the pool)
            value_in = self.sim.to_units(amount) * 10 ** (18 - self.sim.decimals)
            got = result[0].alp_out_wad * before // 10**18
            assert got <= value_in * 9_975 // 10_000 + 1, (got, value_in)
        self._alp_price_never_falls(before)

    @rule(lp=st.sampled_from(LPS), share=st.integers(min_value=1, max_value=100))
    @_dump_on_failure
    def withdraw(self, lp: int, share: int) -> None:
        held = self.sim.alp_balance_wad(lp)
        if held == 0:
            return
        alp = max(held * share // 100, 1)
        self.step(f"- withdraw: {{who: {NAMES[lp]}, alp: {Decimal(alp) / 10**18}}}")
        self._push_prices()
        before = self.sim.pool().alp_price_wad
        result = []
        self._same_refusal(lambda: result.append(self.mirror.withdraw(lp, Decimal(alp) / 10**18)),
                           lambda m: m.withdraw(self.sim.address(lp), alp, self.sim.devnet.clock.next_timestamp))
        pool_after = self.sim.pool()
        if result and pool_after.alp_supply_wad:
            # the LP gets at most its ALP's worth less the fee; priced after the withdrawal,
            # which is at least the price in the withdrawal's own block (the fee stays)
            got = result[0].amount_out_units * 10 ** (18 - self.sim.decimals)
            worth = alp * pool_after.alp_price_wad // 10**18
            assert got <= worth * 9_975 // 10_000 + 1, (got, worth)
        self._alp_price_never_falls(before)

    def _alp_price_never_falls(self, before: int) -> None:
        """Deposits and withdrawals leave their fee in the pool: the ALP price moves only up,
        by the fee kept (1 wei of rounding)."""
        if before and self.sim.pool().alp_supply_wad:
            assert self.sim.pool().alp_price_wad >= before - 1

    def _push_prices(self) -> None:
        self.mirror.push_prices()

    # ----- traders
    @rule(trader=st.sampled_from(TRADERS), pair=st.sampled_from(sorted(PAIRS)), long=st.booleans(),
          leverage=st.sampled_from([1, 3, 10, 50, 100, 250, 499, 500, 777, 999, 1000, 1001, 1500]),
          amount=st.integers(min_value=1, max_value=20_000), tp=st.sampled_from([None, 0.002, 0.05, 5.0]),
          sl=st.sampled_from([None, 0.001, 0.02]))
    @_dump_on_failure
    def open(self, trader: int, pair: str, long: bool, leverage: int, amount: int, tp, sl) -> None:  # noqa: ANN001
        if self.sim.collateral_units(trader) < self.sim.to_units(amount):
            return
        price = self.prices[pair]
        sign = 1 if long else -1
        take_profit = 0 if tp is None else (price * (1 + sign * Decimal(str(tp)))).quantize(Decimal("0.0001"))
        stop_loss = 0 if sl is None else (price * (1 - sign * Decimal(str(sl)))).quantize(Decimal("0.0001"))
        take_profit, stop_loss = max(take_profit, 0), max(stop_loss, 0)
        sid = f"p{len(self.script)}"
        flags = "".join(f", {k}: true" for k, v in self.flags.get(trader, {}).items() if v)
        self.step(f"- open: {{id: {sid}, who: {NAMES[trader]}, pair: {pair}, side: {'long' if long else 'short'}, "
                  f"amount: {amount}, leverage: {leverage}"
                  + (f", tp: {take_profit}" if take_profit else "") + (f", sl: {stop_loss}" if stop_loss else "")
                  + flags + "}")
        try:
            opened = self.mirror.open(trader, pair, "long" if long else "short", amount, leverage,
                                      take_profit=take_profit, stop_loss=stop_loss)
            self.scenario_ids[opened.position.id] = sid
        except OrderRejected:
            pass
        except ContractRevert as revert:  # a request the contract refuses outright
            assert revert.error_name == "AmountBelowExecutionFee", revert

    @rule(target=pendings, trader=st.sampled_from(TRADERS), pair=st.sampled_from(sorted(PAIRS)),
          long=st.booleans(), leverage=st.sampled_from([5, 50, 500, 1001]),
          amount=st.integers(min_value=10, max_value=5_000))
    def request_during_keeper_outage(self, trader: int, pair: str, long: bool, leverage: int, amount: int):
        if self.sim.collateral_units(trader) < self.sim.to_units(amount):
            return None
        leverage = min(leverage, PAIRS[pair][1])
        sid = f"r{len(self.script)}"
        self.step("- keeper: {online: false}")
        self.step(f"- open: {{id: {sid}, who: {NAMES[trader]}, pair: {pair}, side: {'long' if long else 'short'}, "
                  f"amount: {amount}, leverage: {leverage}}}")
        self.step("- keeper: {online: true}  # (the machine leaves it pending until keeper_back)")
        pending = self.mirror.request_open(trader, pair, "long" if long else "short", amount, leverage)
        self.request_ids[pending.request_id] = sid
        return pending

    @rule(pending=pendings)
    @_dump_on_failure
    def keeper_back(self, pending) -> None:  # noqa: ANN001
        if pending is None or self.mirror.model.requests[pending.request_id].status != "pending":
            return
        model = self.mirror.model
        expired = self.sim.devnet.block_number + 1 > model.requests[pending.request_id].block + 10
        if expired:
            with pytest.raises(ContractRevert) as info:
                self.sim.keeper.execute_open(pending.request_id, pending.ciphertext)
            assert info.value.error_name == "RequestNotExecutable"
            return
        try:
            self.mirror.execute_open(pending)
        except OrderRejected:
            pass

    @rule(pending=pendings)
    @_dump_on_failure
    def cancel(self, pending) -> None:  # noqa: ANN001
        if pending is None:
            return
        self.step(f"- cancel: {{id: {self.request_ids.get(pending.request_id, pending.request_id)}}}")
        self._same_refusal(
            lambda: self.mirror.cancel(pending.trader, pending.request_id),
            lambda m: m.cancel_request(pending.trader, pending.request_id, self.sim.devnet.block_number + 1))

    @rule(index=st.integers(min_value=0, max_value=50))
    @_dump_on_failure
    def close(self, index: int) -> None:
        ids = sorted(self.mirror.model.positions)
        if not ids:
            return
        pid = ids[index % len(ids)]
        self.step(f"- close: {{id: {self.scenario_ids.get(pid, pid)}}}")
        trader = self.mirror.model.positions[pid].trader
        try:
            closed = self.mirror.close(trader, pid)
        except CloseRejected:
            return
        p = closed.position
        assert closed.payout_wad <= p.margin_wad + p.max_profit_wad

    @rule(trader=st.sampled_from(TRADERS))
    def bind_referral(self, trader: int) -> None:
        self.flags.setdefault(trader, {})["referral"] = True
        if self.sim.address(trader) not in self.mirror.model.referred:
            self.mirror.bind_referral(trader, 0)

    @rule(trader=st.sampled_from(TRADERS), enabled=st.booleans(), funded=st.booleans())
    def platform_token_fees(self, trader: int, enabled: bool, funded: bool) -> None:
        if funded:
            self.mirror.fund_platform_token(trader, 1_000)
        self.mirror.set_fee_in_token(trader, enabled)
        self.flags.setdefault(trader, {})["fee_token"] = enabled

    # ----- market and keeper
    @rule(pair=st.sampled_from(sorted(PAIRS)), bps=st.one_of(st.integers(-30, 30), st.integers(-800, 800)))
    @_dump_on_failure
    def move_price(self, pair: str, bps: int) -> None:
        self.prices[pair] = (self.prices[pair] * (10_000 + bps) / 10_000).quantize(Decimal("0.0001"))
        self.step(f"- prices: {{{pair}: {self.prices[pair]}}}")
        self.mirror.set_prices({pair: self.prices[pair]})

    @rule(pair=st.sampled_from(sorted(PAIRS)), bps=st.integers(min_value=101, max_value=500), up=st.booleans())
    def reference_gap(self, pair: str, bps: int, up: bool) -> None:
        """The reference feed jumps away from the keeper's price: over 1% trips the breaker."""
        factor = (10_000 + bps) if up else (10_000 - bps)
        self.step(f"# the reference feed of {pair} jumps {'+' if up else '-'}{bps} bp (no scenario step for it)")
        self.mirror.set_reference(pair, (self.prices[pair] * factor / 10_000).quantize(Decimal("0.0001")))

    @rule(seconds=st.sampled_from([1, 30, 61, 600, 3600, 86_400, 172_800]))
    @_dump_on_failure
    def time_passes(self, seconds: int) -> None:
        self.step(f"- wait: {{seconds: {seconds}}}")
        self.mirror.wait(seconds)

    @rule()
    @_dump_on_failure
    def keeper_runs_triggers(self) -> None:
        self.step("- keeper: {}")
        for closed in self.mirror.run_triggers():
            p = closed.position
            assert closed.payout_wad <= p.margin_wad + p.max_profit_wad

    # ----- invariants
    @invariant()
    @_dump_on_failure
    def chain_equals_model_and_value_is_conserved(self) -> None:
        STATS["steps"] += 1
        self.mirror.check()
        sim, model = self.sim, self.mirror.model
        token = sim.contracts["collateral"]
        holders = {sim.address(a) for a in TRADERS + LPS} | {sim.deployment.keeper, sim.deployment.treasury,
                                                              sim.contracts["pool"].address,
                                                              sim.contracts["trading"].address}
        held = sum(token.call("balanceOf", h) for h in holders)
        assert held == token.call("totalSupply") == self.minted
        pool = sim.pool()
        assert pool.balance_units * 10 ** (18 - sim.decimals) * 8_000 >= pool.reserve_wad * 10_000
        pending = sum(r.amount_in for r in model.requests.values() if r.kind == "open" and r.status == "pending")
        margins = sum(p.margin_tokens for p in model.positions.values())
        assert model.balances.get(ESCROW, 0) == pending + margins
        assert model.balances.get(POOL, 0) == model.pool.pool_balance
        assert TREASURY  # the treasury's balance is compared by the mirror
        STATS["checks"] += 1


class BnbMachine(ExchangeMachine):
    chain = "bnb"


class ArbitrumMachine(ExchangeMachine):
    chain = "arbitrum"


SETTINGS = settings(max_examples=EXAMPLES, stateful_step_count=STEPS, deadline=None, derandomize=True,
                    suppress_health_check=list(HealthCheck))

TestBnb = BnbMachine.TestCase
TestBnb.settings = SETTINGS
TestArbitrum = ArbitrumMachine.TestCase
TestArbitrum.settings = SETTINGS


def test_report_budget():
    """Prints what the run did (visible with -s; `make soak` shows it)."""
    print(f"stateful: {STATS['steps']} steps, {STATS['checks']} invariant checks")
    assert STATS["steps"] > 0


def test_a_recorded_sequence_is_a_valid_scenario_file(tmp_path, monkeypatch):
    """What a failure prints is a scenario `alpsim run` accepts."""
    from alpsim.scenario import load_scenario

    monkeypatch.setattr(__import__(__name__), "FAILURE_FILE", str(tmp_path / "failure.yaml"))
    machine = BnbMachine()
    try:
        machine.start()
        machine.open(trader=1, pair="BTC/USD", long=True, leverage=100, amount=100, tp=0.05, sl=0.02)
        machine.move_price(pair="BTC/USD", bps=-30)
        machine.time_passes(seconds=600)
        machine.keeper_runs_triggers()
        machine.close(index=0)
        machine.write_scenario()
    finally:
        machine.teardown()
    scenario = load_scenario(tmp_path / "failure.yaml")
    assert [s.kind for s in scenario.steps] == ["prices", "deposit", "open", "prices", "wait", "keeper", "close"]
    assert scenario.accounts == ["t1", "t2", "t3", "t4", "lp5", "lp6"]
