"""Reference model of the exchange (docs/mechanics.md sections 3 to 11): the trading engine, the market's
indexes and aggregates, the oracle's guards, and their token flows, mirroring
`contracts/trading/TradingEngine.sol`, `Market.sol` and `oracle/PriceOracle.sol` to the unit.

Time and block numbers come from outside (the chain, or a caller simulating one); the model
does not mine. Token balances are kept per address, in token units.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace

from ..protocol import (  # the mirror of Types.sol; re-exported here for existing importers
    CloseReason,
    OpenCharges,
    Order,
    Position,
    RejectReason,
    Request,
    Settlement,
)
from ..units import BPS, WAD
from .math import (
    ceil_div,
    close_fee_usd_up,
    discounted_rate_wad,
    fill_price,
    index_charge_usd_up,
    margin_tokens_down,
    mul_div_down,
    mul_div_up,
    pnl_usd_floor,
    slippage_wad_up,
    take_profit_cap_price,
)
from .pool import ModelRefusal, PoolModel

HOUR = 3600
ESCROW, POOL, TREASURY = "escrow", "pool", "treasury"


@dataclass(frozen=True)
class Settings:
    """Mirrors `EngineStorage.Settings` (docs/mechanics.md defaults)."""

    execution_fee_usd: int
    min_notional_usd: int = 100 * WAD
    extreme_leverage: int = 500
    max_roi_leverage: int = 1000
    open_fee_bps: int = 8
    close_fee_bps: int = 8
    extreme_min_close_fee_bps: int = 3
    extreme_profit_fee_bps: int = 1500
    referral_discount_bps: int = 500
    token_discount_bps: int = 500
    pool_fee_share_bps: int = 5000
    roi_cap_standard_bps: int = 90_000
    roi_cap_extreme_bps: int = 50_000
    roi_cap_max_leverage_bps: int = 30_000
    open_loss_guard_bps: int = 8000
    liquidation_threshold_standard_bps: int = 9000
    liquidation_threshold_extreme_bps: int = 8500
    request_expiry_blocks: int = 10
    max_executions_per_pair_per_block: int = 100


@dataclass(frozen=True)
class PairParams:
    """Mirrors `PairRegistry.PairConfig`."""

    name: str
    max_leverage: int
    spread_bps: int
    depth_1pct_usd: int
    max_oi_per_side_usd: int
    tiered: bool
    listed: bool = True
    paused: bool = False


DEFAULT_TIERS = ((1_000_000 * WAD, 0), (5_000_000 * WAD, 250), (20_000_000 * WAD, 100))


def default_pairs() -> list[PairParams]:
    """docs/mechanics.md section 3."""
    usd = WAD
    return [
        PairParams("BTC/USD", 1001, 1, 100_000_000 * usd, 50_000_000 * usd, True),
        PairParams("ETH/USD", 1001, 1, 50_000_000 * usd, 25_000_000 * usd, True),
        PairParams("SOL/USD", 100, 2, 10_000_000 * usd, 5_000_000 * usd, False),
        PairParams("AAPL/USD", 50, 3, 5_000_000 * usd, 2_000_000 * usd, False),
    ]


@dataclass
class Side:
    oi_usd: int = 0
    qty: int = 0
    cost_usd: int = 0
    holding_weight: int = 0
    funding_weight: int = 0


@dataclass
class Indexes:
    holding: int = 0
    funding_long: int = 0
    funding_short: int = 0
    updated_at: int = 0


@dataclass
class OpenResult:
    request_id: int
    position: Position | None
    charges: OpenCharges | None
    reason: RejectReason


@dataclass
class ExchangeModel:
    """The whole system's state, as integers in the contracts' units."""

    decimals: int
    settings: Settings
    pairs: list[PairParams] = field(default_factory=default_pairs)
    tiers: tuple[tuple[int, int], ...] = DEFAULT_TIERS
    holding_rate_per_hour_wad: int = 10**13
    funding_rate_per_hour_wad: int = 10**14
    max_price_age_s: int = 60
    circuit_breaker_bps: int = 100
    worse_price_bps: int = 10
    pool: PoolModel | None = None
    # state
    balances: dict[str, int] = field(default_factory=dict)
    token_balances: dict[str, int] = field(default_factory=dict)
    token_allowance_ok: dict[str, bool] = field(default_factory=dict)
    platform_token_price: int = 0
    keeper_prices: dict[int, tuple[int, int]] = field(default_factory=dict)  # pair -> (price, at)
    settled_until: dict[int, int] = field(default_factory=dict)  # pair -> until when its price is settled
    reference_prices: dict[int, tuple[int, int]] = field(default_factory=dict)
    indexes: dict[int, Indexes] = field(default_factory=dict)
    longs: dict[int, Side] = field(default_factory=dict)
    shorts: dict[int, Side] = field(default_factory=dict)
    positions: dict[int, Position] = field(default_factory=dict)
    requests: dict[int, Request] = field(default_factory=dict)
    referred: set[str] = field(default_factory=set)
    fee_in_token: set[str] = field(default_factory=set)
    executions: dict[int, tuple[int, int]] = field(default_factory=dict)  # pair -> (block, count)
    next_request_id: int = 1  # a position's id is its open request's

    def __post_init__(self) -> None:
        if self.pool is None:
            self.pool = PoolModel(decimals=self.decimals)

    # ---------------------------------------------------------------- units
    @property
    def scale(self) -> int:
        return 10 ** (18 - self.decimals)

    def execution_fee_tokens(self) -> int:
        return ceil_div(self.settings.execution_fee_usd, self.scale)

    def copy(self) -> "ExchangeModel":
        return copy.deepcopy(self)

    def _move(self, frm: str, to: str, amount: int) -> None:
        if amount == 0:
            return
        if self.balances.get(frm, 0) < amount:
            raise ModelRefusal("ERC20InsufficientBalance", sender=frm, balance=self.balances.get(frm, 0), needed=amount)
        self.balances[frm] = self.balances.get(frm, 0) - amount
        self.balances[to] = self.balances.get(to, 0) + amount

    def _pool_receive(self, amount: int) -> None:
        self._move(ESCROW, POOL, amount)
        self.pool.pool_balance += amount

    def _pool_pay(self, to: str, amount: int) -> None:
        self._move(POOL, to, amount)
        self.pool.pool_balance -= amount

    # ---------------------------------------------------------------- oracle
    def set_reference(self, pair_id: int, price: int, now: int) -> None:
        self.reference_prices[pair_id] = (price, now)

    def guarded_price(self, pair_id: int, trader_buys: bool, now: int) -> tuple[int, RejectReason]:
        keeper, keeper_at = self.keeper_prices.get(pair_id, (0, 0))
        ref, ref_at = self.reference_prices.get(pair_id, (0, 0))
        age = self.max_price_age_s
        if keeper == 0 or ref == 0 or now > keeper_at + age or now > ref_at + age:
            return 0, RejectReason.PRICE_STALE
        gap_bps = abs(keeper - ref) * BPS
        if gap_bps > self.circuit_breaker_bps * ref:
            return 0, RejectReason.CIRCUIT_BREAKER
        if gap_bps > self.worse_price_bps * ref:
            keeper_worse = keeper > ref if trader_buys else keeper < ref
            return (keeper if keeper_worse else ref), RejectReason.NONE
        return keeper, RejectReason.NONE

    # ---------------------------------------------------------------- market
    def side(self, pair_id: int, is_long: bool) -> Side:
        book = self.longs if is_long else self.shorts
        return book.setdefault(pair_id, Side())

    def indexes_now(self, pair_id: int, now: int) -> Indexes:
        idx = replace(self.indexes.get(pair_id, Indexes()))
        elapsed = 0 if idx.updated_at == 0 else now - idx.updated_at
        idx.updated_at = now
        if elapsed == 0:
            return idx
        idx.holding += self.holding_rate_per_hour_wad * elapsed // HOUR
        long_oi = self.side(pair_id, True).oi_usd
        short_oi = self.side(pair_id, False).oi_usd
        if long_oi == short_oi:
            return idx
        heavier = max(long_oi, short_oi)
        imbalance = heavier - min(long_oi, short_oi)
        step = mul_div_down(self.funding_rate_per_hour_wad * elapsed, imbalance, HOUR * heavier)
        # the lighter side receives only while the pair's price is settled (docs/mechanics.md section 9)
        receipt = mul_div_down(self.funding_rate_per_hour_wad * self._settled_elapsed(pair_id, now - elapsed, now),
                               imbalance, HOUR * heavier)
        if long_oi > short_oi:
            idx.funding_long += step
            idx.funding_short -= receipt
        else:
            idx.funding_short += step
            idx.funding_long -= receipt
        return idx

    def _settled_elapsed(self, pair_id: int, since: int, now: int) -> int:
        """Seconds from `since` to `now` while the pair's price was settled, as
        `Market._settledElapsed` (prices are applied after an accrual, so one price covers it)."""
        until = self.settled_until.get(pair_id, 0)
        if until <= since:
            return 0
        return min(now, until) - since

    def accrue_all(self, now: int) -> None:
        """Every pair with open interest to now (`Market.accrueAll`), as before a setting that
        changes accrual: `setRates`, `setGuardSettings`, `setReferenceFeed`."""
        for pair_id in range(len(self.pairs)):
            if self.side(pair_id, True).oi_usd or self.side(pair_id, False).oi_usd:
                self.accrue(pair_id, now)

    def set_rates(self, holding_per_hour_wad: int, funding_per_hour_wad: int, now: int) -> None:
        self.accrue_all(now)
        self.holding_rate_per_hour_wad, self.funding_rate_per_hour_wad = holding_per_hour_wad, funding_per_hour_wad

    def set_guard_settings(self, max_age_s: int, breaker_bps: int, worse_bps: int, now: int) -> None:
        self.accrue_all(now)
        self.max_price_age_s, self.circuit_breaker_bps, self.worse_price_bps = max_age_s, breaker_bps, worse_bps

    def accrue(self, pair_id: int, now: int) -> Indexes:
        idx = self.indexes_now(pair_id, now)
        self.indexes[pair_id] = idx
        return idx

    def pool_claim_usd(self, now: int) -> int:
        return self.pool_claims_usd(now)[0]

    def pool_claims_usd(self, now: int) -> tuple[int, int]:
        """The pool's claims on open positions (deposits', withdrawals'), as
        `Market.poolClaimsUsd`: deposits count each side's holding and funding owed now;
        withdrawals leave out what a side came to owe since the pair's last accrual."""
        claim = redeem = 0
        for pair_id in range(len(self.pairs)):
            longs, shorts = self.side(pair_id, True), self.side(pair_id, False)
            if longs.oi_usd == 0 and shorts.oi_usd == 0:
                continue
            price = self.keeper_prices.get(pair_id, (0, 0))[0]
            last = self.indexes.get(pair_id, Indexes())
            idx = self.indexes_now(pair_id, now)
            for side, is_long in ((longs, True), (shorts, False)):
                if side.oi_usd == 0:
                    continue
                value = mul_div_down(side.qty, price, WAD)
                pnl = value - side.cost_usd if is_long else side.cost_usd - value
                funding_now, funding_last = ((idx.funding_long, last.funding_long) if is_long
                                             else (idx.funding_short, last.funding_short))
                fees_now = self._side_fees(side, idx.holding, funding_now)
                # what the side came to owe since the last accrual, from the indexes' steps
                since = (side.oi_usd * (idx.holding - last.holding) // WAD
                         + side.oi_usd * (funding_now - funding_last) // WAD)
                claim += fees_now - pnl
                redeem += fees_now - max(since, 0) - pnl
        return claim, redeem

    @staticmethod
    def _side_fees(s: Side, holding_index: int, funding_index: int) -> int:
        """A side's holding and funding owed to the pool (negative: the pool owes), floored."""
        holding = (s.oi_usd * holding_index - s.holding_weight) // WAD
        funding = (s.oi_usd * funding_index - s.funding_weight) // WAD
        return holding + funding

    def nav_usd(self, now: int) -> int:
        self.refresh_pool_claim(now)
        return self.pool.nav_usd

    def redeem_nav_usd(self, now: int) -> int:
        self.refresh_pool_claim(now)
        return self.pool.redeem_nav_usd

    def refresh_pool_claim(self, now: int) -> None:
        self.pool.pool_claim_usd, self.pool.redeem_claim_usd = self.pool_claims_usd(now)

    def require_settled_prices(self, now: int) -> None:
        """As `PriceOracle.settledMarkPrice` for every pair with open interest: LPs are priced
        only at a fresh price the triggers have run at with the guard passing (settled)."""
        age = self.max_price_age_s
        for pair_id in range(len(self.pairs)):
            if self.side(pair_id, True).oi_usd or self.side(pair_id, False).oi_usd:
                price, at = self.keeper_prices.get(pair_id, (0, 0))
                if price == 0 or now > at + age:
                    raise ModelRefusal("PriceStale", pairId=pair_id, updatedAt=at, maxAge=age)
                until = self.settled_until.get(pair_id, 0)
                if now > until:  # not settled: why, from the guard as it stands now
                    ref, ref_at = self.reference_prices.get(pair_id, (0, 0))
                    if ref == 0 or now > ref_at + age:
                        raise ModelRefusal("ReferenceStale", pairId=pair_id, updatedAt=ref_at, maxAge=age)
                    if abs(price - ref) * BPS > self.circuit_breaker_bps * ref:
                        raise ModelRefusal("CircuitBreakerTripped", pairId=pair_id, keeperPrice=price,
                                           referencePrice=ref)
                    raise ModelRefusal("PriceNotSettled", pairId=pair_id, updatedAt=at, settledUntil=until)

    def leverage_cap(self, pair_id: int, notional_usd: int) -> tuple[int, bool]:
        pair = self.pairs[pair_id]
        cap = pair.max_leverage
        if not pair.tiered:
            return cap, False
        for max_notional, tier_cap in self.tiers:
            if notional_usd <= max_notional:
                return (cap if tier_cap == 0 or tier_cap > cap else tier_cap), False
        return cap, True

    # ---------------------------------------------------------------- LP (pool with fresh prices)
    def deposit(self, lp: str, amount: int, now: int, min_alp_out: int = 0) -> int:
        if amount == 0:
            raise ModelRefusal("ZeroAmount")
        max_amount = (2**256 - 1) // (self.scale * BPS)
        if amount > max_amount:
            raise ModelRefusal("AmountTooLarge", amount=amount, max=max_amount)
        self.require_settled_prices(now)
        self.refresh_pool_claim(now)
        alp = self.pool.deposit(lp, amount, now, min_alp_out)
        self.balances[lp] = self.balances.get(lp, 0) - amount
        self.balances[POOL] = self.balances.get(POOL, 0) + amount
        return alp

    def withdraw(self, lp: str, alp: int, now: int, min_out: int = 0) -> int:
        self.refresh_pool_claim(now)
        out = self._checked_withdraw(lp, alp, now, min_out)
        self.balances[POOL] = self.balances.get(POOL, 0) - out
        self.balances[lp] = self.balances.get(lp, 0) + out
        return out

    def _checked_withdraw(self, lp: str, alp: int, now: int, min_out: int) -> int:
        # the contract checks amount, balance and cooldown before the prices
        if alp == 0:
            raise ModelRefusal("ZeroAmount")
        held = self.pool.alp.get(lp, 0)
        if held < alp:
            raise ModelRefusal("InsufficientAlpBalance", holder=lp, balance=held, requested=alp)
        if now < self.pool.unlocks_at.get(lp, 0):
            raise ModelRefusal("CooldownActive", holder=lp, unlocksAt=self.pool.unlocks_at[lp])
        self.require_settled_prices(now)
        return self.pool.withdraw(lp, alp, now, min_out)

    # ---------------------------------------------------------------- requests
    def request_open(self, trader: str, amount_in: int, commitment: bytes, block: int) -> int:
        fee = self.execution_fee_tokens()
        if amount_in <= fee:
            raise ModelRefusal("AmountBelowExecutionFee", amountIn=amount_in, executionFee=fee)
        if amount_in > 2**128 - 1:
            raise ModelRefusal("AmountTooLarge", amount=amount_in, max=2**128 - 1)
        self._move(trader, ESCROW, amount_in)
        rid = self.next_request_id
        self.next_request_id += 1
        self.requests[rid] = Request(rid, trader, "open", block, amount_in, commitment, execution_fee_tokens=fee)
        return rid

    def request_close(self, trader: str, position_id: int, block: int) -> int:
        pos = self.positions.get(position_id)
        if pos is None:
            raise ModelRefusal("PositionNotOpen", positionId=position_id)
        if pos.trader != trader:
            raise ModelRefusal("NotOwner", caller=trader, owner=pos.trader)
        for r in self.requests.values():
            if (r.kind == "close" and r.amount_in == position_id and r.status == "pending"
                    and block <= r.block + self.settings.request_expiry_blocks):
                raise ModelRefusal("CloseAlreadyPending", positionId=position_id, requestId=r.id)
        rid = self.next_request_id
        self.next_request_id += 1
        self.requests[rid] = Request(rid, trader, "close", block, position_id)
        return rid

    def cancel_request(self, trader: str, request_id: int, block: int) -> int:
        r = self._pending(request_id)
        if r.trader != trader:
            raise ModelRefusal("NotOwner", caller=trader, owner=r.trader)
        expires = r.block + self.settings.request_expiry_blocks
        if block <= expires:
            raise ModelRefusal("RequestNotExpired", requestId=request_id, expiresAfterBlock=expires)
        r.status = "cancelled"
        if r.kind == "open":
            self._move(ESCROW, trader, r.amount_in)
            return r.amount_in
        return 0

    def _pending(self, request_id: int) -> Request:
        r = self.requests.get(request_id)
        if r is None:
            raise ModelRefusal("UnknownRequest", requestId=request_id)
        if r.status != "pending":
            raise ModelRefusal("RequestNotPending", requestId=request_id)
        return r

    def _executable(self, request_id: int, kind: str, block: int) -> Request:
        r = self._pending(request_id)
        if r.kind != kind:
            raise ModelRefusal("UnknownRequest", requestId=request_id)
        if block <= r.block or block > r.block + self.settings.request_expiry_blocks:
            raise ModelRefusal("RequestNotExecutable", requestId=request_id, requestBlock=r.block, currentBlock=block)
        return r

    def apply_prices(self, prices: dict[int, int], now: int, triggers_run: bool = False) -> None:
        """As `TradingEngine._applyPrices` and `PriceOracle.setPrice` or `setSettledPrice`: each pair accrues, then
        takes its price; settled when the triggers run at it with the guard passing, kept
        settled when the price is unchanged, else not settled."""
        # a dict names each pair once, as the contract requires
        for pair_id, price in prices.items():
            if pair_id >= len(self.pairs) or price == 0 or price > 2**128 - 1:
                raise ModelRefusal("InvalidPriceInput", pairId=pair_id)
            self.accrue(pair_id, now)  # before the price: see `_settled_elapsed`
            until = 0
            if triggers_run:
                ref, ref_at = self.reference_prices.get(pair_id, (0, 0))
                age = self.max_price_age_s
                if (ref != 0 and now <= ref_at + age
                        and abs(price - ref) * BPS <= self.circuit_breaker_bps * ref):
                    until = ref_at + age
            elif self.keeper_prices.get(pair_id, (0, 0))[0] == price:
                until = self.settled_until.get(pair_id, 0)
            self.keeper_prices[pair_id] = (price, now)
            self.settled_until[pair_id] = until

    def reject_open(self, request_id: int, reason: RejectReason, block: int, keeper: str) -> int:
        """The keeper's rejection of an order it cannot use, as `rejectOpen`: the refund."""
        if reason not in (RejectReason.UNDECRYPTABLE_ORDER, RejectReason.MALFORMED_ORDER):
            raise ModelRefusal("InvalidRejectReason", reason=int(reason))
        r = self._executable(request_id, "open", block)
        r.status = "rejected"
        fee = r.execution_fee_tokens
        self._move(ESCROW, r.trader, r.amount_in - fee)
        self._move(ESCROW, keeper, fee)
        return r.amount_in - fee

    # ---------------------------------------------------------------- open
    def execute_open(self, request_id: int, order: Order, prices: dict[int, int], now: int, block: int,
                     keeper: str) -> OpenResult:
        r = self._executable(request_id, "open", block)
        self.apply_prices(prices, now)
        fee = r.execution_fee_tokens
        self._move(ESCROW, keeper, fee)
        net = r.amount_in - fee
        reason, position, charges = self._open(request_id, r.trader, net, order, now, block)
        if reason is RejectReason.NONE:
            r.status = "executed"
        else:
            r.status = "rejected"
            self._move(ESCROW, r.trader, net)
        return OpenResult(request_id, position, charges, reason)

    def _count_execution(self, pair_id: int, block: int) -> bool:
        last_block, count = self.executions.get(pair_id, (0, 0))
        count = count + 1 if last_block == block else 1
        self.executions[pair_id] = (block, count)
        return count <= self.settings.max_executions_per_pair_per_block

    def roi_cap_bps(self, leverage: int) -> int:
        s = self.settings
        if leverage >= s.max_roi_leverage:
            return s.roi_cap_max_leverage_bps
        if leverage >= s.extreme_leverage:
            return s.roi_cap_extreme_bps
        return s.roi_cap_standard_bps

    def platform_tokens(self, fee_usd: int) -> int:
        if self.platform_token_price == 0:
            return 0
        return mul_div_up(fee_usd, WAD, self.platform_token_price)

    def can_pull_token(self, trader: str, amount: int) -> bool:
        return self.token_balances.get(trader, 0) >= amount and self.token_allowance_ok.get(trader, False)

    def size_open(self, trader: str, net: int, leverage: int) -> dict:
        """Margin, notional and open fee (docs/mechanics.md §5.3), as `_sizeOpen`."""
        s = self.settings
        discount = s.referral_discount_bps if trader in self.referred else 0
        out = {"discount_bps": discount, "pay_in_token": False, "fee_rate_wad": 0}
        extreme = leverage >= s.extreme_leverage

        def margin(m: int) -> None:
            out.update(margin_tokens=m, margin_usd=m * self.scale, notional_usd=m * self.scale * leverage)

        if extreme:
            margin(net)
            out.update(open_fee_usd=0, open_fee_tokens=0)
            return out
        if trader in self.fee_in_token:
            margin(net)
            rate = discounted_rate_wad(s.open_fee_bps, discount + s.token_discount_bps)
            fee_usd = mul_div_up(out["notional_usd"], rate, WAD)
            tokens = self.platform_tokens(fee_usd)
            if tokens != 0 and self.can_pull_token(trader, tokens):
                out.update(pay_in_token=True, fee_rate_wad=rate, open_fee_usd=fee_usd, open_fee_tokens=tokens)
                return out
        rate = discounted_rate_wad(s.open_fee_bps, discount)
        m = margin_tokens_down(net, leverage, rate)
        margin(m)
        out.update(fee_rate_wad=rate, open_fee_tokens=net - m, open_fee_usd=(net - m) * self.scale)
        return out

    def _open(self, request_id: int, trader: str, net: int, order: Order, now: int, block: int):
        s = self.settings
        none = (None, None)
        if order.pair_id >= len(self.pairs) or not self.pairs[order.pair_id].listed:
            return (RejectReason.PAIR_NOT_LISTED, *none)
        pair = self.pairs[order.pair_id]
        if pair.paused:
            return (RejectReason.PAIR_PAUSED, *none)
        if order.leverage >= s.extreme_leverage and pair.max_leverage < s.extreme_leverage:
            return (RejectReason.EXTREME_LEVERAGE_NOT_OFFERED, *none)
        if order.leverage == 0 or order.leverage > pair.max_leverage:
            return (RejectReason.LEVERAGE_OUT_OF_RANGE, *none)
        if not self._count_execution(order.pair_id, block):
            return (RejectReason.TOO_MANY_EXECUTIONS, *none)
        oracle_price, reason = self.guarded_price(order.pair_id, order.is_long, now)
        if reason is not RejectReason.NONE:
            return (reason, *none)
        size = self.size_open(trader, net, order.leverage)
        notional = size["notional_usd"]
        cap, too_large = self.leverage_cap(order.pair_id, notional)
        if too_large:
            return (RejectReason.NOTIONAL_TOO_LARGE, *none)
        if order.leverage > cap:
            return (RejectReason.LEVERAGE_ABOVE_NOTIONAL_TIER, *none)
        if notional < s.min_notional_usd or notional == 0:
            return (RejectReason.NOTIONAL_TOO_SMALL, *none)
        side_oi = self.side(order.pair_id, order.is_long).oi_usd
        if side_oi + notional > pair.max_oi_per_side_usd:
            return (RejectReason.OPEN_INTEREST_CAP_EXCEEDED, *none)
        slip = slippage_wad_up(pair.spread_bps, side_oi, notional, pair.depth_1pct_usd)
        fill = fill_price(oracle_price, slip, order.is_long)
        if fill == 0:
            return (RejectReason.OPEN_LOSS_TOO_HIGH, *none)
        if order.acceptable_price and (fill > order.acceptable_price if order.is_long else fill < order.acceptable_price):
            return (RejectReason.SLIPPAGE_EXCEEDED, *none)
        qty = mul_div_down(notional, WAD, fill)
        max_profit = size["margin_usd"] * self.roi_cap_bps(order.leverage) // BPS
        cap_price = take_profit_cap_price(order.is_long, fill, qty, max_profit)
        if order.take_profit == 0:
            take_profit = cap_price
        elif (order.take_profit <= fill) if order.is_long else (order.take_profit >= fill):
            return (RejectReason.TAKE_PROFIT_WRONG_SIDE, *none)
        elif (order.take_profit > cap_price) if order.is_long else (order.take_profit < cap_price):
            return (RejectReason.TAKE_PROFIT_BEYOND_CAP, *none)
        else:
            take_profit = order.take_profit
        if order.stop_loss and ((order.stop_loss >= fill) if order.is_long else (order.stop_loss <= fill)):
            return (RejectReason.STOP_LOSS_WRONG_SIDE, *none)
        open_loss = mul_div_up(abs(fill - oracle_price), qty, WAD)
        if open_loss * BPS >= s.open_loss_guard_bps * size["margin_usd"]:
            return (RejectReason.OPEN_LOSS_TOO_HIGH, *none)
        if self.pool.reserve_capacity_usd() < max_profit:
            return (RejectReason.RESERVE_EXCEEDED, *none)
        # commit
        pid = request_id  # the position takes its request's slots on chain
        if size["pay_in_token"]:
            self._split_token_fee(trader, size["open_fee_tokens"])
        elif size["open_fee_tokens"]:
            self._split_collateral_fee(size["open_fee_tokens"])
        cost = mul_div_down(qty, fill, WAD)
        idx = self.accrue(order.pair_id, now)
        funding_index = idx.funding_long if order.is_long else idx.funding_short
        side = self.side(order.pair_id, order.is_long)
        side.oi_usd += notional
        side.qty += qty
        side.cost_usd += cost
        side.holding_weight += notional * idx.holding
        side.funding_weight += notional * funding_index
        self.pool.reserve_usd += max_profit
        position = Position(
            id=pid, trader=trader, pair_id=order.pair_id, is_long=order.is_long, fee_in_token=size["pay_in_token"],
            leverage=order.leverage, opened_at=now, margin_tokens=size["margin_tokens"], margin_usd=size["margin_usd"],
            notional_usd=notional, qty=qty, entry_price=fill, cost_usd=cost, take_profit=take_profit,
            stop_loss=order.stop_loss, max_profit_usd=max_profit, holding_index=idx.holding,
            funding_index=funding_index,
        )
        self.positions[pid] = position
        charges = OpenCharges(
            oracle_price=oracle_price, slippage_wad=slip, execution_fee_tokens=self.requests[pid].execution_fee_tokens,
            open_fee_usd=size["open_fee_usd"], open_fee_tokens=size["open_fee_tokens"],
            fee_discount_bps=size["discount_bps"] + (s.token_discount_bps if size["pay_in_token"] else 0),
        )
        return RejectReason.NONE, position, charges

    def _split_collateral_fee(self, fee_tokens: int) -> None:
        treasury = fee_tokens * (BPS - self.settings.pool_fee_share_bps) // BPS
        self._pool_receive(fee_tokens - treasury)
        self._move(ESCROW, TREASURY, treasury)

    def _split_token_fee(self, trader: str, tokens: int) -> None:
        treasury = tokens * (BPS - self.settings.pool_fee_share_bps) // BPS
        self.token_balances[trader] -= tokens
        self.token_balances[TREASURY] = self.token_balances.get(TREASURY, 0) + treasury
        self.token_balances[POOL] = self.token_balances.get(POOL, 0) + tokens - treasury

    # ---------------------------------------------------------------- close
    def execute_close(self, request_id: int, prices: dict[int, int], now: int, block: int) -> Settlement | RejectReason:
        r = self._executable(request_id, "close", block)
        if r.amount_in not in self.positions:
            raise ModelRefusal("PositionNotOpen", positionId=r.amount_in)
        self.apply_prices(prices, now)
        p = self.positions[r.amount_in]
        price, reason = self.guarded_price(p.pair_id, not p.is_long, now)
        if reason is not RejectReason.NONE:
            r.status = "rejected"
            return reason
        r.status = "executed"
        fill = self.close_fill(p, price)
        exit_price = min(fill, p.take_profit) if p.is_long else max(fill, p.take_profit)
        return self._settle(p, price, exit_price, CloseReason.TRADER_CLOSE, now)

    def run_triggers(self, position_ids: list[int], prices: dict[int, int], now: int) -> dict[int, Settlement]:
        self.apply_prices(prices, now, triggers_run=True)
        closed = {}
        for pid in position_ids:
            result = self._trigger(pid, now)
            if result is not None:
                closed[pid] = result
        return closed

    def update_prices(self, prices: dict[int, int], now: int) -> None:
        self.apply_prices(prices, now)

    def _trigger(self, pid: int, now: int) -> Settlement | None:
        p = self.positions.get(pid)
        if p is None:
            return None
        price, reason = self.guarded_price(p.pair_id, not p.is_long, now)
        if reason is not RejectReason.NONE:
            return None
        if self.is_liquidatable(p, price, now):
            return self._settle(p, price, price, CloseReason.LIQUIDATION, now)
        if (price >= p.take_profit) if p.is_long else (price <= p.take_profit):
            fill = self.close_fill(p, price)
            exit_price = min(fill, p.take_profit) if p.is_long else max(fill, p.take_profit)
            return self._settle(p, price, exit_price, CloseReason.TAKE_PROFIT, now)
        if p.stop_loss and ((price <= p.stop_loss) if p.is_long else (price >= p.stop_loss)):
            return self._settle(p, price, self.close_fill(p, price), CloseReason.STOP_LOSS, now)
        return None

    def close_fill(self, p: Position, price: int) -> int:
        pair = self.pairs[p.pair_id]
        side_oi = self.side(p.pair_id, p.is_long).oi_usd
        slip = slippage_wad_up(pair.spread_bps, side_oi - p.notional_usd, p.notional_usd, pair.depth_1pct_usd)
        return fill_price(price, slip, not p.is_long)

    def close_fee_usd(self, p: Position, pnl: int, exit_price: int, discount_bps: int) -> int:
        s = self.settings
        close_notional = mul_div_down(p.qty, exit_price, WAD)
        extreme = p.leverage >= s.extreme_leverage
        notional_rate = discounted_rate_wad(s.extreme_min_close_fee_bps if extreme else s.close_fee_bps, discount_bps)
        profit_rate = discounted_rate_wad(s.extreme_profit_fee_bps, discount_bps)
        return close_fee_usd_up(extreme, pnl, close_notional, notional_rate, profit_rate)

    def _referral_discount(self, trader: str) -> int:
        return self.settings.referral_discount_bps if trader in self.referred else 0

    def accrued_charges(self, p: Position, now: int) -> tuple[int, int]:
        """(holding, funding) the position owes now, in USD."""
        idx = self.indexes_now(p.pair_id, now)
        funding_index = idx.funding_long if p.is_long else idx.funding_short
        return (index_charge_usd_up(p.notional_usd, idx.holding - p.holding_index),
                index_charge_usd_up(p.notional_usd, funding_index - p.funding_index))

    def is_liquidatable(self, p: Position, price: int, now: int) -> bool:
        s = self.settings
        pnl = pnl_usd_floor(p.is_long, p.qty, p.entry_price, price)
        fee = self.close_fee_usd(p, pnl, price, self._referral_discount(p.trader))
        holding, funding = self.accrued_charges(p, now)
        loss = fee + holding + funding - pnl
        threshold = s.liquidation_threshold_extreme_bps if p.leverage >= s.extreme_leverage \
            else s.liquidation_threshold_standard_bps
        return loss > 0 and loss * BPS >= threshold * p.margin_usd

    def _settle(self, p: Position, oracle_price: int, exit_price: int, reason: CloseReason, now: int) -> Settlement:
        s = self.settings
        # 1. out of the side's aggregates, at indexes accrued to now
        idx = self.accrue(p.pair_id, now)
        funding_index = idx.funding_long if p.is_long else idx.funding_short
        side = self.side(p.pair_id, p.is_long)
        side.oi_usd -= p.notional_usd
        side.qty -= p.qty
        side.cost_usd -= p.cost_usd
        side.holding_weight -= p.notional_usd * p.holding_index
        side.funding_weight -= p.notional_usd * p.funding_index
        holding = index_charge_usd_up(p.notional_usd, idx.holding - p.holding_index)
        funding = index_charge_usd_up(p.notional_usd, funding_index - p.funding_index)
        pnl = pnl_usd_floor(p.is_long, p.qty, p.entry_price, exit_price)
        # 2. close fee in platform token when preferred and payable (never on liquidation)
        discount = self._referral_discount(p.trader)
        fee_in_token, close_fee, fee_tokens = False, 0, 0
        if reason is not CloseReason.LIQUIDATION and p.trader in self.fee_in_token:
            fee_usd = self.close_fee_usd(p, pnl, exit_price, discount + s.token_discount_bps)
            fee_tokens = self.platform_tokens(fee_usd)
            if fee_tokens and self.can_pull_token(p.trader, fee_tokens):
                fee_in_token, close_fee = True, fee_usd
        # 3. waterfall
        available = p.margin_usd + pnl - holding - funding
        if not fee_in_token:
            fee = self.close_fee_usd(p, pnl, exit_price, discount)
            close_fee = 0 if available <= 0 else min(fee, available)
            available -= close_fee
        # never more than margin + the reserved maximum profit (the reserve covers it)
        payout = 0 if reason is CloseReason.LIQUIDATION or available <= 0 \
            else min(available, p.margin_usd + p.max_profit_usd)
        payout_tokens = payout // self.scale
        # 4. token flows
        treasury_tokens = 0
        if fee_in_token:
            self._split_token_fee(p.trader, fee_tokens)
        elif close_fee:
            collateral_fee = ceil_div(close_fee, self.scale)
            treasury_tokens = collateral_fee * (BPS - s.pool_fee_share_bps) // BPS
        pool_delta = p.margin_tokens - payout_tokens - treasury_tokens
        if pool_delta >= 0:
            self._move(ESCROW, p.trader, payout_tokens)
            self._move(ESCROW, TREASURY, treasury_tokens)
            self._pool_receive(pool_delta)
        else:
            to_treasury = min(treasury_tokens, p.margin_tokens)
            to_trader = p.margin_tokens - to_treasury
            self._move(ESCROW, TREASURY, to_treasury)
            if treasury_tokens > to_treasury:
                self._pool_pay(TREASURY, treasury_tokens - to_treasury)
            self._move(ESCROW, p.trader, to_trader)
            self._pool_pay(p.trader, payout_tokens - to_trader)
        self.pool.reserve_usd -= p.max_profit_usd
        del self.positions[p.id]
        return Settlement(reason, oracle_price, exit_price, pnl, close_fee, holding, funding, payout, payout_tokens,
                          pool_delta, fee_in_token)
