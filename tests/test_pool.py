"""The ALP pool (docs/mechanics.md section 10) against the reference model, on 18 (bnb/USDT) and 6
(arbitrum/USDC) decimals: exact fee arithmetic, cooldown, minimum out, every refusal."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alpsim import errors
from alpsim.mirror import Mirror
from alpsim.model.pool import DEAD_ADDRESS, PoolRefusal

COOLDOWN_S = 48 * 3600
LP, LP2, STRANGER = 1, 2, 3


U = 10**18
BPS = 10_000
MINT_FEE_BPS, BURN_FEE_BPS = 30, 20
"""The pool of the default basket holding only the payout stablecoin (target 50% on bnb, 60% on
arbitrum): a deposit of it moves it away from its target (25 + 5 bp), a withdrawal of less than
the whole basket toward it (25 - 5 bp)."""


def _withdraw_out_units(sim, alp_wad: int, nav_wad: int, supply_wad: int) -> int:
    """What a withdrawal of `alp_wad` pays in the payout stablecoin (at 1 USD) while the pool holds
    nothing else: the gross `alp x NAV / supply` less 30 bp, plus the 2 x 5 bp rebate on the part
    that moves the stablecoin toward its target (all of the gross: it is the whole basket)."""
    gross_usd = alp_wad * nav_wad // supply_wad
    out_usd = (alp_wad * (BPS - 30) * nav_wad + 10 * gross_usd * supply_wad) // (supply_wad * BPS)
    return out_usd // 10 ** (18 - sim.decimals)


def test_round_trip_exact_fees(sim):
    unit = 10**sim.decimals
    sim.fund(LP, 1000)
    sim.fund(LP2, 100)
    first = sim.deposit(LP, 1000)
    # supply 0: ALP price 1 USD; the empty basket's stablecoin at 0% against its target, the
    # deposit takes it to 100%: all of it away, 0.30% kept in the pool; 1,000 base units locked
    assert first.alp_out_wad == 997_000 * 10**15 - 1_000
    assert sim.alp_balance_wad(DEAD_ADDRESS) == 1_000
    assert sim.pool().alp_supply_wad == 997_000 * 10**15
    assert first.fee_wad == 3 * 10**18
    assert sim.pool().nav_wad == 1000 * 10**18
    assert sim.pool().alp_price_wad == 1000 * 10**36 // (997_000 * 10**15)  # 1.003009027081243731
    # second deposit at NAV / supply = 1000 / 997, away again: 100 * 0.997 * 997 / 1000 = 99.4009 ALP
    second = sim.deposit(LP2, 100)
    assert second.alp_out_wad == 99_400_900 * 10**12
    sim.devnet.advance_time(COOLDOWN_S)
    out = sim.withdraw(LP2, "all")
    # 99.4009 ALP of 1,096.4009 at a NAV of 1,100, toward the target: 0.20%, two floors
    expected = _withdraw_out_units(sim, 99_400_900 * 10**12, 1100 * U, 1_096_400_900 * 10**12)
    assert out.amount_out_units == expected
    exact = Decimal("99.4009") * Decimal(1100) / Decimal("1096.4009") * Decimal("0.998")
    assert abs(out.amount_out_units - exact * unit) < 2  # the same to within the floors
    assert out.amount_out_units < 100 * unit
    assert sim.collateral_units(LP2) == out.amount_out_units
    # what LP2 paid in fees stayed in the pool, for LP
    assert sim.pool().balance_units == 1100 * unit - out.amount_out_units
    assert sim.pool().alp_price_wad > 1000 * 10**36 // (997_000 * 10**15)


def test_chain_matches_model_step_by_step(sim):
    """The Mirror (the reference model of the whole basket, checked after every step) through a
    run of deposits and withdrawals; each result is the model's."""
    m = Mirror(sim)
    scale = 10**sim.decimals
    steps = [("d", LP, 1234 * scale + 7), ("d", LP2, 55 * scale // 3), ("w", LP2, None), ("d", LP2, 999),
             ("w", LP, 10**18 + 3), ("d", LP, 77 * scale), ("w", LP, None)]
    m.fund(LP, 5000)
    m.fund(LP2, 5000)
    for kind, who, amount in steps:
        if kind == "d":
            result = m.deposit_units(who, amount)
            assert result.alp_out_wad == m.model.pool.last_quote.alp_out > 0
        else:
            m.wait(COOLDOWN_S)
            alp = sim.alp_balance_wad(who) if amount is None else amount
            result = m.withdraw_wad(who, alp)
            assert result.amount_out_units == m.model.pool.last_quote.amount_out > 0


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(st.tuples(st.sampled_from(["d", "w"]), st.sampled_from([LP, LP2]),
                              st.integers(min_value=1, max_value=10**6), st.integers(min_value=0, max_value=10**6)),
                    min_size=1, max_size=6))
def test_any_sequence_matches_model(deployed, ops):
    sim = deployed
    snap = sim.snapshot()
    try:
        m = Mirror(sim)
        for who in (LP, LP2):
            m.fund(who, 10**7)
        for kind, who, whole, fraction in ops:
            addr = sim.address(who)
            if kind == "d":
                amount = whole * 10**sim.decimals + fraction % 10**sim.decimals
                assert m.deposit_units(who, amount).alp_out_wad == m.model.pool.last_quote.alp_out
            else:
                held = sim.alp_balance_wad(who)
                if held == 0:
                    continue
                m.wait(COOLDOWN_S)
                alp = max(held * fraction // 10**6, 1)
                try:
                    out = m.withdraw_wad(who, alp).amount_out_units
                except errors.ContractRevert as revert:  # the model refuses the same, at the same time
                    with pytest.raises(PoolRefusal) as refusal:
                        m.model.copy().withdraw(addr, alp, sim.devnet.clock.next_timestamp)
                    assert (refusal.value.name, refusal.value.fields) == (revert.error_name, revert.error_args)
                    continue
                assert out == m.model.pool.last_quote.amount_out
    finally:
        sim.revert(snap)


def test_cooldown_is_48_hours_from_the_last_deposit(sim):
    sim.fund(LP, 200)
    first = sim.deposit(LP, 100)
    assert first.unlocks_at == sim.devnet.timestamp + COOLDOWN_S
    sim.devnet.advance_time(COOLDOWN_S - 3600)
    second = sim.deposit(LP, 100)  # restarts the cooldown for all of LP's ALP
    sim.devnet.advance_time(3600)
    with pytest.raises(errors.CooldownActive) as info:
        sim.withdraw(LP, "all")
    assert info.value.holder == sim.address(LP) and info.value.unlocksAt == second.unlocks_at
    sim.devnet.advance_time(second.unlocks_at - sim.devnet.timestamp)
    assert sim.devnet.timestamp == second.unlocks_at
    assert sim.withdraw(LP, "all").amount_out_units > 0


def test_cooldown_cannot_be_skipped_by_moving_alp(sim):
    sim.fund(LP, 100)
    result = sim.deposit(LP, 100)
    alp = sim.contracts["alp"]
    with pytest.raises(errors.CooldownActive):
        alp.transact("transfer", sim.address(STRANGER), result.alp_out_wad, sender=sim.address(LP))
    sim.devnet.advance_time(COOLDOWN_S)
    alp.transact("transfer", sim.address(STRANGER), result.alp_out_wad, sender=sim.address(LP))
    assert sim.withdraw(STRANGER, "all").amount_out_units > 0


def test_minimum_out_on_both_sides(sim):
    sim.fund(LP, 100)
    with pytest.raises(errors.InsufficientAlpOut) as info:
        sim.deposit(LP, 100, min_alp_out="99.70000001")
    # the first deposit: 100 x (1 - 0.30%) = 99.70 ALP less the 1,000 base units locked at the dead address
    assert (info.value.alpOut, info.value.minAlpOut) == (9970 * 10**16 - 1_000, 9_970_000_001 * 10**10)
    sim.deposit_units(LP, sim.to_units(100), min_alp_out_wad=9970 * 10**16 - 1_000)  # exactly the minimum passes
    sim.devnet.advance_time(COOLDOWN_S)
    snap = sim.snapshot()  # the chain and the keeper's prices with it
    out = sim.withdraw(LP, "all").amount_out_units
    sim.revert(snap)
    with pytest.raises(errors.InsufficientOutput) as info:
        sim.withdraw_wad(LP, sim.alp_balance_wad(LP), min_out_units=out + 1)
    assert (info.value.amountOut, info.value.minOut) == (out, out + 1)
    assert sim.withdraw_wad(LP, sim.alp_balance_wad(LP), min_out_units=out).amount_out_units == out


def _balances(sim) -> tuple:
    whos = (LP, LP2, STRANGER)
    return (tuple(sim.collateral_units(w) for w in whos), tuple(sim.alp_balance_wad(w) for w in whos), sim.pool())


def _refused(sim, error, action, **fields):
    """`action` reverts with `error` carrying `fields`, and changes no balance."""
    before = _balances(sim)
    with pytest.raises(error) as info:
        action()
    for key, value in fields.items():
        assert getattr(info.value, key) == value, key
    assert _balances(sim) == before
    return info.value


def test_every_refusal_is_decoded_and_changes_nothing(sim, build):
    pool, alp, collateral = sim.pool_contract, sim.contracts["alp"], sim.contracts["collateral"]
    lp, stranger, admin = sim.address(LP), sim.address(STRANGER), sim.deployment.deployer
    sim.fund(LP, 1000)
    sim.deposit(LP, 500)

    _refused(sim, errors.ZeroAmount, lambda: pool.transact("deposit", pool.call("collateral"), 0, 0, sender=lp))
    _refused(sim, errors.ZeroAmount, lambda: pool.transact("withdraw", 0, pool.call("collateral"), 0, sender=lp))
    _refused(sim, errors.InsufficientAlpBalance, lambda: sim.withdraw(STRANGER, 1),
             holder=stranger, balance=0, requested=10**18)
    _refused(sim, errors.CooldownActive, lambda: sim.withdraw(LP, 1), holder=lp)
    _refused(sim, errors.ERC20InsufficientAllowance, lambda: pool.transact("deposit", pool.call("collateral"), 10, 0, sender=lp),
             spender=pool.address, allowance=0, needed=10)
    collateral.transact("approve", pool.address, 10**30, sender=stranger)
    _refused(sim, errors.ERC20InsufficientBalance, lambda: pool.transact("deposit", pool.call("collateral"), 10, 0, sender=stranger),
             sender=stranger, balance=0, needed=10)
    if sim.decimals == 18:  # one wei of USDT is worth less than one wei of ALP after the fee
        _refused(sim, errors.AmountTooSmall, lambda: pool.transact("deposit", pool.call("collateral"), 1, 0, sender=lp), amount=1)
    sim.devnet.advance_time(COOLDOWN_S)
    sim.keeper.fresh_basket_prices()  # the keeper's fresh stablecoin price, as before any LP action
    if sim.decimals < 18:  # one wei of ALP is worth less than one unit of USDC
        _refused(sim, errors.AmountTooSmall, lambda: pool.transact("withdraw", 1, pool.call("collateral"), 0, sender=lp), amount=1)

    # roles
    trading_role = pool.call("TRADING_ROLE")
    admin_role = pool.call("ADMIN_ROLE")
    _refused(sim, errors.AccessControlUnauthorizedAccount, lambda: pool.transact("pause", sender=lp),
             account=lp, neededRole=admin_role)
    _refused(sim, errors.AccessControlUnauthorizedAccount, lambda: pool.transact("increaseReserve", 1, 0, sender=lp),
             account=lp, neededRole=trading_role)
    _refused(sim, errors.OwnableUnauthorizedAccount, lambda: alp.transact("mint", lp, 1, 0, sender=admin),
             account=admin)
    _refused(sim, errors.InvalidBps, lambda: pool.transact("setSettings", 10_000, 25, 0, 8000, sender=admin),
             bps=10_000)

    # the reserve: a withdrawal may not leave the balance below reserve / 80%
    pool.transact("grantRole", trading_role, stranger, sender=admin)
    pool.transact("increaseReserve", 380 * 10**18, 0, sender=stranger)  # needs a balance of 475 USD
    balance_usd = sim.pool().balance_units * 10 ** (18 - sim.decimals)
    refusal = _refused(sim, errors.ReserveNotCovered, lambda: sim.withdraw(LP, 30), reserveUsd=380 * 10**18)
    assert refusal.poolBalanceAfterUsd < 475 * 10**18 < balance_usd
    sim.withdraw(LP, 20)  # leaves 480 USD: covered
    _refused(sim, errors.Panic, lambda: pool.transact("decreaseReserve", 381 * 10**18, 0, sender=stranger), code=0x11)
    pool.transact("decreaseReserve", 380 * 10**18, 0, sender=stranger)

    # pause
    pool.transact("pause", sender=admin)
    _refused(sim, errors.EnforcedPause, lambda: sim.deposit(LP, 1))
    _refused(sim, errors.EnforcedPause, lambda: sim.withdraw(LP, 1))
    pool.transact("unpause", sender=admin)

    # NAV at or below zero: deposits and withdrawals are refused, not priced at zero
    mock = sim.session.bind("nav", sim.session.deploy(build.artifacts["MockNavSource"], [], [], admin),
                            build.artifacts["MockNavSource"].abi)
    mock.transact("setPoolClaimUsd", -(10**30), sender=admin)
    pool.transact("setNavSource", mock.address, sender=admin)
    assert sim.pool().nav_wad == 0
    _refused(sim, errors.PoolInsolvent, lambda: sim.deposit(LP, 1), alpSupply=sim.pool().alp_supply_wad)
    _refused(sim, errors.PoolInsolvent, lambda: sim.withdraw(LP, 1))


def test_error_string_and_panic_decode(sim, build):
    admin = sim.deployment.deployer
    art = build.artifacts["RevertProbe"]
    probe = sim.session.bind("probe", sim.session.deploy(art, [], [], admin), art.abi)
    with pytest.raises(errors.ErrorString) as info:
        probe.call("failWithReason", "nope")
    assert info.value.reason == "nope" and str(info.value) == "Error(reason='nope')"
    with pytest.raises(errors.Panic) as info:
        probe.call("failWithPanic", 0)
    assert info.value.code == 0x12 and "division or modulo by zero" in str(info.value)
    with pytest.raises(errors.ErrorString):
        probe.transact("failWithReason", "in a transaction", sender=admin)
