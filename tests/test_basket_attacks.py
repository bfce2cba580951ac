"""Who could gain from the ALP basket (docs/mechanics.md section 10, "Who could gain from the
basket"), each row on chain on both profiles through the client: splitting an away-deposit,
a round trip around the target, the payout token's reserve against LPs and traders, donations,
a keeper moving one price within the breaker for a friend, and a searcher sandwiching a
rebalancing deposit. Results are valued at the prices the examples hold fixed (the reference
prices), in 18-decimal USD."""

from __future__ import annotations

from decimal import Decimal

import pytest

from alpsim import errors
from alpsim.client import OrderRejected
from conftest import PRICES
from test_basket_worked_examples import START_PRICES, _price_name, move_prices, start_basket

U = 10**18
BPS = 10_000
BASE_BPS, SPREAD_BPS = 25, 5
COOLDOWN_S = 48 * 3600
LP, FRIEND, SEARCHER, VICTIM, TRADER, OTHER = 1, 2, 3, 4, 5, 6

VOLATILE = {"bnb": "BNB", "arbitrum": "BTC"}
"""The asset each chain's rows move: BNB (asset-only price) on BNB Chain, BTC (the pair's price, 8
decimals) on Arbitrum."""
UNDERWEIGHT = {"bnb": ({"BNB": "500"}, "32"), "arbitrum": ({"BTC": "50000"}, "0.2")}
"""A price that leaves the volatile asset under its target, and the amount that brings it back
exactly (docs/mechanics.md examples B2 and A2: 16,000 and 10,000 USD)."""


def _price_wad(symbol: str, moves: dict | None = None) -> int:
    p = (moves or {}).get(symbol, START_PRICES[symbol])
    return int(Decimal(p if isinstance(p, str) else p[1]) * U)


def _value_usd(sim, symbol: str, units: int, moves: dict | None = None) -> int:
    decimals = sim.asset_decimals(symbol)
    return units * 10 ** (18 - decimals) * _price_wad(symbol, moves) // U


def _alp_value_usd(sim, who) -> int:
    """`who`'s ALP at the pool's NAV per ALP (the last keeper prices, which the rows hold at the
    reference)."""
    alp = sim.contracts["alp"]
    return alp.call("balanceOf", sim.address(who)) * sim.pool_contract.call("nav") // alp.call("totalSupply")


def _wait_out_cooldown(sim) -> None:
    sim.devnet.advance_time(COOLDOWN_S + 1)
    sim.devnet.mine()


def _units(sim, symbol: str, amount: str) -> int:
    return int(Decimal(amount) * 10 ** sim.asset_decimals(symbol))


# ----------------------------------------------------------------------- LP: splitting
@pytest.mark.parametrize("start", ["at_target", "underweight"])
def test_splitting_an_away_deposit_never_pays_less(sim, start):
    """One deposit against the same deposit in 10 uneven pieces: the pieces never cost less
    (fees, and what the depositor's ALP is worth after). At target every USD is away (30 bp);
    from underweight the deposit crosses the target (toward, then away)."""
    chain = sim.profile.name
    asset = VOLATILE[chain]
    moves, to_target = UNDERWEIGHT[chain] if start == "underweight" else ({}, "0")
    start_basket(sim)
    move_prices(sim, moves)
    # at target: 10 BNB / 0.16 BTC, all away; underweight: twice the distance, as far over as under
    if start == "underweight":
        total = 2 * _units(sim, asset, to_target)
    else:
        total = _units(sim, asset, "0.16" if chain == "arbitrum" else "10")
    sim.fund(FRIEND, Decimal(total) / 10 ** sim.asset_decimals(asset), asset=asset)
    snap = sim.snapshot()

    whole = sim.deposit_units(FRIEND, total, asset=asset)
    whole_value = _alp_value_usd(sim, FRIEND)
    sim.revert(snap)

    pieces, left = [], total
    for i in range(9):
        part = left * (i + 2) // 23 + 7  # uneven, and not round
        pieces.append(part)
        left -= part
    pieces.append(left)
    assert sum(pieces) == total and min(pieces) > 0
    fees = sum(sim.deposit_units(FRIEND, part, asset=asset).fee_wad for part in pieces)
    pieces_value = _alp_value_usd(sim, FRIEND)

    assert fees >= whole.fee_wad - len(pieces)  # the events' fees round down, one unit a piece at most
    assert pieces_value <= whole_value
    in_usd = _value_usd(sim, asset, total, moves)
    rate_bps = 30 if start == "at_target" else 25
    assert abs(whole.fee_wad - in_usd * rate_bps // BPS) <= 1


# ----------------------------------------------------------------------- LP: round trip
def test_a_round_trip_costs_twice_the_base(sim):
    """Deposit the underweight asset exactly to its target (20 bp), wait out the cooldown, take
    it back out (away from the target again: 30 bp): 50 bp, twice the base, not twice 20."""
    chain = sim.profile.name
    asset = VOLATILE[chain]
    moves, amount = UNDERWEIGHT[chain]
    start_basket(sim)
    move_prices(sim, moves)
    sim.fund(FRIEND, amount, asset=asset)
    deposited = sim.deposit(FRIEND, amount, asset=asset)
    in_usd = _value_usd(sim, asset, deposited.amount_units, moves)
    assert deposited.fee_wad == in_usd * (BASE_BPS - SPREAD_BPS) // BPS
    _wait_out_cooldown(sim)
    out = sim.withdraw(FRIEND, "all", asset=asset)
    out_usd = _value_usd(sim, asset, out.amount_out_units, moves)

    loss = in_usd - out_usd
    fees = deposited.fee_wad + out.fee_wad
    # the fee out is 30 bp of the gross, which is the deposit less its fee plus the friend's
    # share of that fee: fees = 20 bp x a + 30 bp x (a - 20 bp x a + share) ~ 50 bp x a
    assert abs(fees - in_usd * 2 * BASE_BPS // BPS) <= in_usd * 2 // 10**5  # within 0.02 bp
    assert loss > in_usd * 2 * (BASE_BPS - SPREAD_BPS) // BPS  # never only twice the cheap side
    assert loss >= fees - in_usd // 10**4  # the friend gets back at most its share of its own fees


# ----------------------------------------------------------------------- reserve: the payout token only
def _bnb_heavy_small_pool(sim) -> tuple[str, str]:
    """10,000 of the payout token and 500,000 USD of the volatile asset (BNB; ETH on Arbitrum),
    cooldown 0; two 500x positions of 800 margin reserve 2 x 5 x 800 = 8,000 = 80% of the payout
    token's holdings. Returns (payout symbol, volatile symbol)."""
    chain = sim.profile.name
    payout = sim.deployment.basket[0].symbol
    volatile = "BNB" if chain == "bnb" else "ETH"
    admin = sim.deployment.deployer
    sim.pool_contract.transact("setSettings", BASE_BPS, BASE_BPS, 0, 8_000, sender=admin)
    sim.keeper.set_prices(PRICES)
    sim.keeper.set_prices({"BNB": START_PRICES["BNB"]} if chain == "bnb" else {})
    volatile_amount = "800" if chain == "bnb" else "166.666666666666666667"  # 500,000 USD at 625 / 3,000
    sim.fund(LP, 10_000)
    sim.deposit(LP, 10_000)
    sim.fund(LP, volatile_amount, asset=volatile)
    sim.deposit(LP, volatile_amount, asset=volatile)
    assert sim.pool_contract.call("poolBalance") == sim.to_units(10_000)  # the fee stays in
    execution_fee = sim.profile.execution_fee_usd
    for trader, pair in ((TRADER, "BTC/USD"), (OTHER, "ETH/USD")):
        sim.fund(trader, 10_000)
        sim.approve_collateral(trader)
        sim.open(trader, pair, "long", 800 + execution_fee, 500)
    assert sim.pool_contract.call("reserveUsd") == 8_000 * U
    assert sim.pool_contract.call("reserveCapacityUsd") == 0
    return payout, volatile


def test_an_open_beyond_the_payout_holdings_is_rejected_whatever_the_nav(sim):
    _bnb_heavy_small_pool(sim)
    nav = sim.pool_contract.call("nav")
    assert nav > 50 * sim.pool_contract.call("reserveUsd")  # NAV ~510,000 against 8,000 reserved
    before = sim.collateral_units(TRADER)
    with pytest.raises(OrderRejected) as info:
        sim.open(TRADER, "BTC/USD", "short", 11, 10)  # the smallest open: 10 USD margin at 10x
    assert info.value.reason == "ReserveExceeded"
    assert sim.collateral_units(TRADER) == before - sim.to_units(sim.profile.execution_fee_usd)
    assert sim.pool_contract.call("reserveUsd") == 8_000 * U


def test_lps_cannot_take_the_payout_token_below_the_reserve(sim):
    payout, volatile = _bnb_heavy_small_pool(sim)
    pool = sim.pool_contract
    balance = pool.call("poolBalance")
    scale = 10 ** (18 - sim.decimals)
    alp_before = sim.contracts["alp"].call("balanceOf", sim.address(LP))
    # a withdrawal of the payout token worth 1 USD: refused, nothing moves
    one_usd_alp = U * sim.contracts["alp"].call("totalSupply") // pool.call("redeemNav")
    sim.keeper.run_triggers([], {sim.pair_id("BTC/USD"), sim.pair_id("ETH/USD")})  # LPs act at settled prices
    with pytest.raises(errors.ReserveNotCovered) as info:
        pool.transact("withdraw", one_usd_alp, sim.asset_token(payout).address, 0, sender=sim.address(LP))
    args = info.value.error_args
    assert args["reserveUsd"] == 8_000 * U
    assert args["poolBalanceAfterUsd"] * 8_000 < 8_000 * U * BPS
    assert balance * scale - args["poolBalanceAfterUsd"] < 2 * U  # ~1 USD less 30 bp
    assert pool.call("poolBalance") == balance
    assert sim.contracts["alp"].call("balanceOf", sim.address(LP)) == alp_before
    # the volatile asset is owed to no trader: it leaves as far as the basket holds it
    out = sim.withdraw(LP, 100_000, asset=volatile)
    assert out.amount_out_units > 0
    assert pool.call("poolBalance") == balance


# ----------------------------------------------------------------------- donations
def test_a_donation_changes_nothing(sim):
    """Tokens sent to the pool directly: the holdings, NAV, ALP price, the weights the fee reads
    and the next depositor's ALP are exactly as without them."""
    chain = sim.profile.name
    asset = VOLATILE[chain]
    start_basket(sim)
    move_prices(sim, {})
    pool = sim.pool_contract
    sim.fund(FRIEND, "1", asset=asset)
    snap = sim.snapshot()
    plain = sim.deposit(FRIEND, "1", asset=asset)
    sim.revert(snap)

    before = (pool.call("basket"), pool.call("nav"), pool.call("alpPrice"), pool.call("redeemNav"))
    for symbol in (asset, sim.deployment.basket[0].symbol):
        sim.fund(SEARCHER, "1000", asset=symbol)
        token = sim.asset_token(symbol)
        token.transact("transfer", pool.address, token.call("balanceOf", sim.address(SEARCHER)),
                       sender=sim.address(SEARCHER))
    assert (pool.call("basket"), pool.call("nav"), pool.call("alpPrice"), pool.call("redeemNav")) == before
    donated = sim.deposit(FRIEND, "1", asset=asset)
    assert (donated.alp_out_wad, donated.fee_wad) == (plain.alp_out_wad, plain.fee_wad)


# ----------------------------------------------------------------------- keeper within the breaker
BREAKER_EDGE = Decimal("0.0099")  # keeper 0.99% from the reference: inside the 1% breaker


def _keeper_at(sim, symbol: str, reference: str, offset: Decimal) -> None:
    name = _price_name(symbol)
    sim.keeper.set_prices({name: Decimal(reference) * (1 + offset)}, reference=False)
    sim.keeper.set_reference(name, reference)
    sim.keeper.push_asset_prices()
    sim.keeper.run_triggers([], {sim.pair_id("BTC/USD"), sim.pair_id("ETH/USD")})


def test_a_keeper_within_the_breaker_cannot_mint_cheap_alp_for_a_friend(sim):
    """The keeper (who cannot move the reference feed) puts the volatile asset's keeper price
    anywhere within the breaker, once when a friend deposits it and once when the friend takes
    it back out (as the same asset or as the payout token): every round trip loses, valued at
    the reference prices, which never move."""
    chain = sim.profile.name
    asset, payout = VOLATILE[chain], sim.deployment.basket[0].symbol
    amount = "10" if chain == "bnb" else "0.16"
    start_basket(sim)
    move_prices(sim, {})
    sim.fund(FRIEND, amount, asset=asset)
    start = sim.snapshot()
    results = {}
    for deposit_offset in (-BREAKER_EDGE, Decimal(0), BREAKER_EDGE):
        for withdraw_offset in (-BREAKER_EDGE, Decimal(0), BREAKER_EDGE):
            for out_asset in (asset, payout):
                sim.revert(start)
                start = sim.snapshot()
                _keeper_at(sim, asset, START_PRICES[asset], deposit_offset)
                deposited = sim.deposit(FRIEND, amount, asset=asset)
                _wait_out_cooldown(sim)
                _keeper_at(sim, asset, START_PRICES[asset], withdraw_offset)
                out = sim.withdraw(FRIEND, "all", asset=out_asset)
                results[(deposit_offset, withdraw_offset, out_asset)] = (
                    _value_usd(sim, out_asset, out.amount_out_units) - _value_usd(sim, asset, deposited.amount_units))
    best = max(results.values())
    in_usd = _value_usd(sim, asset, _units(sim, asset, amount))
    assert best < 0, results
    # even the keeper's best choice costs the friend more than twice the cheap side of the fee
    assert -best > in_usd * 2 * (BASE_BPS - SPREAD_BPS) // BPS, results


# ----------------------------------------------------------------------- searcher: sandwich
def test_a_sandwich_around_a_rebalancing_deposit_loses(sim):
    """A victim's deposit brings the underweight asset exactly to its target (20 bp). A searcher
    deposits the same first, taking the cheap side; the victim then pays 30 bp, 10 bp more. The
    searcher cannot leave after it (cooldown), and after 48 h at unchanged prices every asset it
    can take out leaves it behind."""
    chain = sim.profile.name
    asset = VOLATILE[chain]
    moves, amount = UNDERWEIGHT[chain]
    start_basket(sim)
    move_prices(sim, moves)
    for who in (SEARCHER, VICTIM):
        sim.fund(who, amount, asset=asset)
    snap = sim.snapshot()
    alone = sim.deposit(VICTIM, amount, asset=asset)
    sim.revert(snap)

    front = sim.deposit(SEARCHER, amount, asset=asset)
    victim = sim.deposit(VICTIM, amount, asset=asset)
    a = _value_usd(sim, asset, front.amount_units, moves)
    assert alone.fee_wad == front.fee_wad == a * (BASE_BPS - SPREAD_BPS) // BPS
    assert victim.fee_wad == a * (BASE_BPS + SPREAD_BPS) // BPS
    assert victim.fee_wad - alone.fee_wad == a * 2 * SPREAD_BPS // BPS  # the victim's whole loss
    with pytest.raises(errors.CooldownActive):
        sim.withdraw(SEARCHER, "all", asset=asset)

    _wait_out_cooldown(sim)
    after = sim.snapshot()
    results = {}
    for entry in sim.deployment.basket:
        sim.revert(after)
        after = sim.snapshot()
        out = sim.withdraw(SEARCHER, "all", asset=entry.symbol)
        results[entry.symbol] = _value_usd(sim, entry.symbol, out.amount_out_units, moves) - a
    assert max(results.values()) < 0, results
    # the best exit (the asset now over its target, 20 bp) still costs the searcher both fees
    assert -max(results.values()) >= a * 2 * (BASE_BPS - SPREAD_BPS) // BPS - a // 10**4, results
