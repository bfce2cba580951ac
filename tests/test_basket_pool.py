"""The ALP basket on chain (docs/mechanics.md section 10): a second asset (a WBNB mock priced at oracle
id 128) beside the payout stablecoin. Deposits and withdrawals in either asset agree with the
reference model's fee to the unit, the basket is valued in at the lower and out at the higher of
the keeper and reference prices, and every refusal is exact and moves nothing."""

from __future__ import annotations

import pytest

from alpsim import errors
from alpsim.compiler import linked
from alpsim.deployment import contract_abi
from alpsim.model.pool import toward_usd, value_usd

U = 10**18
BPS = 10_000
BNB_ID = 128
LP, LP2 = 1, 2


def _deploy(sim, build, name, types, args, label):
    session, admin = sim.session, sim.deployment.deployer
    artifact = linked(build.artifacts[name], sim.deployment.libraries)
    return session.bind(label, session.deploy(artifact, types, args, admin), contract_abi(build.artifacts, name))


@pytest.fixture
def basket(sim, build):
    """WBNB listed at id 128 with targets USDT 92% / BNB 8%; cooldown 0; BNB at 500 (keeper)
    and 500.25 (reference); LP holds 1,000 WBNB and 2,000,000 of the stablecoin."""
    admin = sim.deployment.deployer
    wbnb = _deploy(sim, build, "MockCollateral", ["string", "string", "uint8", "address"],
                   ["Wrapped BNB", "WBNB", 18, admin], "wbnb")
    feed = _deploy(sim, build, "MockAggregator", ["string", "address"], ["BNB / USD", admin], "bnb_feed")
    oracle, pool = sim.contracts["oracle"], sim.pool_contract
    oracle.transact("setReferenceFeed", BNB_ID, feed.address, sender=admin)
    pool.transact("setPriceSource", oracle.address, sender=admin)
    pool.transact("listAsset", wbnb.address, BNB_ID, sender=admin)
    pool.transact("setTargets", [9_200, 800], sender=admin)
    pool.transact("setSettings", 25, 25, 0, 8_000, sender=admin)
    for who in (LP, LP2):
        wbnb.transact("mint", sim.address(who), 1_000 * U, sender=admin)
        wbnb.transact("approve", pool.address, 2**256 - 1, sender=sim.address(who))
        sim.fund(who, 2_000_000)
    state = {"wbnb": wbnb, "feed": feed}
    set_bnb(sim, state, 500 * U, 50025 * U // 100)
    return state


def set_bnb(sim, state, keeper_wad, reference_wad):
    state["feed"].transact("setAnswer", reference_wad // 10**10, sender=sim.deployment.deployer)
    sim.contracts["oracle"].transact("setAssetPrices", [BNB_ID], [keeper_wad], sender=sim.deployment.keeper)


def holdings(sim, token):
    return sim.pool_contract.call("holdingsOf", token)


def expected_deposit(sim, amount_usd, asset_usd, basket_usd, target_bps, nav_usd, supply, base=25, spread=5):
    toward = toward_usd(asset_usd, basket_usd, target_bps, amount_usd, True)
    net_times_bps = amount_usd * (BPS - base - spread) + 2 * spread * toward
    return net_times_bps * supply // (nav_usd * BPS), (amount_usd * BPS - net_times_bps) // BPS


def test_a_bnb_deposit_is_priced_as_the_model_prices_it(sim, basket):
    usdt = sim.contracts["collateral"].address
    sim.deposit(LP, 920_000)  # the stablecoin alone: the one-asset fee (25 bp), as before
    supply = sim.contracts["alp"].call("totalSupply")
    usdt_usd = holdings(sim, usdt) * 10 ** (18 - sim.decimals)

    # BNB from 0 to 8%: 160 BNB in at the lower price (500): 80,000 USD, all of it toward the
    # target, so 20 bp; the basket (only the stablecoin holds anything) at face value
    wbnb = basket["wbnb"]
    receipt = sim.pool_contract.transact("deposit", wbnb.address, 160 * U, 0, sender=sim.address(LP))
    event = sim.session.events(receipt, "Deposit")[0]
    alp_out, fee = expected_deposit(sim, 80_000 * U, 0, usdt_usd, 800, usdt_usd, supply)
    assert event["amountUsd"] == 80_000 * U
    assert fee == 160 * U and event["feeUsd"] == fee
    assert event["alpOut"] == alp_out
    assert holdings(sim, wbnb.address) == 160 * U == event["assetHoldings"]

    # 10 BNB more: the basket at the higher price (500.25): BNB 80,040 of 1,000,040, above
    # its 8%, so every USD moves it away: 30 bp of 5,000
    supply = sim.contracts["alp"].call("totalSupply")
    bnb_usd_high = value_usd(160 * U, 18, 50025 * U // 100)
    basket_usd = usdt_usd + bnb_usd_high
    receipt = sim.pool_contract.transact("deposit", wbnb.address, 10 * U, 0, sender=sim.address(LP))
    event = sim.session.events(receipt, "Deposit")[0]
    alp_out, fee = expected_deposit(sim, 5_000 * U, bnb_usd_high, basket_usd, 800, basket_usd, supply)
    assert fee == 15 * U and event["feeUsd"] == fee
    assert event["alpOut"] == alp_out
    assert event["navUsd"] == basket_usd


def test_withdrawing_bnb_pays_at_the_higher_price_and_20_bp_when_overweight(sim, basket):
    wbnb = basket["wbnb"]
    sim.deposit(LP, 920_000)
    sim.pool_contract.transact("deposit", wbnb.address, 200 * U, 0, sender=sim.address(LP))  # BNB overweight
    set_bnb(sim, basket, 500 * U, 500 * U)  # keeper and reference agree: one price both ways
    alp = sim.contracts["alp"].call("balanceOf", sim.address(LP)) // 100
    supply = sim.contracts["alp"].call("totalSupply")
    usdt_usd = holdings(sim, sim.contracts["collateral"].address) * 10 ** (18 - sim.decimals)
    bnb_usd = 100_000 * U
    nav = usdt_usd + bnb_usd
    gross = alp * nav // supply
    toward = toward_usd(bnb_usd, nav, 800, gross, False)
    assert toward == gross  # BNB is 100,000 of ~1,020,000 against 8%: a 1% withdrawal is all toward
    out_usd = (alp * (BPS - 30) * nav + 10 * toward * supply) // (supply * BPS)
    before = wbnb.call("balanceOf", sim.address(LP))
    receipt = sim.pool_contract.transact("withdraw", alp, wbnb.address, 0, sender=sim.address(LP))
    event = sim.session.events(receipt, "Withdraw")[0]
    assert event["amountOut"] == out_usd * U // (500 * U) == wbnb.call("balanceOf", sim.address(LP)) - before
    assert holdings(sim, wbnb.address) == 200 * U - event["amountOut"]


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
    pool, wbnb, lp = sim.pool_contract, basket["wbnb"], sim.address(LP)
    usdt = sim.contracts["collateral"]
    tokens = [wbnb, usdt]
    stranger = sim.contracts["platform_token"].address
    sim.deposit(LP, 920_000)
    _refused(sim, errors.AssetNotInBasket, lambda: pool.transact("deposit", stranger, U, 0, sender=lp), tokens,
             asset=stranger)
    _refused(sim, errors.AssetNotInBasket, lambda: pool.transact("withdraw", U, stranger, 0, sender=lp), tokens,
             asset=stranger)
    _refused(sim, errors.ZeroAmount, lambda: pool.transact("deposit", wbnb.address, 0, 0, sender=lp), tokens)
    # more BNB than the basket holds
    pool.transact("deposit", wbnb.address, 10 * U, 0, sender=lp)
    alp = sim.contracts["alp"].call("balanceOf", lp) // 10
    held = holdings(sim, wbnb.address)
    receipt_out = pool.call("withdraw", U // 1000, wbnb.address, 0, sender=lp)
    assert receipt_out > 0
    with pytest.raises(errors.ContractRevert) as info:
        pool.call("withdraw", alp, wbnb.address, 0, sender=lp)
    assert type(info.value) is errors.BasketHoldingsShort
    assert info.value.error_args["holdings"] == held
    # the BNB price 61 s old: a deposit of BNB is refused; one of the stablecoin still needs it
    # (the basket holds BNB), so it is refused too
    sim.devnet.advance_time(61)
    sim.devnet.mine()
    with pytest.raises(errors.ContractRevert) as info:
        pool.call("deposit", wbnb.address, U, 0, sender=lp)
    assert type(info.value) is errors.PriceStale and info.value.error_args["pairId"] == BNB_ID
    # targets must sum to 100% and match the assets
    admin = sim.deployment.deployer
    _refused(sim, errors.InvalidTargets, lambda: pool.transact("setTargets", [9_000, 800], sender=admin), tokens,
             sumBps=9_800)
    _refused(sim, errors.InvalidTargets, lambda: pool.transact("setTargets", [10_000], sender=admin), tokens,
             sumBps=10_000)
    _refused(sim, errors.AssetAlreadyListed, lambda: pool.transact("listAsset", wbnb.address, BNB_ID, sender=admin),
             tokens, asset=wbnb.address)


def test_a_stablecoin_deposit_reads_no_bnb_price_while_the_basket_holds_none(sim, basket):
    sim.devnet.advance_time(3_600)
    sim.devnet.mine()
    assert sim.deposit(LP, 1_000).alp_out_wad > 0


def test_a_fee_on_transfer_token_is_refused_and_nothing_moves(sim, basket, build):
    admin = sim.deployment.deployer
    fot = _deploy(sim, build, "FeeOnTransferToken", [], [], "fot")
    pool = sim.pool_contract
    pool.transact("listAsset", fot.address, BNB_ID, sender=admin)
    pool.transact("setTargets", [9_000, 800, 200], sender=admin)
    sim.deposit(LP, 1_000)
    fot.transact("approve", pool.address, 2**256 - 1, sender=admin)
    _refused(sim, errors.FeeOnTransferToken,
             lambda: pool.transact("deposit", fot.address, 100 * U, 0, sender=admin), [fot, basket["wbnb"]],
             asset=fot.address, amount=100 * U, received=99 * U)
    assert fot.call("balanceOf", admin) == 1_000_000 * U
