"""The executor's hostile steps: undecryptable and malformed orders, reference outages and
breaker trips with the keeper pricing every minute, execution fee changes with requests pending,
guard and rate changes in the middle of a keeper gap, inputs past the types' limits."""

from __future__ import annotations

import random
from dataclasses import replace
from decimal import Decimal
from typing import Any

from ..errors import ContractRevert
from ..keys import encrypt_to_seeded
from ..orders import ORDER_ECIES, commitment, seal
from ..protocol import Order, RejectReason
from .checks import WAD, CheckFailed, assert_custom_error, keeper_verdict

BAD_ORDER_KINDS = ("random_bytes", "garbage_plaintext", "wrong_commitment")
EXTREME_KINDS = ("request_amount", "request_max", "deposit_amount", "price_high", "price_zero", "price_pair",
                 "withdraw_more", "guard_age", "rates")
SETTINGS_KINDS = ("max_age", "breaker", "rates")
FEE_RAISE_THEN = ("execute", "cancel", "leave")
MID_GAP_DEPOSIT = 1_000
MID_GAP_OPEN = 20


class HostileActions:
    """Mixed into the Executor (which provides sim, mirror, same_refusal, keeper_round, ...)."""

    def bad_request(self, griefer: int, amount: Any, ciphertext: bytes, committed: bytes) -> int | None:
        """A raw open request; its id, None when refused (chain and model alike)."""
        rid: list = []
        self.same_refusal(
            lambda: rid.append(self.mirror.request_open_raw(griefer, amount, ciphertext, committed)),
            lambda m: m.request_open(self.sim.address(griefer), self.sim.to_units(amount), committed,
                                     self.sim.devnet.block_number + 1))
        return rid[0] if rid else None

    def reject(self, griefer: int, rid: int, verdict: RejectReason, balance_before: int) -> None:
        """The keeper rejects it on chain: it costs its sender exactly the fee the request stored."""
        fee = self.mirror.model.requests[rid].execution_fee_tokens
        event = self.mirror.reject_open(rid, verdict)
        if event["reason"] != verdict or event["executionFeeTokens"] != fee:
            raise CheckFailed("model", f"rejection of request {rid}: {dict(event)}, expected {verdict.label} at fee {fee}")
        if self.sim.collateral_units(griefer) != balance_before - fee:
            raise CheckFailed("invariant", f"a rejected request cost its sender "
                                           f"{balance_before - self.sim.collateral_units(griefer)} units, not the fee {fee}")

    def do_bad_order(self, who: str, kind: str, amount: Any, seed: int = 0) -> None:
        """`who` escrows an open request the keeper cannot use (its bytes drawn from `seed`); the
        keeper rejects it on chain: refunded less the execution fee the request stored."""
        if kind not in BAD_ORDER_KINDS:
            raise ValueError(f"bad_order kind {kind!r}: one of {', '.join(BAD_ORDER_KINDS)}")
        sim, griefer = self.sim, self.who(who)
        address = sim.address(griefer)
        rnd = random.Random(seed)
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
            committed = commitment(address, replace(order, leverage=order.leverage + 1), salt)
        before = sim.collateral_units(griefer)
        rid = self.bad_request(griefer, amount, ciphertext, committed)
        if rid is None:  # the execution fee is above the amount: refused, nothing moved
            if sim.collateral_units(griefer) != before:
                raise CheckFailed("invariant", "a refused request moved funds")
            return
        verdict = keeper_verdict(sim, ciphertext, committed, address)
        expected = RejectReason.UNDECRYPTABLE_ORDER if kind == "random_bytes" else RejectReason.MALFORMED_ORDER
        if verdict is not expected:
            raise CheckFailed("crash", f"the keeper's verdict on {kind} is {verdict}, not {expected}")
        self.reject(griefer, rid, verdict, before)

    # ----- the keeper every minute, with a failing guard
    def keeper_minutes(self, minutes: int, mid=None) -> None:  # noqa: ANN001
        """The keeper prices every minute for `minutes` minutes, a bare `updatePrices` and its
        trigger round in turn (time held: one block a minute); `mid()` runs halfway."""
        half = minutes // 2
        with self.mirror.checks_every(60), self.sim.devnet.hold_time():
            for minute in range(minutes):
                if minute == half and mid is not None:
                    mid()
                self.sim.devnet.advance_time(60)
                if minute % 2 == 0:
                    self.mirror.push_prices()
                else:
                    self.keeper_round()

    def mid_gap_attempts(self, lp: int, trader: int, pair: str, side: str, sid: str) -> None:
        """While the guard fails: the other LP's deposit and this LP's withdrawal of half its ALP
        (refused as the model refuses), and a trader's open (rejected when the pair's guard fails)."""
        others = [x for x in self.lps if x != lp]
        if others and self.sim.collateral_units(others[0]) >= self.sim.to_units(MID_GAP_DEPOSIT):
            self.deposit_raw(others[0], MID_GAP_DEPOSIT)
            self.checkpoint()
        held = self.sim.alp_balance_wad(lp)
        if held:
            self.withdraw_raw(lp, max(held // 2, 1))
            self.checkpoint()
        if self.sim.collateral_units(trader) >= self.sim.to_units(MID_GAP_OPEN):
            if self.request_open(trader, pair, side, MID_GAP_OPEN, 5, sid) is not None:
                self.execute(sid)

    def do_outage(self, minutes: int, lp: str, trader: str, pair: str, side: str, id: str) -> None:  # noqa: A002
        """The reference feeds get no new round for `minutes` while the keeper prices every minute;
        halfway the LPs and a trader (position `id`) try; then the feeds return and the keeper's round runs."""
        with self.mirror.reference_outage():
            self.keeper_minutes(minutes, lambda: self.mid_gap_attempts(self.who(lp), self.who(trader), pair, side, id))
        self.mirror.refresh_references()
        self.keeper_round()

    def do_breaker_trip(self, pair: str, bps: int, minutes: int, lp: str, trader: str, side: str,
                        id: str) -> None:  # noqa: A002
        """The reference feed of `pair` moves `bps` (signed) from the keeper's price and stays
        (fresh) for `minutes` of the keeper's pricing and the others' attempts; then it comes back."""
        keeper_price = self.prices[pair]
        self.mirror.set_reference(pair, (keeper_price * (10_000 + bps) / 10_000).quantize(Decimal("0.0001")))
        self.keeper_minutes(minutes, lambda: self.mid_gap_attempts(self.who(lp), self.who(trader), pair, side, id))
        self.mirror.set_reference(pair, keeper_price)
        self.keeper_round()

    # ----- admin changes
    def do_fee_raise(self, fee_usd: Any, then: str, restore: bool, id: str, who: str, pair: str, side: str,  # noqa: A002
                     amount: Any, griefer: str, griefer_amount: Any, seed: int = 0) -> None:
        """With a trader's request `id` pending and a griefer's unusable one, the admin sets the
        execution fee to `fee_usd`: each is charged the fee it stored; the trader's is executed,
        cancelled once expired, or left pending (`then`); `restore`: the fee is set back."""
        if then not in FEE_RAISE_THEN:
            raise ValueError(f"fee_raise then {then!r}: one of {', '.join(FEE_RAISE_THEN)}")
        sim, model = self.sim, self.mirror.model
        trader, g = self.who(who), self.who(griefer)
        pending = None
        if sim.collateral_units(trader) >= sim.to_units(amount):
            pending = self.request_open(trader, pair, side, amount, 5, id)
        griefer_before, rid = sim.collateral_units(g), None
        if griefer_before >= sim.to_units(griefer_amount):
            rnd = random.Random(seed)
            rid = self.bad_request(g, griefer_amount, rnd.randbytes(148), rnd.randbytes(32))
        old_fee = Decimal(model.settings.execution_fee_usd) / WAD
        self.mirror.set_execution_fee(Decimal(str(fee_usd)))
        if rid is not None:
            self.reject(g, rid, RejectReason.UNDECRYPTABLE_ORDER, griefer_before)
        if pending is not None and then == "execute":
            self.execute(id)
        elif pending is not None and then == "cancel":
            before = sim.collateral_units(trader)
            self.mirror.mine(model.settings.request_expiry_blocks + 1)
            refused = self.same_refusal(
                lambda: self.mirror.cancel(pending.trader, pending.request_id),
                lambda m: m.cancel_request(pending.trader, pending.request_id, sim.devnet.block_number + 1))
            if refused is not None or sim.collateral_units(trader) != before + pending.amount_units:
                raise CheckFailed("invariant", f"an expired request's cancel ({refused}) did not refund its escrow")
        if restore:
            self.mirror.set_execution_fee(old_fee)

    def do_settings_change(self, kind: str, level: int, before_s: int, after_s: int, mid_round: bool) -> None:
        """After `before_s` of a keeper gap the admin changes the maximum price age, the breaker or
        the rates (`level` 0-2), and sets it back after `after_s` more (the keeper's round in between
        when `mid_round`); then the keeper's round. Accrual never applies a setting backwards."""
        if kind not in SETTINGS_KINDS or level not in (0, 1, 2):
            raise ValueError(f"settings_change: kind one of {', '.join(SETTINGS_KINDS)}, level 0-2")
        mirror, model = self.mirror, self.mirror.model
        mirror.wait(before_s)
        if kind == "rates":
            old = (model.holding_rate_per_hour_wad, model.funding_rate_per_hour_wad)
            mirror.set_rates(*[(0, 0), (old[0] * 10, old[1] * 10), (old[0], old[1] * 100)][level])
        else:
            old = (model.max_price_age_s, model.circuit_breaker_bps)
            if kind == "max_age":
                mirror.set_price_guards(max_age_s=[30, 600, 3600][level])
            else:
                mirror.set_price_guards(breaker_bps=[50, 300, 1000][level])
        if mid_round:
            self.keeper_round()
        mirror.wait(after_s)
        if kind == "rates":
            mirror.set_rates(*old)
        else:
            mirror.set_price_guards(max_age_s=old[0], breaker_bps=old[1])
        self.keeper_round()

    def do_extreme(self, kind: str) -> None:
        """An input past the types' limits: refused with a custom error (the model's where it has
        one), never a Panic and never taken."""
        if kind not in EXTREME_KINDS:
            raise ValueError(f"extreme kind {kind!r}: one of {', '.join(EXTREME_KINDS)}")
        sim, model = self.sim, self.mirror.model
        trading, keeper = sim.contracts["trading"], sim.keeper.address
        griefer, lp = sim.address(self.traders[-1]), sim.address(self.lps[-1] if self.lps else self.traders[0])
        block, now = sim.devnet.block_number + 1, sim.devnet.clock.next_timestamp
        collateral = sim.pool_contract.call("collateral")
        if kind in ("request_amount", "request_max"):
            amount = 2**128 if kind == "request_amount" else 2**256 - 1
            refused = self.same_refusal(lambda: trading.transact("requestOpen", b"\0" * 32, b"", amount, sender=griefer),
                                        lambda m: m.request_open(griefer, amount, b"\0" * 32, block))
        elif kind == "deposit_amount":
            amount = 2**256 - 1
            refused = self.same_refusal(lambda: sim.pool_contract.transact("deposit", collateral, amount, 0, sender=lp),
                                        lambda m: m.deposit(lp, amount, now))
        elif kind == "withdraw_more":
            alp = model.pool.alp.get(lp, 0) + 1
            refused = self.same_refusal(lambda: sim.pool_contract.transact("withdraw", alp, collateral, 0, sender=lp),
                                        lambda m: m.withdraw(lp, alp, now))
        elif kind.startswith("price"):
            pair_id, price = {"price_high": (0, 2**128), "price_zero": (1, 0),
                              "price_pair": (len(model.pairs), 10**18)}[kind]
            refused = self.same_refusal(lambda: trading.transact("updatePrices", [(pair_id, price)], sender=keeper),
                                        lambda m: m.apply_prices({pair_id: price}, now))
        else:  # admin settings past their storage types
            deployer = sim.deployment.deployer
            try:
                if kind == "guard_age":
                    sim.contracts["oracle"].transact("setGuardSettings", 2**64, 100, 10, sender=deployer)
                else:
                    sim.contracts["market"].transact("setRates", 2**64, 0, sender=deployer)
            except ContractRevert as revert:
                assert_custom_error(sim, revert)
                refused = revert.error_name
            else:
                refused = None
        if refused is None:
            raise CheckFailed("invariant", f"an extreme input ({kind}) went through")

    def do_admin(self, execution_fee_usd: Any = None, holding_rate_wad: int | None = None,
                 funding_rate_wad: int | None = None, max_price_age_s: int | None = None,
                 breaker_bps: int | None = None) -> None:
        """The admin changes a setting: the execution fee (USD), the rates (per hour, wad), the
        price guard's maximum age and breaker."""
        if execution_fee_usd is not None:
            self.mirror.set_execution_fee(Decimal(str(execution_fee_usd)))
        if holding_rate_wad is not None or funding_rate_wad is not None:
            m = self.mirror.model
            self.mirror.set_rates(m.holding_rate_per_hour_wad if holding_rate_wad is None else holding_rate_wad,
                                  m.funding_rate_per_hour_wad if funding_rate_wad is None else funding_rate_wad)
        if max_price_age_s is not None or breaker_bps is not None:
            self.mirror.set_price_guards(max_age_s=max_price_age_s, breaker_bps=breaker_bps)

