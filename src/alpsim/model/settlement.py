"""Settling a position, mirroring `contracts/trading/Settlement.sol` (docs/mechanics.md sections 4, 6,
9 and 11): out of the market's aggregates at indexes accrued to now, its holding and funding
charges, pnl, the close fee (in the platform token when preferred and payable, with the referral
discount), the waterfall capped at margin plus the reserved maximum profit, and the token flows:
trader + treasury + pool = margin, to the unit. Also the fees' split between pool and treasury, the
close fill (slippage on the way out), and the platform-token fee helpers the open pipeline shares.
"""

from __future__ import annotations

from ..protocol import CloseReason, Position, Settlement
from ..units import BPS, WAD
from .math import (
    ceil_div,
    close_fee_usd_up,
    discounted_rate_wad,
    fill_price,
    index_charge_usd_up,
    mul_div_down,
    mul_div_up,
    pnl_usd_floor,
    slippage_wad_up,
)
from .tokens import ESCROW, POOL, TREASURY


class Settler:
    """The settlement of `ExchangeModel` (trading_engine.py holds the state). Not named
    `Settlement`: that is the result (`protocol.Settlement`, Types.sol's struct)."""

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

    def _split_collateral_fee(self, fee_tokens: int) -> None:
        treasury = fee_tokens * (BPS - self.settings.pool_fee_share_bps) // BPS
        self._pool_receive(fee_tokens - treasury)
        self._move(ESCROW, TREASURY, treasury)

    def _split_token_fee(self, trader: str, tokens: int) -> None:
        treasury = tokens * (BPS - self.settings.pool_fee_share_bps) // BPS
        self.token_balances[trader] -= tokens
        self.token_balances[TREASURY] = self.token_balances.get(TREASURY, 0) + treasury
        self.token_balances[POOL] = self.token_balances.get(POOL, 0) + tokens - treasury

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

    def close_fill(self, p: Position, price: int) -> int:
        pair = self.pairs[p.pair_id]
        side_oi = self.side(p.pair_id, p.is_long).oi_usd
        slip = slippage_wad_up(pair.spread_bps, side_oi - p.notional_usd, p.notional_usd, pair.depth_1pct_usd)
        return fill_price(price, slip, not p.is_long)

    def platform_tokens(self, fee_usd: int) -> int:
        if self.platform_token_price == 0:
            return 0
        return mul_div_up(fee_usd, WAD, self.platform_token_price)

    def can_pull_token(self, trader: str, amount: int) -> bool:
        return self.token_balances.get(trader, 0) >= amount and self.token_allowance_ok.get(trader, False)
