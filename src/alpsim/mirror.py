"""Drives a deployed system and the reference model in lockstep, and compares them: every
position field, balance, index, aggregate, NAV and ALP price, to the unit; the ALP basket's
assets, holdings and every account's balance of each (docs/mechanics.md section 10)."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import fields, replace
from typing import Any, Iterator

from .client import Account, Alpsim, ClosedPosition, OpenedPosition, OrderRejected
from .mirror_basket import ZERO, BasketMirror, MirrorMismatch
from .model.pool import PoolModel
from .model.trading_engine import ESCROW, POOL, TREASURY, ExchangeModel
from .protocol import Order, RejectReason
from .units import Number, to_units


class Mirror(BasketMirror):
    """`sim` and an ExchangeModel moved by the same actions. Each action returns what the chain
    returned; `check()` compares the whole state (called after every action by default)."""

    def __init__(self, sim: Alpsim, *, check_every_step: bool = True):
        self.sim = sim
        payout = sim.contracts["collateral"].address
        self.model = ExchangeModel(decimals=sim.decimals, settings=sim.settings,
                                   pool=PoolModel(decimals=sim.decimals, payout_key=payout))
        self.check_every_step = check_every_step
        self.accounts: set[str] = {sim.deployment.keeper, sim.deployment.treasury}
        self._role_of = {sim.contracts["trading"].address: ESCROW, sim.contracts["pool"].address: POOL,
                         sim.deployment.treasury: TREASURY}
        self._checked_head: tuple[int, bytes] | None = None
        """(number, hash) of the latest block when `check()` last passed."""
        self.sync_basket()

    # ----- helpers
    def _key(self, address: str) -> str:
        return self._role_of.get(address, address)

    def _stamp(self, receipt: dict) -> tuple[int, int]:
        """(timestamp, number) of the receipt's block."""
        block = self.sim.session.block(receipt["blockNumber"])
        return block.timestamp, block.number

    def _head(self) -> tuple[int, bytes]:
        """(number, hash) of the latest block."""
        latest = self.sim.session.block("latest")
        return latest.number, latest.hash

    def _sync_references(self, asset_keeper_prices: bool = False) -> None:
        """The reference feeds (outside the model: Chainlink) of every pair, then those of the
        basket's asset-only prices (and, with `asset_keeper_prices`, the keeper's prices there
        as the chain has them: `_sync_asset_prices`)."""
        oracle = self.sim.contracts["oracle"]
        for pair_id in range(len(self.model.pairs)):
            price, at = oracle.call("referencePrice", pair_id)
            if price:
                self.model.set_reference(pair_id, price, at)
        self._sync_asset_prices(asset_keeper_prices)

    def _after(self) -> None:
        if self.check_every_step:
            self.check()

    # ----- actions
    def fund(self, who: Account, amount: Number, asset: str | None = None) -> None:
        """Mints `amount` (whole tokens) of the payout token, or of basket asset `asset` (its
        symbol or address; a devnet mock)."""
        addr = self.sim.address(who)
        self.accounts.add(addr)
        key = self.asset_key(asset)
        if key is None or key == self.model.pool.payout_key:
            self.sim.fund(addr, amount)
            self.model.balances[addr] = self.model.balances.get(addr, 0) + self.sim.to_units(amount)
        else:
            units = to_units(amount, self._asset_decimals(key))
            self._token(key).transact("mint", addr, units, sender=self.sim.deployment.deployer)
            self.model.mint_asset(addr, units, key)
        self._after()

    def fund_platform_token(self, who: Account, amount: Number) -> None:
        addr = self.sim.address(who)
        self.sim.fund_platform_token(addr, amount)
        self.model.token_balances[addr] = self.model.token_balances.get(addr, 0) + to_units(amount, 18)
        self.model.token_allowance_ok[addr] = True

    def set_fee_in_token(self, who: Account, enabled: bool = True) -> None:
        addr = self.sim.address(who)
        self.sim.set_fee_in_token(addr, enabled)
        (self.model.fee_in_token.add if enabled else self.model.fee_in_token.discard)(addr)

    def set_platform_token_price(self, price: Number) -> None:
        wad = to_units(price, 18)
        self.sim.contracts["oracle"].transact("setPlatformTokenPrice", wad, sender=self.sim.keeper.address)
        self.model.platform_token_price = wad

    def bind_referral(self, who: Account, referrer: Account, code: str = "alpsim") -> None:
        if self.sim.contracts["referrals"].call("referrerOfCode", code.encode().ljust(32, b"\0")) == ZERO:
            self.sim.register_referral_code(referrer, code)
        addr = self.sim.address(who)
        self.sim.bind_referral(addr, code)
        self.model.referred.add(addr)

    def deposit(self, who: Account, amount: Number, asset: str | None = None, *, min_alp_out_wad: int = 0):
        """Deposits `amount` (whole tokens) of the payout token or of basket `asset` (its symbol
        or address) through the client; its DepositResult."""
        units = to_units(amount, self._asset_decimals(self.asset_key(asset)), "deposit amount")
        return self.deposit_units(who, units, asset, min_alp_out_wad=min_alp_out_wad)

    def withdraw(self, who: Account, alp: Any = "all", asset: str | None = None, *, min_out_units: int = 0):
        """Redeems `alp` ALP (or all) for the payout token or for basket `asset` through the
        client; its WithdrawResult."""
        addr = self.sim.address(who)
        alp_wad = self.sim.alp_balance_wad(addr) if alp == "all" else to_units(alp, 18, "ALP amount")
        return self.withdraw_wad(who, alp_wad, asset, min_out_units=min_out_units)

    def set_prices(self, prices: dict, *, reference: bool = True) -> None:
        self.sim.keeper.set_prices(prices, reference=reference)
        self._sync_references()

    def set_reference(self, pair: str | int, price: Number) -> None:
        self.sim.keeper.set_reference(pair, price)
        self._sync_references()

    def refresh_references(self, pairs: list[str | int] | None = None) -> None:
        """A new round of each pair's reference feed (default: every pair the keeper prices)
        at the feed's current answer: the reference is fresh again, unmoved."""
        keeper, oracle = self.sim.keeper, self.sim.contracts["oracle"]
        ids = sorted(keeper.prices) if pairs is None else sorted({self.sim.pair_id(p) for p in pairs})
        answers = {pair_id: oracle.call("referencePrice", pair_id)[0] for pair_id in ids}
        keeper.set_references({pair_id: price for pair_id, price in answers.items() if price})
        self._sync_references()

    @contextmanager
    def reference_outage(self) -> Iterator[None]:
        """Within: the reference feeds get no new round (the keeper's automatic refresh is
        off), so they age while the keeper goes on pricing."""
        keeper = self.sim.keeper
        saved, keeper.auto_refresh_reference = keeper.auto_refresh_reference, False
        try:
            yield
        finally:
            keeper.auto_refresh_reference = saved

    @contextmanager
    def checks_every(self, actions: int) -> Iterator[None]:
        """Within: the whole-state comparison runs after every `actions`-th action instead of
        after each one (long runs of cheap actions), and once more on leaving."""
        saved, counter = self.check_every_step, [0]
        outer = self.__dict__.get("_after")  # an enclosing `checks_every`'s

        def every() -> None:
            counter[0] += 1
            if saved and counter[0] % actions == 0:
                self.check()

        self.check_every_step = False
        self._after = every  # type: ignore[method-assign]
        try:
            yield
        finally:
            if outer is None:
                del self._after
            else:
                self._after = outer  # type: ignore[method-assign]
            self.check_every_step = saved
            if saved:
                self.check()

    def set_price_guards(self, *, max_age_s: int | None = None, breaker_bps: int | None = None,
                         worse_bps: int | None = None) -> None:
        """The oracle's guard settings (`setGuardSettings`, admin); None keeps a setting."""
        m = self.model
        settings = (m.max_price_age_s if max_age_s is None else max_age_s,
                    m.circuit_breaker_bps if breaker_bps is None else breaker_bps,
                    m.worse_price_bps if worse_bps is None else worse_bps)
        receipt = self.sim.contracts["oracle"].transact("setGuardSettings", *settings,
                                                        sender=self.sim.deployment.deployer)
        ts, _ = self._stamp(receipt)
        m.set_guard_settings(*settings, ts)  # accrues first, as the contract
        self._after()

    def set_rates(self, holding_per_hour_wad: int, funding_per_hour_wad: int) -> None:
        """The market's holding and funding rates (`setRates`, admin)."""
        receipt = self.sim.contracts["market"].transact("setRates", holding_per_hour_wad, funding_per_hour_wad,
                                                        sender=self.sim.deployment.deployer)
        ts, _ = self._stamp(receipt)
        self.model.set_rates(holding_per_hour_wad, funding_per_hour_wad, ts)
        self._after()

    def set_execution_fee(self, fee_usd: Number) -> None:
        """The engine's execution fee (`setSettings`, admin): later requests pay it; pending
        ones keep the fee they were made with."""
        fee_wad = to_units(fee_usd, 18)
        trading = self.sim.contracts["trading"]
        current = {**dict(trading.call("settings")), "executionFeeUsd": fee_wad}
        (setter,) = [e for e in trading.abi if e.get("type") == "function" and e["name"] == "setSettings"]
        struct = tuple(current[c["name"]] for c in setter["inputs"][0]["components"])  # in the ABI's order
        trading.transact("setSettings", struct, sender=self.sim.deployment.deployer)
        self.model.settings = replace(self.model.settings, execution_fee_usd=fee_wad)
        self._after()

    def push_prices(self) -> None:
        receipt = self.sim.keeper.push_prices()
        ts, _ = self._stamp(receipt)
        self._sync_references()
        self.model.update_prices(dict(self._pushed(receipt)), ts)
        self._after()

    def _pushed(self, receipt: dict) -> list[tuple[int, int]]:
        return [(e["pairId"], e["price"]) for e in self.sim.session.events(receipt, "PriceUpdated")]

    def request_open(self, who: Account, pair: str | int, side: str, amount: Number, leverage: int, **kw: Any):
        addr = self.sim.address(who)
        pending = self.sim.request_open(addr, pair, side, amount, leverage, **kw)
        _, block = self._stamp(pending.receipt)
        rid = self.model.request_open(addr, pending.amount_units, b"", block)
        assert rid == pending.request_id, (rid, pending.request_id)
        self._after()
        return pending

    def request_open_raw(self, who: Account, amount: Number, ciphertext: bytes, commitment: bytes = b"\0" * 32) -> int:
        """An open request with any ciphertext and commitment (what a hostile client can send);
        its request id."""
        addr = self.sim.address(who)
        trading = self.sim.contracts["trading"]
        units = self.sim.to_units(amount)
        self.sim.approve_collateral(addr)
        receipt = trading.transact("requestOpen", commitment, ciphertext, units, sender=addr)
        rid = self.sim.session.events(receipt, "OpenRequested")[0]["requestId"]
        _, block = self._stamp(receipt)
        assert self.model.request_open(addr, units, commitment, block) == rid
        self._after()
        return rid

    def reject_open(self, request_id: int, reason: RejectReason) -> dict:
        """The keeper's on-chain rejection of an order it cannot use; the OpenRejected event."""
        receipt = self.sim.contracts["trading"].transact("rejectOpen", request_id, int(reason),
                                                         sender=self.sim.keeper.address)
        _, block = self._stamp(receipt)
        self.model.reject_open(request_id, reason, block, self.sim.keeper.address)
        self._compare_fee_paid(request_id, receipt)
        self._after()
        return self.sim.session.events(receipt, "OpenRejected")[0]

    def execute_open(self, pending: Any) -> OpenedPosition:
        """Executes a pending open; returns the position or raises OrderRejected."""
        before = self.sim.collateral_units(pending.trader) + pending.amount_units  # as before the request
        receipt = self.sim.keeper.execute_open(pending.request_id, pending.ciphertext)
        ts, block = self._stamp(receipt)
        self._sync_references()
        result = self.model.execute_open(pending.request_id, pending.order, dict(self._pushed(receipt)), ts, block,
                                         self.sim.keeper.address)
        chain_rejected = self.sim.session.events(receipt, "OpenRejected")
        chain_reason = RejectReason(chain_rejected[0]["reason"]) if chain_rejected else RejectReason.NONE
        if chain_reason is not result.reason:
            raise MirrorMismatch(f"request {pending.request_id}: chain {chain_reason.label}, model {result.reason.label}")
        self._compare_fee_paid(pending.request_id, receipt)
        self._after()
        return self.sim.opened_from(pending, before, receipt)

    def open(self, who: Account, pair: str | int, side: str, amount: Number, leverage: int, **kw: Any) -> OpenedPosition:
        pending = self.request_open(who, pair, side, amount, leverage, **kw)
        return self.execute_open(pending)

    def close(self, who: Account, position_id: int) -> ClosedPosition:
        addr = self.sim.address(who)
        rid, receipt = self.sim.request_close(addr, position_id)
        _, block = self._stamp(receipt)
        assert self.model.request_close(addr, position_id, block) == rid
        receipt = self.sim.keeper.execute_close(rid)
        ts, block = self._stamp(receipt)
        self._sync_references()
        outcome = self.model.execute_close(rid, dict(self._pushed(receipt)), ts, block)
        self._after()
        closed = self.sim.closed_from(receipt)
        if isinstance(outcome, RejectReason):
            from .client import CloseRejected

            raise CloseRejected(rid, position_id, outcome.label)
        self._compare_settlement(closed[0], outcome)
        return closed[0]

    def keeper_round(self) -> list[ClosedPosition]:
        """The keeper's round (`Keeper.run_round`'s first transaction): the prices of every
        pair it prices applied and every open position's triggers run, in one transaction."""
        return self.run_triggers(price_pairs=set(self.sim.keeper.prices))

    def run_triggers(self, position_ids: list[int] | None = None, price_pairs: set[int] | None = None
                     ) -> list[ClosedPosition]:
        """Triggers of `position_ids` (default: every open one), recording the prices of their
        pairs and of `price_pairs`."""
        ids = sorted(self.sim.keeper.open_positions) if position_ids is None else position_ids
        receipt = self.sim.keeper.run_triggers(ids, price_pairs=price_pairs)
        ts, _ = self._stamp(receipt)
        self._sync_references()
        settled = self.model.run_triggers(ids, dict(self._pushed(receipt)), ts)
        self._after()
        closed = self.sim.closed_from(receipt)
        if sorted(c.position.id for c in closed) != sorted(settled):
            raise MirrorMismatch(f"triggers closed {[c.position.id for c in closed]} on chain, {list(settled)} in the model")
        for c in closed:
            self._compare_settlement(c, settled[c.position.id])
        return closed

    def cancel(self, who: Account, request_id: int) -> dict:
        addr = self.sim.address(who)
        receipt = self.sim.cancel(addr, request_id)
        _, block = self._stamp(receipt)
        self.model.cancel_request(addr, request_id, block)
        self._after()
        return receipt

    def wait(self, seconds: float) -> None:
        self.sim.devnet.advance_time(seconds)
        self._after()

    def mine(self, blocks: int) -> None:
        self.sim.devnet.mine(blocks)

    # ----- comparison
    def _compare_fee_paid(self, request_id: int, receipt: dict) -> None:
        """The execution fee an execution or rejection charged (its events') is the one the
        request stored when it was made, as in the model."""
        stored = self.model.requests[request_id].execution_fee_tokens
        paid = [e["amountTokens"] for e in self.sim.session.events(receipt, "ExecutionFeePaid")
                if e["requestId"] == request_id]
        charged = [e["executionFeeTokens"] for e in self.sim.session.events(receipt, "OpenRejected")
                   if e["requestId"] == request_id]
        charged += [e["charges"]["executionFeeTokens"] for e in self.sim.session.events(receipt, "PositionOpened")
                    if e["positionId"] == request_id]
        if paid != [stored] or any(c != stored for c in charged):
            raise MirrorMismatch(f"request {request_id}: execution fee paid {paid}, charged {charged}, "
                                 f"stored in the model {stored}")

    def _compare_settlement(self, chain: ClosedPosition, model: Any) -> None:
        pairs = {
            "exit_price": (chain.exit_price_wad, model.exit_price), "pnl": (chain.pnl_wad, model.pnl_usd),
            "close_fee": (chain.close_fee_wad, model.close_fee_usd), "holding": (chain.holding_wad, model.holding_usd),
            "funding": (chain.funding_wad, model.funding_usd), "payout": (chain.payout_wad, model.payout_usd),
            "payout_tokens": (chain.payout_tokens, model.payout_tokens),
            "pool_delta": (chain.pool_delta_tokens, model.pool_delta_tokens),
            "reason": (chain.reason, {0: "close", 1: "take_profit", 2: "stop_loss", 3: "liquidation"}[int(model.reason)]),
        }
        bad = {k: v for k, v in pairs.items() if v[0] != v[1]}
        if bad:
            raise MirrorMismatch(f"settlement of position {chain.position.id} (chain, model): {bad}")

    def check_if_moved(self) -> bool:
        """`check()`, unless the chain has not moved since the last comparison passed (the
        same latest block; the model moves only with the chain's actions, so there is nothing
        new to compare). Whether it compared."""
        if self._checked_head is not None and self._head() == self._checked_head:
            return False
        self.check()
        return True

    def check(self) -> None:
        """Compares the chain with the model; raises MirrorMismatch listing every difference."""
        sim, model, diffs = self.sim, self.model, []
        latest = sim.session.block("latest")
        now = latest.timestamp
        head = (latest.number, latest.hash)

        def eq(what: str, chain: Any, expected: Any) -> None:
            if chain != expected:
                diffs.append(f"{what}: chain {chain!r} != model {expected!r}")

        token = sim.contracts["collateral"]
        for addr in sorted(self.accounts):
            eq(f"collateral of {addr}", token.call("balanceOf", addr), model.balances.get(self._key(addr), 0))
        eq("escrow", token.call("balanceOf", sim.contracts["trading"].address), model.balances.get(ESCROW, 0))
        eq("pool contract balance", token.call("balanceOf", sim.contracts["pool"].address), model.balances.get(POOL, 0))
        pool = sim.pool()
        eq("pool balance", pool.balance_units, model.pool.pool_balance)
        eq("reserve", pool.reserve_wad, model.pool.reserve_usd)
        eq("ALP supply", pool.alp_supply_wad, model.pool.alp_supply)
        eq("NAV", pool.nav_wad, model.nav_usd(now))
        eq("ALP price", pool.alp_price_wad, model.pool.alp_price)
        eq("redemption NAV", sim.pool_contract.call("redeemNav"), model.redeem_nav_usd(now))
        for holder in sorted(model.pool.alp):
            eq(f"ALP of {holder}", sim.contracts["alp"].call("balanceOf", holder), model.pool.alp[holder])
        eq("redemption ALP price", sim.pool_contract.call("redeemAlpPrice"), model.pool.redeem_alp_price)
        self._check_basket(eq)
        market, oracle = sim.contracts["market"], sim.contracts["oracle"]
        for pair_id in range(len(model.pairs)):
            for is_long in (True, False):
                side = market.call("side", pair_id, is_long)
                m = model.side(pair_id, is_long)
                eq(f"side {pair_id}/{'long' if is_long else 'short'}",
                   (side["oiUsd"], side["qty"], side["costUsd"], side["holdingWeight"], side["fundingWeight"]),
                   (m.oi_usd, m.qty, m.cost_usd, m.holding_weight, m.funding_weight))
            idx = market.call("indexesNow", pair_id)
            mi = model.indexes_now(pair_id, now)
            eq(f"indexes {pair_id}", (idx["holding"], idx["fundingLong"], idx["fundingShort"]),
               (mi.holding, mi.funding_long, mi.funding_short))
            eq(f"settled until {pair_id}", oracle.call("settledUntil", pair_id), model.settled_until.get(pair_id, 0))
        trading = sim.contracts["trading"]
        for rid, r in sorted(model.requests.items()):
            if r.kind == "open" and r.status == "pending":
                raw = trading.call("request", rid)
                eq(f"request {rid}", (raw["trader"], raw["amountIn"], raw["executionFeeTokens"]),
                   (r.trader, r.amount_in, r.execution_fee_tokens))
        ids = sorted(set(model.positions) | set(sim.keeper.open_positions))
        if ids:
            raws = sim.contracts["trading"].call("positionsOf", ids)
            for pid, raw in zip(ids, raws):
                mp = model.positions.get(pid)
                if mp is None:
                    if raw["trader"] != ZERO:
                        diffs.append(f"position {pid} open on chain, not in the model")
                    continue
                chain = (raw["trader"], raw["pairId"], raw["isLong"], raw["feeInToken"], raw["leverage"],
                         raw["openedAt"], raw["marginTokens"], raw["marginUsd"], raw["notionalUsd"], raw["qty"],
                         raw["entryPrice"], raw["costUsd"], raw["takeProfit"], raw["stopLoss"], raw["maxProfitUsd"],
                         raw["holdingIndex"], raw["fundingIndex"])
                expected = tuple(getattr(mp, f.name) for f in fields(mp) if f.name != "id")
                eq(f"position {pid}", chain, expected)
        plat = sim.contracts["platform_token"]
        for addr in sorted(set(model.token_balances) - {POOL, TREASURY}):
            eq(f"platform token of {addr}", plat.call("balanceOf", addr), model.token_balances[addr])
        if diffs:
            self._checked_head = None
            raise MirrorMismatch("chain and model disagree:\n  " + "\n  ".join(diffs))
        self._checked_head = head


__all__ = ["Mirror", "MirrorMismatch", "OrderRejected", "Order"]
