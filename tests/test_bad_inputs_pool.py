"""Every bad input to the ALP pool (docs/mechanics.md sections 1, 10, 13), table-driven, on both chain
profiles: each refusal raises the exact custom error with its arguments, and leaves every
balance (collateral, ALP, platform token, the pool's books) unchanged to the unit.

Rows name a prepared state (`conftest.PreparedStates`), the
caller, the call and its arguments, the expected error and its fields. Arguments and fields
may be functions of the deployed system, read just before the call."""

from __future__ import annotations

from typing import Callable

import pytest

from alpsim import errors
from bad_inputs_helpers import (ADMIN, COOLDOWN_S, HOLDER, KEEPER, LP, MAX_UINT, PRICES, TRADER, TRADER3,
                                TREASURY, WAD, ZERO_ADDRESS, addr, breaker, build_funded, new_price_unsettled,
                                reference_at, reference_stale, RefusalTable, resolve, settle, settled_until,
                                settlement_aged, smallest_breaking_withdrawal, wait_until_next_block_at)


BPS = 10_000
BASE_FEE_BPS, FEE_SPREAD_BPS = 25, 5
"""docs/mechanics.md §10: the mint and burn fee is 25 bp, 5 bp more on what moves an asset away
from its target weight and 5 bp less on what moves it toward. Here the basket holds only the
payout stablecoin (target 50% on bnb, 60% on arbitrum) at 1 USD: a deposit of it moves it away
(30 bp), a withdrawal of less than the whole basket toward it (20 bp)."""
MAX_RESERVE_BPS = 8_000  # docs/mechanics.md §10: the reserve may use at most 80% of the pool balance

EOA_ROLES = {"admin": ADMIN, "trader": TRADER, "lp": LP, "treasury": TREASURY, "keeper": KEEPER}
"""One account per EOA role (docs/mechanics.md §1). The trading engine, a contract, holds TRADING_ROLE."""
NON_ADMINS = {k: v for k, v in EOA_ROLES.items() if k != "admin"}


# ------------------------------------------------------------------ prepared states

def _units(sim, whole: int) -> int:
    return whole * 10**sim.decimals


def _build_position(sim) -> None:
    """funded, holding and funding rates at zero (NAV then moves with the price only), and
    open interest on BTC (long) and ETH (short): the pool holds a reserve."""
    build_funded(sim)
    sim.contracts["market"].transact("setRates", 0, 0, sender=sim.address(ADMIN))
    sim.keeper.set_prices(PRICES)
    sim.open(TRADER, "BTC/USD", "long", 600, 10)
    sim.open(TRADER3, "ETH/USD", "short", 100, 10)


def _build_loss(sim) -> None:
    """position, then BTC up 5%: the pool owes the long ~300 USD, ALP trades below 1/0.9975.
    The new price is recorded by a bare `updatePrices`: not settled (the rows settle it)."""
    _build_position(sim)
    sim.keeper.set_prices({"BTC/USD": 63_000})
    sim.keeper.push_prices()


def _build_paused(sim) -> None:
    build_funded(sim)
    sim.pool_contract.transact("pause", sender=sim.address(ADMIN))


def _build_drained(sim) -> None:
    """LP deposited 1,000 and redeemed all but one wei of ALP: one wei of ALP is worth what
    the fees left in the pool (~2.5 USD), so small deposits mint nothing."""
    sim.fund(LP, 1_000)
    sim.fund(TRADER, 1_000)
    sim.deposit(LP, 1_000)
    sim.devnet.advance_time(COOLDOWN_S + 1)
    sim.withdraw_wad(LP, sim.alp_balance_wad(LP) - 1)
    sim.contracts["collateral"].transact("approve", sim.pool_contract.address, MAX_UINT, sender=sim.address(TRADER))


BUILDERS = {"funded": build_funded, "position": _build_position, "loss": _build_loss,
            "paused": _build_paused, "drained": _build_drained}


def _pool_settings(sim) -> dict:
    """The pool's settings."""
    pool = sim.contracts["pool"]
    return {"pool_settings": [pool.call(f) for f in ("paused", "mintFeeBps", "burnFeeBps", "cooldownSeconds",
                                                     "maxReserveBps", "navSource")]}


TABLE = RefusalTable(BUILDERS, extra=_pool_settings)
enter, refused, run_row, snapshot = TABLE.enter, TABLE.refused, TABLE.run_row, TABLE.snapshot


# ------------------------------------------------------------------ values read from the chain


def pool_addr(s) -> str:
    return s.pool_contract.address


def alp_of(i: int, plus: int = 0) -> Callable:
    return lambda s: s.alp_balance_wad(i) + plus


def coll_of(i: int, plus: int = 0) -> Callable:
    return lambda s: s.collateral_units(i) + plus


def units(whole: int) -> Callable:
    return lambda s: _units(s, whole)


def unlocks_at(i: int) -> Callable:
    return lambda s: s.contracts["alp"].call("unlocksAt", s.address(i))


def price_at(pair_id: int) -> Callable:
    return lambda s: s.contracts["oracle"].call("keeperPrice", pair_id)[1]


def _nav_supply(s, redeem: bool = False) -> tuple[int, int]:
    """NAV (deposits') or the redemption NAV (withdrawals'), and the ALP supply."""
    return s.pool_contract.call("redeemNav" if redeem else "nav"), s.contracts["alp"].call("totalSupply")


def alp_out(amount_units: int | Callable) -> Callable:
    """ALP a deposit mints (docs/mechanics.md §10): amount x (1 - 0.30%) / (NAV / supply), rounded down."""
    def f(s):
        nav, supply = _nav_supply(s)
        amount = resolve(amount_units, s)
        return amount * 10 ** (18 - s.decimals) * (BPS - BASE_FEE_BPS - FEE_SPREAD_BPS) * supply // (nav * BPS)
    return f


def _out(nav: int, supply: int, scale: int, alp: int, basket_usd: int) -> int:
    """The gross alp x NAV / supply less 30 bp, plus the 2 x 5 bp rebate on its part that moves
    the stablecoin toward its target (at most the basket's value: it is all of the basket)."""
    toward = min(alp * nav // supply, basket_usd)
    return (alp * (BPS - BASE_FEE_BPS - FEE_SPREAD_BPS) * nav + 2 * FEE_SPREAD_BPS * toward * supply) \
        // (supply * BPS) // scale


def _withdraw_rule(s) -> Callable[[int], int]:
    nav, supply = _nav_supply(s, redeem=True)
    scale = 10 ** (18 - s.decimals)
    basket_usd = s.pool_contract.call("poolBalance") * scale
    return lambda alp: _out(nav, supply, scale, alp, basket_usd)


def withdraw_out(s, alp: int) -> int:
    """Collateral a withdrawal pays (docs/mechanics.md §10), at the redemption NAV, rounded down."""
    return _withdraw_rule(s)(alp)


def out_of(alp: int | Callable) -> Callable:
    return lambda s: withdraw_out(s, resolve(alp, s))


def largest_dust_deposit(s) -> int:
    """The largest deposit (token units) that mints zero ALP."""
    nav, supply = _nav_supply(s)
    return (nav * BPS - 1) // (10 ** (18 - s.decimals) * (BPS - BASE_FEE_BPS - FEE_SPREAD_BPS) * supply)


def largest_dust_withdrawal(s) -> int:
    """The largest ALP amount whose withdrawal pays zero token units (what it pays grows with
    the amount: a bisection)."""
    rule = _withdraw_rule(s)
    lo, hi = 0, 1
    while rule(hi) == 0:
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if rule(mid) == 0 else (lo, mid)
    return lo


def _reserve_rule(s) -> Callable[[int], tuple[int, bool]]:
    """For an amount of ALP: the pool balance (USD) its withdrawal would leave, and whether
    that breaks the reserve rule (docs/mechanics.md §10: the balance may not fall below reserve / 80%)."""
    rule, scale = _withdraw_rule(s), 10 ** (18 - s.decimals)
    pool_units, reserve = s.pool_contract.call("poolBalance"), s.pool_contract.call("reserveUsd")

    def after(alp: int) -> tuple[int, bool]:
        out = rule(alp)
        left = (pool_units - out if pool_units > out else 0) * scale
        return left, out > pool_units or left * MAX_RESERVE_BPS < reserve * BPS

    return after


def smallest_reserve_breaking_withdrawal(s) -> int:
    """The smallest amount of LP's ALP whose withdrawal would leave the pool below reserve / 80%."""
    return smallest_breaking_withdrawal(_reserve_rule(s), s.alp_balance_wad(LP))


def reserve_not_covered(alp: int | Callable) -> Callable:
    """The fields of ReserveNotCovered for a withdrawal of `alp` (which must break the rule)."""
    def f(s):
        after, breaks = _reserve_rule(s)(resolve(alp, s))
        assert breaks
        return {"poolBalanceAfterUsd": after, "reserveUsd": s.pool_contract.call("reserveUsd")}
    return f


# ------------------------------------------------------------------ row preparations

def approve_pool(who: int, amount: int | Callable) -> Callable:
    def prep(s):
        pool = s.pool_contract.address
        s.contracts["collateral"].transact("approve", pool, resolve(amount, s), sender=s.address(who))
    return prep


def stale_by(pair_id: int, seconds: int) -> Callable:
    """The next block is `seconds` after the pair's keeper price."""
    return lambda s: wait_until_next_block_at(s, price_at(pair_id)(s) + seconds)


def only_btc_fresh(s) -> None:
    """ETH's keeper price 61 s old; BTC's triggers run (its price settled) just now."""
    stale_by(1, 61)(s)
    settle(s, [0])


def tightened_max_age(s) -> None:
    """The keeper's triggers run (prices settled), then the admin lowers the maximum price age to
    10 s; the next block is 11 s after BTC's."""
    settle(s)
    s.contracts["oracle"].transact("setGuardSettings", 10, 100, 10, sender=s.address(ADMIN))
    stale_by(0, 11)(s)


def last_second_of_cooldown(who: int) -> Callable:
    return lambda s: wait_until_next_block_at(s, unlocks_at(who)(s) - 1)


def push_prices(s) -> None:
    """A bare `updatePrices` at the keeper's prices: fresh, and since issue 26 not enough for LPs
    (a changed price is not settled; the same price keeps its settlement, none here)."""
    s.keeper.push_prices()


# ------------------------------------------------------------------ LP actions: deposit, withdraw

D, W = "deposit", "withdraw"
LP_ROWS = [
    # id, state, prep, caller, function, arguments, error, fields
    # --- zero
    ("deposit-zero-no-allowance", "funded", None, TRADER, D, (0, 0), "ZeroAmount", {}),
    ("deposit-zero-with-min-out", "funded", None, LP, D, (0, 1), "ZeroAmount", {}),
    ("withdraw-zero-in-cooldown", "funded", None, HOLDER, W, (0, 0), "ZeroAmount", {}),
    ("withdraw-zero-without-alp", "funded", None, TREASURY, W, (0, 0), "ZeroAmount", {}),
    # --- dust: rounds to nothing
    ("deposit-one-unit-mints-0", "drained", None, TRADER, D, (1, 0), "AmountTooSmall", {"amount": 1}),
    ("deposit-largest-dust", "drained", None, TRADER, D, (largest_dust_deposit, 0),
     "AmountTooSmall", {"amount": largest_dust_deposit}),
    ("withdraw-one-wei-pays-0", "loss", settle, LP, W, (1, 0), "AmountTooSmall", {"amount": 1}),
    ("withdraw-largest-dust", "loss", settle, LP, W, (largest_dust_withdrawal, 0),
     "AmountTooSmall", {"amount": largest_dust_withdrawal}),
    # --- over balance and overflow-sized
    ("deposit-balance-plus-one", "funded", None, LP, D, (coll_of(LP, 1), 0),
     "ERC20InsufficientBalance", {"sender": addr(LP), "balance": coll_of(LP), "needed": coll_of(LP, 1)}),
    ("deposit-huge-fits-the-math", "funded", None, LP, D, (lambda s: MAX_UINT // (10 ** (18 - s.decimals) * BPS), 0),
     "ERC20InsufficientBalance",
     {"sender": addr(LP), "balance": coll_of(LP), "needed": lambda s: MAX_UINT // (10 ** (18 - s.decimals) * BPS)}),
    ("deposit-max-uint", "funded", None, LP, D, (MAX_UINT, 0), "AmountTooLarge",
     {"amount": MAX_UINT, "max": lambda s: MAX_UINT // (10 ** (18 - s.decimals) * BPS)}),
    ("withdraw-balance-plus-one", "funded", None, LP, W, (alp_of(LP, 1), 0),
     "InsufficientAlpBalance", {"holder": addr(LP), "balance": alp_of(LP), "requested": alp_of(LP, 1)}),
    ("withdraw-max-uint", "funded", None, LP, W, (MAX_UINT, 0),
     "InsufficientAlpBalance", {"holder": addr(LP), "balance": alp_of(LP), "requested": MAX_UINT}),
    # --- allowance
    ("deposit-allowance-one-short", "funded", approve_pool(TRADER, lambda s: _units(s, 100) - 1),
     TRADER, D, (units(100), 0),
     "ERC20InsufficientAllowance",
     {"spender": pool_addr, "allowance": lambda s: _units(s, 100) - 1, "needed": units(100)}),
    ("deposit-allowance-spent", "funded", None, HOLDER, D, (units(100), 0),
     "ERC20InsufficientAllowance", {"spender": pool_addr, "allowance": 0, "needed": units(100)}),
    # --- minimum out not met
    ("deposit-min-out-plus-one", "funded", None, LP, D, (units(1_000), lambda s: alp_out(units(1_000))(s) + 1),
     "InsufficientAlpOut", {"alpOut": alp_out(units(1_000)), "minAlpOut": lambda s: alp_out(units(1_000))(s) + 1}),
    ("deposit-min-out-max-uint", "funded", None, LP, D, (units(1_000), MAX_UINT),
     "InsufficientAlpOut", {"alpOut": alp_out(units(1_000)), "minAlpOut": MAX_UINT}),
    ("withdraw-min-out-plus-one", "funded", None, LP, W, (5_000 * WAD, lambda s: withdraw_out(s, 5_000 * WAD) + 1),
     "InsufficientOutput", {"amountOut": out_of(5_000 * WAD), "minOut": lambda s: withdraw_out(s, 5_000 * WAD) + 1}),
    ("withdraw-min-out-max-uint", "funded", None, LP, W, (alp_of(LP), MAX_UINT),
     "InsufficientOutput", {"amountOut": out_of(alp_of(LP)), "minOut": MAX_UINT}),
    # --- cooldown
    ("withdraw-in-cooldown", "funded", None, HOLDER, W, (alp_of(HOLDER), 0),
     "CooldownActive", {"holder": addr(HOLDER), "unlocksAt": unlocks_at(HOLDER)}),
    ("withdraw-last-second-of-cooldown", "funded", last_second_of_cooldown(HOLDER), HOLDER, W, (1, 0),
     "CooldownActive", {"holder": addr(HOLDER), "unlocksAt": unlocks_at(HOLDER)}),
    ("withdraw-in-cooldown-with-stale-price", "position", stale_by(0, 61), HOLDER, W, (alp_of(HOLDER), 0),
     "CooldownActive", {"holder": addr(HOLDER), "unlocksAt": unlocks_at(HOLDER)}),
    # --- someone else's ALP
    *[(f"withdraw-lps-alp-by-{name}", "funded", None, who, W, (alp_of(LP), 0),
       "InsufficientAlpBalance", {"holder": addr(who), "balance": 0, "requested": alp_of(LP)})
      for name, who in EOA_ROLES.items() if who != LP],
    ("withdraw-lps-alp-by-small-holder", "funded", None, HOLDER, W, (alp_of(LP), 0),
     "InsufficientAlpBalance", {"holder": addr(HOLDER), "balance": alp_of(HOLDER), "requested": alp_of(LP)}),
    # --- below the reserve
    ("withdraw-all-below-reserve", "position", settle, LP, W, (alp_of(LP), 0),
     "ReserveNotCovered", reserve_not_covered(alp_of(LP))),
    ("withdraw-smallest-below-reserve", "position", settle, LP, W, (smallest_reserve_breaking_withdrawal, 0),
     "ReserveNotCovered", reserve_not_covered(smallest_reserve_breaking_withdrawal)),
    # --- paused
    ("deposit-paused", "paused", None, LP, D, (units(100), 0), "EnforcedPause", {}),
    ("deposit-zero-paused", "paused", None, LP, D, (0, 0), "EnforcedPause", {}),
    ("deposit-no-allowance-paused", "paused", None, TRADER, D, (units(100), 0), "EnforcedPause", {}),
    ("withdraw-paused", "paused", None, LP, W, (alp_of(LP), 0), "EnforcedPause", {}),
    ("withdraw-without-alp-paused", "paused", None, TRADER, W, (1, 0), "EnforcedPause", {}),
    # --- stale prices with open interest
    ("deposit-btc-price-61s-old", "position", stale_by(0, 61), LP, D, (units(100), 0),
     "PriceStale", {"pairId": 0, "updatedAt": price_at(0), "maxAge": 60}),
    ("withdraw-btc-price-61s-old", "position", stale_by(0, 61), LP, W, (WAD, 0),
     "PriceStale", {"pairId": 0, "updatedAt": price_at(0), "maxAge": 60}),
    ("deposit-eth-price-61s-old", "position", only_btc_fresh, LP, D, (units(100), 0),
     "PriceStale", {"pairId": 1, "updatedAt": price_at(1), "maxAge": 60}),
    ("withdraw-eth-price-61s-old", "position", only_btc_fresh, LP, W, (WAD, 0),
     "PriceStale", {"pairId": 1, "updatedAt": price_at(1), "maxAge": 60}),
    ("deposit-max-age-lowered-to-10s", "position", tightened_max_age, LP, D, (units(100), 0),
     "PriceStale", {"pairId": 0, "updatedAt": price_at(0), "maxAge": 10}),
    # --- prices fresh but not usable for LPs (issue 26), in settledMarkPrice's order of checks:
    #     the reference round stale, the reference past the circuit breaker, the price not settled
    *[row for fn, amount in ((D, units(100)), (W, WAD)) for row in [
        (f"{fn}-btc-reference-61s-old", "position", reference_stale, LP, fn, (amount, 0),
         "ReferenceStale", {"pairId": 0, "updatedAt": reference_at(0), "maxAge": 60}),
        (f"{fn}-btc-reference-past-breaker", "position", breaker, LP, fn, (amount, 0),
         "CircuitBreakerTripped", {"pairId": 0, "keeperPrice": 60_000 * WAD, "referencePrice": 61_000 * WAD}),
        (f"{fn}-btc-opened-never-triggered", "position", None, LP, fn, (amount, 0),
         "PriceNotSettled", {"pairId": 0, "updatedAt": price_at(0), "settledUntil": 0}),
        (f"{fn}-btc-new-price-by-updatePrices", "position", new_price_unsettled, LP, fn, (amount, 0),
         "PriceNotSettled", {"pairId": 0, "updatedAt": price_at(0), "settledUntil": 0}),
        (f"{fn}-btc-settlement-aged-same-price-pushed", "position", settlement_aged, LP, fn, (amount, 0),
         "PriceNotSettled", {"pairId": 0, "updatedAt": price_at(0), "settledUntil": settled_until(0)}),
        # a bare push at the opening prices: fresh, never settled
        (f"{fn}-opened-then-bare-push", "position", push_prices, LP, fn, (amount, 0),
         "PriceNotSettled", {"pairId": 0, "updatedAt": price_at(0), "settledUntil": 0}),
        (f"{fn}-new-price-bare-push", "loss", push_prices, LP, fn, (amount, 0),
         "PriceNotSettled", {"pairId": 0, "updatedAt": price_at(0), "settledUntil": 0}),
    ]],
]


@pytest.mark.parametrize("state, prep, caller, function, args, error, fields", [r[1:] for r in LP_ROWS],
                         ids=[r[0] for r in LP_ROWS])
def test_lp_action_refused(sim, state, prep, caller, function, args, error, fields):
    enter(sim, state)
    if prep:
        prep(sim)
    args = tuple(resolve(a, sim) for a in args)
    payout = sim.pool_contract.call("collateral")
    args = (payout, *args) if function == D else (args[0], payout, *args[1:])
    fields = resolve(fields, sim)
    fields = {k: resolve(v, sim) for k, v in fields.items()}
    who = sim.address(caller)
    refused(sim, getattr(errors, error), lambda: sim.pool_contract.transact(function, *args, sender=who), **fields)


# ------------------------------------------------------------------ role-gated functions

# arguments as functions of (sim, caller); each would move a balance or a setting if accepted
TRADING_CALLS = [
    ("increaseReserve", lambda s, who: (1_000_000 * WAD, _units(s, 1_000))),
    ("decreaseReserve", lambda s, who: (1, _units(s, 1_000))),
    ("payTokens", lambda s, who: (s.address(who), _units(s, 1_000))),
]
ADMIN_CALLS = [
    ("setSettings", lambda s, who: (0, 0, 0, BPS), "funded"),
    ("setNavSource", lambda s, who: (ZERO_ADDRESS,), "funded"),
    ("pause", lambda s, who: (), "funded"),
    ("unpause", lambda s, who: (), "paused"),
]
DEFAULT_ADMIN_CALLS = [  # granting and revoking roles needs DEFAULT_ADMIN_ROLE
    ("grantRole", "TRADING-to-self", lambda s, who: (s.pool_contract.call("TRADING_ROLE"), s.address(who))),
    ("grantRole", "ADMIN-to-self", lambda s, who: (s.pool_contract.call("ADMIN_ROLE"), s.address(who))),
    ("revokeRole", "ADMIN-from-admin", lambda s, who: (s.pool_contract.call("ADMIN_ROLE"), s.address(ADMIN))),
]

ROLE_ROWS = (
    [(f"{fn}-by-{name}", "funded", who, fn, args, "TRADING_ROLE")
     for fn, args in TRADING_CALLS for name, who in EOA_ROLES.items()]
    + [(f"{fn}-by-{name}", state, who, fn, args, "ADMIN_ROLE")
       for fn, args, state in ADMIN_CALLS for name, who in NON_ADMINS.items()]
    + [(f"{fn}-{what}-by-{name}", "funded", who, fn, args, "DEFAULT_ADMIN_ROLE")
       for fn, what, args in DEFAULT_ADMIN_CALLS for name, who in NON_ADMINS.items()]
)


@pytest.mark.parametrize("state, caller, function, args, needed_role", [r[1:] for r in ROLE_ROWS],
                         ids=[r[0] for r in ROLE_ROWS])
def test_role_gated_pool_function_refused(sim, state, caller, function, args, needed_role):
    enter(sim, state)
    pool = sim.pool_contract
    who = sim.address(caller)
    assert not pool.call("hasRole", pool.call(needed_role), who)
    call_args = args(sim, caller)
    refused(sim, errors.AccessControlUnauthorizedAccount, lambda: pool.transact(function, *call_args, sender=who),
            account=who, neededRole=pool.call(needed_role))


def test_the_trading_engine_holds_the_pool_roles_no_eoa_does(sim):
    """The premise of the matrix above: only the engine contract may move reserve and tokens."""
    pool = sim.pool_contract
    trading_role, admin_role = pool.call("TRADING_ROLE"), pool.call("ADMIN_ROLE")
    assert pool.call("hasRole", trading_role, sim.contracts["trading"].address)
    assert [i for i in range(10) if pool.call("hasRole", trading_role, sim.address(i))] == []
    assert [i for i in range(10) if pool.call("hasRole", admin_role, sim.address(i))] == [ADMIN]


# ------------------------------------------------------------------ settings out of range

SETTINGS_ROWS = [
    # id, (mintFeeBps, burnFeeBps, cooldownSeconds, maxReserveBps), bps reported
    ("mint-fee-100pct", (BPS, 25, COOLDOWN_S, 8_000), BPS),
    ("mint-fee-max-uint", (MAX_UINT, 25, COOLDOWN_S, 8_000), MAX_UINT),
    ("burn-fee-100pct", (25, BPS, COOLDOWN_S, 8_000), BPS),
    ("burn-fee-max-uint", (25, MAX_UINT, COOLDOWN_S, 8_000), MAX_UINT),
    ("max-reserve-over-100pct", (25, 25, COOLDOWN_S, BPS + 1), BPS + 1),
    ("max-reserve-max-uint", (25, 25, COOLDOWN_S, MAX_UINT), MAX_UINT),
    ("all-out-of-range-first-reported", (BPS + 7, BPS + 8, 0, BPS + 9), BPS + 7),
    ("burn-before-reserve", (9_999, BPS + 8, 0, BPS + 9), BPS + 8),
]


@pytest.mark.parametrize("settings, bps", [r[1:] for r in SETTINGS_ROWS], ids=[r[0] for r in SETTINGS_ROWS])
def test_set_settings_invalid_bps(sim, settings, bps):
    enter(sim, "funded")
    refused(sim, errors.InvalidBps,
            lambda: sim.pool_contract.transact("setSettings", *settings, sender=sim.address(ADMIN)), bps=bps)


# ------------------------------------------------------------------ the boundaries the table relies on

def _dust_deposit_plus_one(s) -> None:
    dust = largest_dust_deposit(s)
    assert dust >= 1
    assert s.pool_contract.call("deposit", s.pool_contract.call("collateral"), dust + 1, 0, sender=s.address(TRADER)) == 1


def _dust_withdrawal_plus_one(s) -> None:
    settle(s)
    dust = largest_dust_withdrawal(s)
    assert dust >= 1
    assert s.pool_contract.call("withdraw", dust + 1, s.pool_contract.call("collateral"), 0, sender=s.address(LP)) == 1


def _reserve_limit_minus_one(s) -> None:
    settle(s)
    smallest = smallest_reserve_breaking_withdrawal(s)
    assert s.pool_contract.call("withdraw", smallest - 1, s.pool_contract.call("collateral"), 0, sender=s.address(LP)) == withdraw_out(s, smallest - 1)


@pytest.mark.parametrize("state, check", [("drained", _dust_deposit_plus_one), ("loss", _dust_withdrawal_plus_one),
                                          ("position", _reserve_limit_minus_one)],
                         ids=["deposit-dust-plus-one-mints-1-wei", "withdrawal-dust-plus-one-pays-1-unit",
                              "one-wei-below-the-reserve-limit-is-paid"])
def test_one_step_past_each_computed_limit_goes_through(sim, state, check):
    """The limits the table computes are exact: one step past each, the same call is accepted."""
    enter(sim, state)
    check(sim)


def _keeper_follows_the_reference(s) -> None:
    """After `breaker`: the keeper takes the reference's 61,000 as its price (no new round)."""
    s.keeper.set_prices({"BTC/USD": 61_000}, reference=False)


SETTLE_CONTROLS = {
    "opened-never-triggered": ("position", None),
    "opened-then-bare-push": ("position", push_prices),
    "new-price-bare-push": ("loss", push_prices),
    "new-price-by-updatePrices": ("position", new_price_unsettled),
    "settlement-aged-same-price-pushed": ("position", settlement_aged),
    "reference-61s-old": ("position", reference_stale),
    "reference-past-breaker-keeper-follows": ("position", lambda s: (breaker(s), _keeper_follows_the_reference(s))),
}


@pytest.mark.parametrize("function", [D, W])
@pytest.mark.parametrize("state, prep", list(SETTLE_CONTROLS.values()), ids=list(SETTLE_CONTROLS))
def test_after_the_keepers_trigger_run_the_same_lp_action_goes_through(sim, state, prep, function):
    """The control of the rows refused with ReferenceStale, CircuitBreakerTripped and
    PriceNotSettled: the keeper's trigger run at its current price (reference rounds older than
    30 s refreshed first) settles it, the keeper pushes the stablecoin's price, and the same
    deposit or withdrawal is paid to the unit."""
    enter(sim, state)
    if prep:
        prep(sim)
    settle(sim)
    sim.keeper.fresh_basket_prices()  # the stablecoin's own price (an asset-only id), as before any LP action
    pool, lp = sim.pool_contract, sim.address(LP)
    if function == D:
        amount, alp_before = _units(sim, 100), sim.alp_balance_wad(LP)
        expected = alp_out(amount)(sim)
        event = sim.session.events(pool.transact(D, pool.call("collateral"), amount, 0, sender=lp), "Deposit")[0]
        assert event["alpOut"] == expected > 0
        assert sim.alp_balance_wad(LP) == alp_before + expected
    else:
        coll_before = sim.collateral_units(LP)
        expected = withdraw_out(sim, WAD)
        event = sim.session.events(pool.transact(W, WAD, pool.call("collateral"), 0, sender=lp), "Withdraw")[0]
        assert event["amountOut"] == expected > 0
        assert sim.collateral_units(LP) == coll_before + expected
