"""The ALP basket on chain (docs/mechanics.md section 10), on the default deployments: a volatile
asset (BNB at its asset-only price id 128 on bnb; ETH, priced by the ETH/USD pair, on arbitrum)
beside the payout stablecoin (itself priced at its own id, at 1 USD). Deposits and withdrawals
in either agree with the reference model's fee to the unit, the basket is valued in at the
lower and out at the higher of the keeper and reference prices, and every refusal is exact and
moves nothing."""

from __future__ import annotations

from decimal import Decimal

import pytest

from alpsim import errors
from alpsim.compiler import linked
from alpsim.deployment import contract_abi
from alpsim.model.pool import toward_usd, value_usd
from alpsim.profiles import FIRST_ASSET_PRICE_ID

U = 10**18
BPS = 10_000
LP, LP2 = 1, 2
VOLATILE = {
    # profile: (asset, keeper price, reference price (5 bp above), stablecoin first deposit, units
    # that take the asset from 0 to exactly its target: 8% of 1,000,000 / 5% of 1,000,000)
    "bnb": ("BNB", 500, Decimal("500.25"), 920_000, 160),
    "arbitrum": ("ETH", 2_500, Decimal("2501.25"), 950_000, 20),
}


def _deploy(sim, build, name, types, args, label):
    session, admin = sim.session, sim.deployment.deployer
    artifact = linked(build.artifacts[name], sim.deployment.libraries)
    return session.bind(label, session.deploy(artifact, types, args, admin), contract_abi(build.artifacts, name))


@pytest.fixture
def basket(sim):
    """The profile's volatile asset at its keeper price and 5 bp above it on its reference feed;
    cooldown 0; LP and LP2 hold 1,000 of it (approved to the pool) and 2,000,000 of the stablecoin."""
    symbol, keeper, reference, stable, to_target = VOLATILE[sim.profile.name]
    entry = sim.deployment.basket_asset(symbol)
    token = sim.asset_token(symbol)
    sim.pool_contract.transact("setSettings", 25, 25, 0, 8_000, sender=sim.deployment.deployer)
    for who in (LP, LP2):
        sim.fund(who, 1_000, asset=symbol)
        token.transact("approve", sim.pool_contract.address, 2**256 - 1, sender=sim.address(who))
        sim.fund(who, 2_000_000)
    state = {"symbol": symbol, "entry": entry, "token": token, "stable": stable, "to_target": to_target,
             "low": keeper * U, "high": int(reference * U)}
    set_price(sim, state, keeper, reference)
    return state


def set_price(sim, state, keeper, reference) -> None:
    """The asset's keeper price and its reference feed, then the keeper's price recorded on chain
    (`setAssetPrices` for an asset-only id, the engine's `updatePrices` for a pair)."""
    symbol, price_id = state["symbol"], state["entry"].price_id
    sim.keeper.set_prices({symbol: keeper}, reference=False)
    sim.keeper.set_reference(symbol, reference)
    if price_id >= FIRST_ASSET_PRICE_ID:
        sim.keeper.push_asset_prices([price_id])
    else:
        sim.keeper.push_prices([price_id])


def holdings(sim, token):
    return sim.pool_contract.call("holdingsOf", token)


def deposit_event(sim, state, units, who=LP):
    """A raw `deposit` of the volatile asset after the keeper's fresh prices; its Deposit event."""
    sim.keeper.fresh_basket_prices(state["symbol"])
    receipt = sim.pool_contract.transact("deposit", state["token"].address, units, 0, sender=sim.address(who))
    return sim.session.events(receipt, "Deposit")[0]


def expected_deposit(amount_usd, asset_usd, basket_usd, target_bps, nav_usd, supply, base=25, spread=5):
    toward = toward_usd(asset_usd, basket_usd, target_bps, amount_usd, True)
    net_times_bps = amount_usd * (BPS - base - spread) + 2 * spread * toward
    return net_times_bps * supply // (nav_usd * BPS), (amount_usd * BPS - net_times_bps) // BPS


def test_a_volatile_deposit_is_priced_as_the_model_prices_it(sim, basket):
    stable_token = sim.contracts["collateral"].address
    target = basket["entry"].target_bps
    first = sim.deposit(LP, basket["stable"])  # the stablecoin into the empty basket: all away, 30 bp
    assert first.fee_wad == basket["stable"] * U * 30 // BPS
    supply = sim.contracts["alp"].call("totalSupply")
    stable_usd = holdings(sim, stable_token) * 10 ** (18 - sim.decimals)  # at 1 USD

    # the asset from 0 to its target: in at the lower price, all of it toward the target, so
    # 20 bp; the basket (only the stablecoin holds anything) at 1 USD
    units = basket["to_target"] * U
    amount_usd = value_usd(units, 18, basket["low"])
    assert amount_usd * BPS == target * (stable_usd + amount_usd)  # exactly the target after
    event = deposit_event(sim, basket, units)
    alp_out, fee = expected_deposit(amount_usd, 0, stable_usd, target, stable_usd, supply)
    assert event["amountUsd"] == amount_usd
    assert fee == amount_usd * 20 // BPS and event["feeUsd"] == fee
    assert event["alpOut"] == alp_out
    assert holdings(sim, basket["token"].address) == units == event["assetHoldings"]

    # 5,000 USD more: the basket at the higher price puts the asset above its target, so every
    # USD moves it away: 30 bp of 5,000
    supply = sim.contracts["alp"].call("totalSupply")
    asset_usd_high = value_usd(units, 18, basket["high"])
    basket_usd = stable_usd + asset_usd_high
    more = 5_000 * U * U // basket["low"]
    event = deposit_event(sim, basket, more)
    alp_out, fee = expected_deposit(5_000 * U, asset_usd_high, basket_usd, target, basket_usd, supply)
    assert fee == 15 * U and event["feeUsd"] == fee
    assert event["alpOut"] == alp_out
    assert event["navUsd"] == basket_usd + 5_000 * U  # the NAV after, at the prices it was priced at


def test_the_events_report_the_nav_after_the_action_at_its_prices(sim, basket):
    """`navUsd` of a Deposit is the basket before (at the higher prices) + the amount in (at the
    lower) + the claim; of a Withdraw the basket before (at the lower prices) - the amount out
    at the price it was paid at (the higher) + the claim. With keeper and reference prices the
    same, that is the pool's `nav()` / `redeemNav()` read after the action."""
    pool, token = sim.pool_contract, basket["token"]
    scale = 10 ** (18 - sim.decimals)
    first = sim.deposit(LP, basket["stable"])
    stable_units = holdings(sim, sim.contracts["collateral"].address)
    assert first.amount_units == stable_units
    assert pool.call("nav") == stable_units * scale  # the one-asset figure: the balance x its scale

    # keeper and reference apart: a deposit at the action's prices
    units = basket["to_target"] * U
    event = deposit_event(sim, basket, units)
    assert event["navUsd"] == stable_units * scale + value_usd(units, 18, basket["low"])  # nothing held before
    more = 3 * U
    event = deposit_event(sim, basket, more)
    basket_high = stable_units * scale + value_usd(units, 18, basket["high"])
    assert event["navUsd"] == basket_high + value_usd(more, 18, basket["low"])
    # a withdrawal of the asset: the basket at the lower price, what it paid at the higher
    alp = sim.alp_balance_wad(LP) // 50
    sim.keeper.fresh_basket_prices(basket["symbol"])
    receipt = pool.transact("withdraw", alp, token.address, 0, sender=sim.address(LP))
    event = sim.session.events(receipt, "Withdraw")[0]
    basket_low = stable_units * scale + value_usd(units + more, 18, basket["low"])
    paid_usd = value_usd(event["amountOut"], 18, basket["high"])
    assert paid_usd > 0 and event["navUsd"] == basket_low - paid_usd

    # keeper and reference the same: the event's NAV is the pool's NAV read after
    price = basket["low"] // U
    set_price(sim, basket, price, price)
    event = deposit_event(sim, basket, U)
    assert event["navUsd"] == pool.call("nav")
    sim.keeper.fresh_basket_prices(None)
    receipt = pool.transact("withdraw", alp, sim.contracts["collateral"].address, 0, sender=sim.address(LP))
    event = sim.session.events(receipt, "Withdraw")[0]
    assert event["navUsd"] == pool.call("redeemNav") == pool.call("nav")


def test_withdrawing_the_volatile_asset_pays_at_the_higher_price_and_20_bp_when_overweight(sim, basket):
    token, target = basket["token"], basket["entry"].target_bps
    sim.deposit(LP, basket["stable"])
    units = basket["to_target"] * 5 // 4 * U  # 5/4 of what takes it to its target: above it
    deposit_event(sim, basket, units)
    price = basket["low"]
    set_price(sim, basket, price // U, price // U)  # keeper and reference agree: one price both ways
    alp = sim.contracts["alp"].call("balanceOf", sim.address(LP)) // 100
    supply = sim.contracts["alp"].call("totalSupply")
    stable_usd = holdings(sim, sim.contracts["collateral"].address) * 10 ** (18 - sim.decimals)
    asset_usd = value_usd(units, 18, price)  # 100,000 USD of BNB, 62,500 of ETH
    nav = stable_usd + asset_usd
    gross = alp * nav // supply
    toward = toward_usd(asset_usd, nav, target, gross, False)
    assert toward == gross  # ~9.8% BNB against 8%, ~6.2% ETH against 5%: a 1% withdrawal is all toward
    out_usd = (alp * (BPS - 30) * nav + 10 * toward * supply) // (supply * BPS)
    before = token.call("balanceOf", sim.address(LP))
    sim.keeper.fresh_basket_prices(basket["symbol"])
    receipt = sim.pool_contract.transact("withdraw", alp, token.address, 0, sender=sim.address(LP))
    event = sim.session.events(receipt, "Withdraw")[0]
    assert event["amountOut"] == out_usd * U // price == token.call("balanceOf", sim.address(LP)) - before
    assert holdings(sim, token.address) == units - event["amountOut"]


def _refused(sim, error, action, tokens, **fields):
    def state():
        return [t.call("balanceOf", sim.address(w)) for t in tokens for w in (LP, LP2)] + \
               [t.call("balanceOf", sim.pool_contract.address) for t in tokens] + \
               [sim.contracts["alp"].call("totalSupply")]
    before = state()
    with pytest.raises(errors.ContractRevert) as info:
        action()
    assert type(info.value) is error, repr(info.value)
    assert info.value.error_args == fields
    assert state() == before


def test_refusals_are_exact_and_move_nothing(sim, basket):
    pool, token, lp = sim.pool_contract, basket["token"], sim.address(LP)
    stable = sim.contracts["collateral"]
    tokens = [token, stable]
    stranger = sim.contracts["platform_token"].address
    sim.deposit(LP, basket["stable"])
    _refused(sim, errors.AssetNotInBasket, lambda: pool.transact("deposit", stranger, U, 0, sender=lp), tokens,
             asset=stranger)
    _refused(sim, errors.AssetNotInBasket, lambda: pool.transact("withdraw", U, stranger, 0, sender=lp), tokens,
             asset=stranger)
    _refused(sim, errors.ZeroAmount, lambda: pool.transact("deposit", token.address, 0, 0, sender=lp), tokens)
    # more of the asset than the basket holds
    deposit_event(sim, basket, 2 * U)
    alp = sim.contracts["alp"].call("balanceOf", lp) // 10
    held = holdings(sim, token.address)
    assert pool.call("withdraw", U // 1000, token.address, 0, sender=lp) > 0
    with pytest.raises(errors.ContractRevert) as info:
        pool.call("withdraw", alp, token.address, 0, sender=lp)
    assert type(info.value) is errors.BasketHoldingsShort
    assert info.value.error_args == {"asset": token.address, "holdings": held,
                                     "amountOut": info.value.error_args["amountOut"]}
    assert info.value.error_args["amountOut"] > held
    # the asset's price 61 s old, the stablecoin's fresh: a deposit of either is refused (the
    # basket holds the asset), naming the asset's price id
    sim.devnet.advance_time(61)
    stable_id = sim.deployment.basket_asset(None).price_id
    sim.keeper.push_asset_prices([stable_id])
    price_id = basket["entry"].price_id
    for asset in (token.address, stable.address):
        with pytest.raises(errors.ContractRevert) as info:
            pool.call("deposit", asset, U, 0, sender=lp)
        assert type(info.value) is errors.PriceStale and info.value.error_args["pairId"] == price_id
    # targets must sum to 100% and match the assets
    admin = sim.deployment.deployer
    _refused(sim, errors.InvalidTargets, lambda: pool.transact("setTargets", [9_000, 800], sender=admin), tokens,
             sumBps=9_800)
    _refused(sim, errors.InvalidTargets, lambda: pool.transact("setTargets", [10_000], sender=admin), tokens,
             sumBps=10_000)
    _refused(sim, errors.AssetAlreadyListed,
             lambda: pool.transact("listAsset", token.address, price_id, sender=admin), tokens, asset=token.address)


def test_a_stablecoin_deposit_reads_no_volatile_price_while_the_basket_holds_none(sim, basket):
    sim.devnet.advance_time(3_600)
    sim.devnet.mine()
    price_id = basket["entry"].price_id
    assert sim.contracts["oracle"].call("keeperPrice", price_id)[1] + 60 < sim.devnet.timestamp  # stale
    assert sim.deposit(LP, 1_000).alp_out_wad > 0


def test_a_fee_on_transfer_token_is_refused_and_nothing_moves(sim, basket, build):
    admin = sim.deployment.deployer
    fot = _deploy(sim, build, "FeeOnTransferToken", [], [], "fot")
    pool = sim.pool_contract
    pool.transact("listAsset", fot.address, basket["entry"].price_id, sender=admin)
    targets = [e.target_bps for e in sim.deployment.basket]
    pool.transact("setTargets", [targets[0] - 200, *targets[1:], 200], sender=admin)
    sim.deposit(LP, 1_000)
    fot.transact("approve", pool.address, 2**256 - 1, sender=admin)
    sim.keeper.fresh_basket_prices(basket["symbol"])  # the price it is listed at, fresh
    _refused(sim, errors.FeeOnTransferToken,
             lambda: pool.transact("deposit", fot.address, 100 * U, 0, sender=admin), [fot, basket["token"]],
             asset=fot.address, amount=100 * U, received=99 * U)
    assert fot.call("balanceOf", admin) == 1_000_000 * U
