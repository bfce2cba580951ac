"""Invariants under random play (hypothesis RuleBasedStateMachine) on the embedded devnet,
both chain profiles. Every action of every actor is a rule, hostile ones included: a keeper
gap (hours to a week without the keeper, then its round: fresh prices for every pair and the
triggers of every open position in one transaction), a griefer's open requests the keeper
cannot use (random bytes, a well-encrypted garbage plaintext, a real order under a wrong
commitment: each rejected on chain with `rejectOpen`), an LP withdrawing right after a bare
price push (no triggers). After every step:

- the chain equals the reference model (positions, balances, indexes, aggregates, NAV, ALP
  prices, ALP holdings: the Mirror compares after each action),
- conservation: the collateral held by pool, escrow, treasury, keeper, traders, griefer and LPs
  sums to what was minted, to the unit,
- the pool covers its reserve; the escrow holds exactly the pending requests plus the open
  margins (so every request can still end executed, rejected or cancelled with its refund),
- no trader receives more than margin plus the capped profit,
- a deposit or withdrawal moves the ALP price only up, and by no more than its fee; a
  withdrawal pays at most the ALP's worth at the redemption price less the fee,
- a rejected hostile request costs its sender exactly the execution fee.

A second machine (`EconomicMachine`: the same rules but `move_price` and `reference_gap`, so
prices never move) also checks the economics after every step, with every open position
valued at the keeper price as if settled now, its close fee left out:

  value  = max(0, margin + pnl - holding - funding)     (the trader's; model.accrued_charges)
  claim  = margin - value = min(margin, holding + funding - pnl)   (the pool's)
  collectible NAV = pool balance + sum of the claims;  collectible price = that / ALP supply

- E1 the collectible price never falls (rounding: 4 wei per position and one token unit of
  NAV). With prices fixed, the pool only gains: fees, trader slippage, holding and funding
  (its share of close fees lands at settlement). It is the yardstick and not the pool's
  `redeemAlpPrice()`, because that price by construction falls while a lighter side accrues
  funding (it keeps what the pool owes that side and leaves out what the heavier side owes),
  and rises back when the heavier side pays (tests/test_lp_attacks.py shows it).
- E2 the traders as a group (t1..t4 and the griefer) never gain: the sum of their collateral,
  pending open escrow and position values never rises (same rounding). Funding only moves
  value from the heavier side to the lighter one and the pool, holding to the pool.
- E3 no LP-only actor (lp5, lp6 never trade) gains by its own actions: its value (collateral +
  ALP x collectible price) never grows by more than its previous ALP x the rise of the
  collectible price (what the others paid into the pool since). Deposits price ALP at NAV
  (>= collectible), withdrawals at the redemption NAV: neither may take value from the others.

Every machine runs on the revm backend. `make test` runs a fixed, seeded budget (4 machines x 25
examples x 30 steps, at least 2,000 steps); `make soak` a long one (ALPSIM_SOAK_EXAMPLES x ALPSIM_SOAK_STEPS per
machine, default 100 x 60).
"""

from __future__ import annotations

import os
import random
from dataclasses import replace
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, rule

from alpsim.client import Alpsim, CloseRejected, OrderRejected
from alpsim.errors import ContractRevert
from alpsim.keys import decrypt_with, encrypt_to_seeded
from alpsim.mirror import Mirror
from alpsim.model.math import pnl_usd_floor
from alpsim.model.trading import ESCROW, POOL, TREASURY, ModelRefusal, Order, RejectReason
from alpsim.orders import ORDER_ECIES, UndecryptableOrder, commitment, decode_order, seal

PAIRS = {"BTC/USD": (60_000, 1001), "ETH/USD": (3_000, 1001), "SOL/USD": (150, 100), "AAPL/USD": (200, 50)}
TRADERS = [1, 2, 3, 4]
LPS = [5, 6]
GRIEFER = 10
"""Sends open requests the keeper cannot use (accounts 8 and 9 are the treasury and keeper)."""
ACCOUNTS = 11
WAD = 10**18
EXAMPLES = int(os.environ.get("ALPSIM_SOAK_EXAMPLES", "25"))
STEPS = int(os.environ.get("ALPSIM_SOAK_STEPS", "30"))
"""The CI budget: 4 machines x 25 examples x up to 30 steps, about 2,800 steps (at least
CI_MIN_STEPS, checked), on revm (a few milliseconds of EVM a step; the model and the checks take
most of the time). `make soak` runs 4 x 100 x 60, about 24,000."""
CI_MIN_STEPS = 2_000
STATS = {"steps": 0, "checks": 0, "economic_checks": 0, "by_machine": {}}

_SIMS: dict[tuple[str, str], Alpsim] = {}
NAMES = {1: "t1", 2: "t2", 3: "t3", 4: "t4", 5: "lp5", 6: "lp6", GRIEFER: "g10"}
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


def _sim(chain: str, backend: str) -> Alpsim:
    if (chain, backend) not in _SIMS:
        _SIMS[chain, backend] = Alpsim.launch(chain, backend, seed=99, accounts=ACCOUNTS)
    return _SIMS[chain, backend]


def keeper_verdict(sim: Alpsim, ciphertext: bytes, commitment_: bytes, trader: str) -> RejectReason | None:
    """What the keeper makes of an open request: UndecryptableOrder when its key does not open
    the ciphertext, MalformedOrder when the plaintext is no order or not the committed one,
    None for a usable order."""
    try:
        payload = decrypt_with(sim.keeper.private_key, ciphertext, ORDER_ECIES)
    except Exception:  # noqa: BLE001 - eciespy raises ValueError and cryptography errors
        return RejectReason.UNDECRYPTABLE_ORDER
    try:
        order, salt = decode_order(payload)
    except UndecryptableOrder:
        return RejectReason.MALFORMED_ORDER
    if commitment(trader, order, salt) != commitment_:
        return RejectReason.MALFORMED_ORDER
    return None


class ExchangeMachine(RuleBasedStateMachine):
    chain = "bnb"
    backend = "revm"  # the same bytecode as eth-tester's (the scenario and throughput parity tests prove it), faster
    pendings = Bundle("pendings")

    def __init__(self) -> None:
        super().__init__()
        self.sim = _sim(self.chain, self.backend)
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
        self._fund(GRIEFER, 1_000)
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

    # ----- hostile actors
    @rule(seconds=st.sampled_from([3600, 6 * 3600, 86_400, 3 * 86_400, 7 * 86_400]))
    @_dump_on_failure
    def keeper_gap(self, seconds: int) -> None:
        """Hours to a week with no keeper (positions come to owe more than their margin), then
        its round: fresh prices for every pair and every trigger in one transaction."""
        self.step(f"- wait: {{seconds: {seconds}}}  # no keeper")
        self.step("- keeper: {}")
        self.mirror.wait(seconds)
        for closed in self.mirror.keeper_round():
            p = closed.position
            assert closed.payout_wad <= p.margin_wad + p.max_profit_wad

    @rule(kind=st.sampled_from(["random_bytes", "garbage_plaintext", "wrong_commitment"]),
          amount=st.integers(min_value=1, max_value=50), seed=st.integers(min_value=0, max_value=2**32 - 1))
    @_dump_on_failure
    def bad_order(self, kind: str, amount: int, seed: int) -> None:
        """The griefer escrows an open request the keeper cannot use; the keeper rejects it on
        chain: refunded less the execution fee, which the keeper keeps."""
        sim = self.sim
        griefer = sim.address(GRIEFER)
        if sim.collateral_units(griefer) < sim.to_units(amount):
            return
        rnd = random.Random(seed)  # the bytes follow from hypothesis's draw: reproducible
        key = sim.keeper_public_key
        if kind == "random_bytes":  # as long as an order's ciphertext
            ciphertext, committed = rnd.randbytes(148), rnd.randbytes(32)
        elif kind == "garbage_plaintext":  # decrypts, but to no order
            payload = rnd.randbytes(rnd.choice([0, 1, 86, 87, 88, 300]))
            ciphertext = encrypt_to_seeded(key, payload, rnd.randbytes(44), ORDER_ECIES)
            committed = rnd.randbytes(32)
        else:  # a real order, committed as another one
            order = Order(rnd.randrange(4), rnd.random() < 0.5, rnd.choice([5, 50, 1000]))
            salt = rnd.randbytes(32)
            ciphertext = seal(order, salt, key, rnd.randbytes(44))
            committed = commitment(griefer, replace(order, leverage=order.leverage + 1), salt)
        self.step(f"# g10 sends an open request of {amount} with {kind.replace('_', ' ')}: the keeper rejects it "
                  "(no scenario step for it)")
        before = sim.collateral_units(griefer)
        rid = self.mirror.request_open_raw(GRIEFER, amount, ciphertext, committed)
        verdict = keeper_verdict(sim, ciphertext, committed, griefer)
        expected = RejectReason.UNDECRYPTABLE_ORDER if kind == "random_bytes" else RejectReason.MALFORMED_ORDER
        assert verdict is expected, (kind, verdict)
        event = self.mirror.reject_open(rid, verdict)
        fee = self.mirror.model.execution_fee_tokens()
        assert event["reason"] == verdict and event["executionFeeTokens"] == fee
        assert sim.collateral_units(griefer) == before - fee

    @rule(lp=st.sampled_from(LPS), share=st.integers(min_value=1, max_value=100),
          seconds=st.sampled_from([0, 61, 3600, 86_400]))
    @_dump_on_failure
    def lp_withdraws_after_price_push(self, lp: int, share: int, seconds: int) -> None:
        """After a while without the keeper, a bare price push (no triggers: positions may owe
        more than their margin) and the LP withdraws at once, at the redemption price."""
        held = self.sim.alp_balance_wad(lp)
        if held == 0:
            return
        alp = max(held * share // 100, 1)
        if seconds:
            self.step(f"- wait: {{seconds: {seconds}}}  # no keeper")
            self.mirror.wait(seconds)
        self.step("# a bare price push, no triggers (no scenario step for it)")
        self.step(f"- withdraw: {{who: {NAMES[lp]}, alp: {Decimal(alp) / 10**18}}}")
        self.mirror.push_prices()
        result = []
        self._same_refusal(lambda: result.append(self.mirror.withdraw(lp, Decimal(alp) / 10**18)),
                           lambda m: m.withdraw(self.sim.address(lp), alp, self.sim.devnet.clock.next_timestamp))
        if result and self.sim.pool().alp_supply_wad:
            # at most the ALP's worth at the redemption price of its own block (read after it:
            # the fee stayed), less the fee
            got = result[0].amount_out_units * 10 ** (18 - self.sim.decimals)
            worth = alp * self.sim.pool_contract.call("redeemAlpPrice") // WAD
            assert got <= worth * 9_975 // 10_000 + 1, (got, worth)

    # ----- invariants
    @invariant()
    @_dump_on_failure
    def chain_equals_model_and_value_is_conserved(self) -> None:
        STATS["steps"] += 1
        by_machine = STATS["by_machine"]
        by_machine[type(self).__name__] = by_machine.get(type(self).__name__, 0) + 1
        self.mirror.check()
        sim, model = self.sim, self.mirror.model
        token = sim.contracts["collateral"]
        holders = {sim.address(a) for a in TRADERS + LPS + [GRIEFER]} | {sim.deployment.keeper, sim.deployment.treasury,
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


class Economics:
    """The E1-E3 quantities of one state (module docstring), in 18-decimal USD."""

    def __init__(self, sim: Alpsim, model) -> None:  # noqa: ANN001
        now = sim.devnet.timestamp
        scale = model.scale
        traders = {sim.address(a) for a in TRADERS + [GRIEFER]}
        self.supply = model.pool.alp_supply
        self.positions = len(model.positions)
        self.traders = sum(model.balances.get(t, 0) for t in traders) * scale
        self.traders += sum(r.amount_in for r in model.requests.values()
                            if r.kind == "open" and r.status == "pending" and r.trader in traders) * scale
        nav = model.pool.pool_balance * scale
        for p in model.positions.values():
            assert p.trader in traders, p
            pnl = pnl_usd_floor(p.is_long, p.qty, p.entry_price, model.keeper_prices[p.pair_id][0])
            holding, funding = model.accrued_charges(p, now)
            claim = min(p.margin_usd, holding + funding - pnl)
            nav += claim
            self.traders += p.margin_usd - claim
        self.nav = nav
        self.price = Fraction(nav * WAD, self.supply) if self.supply else None
        self.alp = {lp: model.pool.alp.get(sim.address(lp), 0) for lp in LPS}
        self.lps = {lp: model.balances.get(sim.address(lp), 0) * scale + Fraction(self.alp[lp] * nav, self.supply or 1)
                    for lp in LPS}


class EconomicMachine(ExchangeMachine):
    """The same actors with prices that never move (no `move_price`, no `reference_gap`),
    checking E1-E3 of the module docstring after every step."""

    move_price = None
    reference_gap = None

    def __init__(self) -> None:
        super().__init__()
        self.economics: Economics | None = None

    @rule(seconds=st.sampled_from([1, 30, 61, 600, 3600, 86_400, 172_800]))
    @_dump_on_failure
    def time_passes(self, seconds: int) -> None:
        """Time passes with a live keeper: its round (every priced pair and every trigger in one
        transaction) ends the wait, as SPEC 5.8's keeper runs before anything can use a fresh
        price. Without it, an open executed after a long wait records a fresh price while a
        bankrupt heavier side is still open, and for up to a minute the lighter side receives
        funding the heavier side cannot pay (`keeper_gap` is the keeper away, then its round)."""
        self.step(f"- wait: {{seconds: {seconds}}}")
        self.step("- keeper: {}")
        self.mirror.wait(seconds)
        for closed in self.mirror.keeper_round():
            p = closed.position
            assert closed.payout_wad <= p.margin_wad + p.max_profit_wad

    @invariant()
    @_dump_on_failure
    def nobody_gains_at_fixed_prices(self) -> None:
        now, before = Economics(self.sim, self.mirror.model), self.economics
        self.economics = now
        if before is None or before.price is None or now.price is None:
            return
        # rounding: each charge and pnl is one floor or ceil (4 wei a position), and the
        # token conversions of a settlement or withdrawal one token unit
        tolerance = 4 * (before.positions + now.positions) + 4 + self.mirror.model.scale
        # E1: the collectible price never falls
        assert now.price >= before.price - Fraction(tolerance * WAD, now.supply), \
            ("collectible ALP price fell", float(before.price / WAD), float(now.price / WAD))
        # E2: the traders as a group never gain
        assert now.traders <= before.traders + tolerance, \
            ("traders gained", float(Fraction(now.traders - before.traders, WAD)))
        # E3: no LP-only actor gains by more than its ALP's share of the price's rise
        for lp in LPS:
            allowed = before.lps[lp] + before.alp[lp] * (now.price - before.price) / WAD + tolerance
            assert now.lps[lp] <= allowed, (f"{NAMES[lp]} gained", float((now.lps[lp] - allowed) / WAD))
        STATS["economic_checks"] += 1


class BnbMachine(ExchangeMachine):
    chain = "bnb"


class ArbitrumMachine(ExchangeMachine):
    chain = "arbitrum"


class BnbEconomicMachine(EconomicMachine):
    chain = "bnb"


class ArbitrumEconomicMachine(EconomicMachine):
    chain = "arbitrum"


SETTINGS = settings(max_examples=EXAMPLES, stateful_step_count=STEPS, deadline=None, derandomize=True,
                    suppress_health_check=list(HealthCheck))

TestBnb = BnbMachine.TestCase
TestBnb.settings = SETTINGS
TestArbitrum = ArbitrumMachine.TestCase
TestArbitrum.settings = SETTINGS
TestBnbEconomic = BnbEconomicMachine.TestCase
TestBnbEconomic.settings = SETTINGS
TestArbitrumEconomic = ArbitrumEconomicMachine.TestCase
TestArbitrumEconomic.settings = SETTINGS


def test_report_budget():
    """Prints what the run did (visible with -s; `make soak` shows it)."""
    machines = ", ".join(f"{name} {n}" for name, n in sorted(STATS["by_machine"].items()))
    print(f"stateful: {STATS['steps']} steps ({machines}), {STATS['checks']} invariant checks, "
          f"{STATS['economic_checks']} economic checks")
    assert STATS["steps"] > 0
    if len(STATS["by_machine"]) == 4 and (EXAMPLES, STEPS) == (25, 30):  # the whole CI budget ran
        assert STATS["steps"] >= CI_MIN_STEPS


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
