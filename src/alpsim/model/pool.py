"""Reference model of the ALP pool (docs/mechanics.md section 10), to the unit of the contracts.

Mirrors `contracts/pool/AlpPool.sol`: ALP out and collateral out are one floor each of the
exact NAV / supply fraction; fees stay in the pool. Deposits are priced at the NAV with the
holding and funding owed to the pool, withdrawals at the NAV without them; the first deposit
locks MINIMUM_LIQUIDITY of ALP at the dead address.

The basket's dynamic fee (docs/basket-design.md section 6): each USD of an action that moves its
asset toward its target weight pays `base - spread` bp, each USD that moves it away `base + spread`
(20 and 30 around 25). The fee is a potential: splitting an action changes nothing, a round trip
costs 2 x base, and a one-asset basket (target 100%) pays `base`. `PoolModel` below still holds
one asset (issue 28 continues).

`PoolModel` is the pool's own books; `AlpPool` (a part of `ExchangeModel`) is the pool wired to
the market and the oracle: LPs deposit and withdraw only at settled prices, at the NAV with the
market's claims on open positions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..units import BPS, USD
from .errors import ModelRefusal
from .tokens import POOL


PoolRefusal = ModelRefusal
"""The pool model's refusals are the model's refusals (kept under the pool's name)."""


MINIMUM_LIQUIDITY = 1_000
"""ALP base units the first deposit locks at DEAD_ADDRESS forever."""
DEAD_ADDRESS = "0x000000000000000000000000000000000000dEaD"




def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def toward_usd(value_usd: int, total_usd: int, target_bps: int, action_usd: int, is_deposit: bool) -> int:
    """The part of `action_usd` that moves the asset toward its target, rounded down.

    `value_usd` is the asset's holdings value and `total_usd` the basket's (holdings only, no
    claim), both before the action, at the action's prices. The signed deviation
    `e = value x BPS - target x total` moves by `action x (BPS - target)` per USD: up for a
    deposit, down for a withdrawal.
    """
    k = BPS - target_bps
    if k == 0:
        return 0  # a one-asset basket: its weight never moves (see fee_usd)
    e = value_usd * BPS - target_bps * total_usd
    if is_deposit and e < 0:
        return min(action_usd, (-e) // k)
    if not is_deposit and e > 0:
        return min(action_usd, e // k)
    return 0


def fee_usd(value_usd: int, total_usd: int, target_bps: int, action_usd: int, is_deposit: bool,
            base_bps: int = 25, spread_bps: int = 5) -> int:
    """The mint (deposit) or burn (withdrawal) fee in 18-decimal USD, rounded up."""
    if target_bps == BPS:
        return ceil_div(action_usd * base_bps, BPS)
    toward = toward_usd(value_usd, total_usd, target_bps, action_usd, is_deposit)
    away = action_usd - toward
    return ceil_div(toward * (base_bps - spread_bps) + away * (base_bps + spread_bps), BPS)


def value_usd(amount: int, decimals: int, price_wad: int) -> int:
    """Token units at an 18-decimal USD price -> 18-decimal USD, rounded down."""
    return amount * 10 ** (18 - decimals) * price_wad // 10**18


def tokens_for_usd(usd: int, decimals: int, price_wad: int) -> int:
    """18-decimal USD -> token units at an 18-decimal USD price, rounded down (payouts)."""
    return usd * 10**18 // (price_wad * 10 ** (18 - decimals))


@dataclass
class PoolModel:
    decimals: int
    mint_fee_bps: int = 25
    burn_fee_bps: int = 25
    cooldown_s: int = 48 * 3600
    max_reserve_bps: int = 8_000
    pool_balance: int = 0
    """Collateral held for LPs, token units."""
    reserve_usd: int = 0
    pool_claim_usd: int = 0
    """What open positions owe the pool (negative: traders are winning), 18-decimal USD."""
    redeem_claim_usd: int = 0
    """The same without the holding and funding owed to the pool: withdrawals' claim."""
    alp_supply: int = 0
    alp: dict[str, int] = field(default_factory=dict)
    unlocks_at: dict[str, int] = field(default_factory=dict)

    @property
    def scale(self) -> int:
        return 10 ** (18 - self.decimals)

    @property
    def nav_usd(self) -> int:
        return max(self.pool_balance * self.scale + self.pool_claim_usd, 0)

    @property
    def redeem_nav_usd(self) -> int:
        return max(self.pool_balance * self.scale + self.redeem_claim_usd, 0)

    @property
    def alp_price(self) -> int:
        return USD if self.alp_supply == 0 else self.nav_usd * USD // self.alp_supply

    @property
    def redeem_alp_price(self) -> int:
        return USD if self.alp_supply == 0 else self.redeem_nav_usd * USD // self.alp_supply

    def reserve_capacity_usd(self) -> int:
        max_reserve = self.pool_balance * self.scale * self.max_reserve_bps // BPS
        return max(max_reserve - self.reserve_usd, 0)

    def _solvent_nav(self, claim_usd: int) -> int:
        nav = self.pool_balance * self.scale + claim_usd
        if nav <= 0:
            raise PoolRefusal("PoolInsolvent", navUsd=nav, alpSupply=self.alp_supply)
        return nav

    def check_deposit_amount(self, amount: int) -> None:
        """`AlpPool.deposit`'s first checks, before it reads any price."""
        if amount == 0:
            raise PoolRefusal("ZeroAmount")
        max_amount = (2**256 - 1) // (self.scale * BPS)
        if amount > max_amount:
            raise PoolRefusal("AmountTooLarge", amount=amount, max=max_amount)

    def deposit(self, lp: str, amount: int, now: int, min_alp_out: int = 0) -> int:
        self.check_deposit_amount(amount)
        net_usd_bps = amount * self.scale * (BPS - self.mint_fee_bps)
        locked = 0
        if self.alp_supply == 0:
            locked = MINIMUM_LIQUIDITY
            alp_out = max(net_usd_bps // BPS - locked, 0)
        else:
            alp_out = net_usd_bps * self.alp_supply // (self._solvent_nav(self.pool_claim_usd) * BPS)
        if alp_out == 0:
            raise PoolRefusal("AmountTooSmall", amount=amount)
        if alp_out < min_alp_out:
            raise PoolRefusal("InsufficientAlpOut", alpOut=alp_out, minAlpOut=min_alp_out)
        self.pool_balance += amount
        if locked:
            self.alp[DEAD_ADDRESS] = self.alp.get(DEAD_ADDRESS, 0) + locked
        self.alp_supply += locked + alp_out
        self.alp[lp] = self.alp.get(lp, 0) + alp_out
        self.unlocks_at[lp] = now + self.cooldown_s
        return alp_out

    def withdraw(self, lp: str, alp_amount: int, now: int, min_out: int = 0) -> int:
        if alp_amount == 0:
            raise PoolRefusal("ZeroAmount")
        held = self.alp.get(lp, 0)
        if held < alp_amount:
            raise PoolRefusal("InsufficientAlpBalance", balance=held, requested=alp_amount)
        if now < self.unlocks_at.get(lp, 0):
            raise PoolRefusal("CooldownActive", unlocksAt=self.unlocks_at[lp])
        nav = self._solvent_nav(self.redeem_claim_usd)
        out_usd = alp_amount * (BPS - self.burn_fee_bps) * nav // (self.alp_supply * BPS)
        amount_out = out_usd // self.scale
        if amount_out == 0:
            raise PoolRefusal("AmountTooSmall", amount=alp_amount)
        if amount_out < min_out:
            raise PoolRefusal("InsufficientOutput", amountOut=amount_out, minOut=min_out)
        balance_after = max(self.pool_balance - amount_out, 0)
        if amount_out > self.pool_balance or balance_after * self.scale * self.max_reserve_bps < self.reserve_usd * BPS:
            raise PoolRefusal("ReserveNotCovered", poolBalanceAfterUsd=balance_after * self.scale,
                              reserveUsd=self.reserve_usd)
        self.alp[lp] = held - alp_amount
        self.alp_supply -= alp_amount
        self.pool_balance = balance_after
        return amount_out


class AlpPool:
    """The LP side of `ExchangeModel` (trading_engine.py holds `pool` and the balances): `PoolModel`
    priced by the market's claims, as `AlpPool` reads them from its NAV source."""

    def nav_usd(self, now: int) -> int:
        self.refresh_pool_claim(now)
        return self.pool.nav_usd

    def redeem_nav_usd(self, now: int) -> int:
        self.refresh_pool_claim(now)
        return self.pool.redeem_nav_usd

    def refresh_pool_claim(self, now: int) -> None:
        self.pool.pool_claim_usd, self.pool.redeem_claim_usd = self.pool_claims_usd(now)

    def deposit(self, lp: str, amount: int, now: int, min_alp_out: int = 0) -> int:
        self.pool.check_deposit_amount(amount)
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
