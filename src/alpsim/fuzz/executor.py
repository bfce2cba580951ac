"""One executor for the fuzzer's rules and checked scenarios: each step is a plain mapping (the
scenario language's `{kind: {fields}}`), run on a deployed system beside the reference model (the
Mirror), then checked (`checks.py`). A rule of the machine draws the fields, records the step and
hands it here; `alpsim run` hands a checked scenario's steps here: so a recorded run replays exactly."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ..client import CloseRejected, OrderRejected
from ..errors import ContractRevert
from ..mirror import Mirror
from ..model.errors import ModelRefusal
from ..units import to_units
from .checks import BPS, WAD, CheckFailed, assert_custom_error, economics_hold, invariants
from .hostile import HostileActions

LOWEST_FEE_BPS = 20
"""The pool's lowest mint and burn fee: 25 bp, 5 less on what moves an asset toward its target."""
PLATFORM_TOKEN_PRICE_USD = 1


@dataclass
class LpFlows:
    """An LP's deposits and withdrawals of the payout stablecoin, in token units (E4)."""

    deposited: int = 0
    withdrawn: int = 0
    withdrawals: int = 0


def plain(value: Any) -> Any:
    """A step's field as the executor takes it: Decimals of whole numbers as int."""
    if isinstance(value, Decimal) and value == value.to_integral_value():
        return int(value)
    return value


class Executor(HostileActions):
    """Runs steps on `sim` (a freshly deployed or reverted system) beside the model.

    `funds`: account name -> whole tokens of the payout stablecoin, or symbol -> whole tokens;
    the names map to dev accounts 1, 2, ... in order; names starting with `lp` are LP-only actors
    (E3, E4), the others traders (E2). `checks`: which of invariants, model, economics run after
    every step (the model's comparison also runs inside each action)."""

    def __init__(self, sim: Any, funds: dict[str, Any], checks: tuple[str, ...] = ("invariants", "model")):
        self.sim = sim
        self.checks = tuple(checks)
        self.mirror = Mirror(sim)
        self.accounts = {name: i + 1 for i, name in enumerate(funds)}
        self.names = {i: name for name, i in self.accounts.items()}
        self.lps = [i for name, i in self.accounts.items() if name.startswith("lp")]
        self.traders = [i for name, i in self.accounts.items() if not name.startswith("lp")]
        self.lp_flows = {lp: LpFlows() for lp in self.lps}
        self.minted = 0
        self.basket_assets = [e for e in sim.deployment.basket if e.role != "collateral"]
        self.asset_minted = {e.symbol: 0 for e in self.basket_assets}
        self.prices: dict[str, Decimal] = {}
        self.positions: dict[str, int] = {}
        """Scenario id -> position id."""
        self.pendings: dict[str, Any] = {}
        """Scenario id -> the pending open request (PendingOpen)."""
        self.economics = None
        self.unsettled: list[int] = []
        """The pairs a bare push left unsettled (a push step), until the next settling step."""
        self.stats: Counter = Counter()
        self.last_refusal: str | None = None
        with self.mirror.checks_every(10_000):  # one whole-state comparison after the funding, not one a mint
            self._fund_all(funds)
        self.mirror.set_platform_token_price(PLATFORM_TOKEN_PRICE_USD)

    def _fund_all(self, funds: dict[str, Any]) -> None:
        payout = self.sim.deployment.basket[0].symbol if self.sim.deployment.basket else None
        for name, spec in funds.items():
            who = self.accounts[name]
            for symbol, amount in (spec.items() if isinstance(spec, dict) else [(None, spec)]):
                if not amount:
                    continue
                if symbol is None or symbol == payout or symbol == self.sim.profile.collateral.symbol:
                    self.mirror.fund(who, amount)
                    self.minted += self.sim.to_units(amount)
                else:
                    self.mirror.fund(who, amount, symbol)
                    self.asset_minted[symbol] += to_units(amount, self.sim.asset_decimals(symbol))

    def name_of(self, who: int) -> str:
        return self.names.get(who, str(who))

    def who(self, name: str) -> int:
        if name not in self.accounts:
            raise ValueError(f"unknown account {name!r}")
        return self.accounts[name]

    # ----- running
    def run(self, step: dict[str, Any]) -> None:
        """Runs one step `{kind: body}` and the checks after it; raises CheckFailed, a
        MirrorMismatch (kind model) or AssertionError (kind invariant) when one fails."""
        ((kind, body),) = step.items()
        body = {k: plain(v) for k, v in (body or {}).items() if v is not None}
        action = getattr(self, f"do_{kind}", None)
        if action is None:
            raise ValueError(f"the executor has no step {kind!r}")
        if kind not in ("push", "deposit", "withdraw"):  # a push's verdict holds for the LP steps right after it
            self.unsettled = []
        action(**body)
        self.after_step()

    def after_step(self) -> None:
        if "model" in self.checks:
            self.mirror.check_if_moved()
        if "invariants" in self.checks:
            invariants(self)
        if "economics" in self.checks:
            economics_hold(self)

    def checkpoint(self) -> None:
        """Between two actions of one step: E1-E4 (so that E3 knows who held ALP when)."""
        if "economics" in self.checks:
            economics_hold(self)

    # ----- helpers
    def same_refusal(self, chain_action, model_action) -> str | None:  # noqa: ANN001
        """The chain reverts exactly when the model refuses, with the same custom error; its
        name, None when both went through."""
        model = self.mirror.model.copy()
        try:
            model_action(model)
            model_error = None
        except ModelRefusal as refusal:
            model_error = refusal.name
        try:
            chain_action()
        except ContractRevert as revert:
            assert_custom_error(self.sim, revert)
            if revert.error_name != model_error:
                raise CheckFailed("model", f"the chain reverts with {revert.error_name}, the model "
                                           f"{'refuses with ' + model_error if model_error else 'goes through'}")
            return model_error
        if model_error is not None:
            raise CheckFailed("model", f"the model refuses ({model_error}) what the chain did")
        return None

    def expect_revert(self, revert: ContractRevert, *expected: str) -> None:
        assert_custom_error(self.sim, revert)
        if revert.error_name not in expected:
            raise CheckFailed("model", f"reverted with {revert.error_name}, expected one of {expected}")

    def payouts_capped(self, closed: list) -> None:
        for c in closed:
            p = c.position
            if c.payout_wad > p.margin_wad + p.max_profit_wad:
                raise CheckFailed("invariant", f"position {p.id} paid {c.payout_wad} wad, more than its margin "
                                               f"and capped profit {p.margin_wad + p.max_profit_wad}")

    def keeper_round(self) -> None:
        """The keeper's round: its prices and every trigger in one transaction (settles them)."""
        self.payouts_capped(self.mirror.keeper_round())
        self.unsettled = []

    def settle_prices(self) -> None:
        self.keeper_round()
        self.mirror.push_asset_prices()

    def payout_price_wad(self) -> int:
        """The keeper's price of the payout stablecoin (it moves too: asset_price), 1 USD unpriced."""
        if not self.sim.deployment.basket:
            return WAD
        price = self.sim.contracts["oracle"].call("keeperPrice", self.sim.deployment.basket[0].price_id)[0]
        return price or WAD

    def alp_price_never_falls(self, before: int) -> None:
        if before and self.sim.pool().alp_supply_wad and self.sim.pool().alp_price_wad < before - 1:
            raise CheckFailed("invariant", f"an LP action lowered the ALP price from {before} to "
                                           f"{self.sim.pool().alp_price_wad} wad")

    def deposit_raw(self, lp: int, amount: Any, asset: str | None = None) -> list:
        """`lp` deposits `amount` (whole tokens), refused exactly when the model refuses;
        refused, nothing moves. [the DepositResult] or []."""
        sim, mirror = self.sim, self.mirror
        before = (sim.asset_units(lp, asset), sim.alp_balance_wad(lp))
        units = to_units(amount, sim.asset_decimals(asset))
        key = mirror.asset_key(asset)
        mirror.fresh_basket_prices(key)
        result: list = []
        self.last_refusal = self.same_refusal(lambda: result.append(mirror.deposit_units(lp, units, asset)),
                                              lambda m: m.deposit(sim.address(lp), units,
                                                                  sim.devnet.clock.next_timestamp, asset=key))
        if result:
            if asset is None and lp in self.lp_flows:
                self.lp_flows[lp].deposited += units
        elif (sim.asset_units(lp, asset), sim.alp_balance_wad(lp)) != before:
            raise CheckFailed("invariant", "a refused deposit moved funds")
        return result

    def withdraw_raw(self, lp: int, alp: int, asset: str | None = None) -> list:
        sim, mirror = self.sim, self.mirror
        before = (sim.asset_units(lp, asset), sim.alp_balance_wad(lp))
        key = mirror.asset_key(asset)
        mirror.fresh_basket_prices(key)
        result: list = []
        self.last_refusal = self.same_refusal(lambda: result.append(mirror.withdraw_wad(lp, alp, asset)),
                                              lambda m: m.withdraw(sim.address(lp), alp,
                                                                   sim.devnet.clock.next_timestamp, asset=key))
        if result and asset is None and lp in self.lp_flows:
            flows = self.lp_flows[lp]
            flows.withdrawn += result[0].amount_out_units
            flows.withdrawals += 1
        elif not result and (sim.asset_units(lp, asset), sim.alp_balance_wad(lp)) != before:
            raise CheckFailed("invariant", "a refused withdrawal moved funds")
        return result

    # ----- market and keeper
    def do_prices(self, **prices: Any) -> None:
        """The keeper's and the reference feeds' prices of pairs (by name)."""
        moved = {pair: Decimal(str(price)) for pair, price in prices.items()}
        self.prices.update(moved)
        self.mirror.set_prices(moved)

    def do_asset_price(self, symbol: str, price: Any, reference: Any) -> None:
        """An asset-only price (a stablecoin's, BNB's): the keeper's, and its reference feed's apart."""
        self.mirror.set_prices({symbol: Decimal(str(price))}, reference=False)
        self.mirror.set_reference(symbol, Decimal(str(reference)))

    def do_reference(self, pair: str, price: Any) -> None:
        """The reference feed of `pair` moves (the keeper's price stays)."""
        self.mirror.set_reference(pair, Decimal(str(price)))

    def do_wait(self, seconds: Any) -> None:
        self.mirror.wait(seconds)

    def do_keeper(self, round: bool = False, online: bool | None = None) -> None:  # noqa: A002
        """The keeper's triggers (its prices unpushed); `round: true`: its prices and every trigger."""
        if online is not None:
            raise ValueError("keeper online/offline is not a step of checked scenarios: use open {pending: true}")
        if round:
            self.keeper_round()
        else:
            self.payouts_capped(self.mirror.run_triggers())

    def do_keeper_gap(self, seconds: Any) -> None:
        """No keeper for `seconds` (positions may come to owe more than their margin), then its round."""
        self.mirror.wait(seconds)
        self.keeper_round()

    def do_push(self, after_s: int = 0) -> None:
        """After `after_s` without the keeper, a bare price push (no triggers): a pair with open
        interest whose price it changed is unsettled until the next round."""
        if after_s:
            self.mirror.wait(after_s)
        model = self.mirror.model
        settled_before = dict(model.settled_until)
        self.mirror.push_prices()
        self.unsettled = [pid for pid in range(len(model.pairs))
                          if (model.side(pid, True).oi_usd or model.side(pid, False).oi_usd)
                          and settled_before.get(pid, 0) and not model.settled_until.get(pid, 0)]

    # ----- LPs
    def do_deposit(self, who: str, amount: Any, asset: str | None = None, settle: bool = True,
                   id: str | None = None) -> None:  # noqa: A002
        """A deposit of the payout stablecoin or a basket asset; `settle` (default): the keeper's
        round first, as LPs need; without: at once (refused while prices are unsettled)."""
        lp = self.who(who)
        if settle:
            self.settle_prices()
        before = self.sim.pool().alp_price_wad
        result = self.deposit_raw(lp, amount, asset)
        if asset is not None:
            self.stats["deposit" if result else f"deposit refused ({self.last_refusal})"] += 1
        if not settle and self.unsettled and result:
            raise CheckFailed("invariant", f"deposited at the unsettled prices of pairs {self.unsettled}")
        if result and asset is None:  # at most the amount less the lowest fee, at the ALP price
            value_in = self.sim.to_units(amount) * 10 ** (18 - self.sim.decimals) * self.payout_price_wad() // WAD
            got = result[0].alp_out_wad * before // WAD
            if got > value_in * (BPS - LOWEST_FEE_BPS) // BPS + 1:
                raise CheckFailed("invariant", f"a deposit of {value_in} wad minted ALP worth {got}")
        if result and asset is not None:
            q = self.mirror.model.pool.last_quote
            if (result[0].alp_out_wad, result[0].fee_wad) != (q.alp_out, q.fee_usd):
                raise CheckFailed("model", f"deposit of {asset}: chain {result[0].alp_out_wad} ALP, fee "
                                           f"{result[0].fee_wad}; model {q.alp_out}, {q.fee_usd}")
        if settle:
            self.alp_price_never_falls(before)

    def do_withdraw(self, who: str, alp: Any = "all", asset: str | None = None, settle: bool = True,
                    id: str | None = None) -> None:  # noqa: A002
        lp = self.who(who)
        alp_wad = self.sim.alp_balance_wad(lp) if alp == "all" else to_units(Decimal(str(alp)), 18)
        if settle:
            self.settle_prices()
        before = self.sim.pool().alp_price_wad
        result = self.withdraw_raw(lp, alp_wad, asset)
        if asset is not None:
            self.stats["withdraw" if result else f"withdraw refused ({self.last_refusal})"] += 1
            if result and result[0].amount_out_units != self.mirror.model.pool.last_quote.amount_out:
                raise CheckFailed("model", f"withdrawal in {asset}: chain {result[0].amount_out_units}, model "
                                           f"{self.mirror.model.pool.last_quote.amount_out}")
        if not settle and self.unsettled and result:
            raise CheckFailed("invariant", f"withdrew at the unsettled prices of pairs {self.unsettled}")
        pool_after = self.sim.pool()
        if result and asset is None and pool_after.alp_supply_wad:
            got = result[0].amount_out_units * 10 ** (18 - self.sim.decimals) * self.payout_price_wad() // WAD
            price = pool_after.alp_price_wad if settle else self.sim.pool_contract.call("redeemAlpPrice")
            worth = alp_wad * price // WAD
            if got > worth * (BPS - LOWEST_FEE_BPS) // BPS + 1:
                raise CheckFailed("invariant", f"a withdrawal paid {got} wad for ALP worth {worth}")
        if settle:
            self.alp_price_never_falls(before)

    # ----- traders
    def request_open(self, trader: int, pair: str, side: str, amount: Any, leverage: int, sid: str, **kw: Any):
        """An open request left pending (None when refused, chain and model alike)."""
        pending: list = []
        self.same_refusal(
            lambda: pending.append(self.mirror.request_open(trader, pair, side, amount, leverage, **kw)),
            lambda m: m.request_open(self.sim.address(trader), self.sim.to_units(amount), b"",
                                     self.sim.devnet.block_number + 1))
        if not pending:
            return None
        self.pendings[sid] = pending[0]
        return pending[0]

    def execute(self, sid: str) -> None:
        """The keeper executes the pending request `sid` (rejected as the model rejects)."""
        pending = self.pendings[sid]
        try:
            opened = self.mirror.execute_open(pending)
            self.positions[sid] = opened.position.id
        except OrderRejected:
            pass

    def do_open(self, id: str, who: str, pair: str, side: str, amount: Any, leverage: int,  # noqa: A002
                tp: Any = None, sl: Any = None, pending: bool = False, **unsupported: Any) -> None:
        """An open request, executed at once by the keeper (`pending: true`: left pending for an
        `execute` or `cancel` step)."""
        if any(unsupported.values()):
            raise ValueError(f"open: {', '.join(unsupported)} are not fields of checked scenarios "
                             "(use the referral and fee_token steps)")
        trader = self.who(who)
        if pending:
            self.request_open(trader, pair, side, amount, leverage, id)
            return
        kw = {"take_profit": Decimal(str(tp or 0)), "stop_loss": Decimal(str(sl or 0))}
        try:
            opened = self.mirror.open(trader, pair, side, amount, leverage, **kw)
            self.positions[id] = opened.position.id
        except OrderRejected:
            pass
        except ContractRevert as revert:  # a request the contract refuses outright
            self.expect_revert(revert, "AmountBelowExecutionFee")

    def do_execute(self, id: str) -> None:  # noqa: A002
        """The keeper comes back for the pending request `id`: executed (or rejected), or, past its
        window, refused with RequestNotExecutable."""
        pending = self.pendings.get(id)
        model = self.mirror.model
        if pending is None or model.requests[pending.request_id].status != "pending":
            return
        if self.sim.devnet.block_number + 1 > model.requests[pending.request_id].block + 10:
            try:
                self.sim.keeper.execute_open(pending.request_id, pending.ciphertext)
            except ContractRevert as revert:
                self.expect_revert(revert, "RequestNotExecutable")
            else:
                raise CheckFailed("model", f"request {id} executed past its window")
            return
        self.execute(id)

    def do_cancel(self, id: str) -> None:  # noqa: A002
        pending = self.pendings.get(id)
        if pending is None:  # never made (refused, or on other contracts): nothing to cancel
            return
        self.same_refusal(
            lambda: self.mirror.cancel(pending.trader, pending.request_id),
            lambda m: m.cancel_request(pending.trader, pending.request_id, self.sim.devnet.block_number + 1))

    def do_close(self, id: str) -> None:  # noqa: A002
        pid = self.positions.get(id)
        if pid is None or pid not in self.mirror.model.positions:  # rejected, or closed by a trigger
            return
        trader = self.mirror.model.positions[pid].trader
        try:
            closed = self.mirror.close(trader, pid)
        except CloseRejected:
            return
        self.payouts_capped([closed])

    def do_referral(self, who: str) -> None:
        """`who` binds a referral code (of the deployer's): its later fees get the discount."""
        trader = self.who(who)
        if self.sim.address(trader) not in self.mirror.model.referred:
            self.mirror.bind_referral(trader, 0)

    def do_fee_token(self, who: str, enabled: bool, funded: bool = False) -> None:
        """`who` pays its fees in the platform token (`funded`: 1,000 of it minted first)."""
        trader = self.who(who)
        if funded:
            self.mirror.fund_platform_token(trader, 1_000)
        self.mirror.set_fee_in_token(trader, enabled)
