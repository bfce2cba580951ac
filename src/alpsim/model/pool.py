"""Reference model of the ALP pool (docs/mechanics.md section 10), to the
unit of `contracts/pool/AlpPool.sol`.

The pool holds a basket: the payout stablecoin first (asset 0, whose holdings are
`pool_balance`), then any listed assets, each valued at its oracle price id (`FACE_VALUE`: exactly
1 USD per token, no oracle read). ALP out and tokens out are one floor each of the exact
NAV / supply fraction; fees stay in the pool. A deposit values the basket at the higher of the
keeper and reference prices and the asset in at the lower; a withdrawal the basket at the lower
and the asset out at the higher; holdings of zero read no price but the action's asset's.
Deposits are priced at the NAV with the holding and funding owed to the pool, withdrawals at the
NAV without them; the first deposit locks MINIMUM_LIQUIDITY of ALP at the dead address.

The basket's listing, prices and dynamic fee curve are alp_pool.py's (`Basket`, a base of
`PoolModel`); the fee helpers are re-exported here.

`PoolModel` is the pool's own books; `AlpPool` (a part of `ExchangeModel`) is the pool wired to
the market, the oracle and the token books: LPs deposit and withdraw only at settled prices, at
the NAV with the market's claims on open positions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..units import BPS, USD
from .alp_pool import (FACE_VALUE, MAX_BASKET_ASSETS, MAX_UINT, PAYOUT, Basket, BasketAsset, checked_u256, ceil_div, fee_times_bps, fee_usd,
                       tokens_for_usd, toward_usd, value_usd)
from .errors import ModelRefusal
from .tokens import POOL

__all__ = ["DEAD_ADDRESS", "FACE_VALUE", "MAX_BASKET_ASSETS", "MINIMUM_LIQUIDITY", "PAYOUT", "AlpPool", "BasketAsset",
           "DepositQuote", "PoolModel", "PoolRefusal", "WithdrawQuote", "ceil_div", "fee_usd", "tokens_for_usd",
           "toward_usd", "value_usd"]

PoolRefusal = ModelRefusal
"""The pool model's refusals are the model's refusals (kept under the pool's name)."""

MINIMUM_LIQUIDITY = 1_000
"""ALP base units the first deposit locks at DEAD_ADDRESS forever."""
DEAD_ADDRESS = "0x000000000000000000000000000000000000dEaD"


@dataclass
class DepositQuote:
    """`_quoteDeposit`'s figures and the Deposit event's (navUsd: the NAV after, at the prices
    priced at: the basket + the amount in + the claim, floored at 0)."""

    index: int
    amount_usd: int
    alp_out: int
    fee_usd: int
    locked: int
    nav_usd: int
    toward_usd: int
    """The part of `amount_usd` that moves the asset toward its target (pays base - spread)."""
    spread_bps: int


@dataclass
class WithdrawQuote:
    """`_quoteWithdraw`'s figures and the Withdraw event's (navUsd: the redemption NAV after, at
    the prices priced at: the basket - the amount out at the price paid at + the claim, floored
    at 0)."""

    index: int
    amount_out: int
    fee_usd: int
    nav_usd: int
    gross_usd: int
    """ALP x redemption NAV / supply, before the fee: the USD the toward part is judged on."""
    toward_usd: int
    spread_bps: int


@dataclass
class PoolModel(Basket):
    decimals: int
    mint_fee_bps: int = 25
    burn_fee_bps: int = 25
    cooldown_s: int = 48 * 3600
    max_reserve_bps: int = 8_000
    pool_balance: int = 0
    """The payout token's holdings (asset 0), token units."""
    reserve_usd: int = 0
    pool_claim_usd: int = 0
    """What open positions owe the pool (negative: traders are winning), 18-decimal USD."""
    redeem_claim_usd: int = 0
    """The same without the holding and funding owed to the pool: withdrawals' claim."""
    alp_supply: int = 0
    alp: dict[str, int] = field(default_factory=dict)
    unlocks_at: dict[str, int] = field(default_factory=dict)
    payout_key: str = PAYOUT
    """The payout token's key (its address when mirroring a chain)."""
    fee_spread_bps: int = 5
    assets: list[BasketAsset] = field(default_factory=list)
    """Listing order; built with the payout token at FACE_VALUE, target 100%, when empty."""
    holdings: dict[str, int] = field(default_factory=dict)
    """Holdings of the assets after the first, token units (booked, as `_holdings`)."""
    price_source: Any = field(default=None, compare=False, repr=False)
    """`priceSource`: an oracle with `asset_price_bounds(id, now)` and `mark_price(id)`; None
    while unset (the zero address)."""
    last_quote: DepositQuote | WithdrawQuote | None = field(default=None, compare=False, repr=False)
    """The figures of the last deposit or withdrawal (its event's)."""

    def __post_init__(self) -> None:
        if not self.assets:
            self.assets = [BasketAsset(self.payout_key, self.decimals, BPS, FACE_VALUE)]

    @property
    def scale(self) -> int:
        return 10 ** (18 - self.decimals)

    @property
    def nav_usd(self) -> int:
        return max(self.mark_basket_usd() + self.pool_claim_usd, 0)

    @property
    def redeem_nav_usd(self) -> int:
        return max(self.mark_basket_usd() + self.redeem_claim_usd, 0)

    @property
    def alp_price(self) -> int:
        return USD if self.alp_supply == 0 else self.nav_usd * USD // self.alp_supply

    @property
    def redeem_alp_price(self) -> int:
        return USD if self.alp_supply == 0 else self.redeem_nav_usd * USD // self.alp_supply

    def reserve_capacity_usd(self) -> int:
        """The payout token's holdings at face value only (the engine pays 1:1)."""
        max_reserve = self.pool_balance * self.scale * self.max_reserve_bps // BPS
        return max(max_reserve - self.reserve_usd, 0)

    def _solvent_nav(self, claim_usd: int, basket_usd: int) -> int:
        nav = basket_usd + claim_usd
        if nav <= 0:
            raise PoolRefusal("PoolInsolvent", navUsd=nav, alpSupply=self.alp_supply)
        return nav

    # ----- deposits
    def check_deposit_amount(self, amount: int, asset: str | None = None) -> int:
        """`deposit`'s first checks, before it reads any price; the asset's index."""
        if amount == 0:
            raise PoolRefusal("ZeroAmount")
        index = self.index_of(asset)
        max_amount = MAX_UINT // (self.assets[index].scale * BPS)
        if amount > max_amount:
            raise PoolRefusal("AmountTooLarge", amount=amount, max=max_amount)
        return index

    def quote_deposit(self, amount: int, now: int, asset: str | None = None) -> DepositQuote:
        """`_quoteDeposit`: ALP out less the dynamic mint fee (exact, times BPS)."""
        index = self.check_deposit_amount(amount, asset)
        a = self.assets[index]
        basket, asset_usd, price_in = self._basket_usd(index, True, now)
        max_priced = (MAX_UINT // BPS) * USD // (a.scale * price_in)  # at its price: the fee's x BPS fits
        if amount > max_priced:
            raise PoolRefusal("AmountTooLarge", amount=amount, max=max_priced)
        amount_usd = checked_u256(amount * a.scale * price_in // USD)
        supply, base = self.alp_supply, self.mint_fee_bps
        spread = self._spread_bps(a.target_bps, base)
        toward = self._toward(asset_usd, basket, a.target_bps, amount_usd, True, spread)
        fee_bps_usd = fee_times_bps(toward, amount_usd, base, spread)
        net_times_bps = checked_u256(amount_usd * BPS) - fee_bps_usd
        locked = 0
        if supply == 0:
            locked = MINIMUM_LIQUIDITY
            alp_out = max(net_times_bps // BPS - locked, 0)
        else:
            nav = self._solvent_nav(self.pool_claim_usd, basket)
            alp_out = net_times_bps * supply // checked_u256(nav * BPS)
        if alp_out == 0:
            raise PoolRefusal("AmountTooSmall", amount=amount)
        fee = fee_bps_usd // BPS
        return DepositQuote(index, amount_usd, alp_out, fee, locked, max(basket + amount_usd + self.pool_claim_usd, 0),
                            toward, spread)

    def deposit(self, lp: str, amount: int, now: int, min_alp_out: int = 0, asset: str | None = None) -> int:
        q = self.quote_deposit(amount, now, asset)
        if q.alp_out < min_alp_out:
            raise PoolRefusal("InsufficientAlpOut", alpOut=q.alp_out, minAlpOut=min_alp_out)
        self.apply_deposit(lp, amount, now, q)
        return q.alp_out

    def apply_deposit(self, lp: str, amount: int, now: int, q: DepositQuote) -> None:
        """Books the asset in and mints (`_takeIn`, then the mints); the cooldown restarts."""
        self._book(q.index, self.holding_of(q.index) + amount)
        if q.locked:
            self.alp[DEAD_ADDRESS] = self.alp.get(DEAD_ADDRESS, 0) + q.locked
        self.alp_supply += q.locked + q.alp_out
        self.alp[lp] = self.alp.get(lp, 0) + q.alp_out
        self.unlocks_at[lp] = now + self.cooldown_s
        self.last_quote = q

    # ----- withdrawals
    def check_withdraw(self, lp: str, alp_amount: int, now: int, asset: str | None = None) -> int:
        """`_quoteWithdraw`'s checks before it reads any price; the asset's index."""
        if alp_amount == 0:
            raise PoolRefusal("ZeroAmount")
        index = self.index_of(asset)
        held = self.alp.get(lp, 0)
        if held < alp_amount:
            raise PoolRefusal("InsufficientAlpBalance", holder=lp, balance=held, requested=alp_amount)
        if now < self.unlocks_at.get(lp, 0):
            raise PoolRefusal("CooldownActive", holder=lp, unlocksAt=self.unlocks_at[lp])
        return index

    def quote_withdraw(self, lp: str, alp_amount: int, now: int, asset: str | None = None) -> WithdrawQuote:
        """`_quoteWithdraw` and `_withdrawUsd`: the asset out at the redemption NAV per ALP, less
        the dynamic burn fee (its toward part judged on the gross)."""
        index = self.check_withdraw(lp, alp_amount, now, asset)
        a = self.assets[index]
        basket, asset_usd, price_out = self._basket_usd(index, False, now)
        supply = self.alp_supply
        nav = self._solvent_nav(self.redeem_claim_usd, basket)
        base = self.burn_fee_bps
        spread = self._spread_bps(a.target_bps, base)
        gross = alp_amount * nav // supply
        toward = self._toward(asset_usd, basket, a.target_bps, gross, False, spread)
        # the fee on the exact gross alp x nav / supply, kept times supply x BPS: one floor each
        fee_exact = fee_times_bps(toward * supply, alp_amount * nav, base, spread)
        out_usd = (alp_amount * nav * BPS - fee_exact) // (supply * BPS)
        fee = fee_exact // (supply * BPS)
        amount_out = out_usd * USD // (price_out * a.scale)
        if amount_out == 0:
            raise PoolRefusal("AmountTooSmall", amount=alp_amount)
        paid_usd = amount_out * a.scale * price_out // USD
        return WithdrawQuote(index, amount_out, fee, max(basket - paid_usd + self.redeem_claim_usd, 0), gross, toward,
                             spread)

    def withdraw(self, lp: str, alp_amount: int, now: int, min_out: int = 0, asset: str | None = None) -> int:
        q = self.quote_withdraw(lp, alp_amount, now, asset)
        if q.amount_out < min_out:
            raise PoolRefusal("InsufficientOutput", amountOut=q.amount_out, minOut=min_out)
        self.check_holdings_after(q)
        self.apply_withdraw(lp, alp_amount, q)
        return q.amount_out

    def check_holdings_after(self, q: WithdrawQuote) -> int:
        """What the basket must still hold: the payout token the reserve, any asset the amount out."""
        out, held = q.amount_out, self.holding_of(q.index)
        if q.index == 0:
            after = max(held - out, 0)
            if out > held or after * self.scale * self.max_reserve_bps < self.reserve_usd * BPS:
                raise PoolRefusal("ReserveNotCovered", poolBalanceAfterUsd=after * self.scale,
                                  reserveUsd=self.reserve_usd)
            return after
        if out > held:
            raise PoolRefusal("BasketHoldingsShort", asset=self.assets[q.index].key, holdings=held, amountOut=out)
        return held - out

    def apply_withdraw(self, lp: str, alp_amount: int, q: WithdrawQuote) -> None:
        self._book(q.index, self.holding_of(q.index) - q.amount_out)
        self.alp[lp] = self.alp[lp] - alp_amount
        self.alp_supply -= alp_amount
        self.last_quote = q


class AlpPool:
    """The LP side of `ExchangeModel` (trading_engine.py holds `pool` and the token books):
    `PoolModel` priced by the market's claims and the oracle, as `AlpPool` reads them."""

    def nav_usd(self, now: int) -> int:
        self.refresh_pool_claim(now)
        return self.pool.nav_usd

    def redeem_nav_usd(self, now: int) -> int:
        self.refresh_pool_claim(now)
        return self.pool.redeem_nav_usd

    def refresh_pool_claim(self, now: int) -> None:
        self.pool.pool_claim_usd, self.pool.redeem_claim_usd = self.pool_claims_usd(now)

    def deposit(self, lp: str, amount: int, now: int, min_alp_out: int = 0, asset: str | None = None) -> int:
        """`AlpPool.deposit`: `asset` None is the payout token."""
        pool = self.pool
        index = pool.check_deposit_amount(amount, asset)
        self.require_settled_prices(now)
        self.refresh_pool_claim(now)
        q = pool.quote_deposit(amount, now, asset)
        if q.alp_out < min_alp_out:
            raise ModelRefusal("InsufficientAlpOut", alpOut=q.alp_out, minAlpOut=min_alp_out)
        key = None if index == 0 else pool.assets[index].key
        self._move(lp, POOL, amount, key)  # refuses a short balance, as the transfer would
        pool.apply_deposit(lp, amount, now, q)
        return q.alp_out

    def withdraw(self, lp: str, alp: int, now: int, min_out: int = 0, asset: str | None = None) -> int:
        """`AlpPool.withdraw`: `asset` None is the payout token."""
        pool = self.pool
        pool.check_withdraw(lp, alp, now, asset)  # amount, asset, balance and cooldown before the prices
        self.require_settled_prices(now)
        self.refresh_pool_claim(now)
        q = pool.quote_withdraw(lp, alp, now, asset)
        if q.amount_out < min_out:
            raise ModelRefusal("InsufficientOutput", amountOut=q.amount_out, minOut=min_out)
        pool.check_holdings_after(q)
        self._move(POOL, lp, q.amount_out, None if q.index == 0 else pool.assets[q.index].key)
        pool.apply_withdraw(lp, alp, q)
        return q.amount_out

    def set_pool_price_source(self) -> None:
        """`AlpPool.setPriceSource(oracle)`: the basket is priced at this model's oracle."""
        self.pool.set_price_source(self)
