"""Attacks on the ALP pool's liquidity providers, on both chain profiles, the reference model
checked after every action (Mirror):

- the ERC-4626 inflation attack: the attacker is the only LP, redeems down to dust, pays a
  losing position's margin into the pool to inflate the ALP price, and a victim deposits. The
  1,000 base units of ALP the first deposit locks at the dead address (MINIMUM_LIQUIDITY) keep
  the supply from ever falling below 1,000 base units, so the victim gets its fair ALP within
  one base unit and the donation goes mostly to the locked ALP;
- the keeper-gap attack: an LP opens 1000x positions, the keeper is away for a day or a week
  while they come to owe far more holding and funding than their margin, and the LP withdraws
  when the keeper is back. Withdrawals are priced at the redemption NAV (`redeemNav`: without
  the holding and funding owed to the pool), so the unpaid charges of bankrupt positions never
  inflate what an LP takes out; with a lighter opposite side of the attacker's own (funding
  variant), that side receives funding only while the pair is priced, so the gap pays it
  nothing the bankrupt heavier side cannot pay;
- a lone 1000x position left for a week and liquidated: its bad debt.

Prices never move in these tests. `collectible_nav` (below) is the yardstick of what the pool
really holds: each open position's claim capped at its margin.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest

from alpsim.client import OrderRejected
from alpsim.errors import ContractRevert
from alpsim.mirror import Mirror
from alpsim.model.math import pnl_usd_floor
from alpsim.model.pool import DEAD_ADDRESS, MINIMUM_LIQUIDITY
from conftest import PRICES

WAD = 10**18
BPS = 10_000
HOUR = 3600
COOLDOWN_S = 48 * HOUR
FEE_BPS = 25  # the pool's mint and burn fee
MAX_UINT = 2**256 - 1
HONEST, ATTACKER, VICTIM = 5, 6, 4


# ----------------------------------------------------------------- helpers
def collectible_nav(model, now: int) -> int:
    """NAV with each open position's claim (holding + funding owed - pnl at the keeper price)
    capped at its margin: what the pool holds if every position settled now at the keeper
    price, leaving out the close fees (18-decimal USD)."""
    nav = model.pool.pool_balance * model.scale
    for p in model.positions.values():
        pnl = pnl_usd_floor(p.is_long, p.qty, p.entry_price, model.keeper_prices[p.pair_id][0])
        holding, funding = model.accrued_charges(p, now)
        nav += min(p.margin_usd, holding + funding - pnl)
    return nav


class PricePath:
    """The pool's prices after every step: redemption (withdrawals), deposit, collectible."""

    def __init__(self, mirror: Mirror):
        self.mirror, self.points = mirror, []

    def __call__(self, label: str) -> None:
        sim, model = self.mirror.sim, self.mirror.model
        pool = sim.pool_contract
        supply = sim.contracts["alp"].call("totalSupply")
        collectible = Fraction(collectible_nav(model, sim.devnet.timestamp) * WAD, supply) if supply else Fraction(WAD)
        self.points.append((label, pool.call("redeemAlpPrice"), pool.call("alpPrice"), collectible, supply))

    def falls(self, column: int, tolerance) -> list[str]:
        """Every step where the column's price fell by more than the tolerance."""
        out = []
        for before, after in zip(self.points, self.points[1:]):
            if after[column] < before[column] - tolerance:
                out.append(f"{before[0]} -> {after[0]}: {_usd(before[column])} -> {_usd(after[column])}")
        return out

    def table(self) -> str:
        return "\n".join(f"  {label:<28} redeem {_usd(r)}  deposit {_usd(d)}  collectible {_usd(c)}"
                         for label, r, d, c, _ in self.points)


def _usd(wad) -> str:
    return f"{float(Fraction(wad) / WAD):.9f}"


def _units(sim, amount) -> int:
    return sim.to_units(amount)


def _scale(sim) -> int:
    return 10 ** (18 - sim.decimals)


def _fresh_mirror(sim) -> Mirror:
    m = Mirror(sim)
    m.set_prices(PRICES)
    return m


# ----------------------------------------------------------------- a. inflation attack
INFLATION_SEED = 10_000
DONATION_ROUNDS = 6


def test_inflation_attack_is_defeated_by_the_locked_minimum_liquidity(sim):
    m = _fresh_mirror(sim)
    alp = sim.contracts["alp"]
    scale = _scale(sim)
    fee_tokens = m.model.execution_fee_tokens()
    supplies = []

    def supply() -> int:
        s = alp.call("totalSupply")
        supplies.append(s)
        return s

    m.fund(ATTACKER, INFLATION_SEED + 2_000)  # 2,000 to trade with
    funded = sim.collateral_units(ATTACKER)

    # 1. the attacker is the only LP: its first deposit locks 1,000 base units for good
    first = m.deposit(ATTACKER, INFLATION_SEED)
    assert first.alp_out_wad == INFLATION_SEED * WAD * (BPS - FEE_BPS) // BPS - MINIMUM_LIQUIDITY
    assert alp.call("balanceOf", DEAD_ADDRESS) == MINIMUM_LIQUIDITY
    assert alp.call("unlocksAt", DEAD_ADDRESS) == MAX_UINT  # never unlocked, even with a key
    assert supply() == first.alp_out_wad + MINIMUM_LIQUIDITY

    # 2. after the cooldown it redeems all but one base unit: supply MINIMUM_LIQUIDITY + 1
    m.wait(COOLDOWN_S)
    held = sim.alp_balance_wad(ATTACKER)
    m.withdraw(ATTACKER, Decimal(held - 1).scaleb(-18))
    assert supply() == MINIMUM_LIQUIDITY + 1
    assert sim.alp_balance_wad(ATTACKER) == 1
    # what the old code allowed (supply down to the attacker's own dust) is gone: it cannot
    # redeem more than its last unit, and the locked ALP is not its to move or burn
    with pytest.raises(ContractRevert) as info:
        sim.withdraw_wad(ATTACKER, 2)
    assert info.value.error_name == "InsufficientAlpBalance"
    with pytest.raises(ContractRevert) as info:
        alp.transact("transferFrom", DEAD_ADDRESS, sim.address(ATTACKER), MINIMUM_LIQUIDITY,
                     sender=sim.address(ATTACKER))
    assert info.value.error_name == "ERC20InsufficientAllowance"
    assert supply() == MINIMUM_LIQUIDITY + 1

    # 3. it inflates the ALP price: 1000x longs whose whole margin the pool keeps at
    #    liquidation, each as large as the pool's reserve still allows (300% of margin)
    donated = 0
    for _ in range(DONATION_ROUNDS):
        margin_usd = m.model.pool.reserve_capacity_usd() * 9 // 10 // 3
        amount = Decimal(margin_usd // scale + fee_tokens).scaleb(-sim.decimals)
        opened = m.open(ATTACKER, "BTC/USD", "long", amount, 1000)
        m.wait(12 * HOUR)  # its funding and holding eat the margin
        closed = m.keeper_round()
        assert [c.reason for c in closed] == ["liquidation"]
        assert closed[0].pool_delta_tokens == opened.position.margin_tokens
        donated += opened.position.margin_tokens
        assert supply() == MINIMUM_LIQUIDITY + 1
    assert not m.model.positions
    price_before = sim.pool().alp_price_wad
    assert price_before > 10**16 * WAD  # over a cent per base unit of ALP (about 9 cents)

    # 4. the victim deposits 1,000 and gets its fair ALP, rounded down once
    m.fund(VICTIM, 1_000)
    amount_wad = _units(sim, 1_000) * scale
    supply_before, nav_before = supply(), sim.pool().nav_wad  # no open position: NAV is the balance
    fair = Fraction(amount_wad * (BPS - FEE_BPS), BPS) * supply_before / nav_before
    deposit = m.deposit(VICTIM, 1_000)
    assert deposit.alp_out_wad == int(fair)  # the model agreed too (the mirror compares)
    redeem_after = sim.pool_contract.call("redeemAlpPrice")
    unit_value = Fraction(sim.pool_contract.call("redeemNav"), supply())  # one base unit, USD wad
    victim_value = Fraction(deposit.alp_out_wad * redeem_after, WAD)
    shortfall = Fraction(amount_wad * (BPS - FEE_BPS), BPS) - victim_value
    assert shortfall <= unit_value, (float(shortfall / WAD), float(unit_value / WAD))

    # 5. the attacker takes its last unit out: it ends with less than it put in, and the
    #    supply is still MINIMUM_LIQUIDITY plus the victim's
    m.withdraw(ATTACKER, Decimal(1).scaleb(-18))
    assert supply() == MINIMUM_LIQUIDITY + deposit.alp_out_wad
    end = sim.collateral_units(ATTACKER)
    assert end < funded
    # it lost at least what it donated to the locked ALP (and the fees)
    assert funded - end >= donated * MINIMUM_LIQUIDITY // (MINIMUM_LIQUIDITY + 1)
    assert min(supplies) >= MINIMUM_LIQUIDITY
    print(f"\n[{sim.profile.name}] inflation: attacker funded {funded / 10**sim.decimals:.6f}, ends with "
          f"{end / 10**sim.decimals:.6f}, donated {donated / 10**sim.decimals:.6f} in {DONATION_ROUNDS} liquidations; "
          f"victim got {deposit.alp_out_wad} base units for 1,000 (shortfall {float(shortfall / WAD):.6f} USD, "
          f"one base unit {float(unit_value / WAD):.6f} USD); min supply {min(supplies)}")


def test_a_plain_transfer_to_the_pool_does_not_move_the_alp_price(sim):
    """The other way to donate: the pool books its balance (`poolBalance`), it does not read
    `balanceOf`, so a transfer straight to the pool changes nothing an LP is priced at."""
    sim.fund(ATTACKER, 2_000)
    sim.deposit(ATTACKER, 1_000)
    before = sim.pool()
    sim.contracts["collateral"].transact("transfer", sim.contracts["pool"].address, _units(sim, 1_000),
                                         sender=sim.address(ATTACKER))
    after = sim.pool()
    assert (after.nav_wad, after.alp_price_wad, after.balance_units) == \
        (before.nav_wad, before.alp_price_wad, before.balance_units)
    assert sim.pool_contract.call("redeemAlpPrice") == before.alp_price_wad


# ----------------------------------------------------------------- b. keeper-gap attack
HONEST_DEPOSIT = 1_000_000
ATTACKER_DEPOSIT = 1_000_000
POSITION_AMOUNT = 990
LONGS, SHORTS = 10, 3


def _gap_setup(sim, extra_funds: int) -> tuple[Mirror, PricePath, int]:
    m = _fresh_mirror(sim)
    path = PricePath(m)
    m.fund(HONEST, HONEST_DEPOSIT)
    m.deposit(HONEST, HONEST_DEPOSIT)
    path("honest LP deposits")
    m.fund(ATTACKER, ATTACKER_DEPOSIT + extra_funds)
    funded = sim.collateral_units(ATTACKER)
    m.deposit(ATTACKER, ATTACKER_DEPOSIT)
    path("attacker deposits")
    m.wait(COOLDOWN_S)
    path("cooldown passes")
    return m, path, funded


def _open_many(m: Mirror, path: PricePath, side: str, count: int) -> tuple[list, int]:
    opened, rejected = [], 0
    for i in range(count):
        try:
            opened.append(m.open(ATTACKER, "BTC/USD", side, POSITION_AMOUNT, 1000).position)
        except OrderRejected as rejection:  # the side's slippage grows with its open interest
            assert rejection.reason == "OpenLossTooHigh", rejection
            rejected += 1
        path(f"{side} {i + 1}")
    return opened, rejected


def _honest_withdraws(m: Mirror) -> int:
    out = m.withdraw(HONEST, "all").amount_out_units
    deposit_less_fees = _units(m.sim, Decimal(HONEST_DEPOSIT) * (BPS - FEE_BPS) ** 2 / BPS**2)
    assert out >= deposit_less_fees - 1, (out, deposit_less_fees)
    return out


@pytest.mark.parametrize("gap_hours", [24, 168])
@pytest.mark.parametrize("keeper", ["prices_and_triggers", "price_push_only"])
def test_keeper_gap_attack_does_not_pay(sim, gap_hours, keeper):
    """Ten 1000x BTC longs of 990 (those the slippage guard lets open), a keeper gap, then the
    attacker withdraws all its ALP right after the keeper's first fresh prices: in the round
    that runs every trigger in the same transaction, or after a bare price push (no
    triggers). Either way it withdraws at the redemption NAV, without the charges the
    bankrupt longs owe, and loses."""
    m, path, funded = _gap_setup(sim, LONGS * POSITION_AMOUNT)
    longs, rejected = _open_many(m, path, "long", LONGS)
    assert len(longs) >= 5
    m.wait(gap_hours * HOUR)
    path(f"{gap_hours} h without keeper")
    _, redeem_at_gap, inflated, _, _ = path.points[-1]
    # what the old code priced withdrawals at: the deposit-side price, which counts every
    # charge the bankrupt longs owe
    assert inflated > redeem_at_gap
    if keeper == "prices_and_triggers":
        closed = m.keeper_round()
        assert sorted(c.position.id for c in closed) == sorted(p.id for p in longs)
        assert {c.reason for c in closed} == {"liquidation"}
        path("keeper round")
    else:
        m.push_prices()
        path("price push, no triggers")
    withdrawn = m.withdraw(ATTACKER, "all").amount_out_units
    path("attacker withdraws")
    if keeper == "price_push_only":  # the keeper's next round liquidates what is left
        assert {c.reason for c in m.keeper_round()} == {"liquidation"}
        path("keeper round")
    assert not m.model.positions
    end = sim.collateral_units(ATTACKER)
    falls = path.falls(1, 1)
    print(f"\n[{sim.profile.name}] gap {gap_hours} h, {keeper}: {len(longs)} longs opened ({rejected} rejected); "
          f"attacker funded {funded / 10**sim.decimals:.6f}, withdrew {withdrawn / 10**sim.decimals:.6f}, ends with "
          f"{end / 10**sim.decimals:.6f} ({(end - funded) / 10**sim.decimals:+.6f}); deposit-side price after the gap "
          f"{_usd(inflated)}\n{path.table()}")
    assert end < funded
    assert not falls, "the honest LP's redemption price fell:\n" + "\n".join(falls) + "\n" + path.table()
    _honest_withdraws(m)


@pytest.mark.parametrize("gap_hours", [24, 168])
def test_keeper_gap_funding_attack(sim, gap_hours):
    """The funding variant: a heavy 1000x long side (ten of 990) against a lighter short side
    (three of 990), both the attacker's, a keeper gap, the keeper's round, the attacker
    withdraws its ALP and closes its shorts. Expected: the attacker ends with less than it
    was given, and neither the honest LP's redemption price nor the collectible price per
    ALP ever falls while prices are fixed; the honest LP can withdraw its deposit less fees."""
    m, path, funded = _gap_setup(sim, (LONGS + SHORTS) * POSITION_AMOUNT)
    longs, _ = _open_many(m, path, "long", LONGS)
    shorts, _ = _open_many(m, path, "short", SHORTS)
    assert len(longs) >= 5 and len(shorts) == SHORTS
    m.wait(gap_hours * HOUR)
    path(f"{gap_hours} h without keeper")
    closed = {c.position.id for c in m.keeper_round()}
    assert {p.id for p in longs} <= closed  # the shorts fall too once their holding passes 85% of margin
    path("keeper round")
    m.withdraw(ATTACKER, "all")
    path("attacker withdraws")
    over_cap = []
    for p in shorts:
        if p.id in closed:
            continue
        c = m.close(ATTACKER, p.id)
        if c.payout_wad > p.margin_wad + p.max_profit_wad:
            over_cap.append(f"short {p.id}: payout {_usd(c.payout_wad)} > margin {_usd(p.margin_wad)} + max profit "
                            f"{_usd(p.max_profit_wad)} (funding received {_usd(-c.funding_wad)})")
        path(f"attacker closes short {p.id}")
    end = sim.collateral_units(ATTACKER)
    report = (f"[{sim.profile.name}] gap {gap_hours} h: attacker funded {funded / 10**sim.decimals:.6f}, ends with "
              f"{end / 10**sim.decimals:.6f} ({(end - funded) / 10**sim.decimals:+.6f})\n{path.table()}")
    print("\n" + report + ("\n  " + "\n  ".join(over_cap) if over_cap else ""))
    failures = []
    if end >= funded:
        failures.append(f"the attacker profits {(end - funded) / 10**sim.decimals:+.6f}")
    for what, column, tolerance in (("redemption", 1, 1), ("collectible", 3, 1)):
        falls = path.falls(column, tolerance)
        if falls:
            failures.append(f"the honest LP's {what} price fell: " + "; ".join(falls))
    try:
        _honest_withdraws(m)
    except AssertionError as exc:
        failures.append(f"the honest LP cannot withdraw its deposit less fees: {exc}")
    assert not failures, "\n".join(failures + over_cap) + "\n" + report


def test_redemption_price_dips_while_a_lighter_side_is_owed_funding(mirror):
    """By construction, not an attack: with prices fixed the redemption NAV counts the
    funding the pool owes a lighter side and leaves out what the heavier side owes it, so it
    falls while the lighter side's receipts outgrow its holding, and jumps back when the
    heavier side pays at its close. The collectible NAV per ALP keeps rising throughout."""
    sim = mirror.sim
    mirror.set_price_guards(max_age_s=2 * HOUR)  # a live keeper: the pair stays priced all along
    path = PricePath(mirror)
    mirror.fund(1, 10_000)
    mirror.fund(2, 2_000)
    long = mirror.open(1, "BTC/USD", "long", 10_000, 10).position
    mirror.open(2, "BTC/USD", "short", 2_000, 10)
    path("both open")
    mirror.wait(HOUR)
    mirror.push_prices()
    path("an hour later")
    mirror.close(1, long.id)
    path("the heavier side closes")
    (_, r0, _, c0, _), (_, r1, _, c1, _), (_, r2, _, c2, _) = path.points
    assert r1 < r0, path.table()  # the dip
    assert r2 > r0 and c0 <= c1 <= c2, path.table()
    assert sim.pool_contract.call("redeemNav") <= sim.pool().nav_wad


# ----------------------------------------------------------------- c. a lone position's bad debt
def test_lone_1000x_position_left_a_week_then_liquidated(mirror):
    """A 1000x long of 990 left 7 days without a keeper owes about 18,000 USD of holding and
    funding on a margin of 989.5. Its liquidation pays the pool the margin: the redemption
    price, which never counted the charges, rises; the deposit-side price, which counted all
    of them, falls by the bad debt (charges owed beyond the margin) per ALP."""
    sim = mirror.sim
    mirror.fund(1, 1_000)
    p = mirror.open(1, "BTC/USD", "long", 990, 1000).position
    mirror.wait(7 * 24 * HOUR)
    redeem_before, deposit_before = sim.pool_contract.call("redeemAlpPrice"), sim.pool_contract.call("alpPrice")
    model_before = mirror.model.copy()
    balance_before = sim.pool().balance_units
    closed = mirror.keeper_round()
    assert [(c.position.id, c.reason) for c in closed] == [(p.id, "liquidation")]
    c = closed[0]
    ts = sim.devnet.timestamp
    redeem_after, deposit_after = sim.pool_contract.call("redeemAlpPrice"), sim.pool_contract.call("alpPrice")
    supply = sim.pool().alp_supply_wad
    # the pool kept the whole margin (no close fee: nothing was left to pay it)
    assert c.payout_tokens == 0 and c.close_fee_wad == 0 and c.pool_delta_tokens == p.margin_tokens
    assert sim.pool().balance_units == balance_before + p.margin_tokens
    bad_debt = c.holding_wad + c.funding_wad - c.pnl_wad - p.margin_wad
    assert bad_debt > 17_000 * WAD
    # NAV just before the liquidation (at its timestamp) less NAV after: the bad debt
    nav_at_liquidation = model_before.nav_usd(ts)
    assert abs(nav_at_liquidation - sim.pool().nav_wad - bad_debt) <= 4
    assert redeem_after > redeem_before
    assert deposit_after < deposit_before
    assert abs((nav_at_liquidation * WAD // supply - deposit_after) - bad_debt * WAD // supply) <= 2
    print(f"\n[{sim.profile.name}] lone 1000x, 7 days: holding {_usd(c.holding_wad)}, funding {_usd(c.funding_wad)}, "
          f"bad debt {_usd(bad_debt)}; redemption price {_usd(redeem_before)} -> {_usd(redeem_after)}, "
          f"deposit price {_usd(deposit_before)} -> {_usd(deposit_after)}")
