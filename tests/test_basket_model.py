"""The reference model holds the ALP basket to the unit of AlpPool.sol (docs/mechanics.md section 10),
on the default deployments: bnb's USDT, USDC, BNB, ETH and BTC, arbitrum's USDC, USDT, ETH and BTC
(the stablecoins and BNB at asset-only price ids, ETH and BTC at their pairs'). A seeded random
run of deposits and withdrawals in random assets, with every asset's keeper and reference prices
moving apart (the stablecoins' too, within the breaker and now and then past it), agrees with
the model on every figure and every refusal (name and arguments), and every asset is conserved:
the pool's holdings plus every holder's balance is what was minted. Then the model's own
refusals, without a chain."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from alpsim import errors
from alpsim.mirror import Mirror
from alpsim.model import ExchangeModel, ModelRefusal, PoolModel, Settings
from alpsim.model.pool import FACE_VALUE, MINIMUM_LIQUIDITY
from alpsim.model.tokens import POOL

U = 10**18
BPS = 10_000
LPS = (1, 2, 3)
NOMINAL_USD = {"USDT": 1, "USDC": 1, "BNB": 600, "ETH": 3_000, "BTC": 60_000}
"""Each asset's price around which the run moves it."""
FUNDS_USD = 3_000_000
"""What each LP is funded with in each asset, in USD at its nominal price."""


@pytest.fixture
def basket(sim):
    """The deployment's basket, cooldown 0, every asset at its nominal price (keeper and
    reference apart by a few bp); each LP holds 3,000,000 USD of each asset, approved to the
    pool. The Mirror's model takes the basket from the chain."""
    admin = sim.deployment.deployer
    sim.pool_contract.transact("setSettings", 25, 25, 0, 8_000, sender=admin)
    m = Mirror(sim)
    entries = sim.deployment.basket
    minted = {}
    for e in entries:
        whole = FUNDS_USD // NOMINAL_USD[e.symbol]
        for lp in LPS:
            m.fund(lp, whole, e.symbol)
            sim.asset_token(e.symbol).transact("approve", sim.pool_contract.address, 2**256 - 1,
                                               sender=sim.address(lp))
        minted[e.symbol] = len(LPS) * whole * 10**e.decimals
    state = {"m": m, "entries": entries, "minted": minted}
    set_prices(state, {e.symbol: (NOMINAL_USD[e.symbol] * U, NOMINAL_USD[e.symbol] * U * (BPS + 3) // BPS)
                       for e in entries})
    return state


def set_prices(state, prices_wad: dict[str, tuple[int, int]]) -> None:
    """Each asset's keeper price and reference feed (symbol -> (keeper, reference), 18-decimal
    USD; the feeds keep 8 decimals), then the keeper's prices recorded on chain: the pairs' by
    the engine's `updatePrices`, the asset-only ones by `setAssetPrices`; all played in the model."""
    m = state["m"]
    m.set_prices({sym: Decimal(k) / U for sym, (k, _) in prices_wad.items()}, reference=False)
    for sym, (_, ref) in prices_wad.items():
        m.set_reference(sym, Decimal(ref // 10**10) / 10**8)
    m.push_prices()
    m.push_asset_prices()


def _key(m: Mirror, entry) -> str | None:
    """The model's key of a basket entry: None for the payout stablecoin, else its address."""
    return None if entry.role == "collateral" else entry.address


def _conserved(state) -> None:
    """Per asset: the pool's balance and every holder's add up to what was minted, on chain and
    in the model; the pool's booked holdings are its balance (nothing was sent to it directly)."""
    m = state["m"]
    sim, model = m.sim, m.model
    pool_addr = sim.pool_contract.address
    holders = [sim.address(lp) for lp in LPS]
    for e in state["entries"]:
        token = sim.asset_token(e.symbol)
        on_chain = [token.call("balanceOf", a) for a in [pool_addr, *holders]]
        assert sum(on_chain) == state["minted"][e.symbol], e.symbol
        assert on_chain[0] == sim.pool_contract.call("holdingsOf", e.address)
        book = model.book_of(_key(m, e))
        assert sum(book.values()) == state["minted"][e.symbol], e.symbol
        assert book.get(POOL, 0) == model.pool.holdings_of(_key(m, e))


def _same(m: Mirror, chain_action, model_action):
    """Runs the model's action on a copy and the chain's; both refuse with the same error and
    arguments, or both go through (the copy becomes the mirror's model). The chain's event and
    the model's return, or the error's name when refused."""
    trial = m.model.copy()
    try:
        expected, refusal = model_action(trial), None
    except ModelRefusal as r:
        expected, refusal = None, r
    try:
        event = chain_action()
    except errors.ContractRevert as revert:
        assert refusal is not None, f"the chain refuses ({revert!r}) what the model did"
        assert (revert.error_name, revert.error_args) == (refusal.name, refusal.fields)
        return refusal.name
    assert refusal is None, f"the model refuses ({refusal}) what the chain did"
    m.model = trial
    return event, expected


def _deposit(state, rng: random.Random, lp: int, entry) -> str:
    m = state["m"]
    sim = m.sim
    addr, pool = sim.address(lp), sim.pool_contract
    usd = rng.choice([1, 50, 5_000, 100_000, 600_000])
    amount = max(1, usd * 10**entry.decimals // NOMINAL_USD[entry.symbol] + rng.randrange(0, 10**entry.decimals))
    if rng.random() < 0.05:
        amount = rng.choice([0, 1])  # zero, or dust: ZeroAmount / AmountTooSmall
    now = sim.devnet.clock.next_timestamp
    key = _key(m, entry)

    def chain():
        return sim.session.events(pool.transact("deposit", entry.address, amount, 0, sender=addr), "Deposit")[0]

    got = _same(m, chain, lambda model: (model.deposit(addr, amount, now, 0, asset=key), model.pool.last_quote))
    if isinstance(got, str):
        return got
    event, (alp_out, q) = got
    assert event["alpOut"] == alp_out
    assert (event["amountUsd"], event["feeUsd"], event["navUsd"]) == (q.amount_usd, q.fee_usd, q.nav_usd)
    assert event["assetHoldings"] == m.model.pool.holdings_of(key)
    assert event["alpSupply"] == m.model.pool.alp_supply
    return "deposit"


def _withdraw(state, rng: random.Random, lp: int, entry) -> str:
    m = state["m"]
    sim = m.sim
    addr, pool = sim.address(lp), sim.pool_contract
    held = sim.alp_balance_wad(addr)
    alp = max(1, held * rng.choice([1, 10, 100, 500, 1_000]) // 1_000)
    if rng.random() < 0.05:
        alp = held + 1  # more than held: InsufficientAlpBalance
    now = sim.devnet.clock.next_timestamp
    key = _key(m, entry)

    def chain():
        return sim.session.events(pool.transact("withdraw", alp, entry.address, 0, sender=addr), "Withdraw")[0]

    got = _same(m, chain, lambda model: (model.withdraw(addr, alp, now, 0, asset=key), model.pool.last_quote))
    if isinstance(got, str):
        return got
    event, (out, q) = got
    assert event["amountOut"] == out
    assert (event["feeUsd"], event["navUsd"]) == (q.fee_usd, q.nav_usd)
    assert event["assetHoldings"] == m.model.pool.holdings_of(key)
    return "withdraw"


def _move_prices(state, rng: random.Random) -> str:
    """Every asset moves (the volatile ones by up to 30%, the stablecoins by up to 1%); keeper and
    reference apart by up to 0.9% (inside the 1% breaker), now and then past it (the breaker
    trips the next action that reads the price)."""
    prices = {}
    for e in state["entries"]:
        nominal = NOMINAL_USD[e.symbol] * U
        keeper = nominal * (rng.randrange(99, 102) if nominal == U else rng.randrange(70, 130)) // 100
        gap_bps = rng.randrange(-90, 91) if rng.random() < 0.93 else rng.choice([-150, 150])
        prices[e.symbol] = (keeper, keeper * (BPS + gap_bps) // BPS)
    set_prices(state, prices)
    return "prices"


@pytest.mark.parametrize("seed", [11, 28])
def test_random_basket_run_matches_the_model_to_the_unit(sim, basket, seed):
    rng = random.Random(seed)
    m, entries = basket["m"], basket["entries"]
    m.deposit(LPS[0], 1_000_000)  # the stablecoin first, as a pool starts (the client approves just that)
    sim.asset_token(None).transact("approve", sim.pool_contract.address, 2**256 - 1, sender=sim.address(LPS[0]))
    seen: dict[str, int] = {}
    stale = False
    for step in range(90):
        roll = rng.random()
        lp, entry = rng.choice(LPS), rng.choice(entries)
        if roll < 0.45:
            what = _deposit(basket, rng, lp, entry)
        elif roll < 0.8:
            what = _withdraw(basket, rng, lp, entry)
        elif roll < 0.95:
            what = _move_prices(basket, rng)
        else:
            sim.devnet.advance_time(61)  # every price stale: the next basket action is refused
            what = "stale"
        seen[what] = seen.get(what, 0) + 1
        m.check()
        _conserved(basket)
        if stale or step % 9 == 8:
            _move_prices(basket, rng)
        stale = what == "stale"
    refusals = {k: n for k, n in seen.items() if k not in ("deposit", "withdraw", "prices", "stale")}
    assert seen["deposit"] >= 10 and seen["withdraw"] >= 10 and len(refusals) >= 3, seen
    assert sum(1 for *_, h in m.model.pool.basket() if h > 0) >= 3


def test_holdings_of_zero_read_no_price_and_a_stale_volatile_refuses_every_action_once_held(sim, basket):
    """Every price stale and the basket empty: a deposit of the volatile asset (BNB on bnb, ETH on
    arbitrum) needs its price alone. Once it is held, its stale price refuses a deposit of the
    stablecoin whose own price is fresh."""
    m = basket["m"]
    volatile = sim.deployment.basket_asset("BNB" if sim.profile.name == "bnb" else "ETH")
    stable = sim.deployment.basket_asset(None)
    sim.devnet.advance_time(61)
    m.set_prices({volatile.symbol: NOMINAL_USD[volatile.symbol]})  # keeper and reference; pushed alone
    if volatile.price_id >= 128:
        m.push_asset_prices([volatile.price_id])
    else:
        m.push_prices()  # the pairs' (the stablecoin is none)
    addr = sim.address(LPS[0])
    now = sim.devnet.clock.next_timestamp
    assert sim.contracts["oracle"].call("keeperPrice", stable.price_id)[1] + 60 < now  # the stablecoin's stale
    chain = lambda: sim.pool_contract.transact("deposit", volatile.address, 10 * U, 0, sender=addr)  # noqa: E731
    assert _same(m, chain, lambda model: model.deposit(addr, 10 * U, now, 0, asset=volatile.address))[1] > 0
    m.check()
    sim.devnet.advance_time(61)
    m.push_asset_prices([stable.price_id])  # the stablecoin's price fresh, the volatile one's stale
    now = sim.devnet.clock.next_timestamp
    with pytest.raises(ModelRefusal) as refusal:
        m.model.copy().deposit(addr, 10**sim.decimals, now)
    assert refusal.value.name == "PriceStale" and refusal.value.fields["pairId"] == volatile.price_id
    with pytest.raises(errors.PriceStale) as revert:
        sim.pool_contract.call("deposit", stable.address, 10**sim.decimals, 0, sender=addr)
    assert revert.value.error_args == refusal.value.fields


# ----- the model alone


class _Prices:
    """A stand-in price source: fixed bounds and marks per id."""

    def __init__(self, bounds: dict[int, tuple[int, int]]):
        self.bounds = bounds

    def asset_price_bounds(self, price_id: int, now: int) -> tuple[int, int]:
        return self.bounds[price_id]

    def mark_price(self, price_id: int) -> int:
        return self.bounds[price_id][0]


def _refused(action, name: str, **fields) -> None:
    with pytest.raises(ModelRefusal) as info:
        action()
    assert (info.value.name, info.value.fields) == (name, fields)


def test_admin_refusals():
    pool = PoolModel(decimals=18, payout_key="USDT")
    _refused(lambda: pool.list_asset("BNB", 18, 128), "ZeroAddress")  # no price source yet
    pool.list_asset("USDC", 18, FACE_VALUE)  # face value needs none
    pool.set_price_source(_Prices({128: (U, U)}))
    _refused(lambda: pool.list_asset("USDT", 18, 128), "AssetAlreadyListed", asset="USDT")
    _refused(lambda: pool.list_asset("USDC", 18, 128), "AssetAlreadyListed", asset="USDC")
    _refused(lambda: pool.list_asset("X", 18, 256), "InvalidPriceInput", pairId=256)
    _refused(lambda: pool.list_asset("X", 19, 128), "UnsupportedDecimals", decimals=19)
    _refused(lambda: pool.list_asset("0x" + "00" * 20, 18, 128), "ZeroAddress")
    for j in range(6):
        pool.list_asset(f"A{j}", 18, 128)
    _refused(lambda: pool.list_asset("A9", 18, 128), "TooManyAssets", max=8)
    _refused(lambda: pool.set_targets([10_000]), "InvalidTargets", sumBps=10_000)
    _refused(lambda: pool.set_targets([1_250] * 7 + [1_249]), "InvalidTargets", sumBps=9_999)
    _refused(lambda: pool.set_targets([2**256 - 1] + [1] * 7), "InvalidTargets", sumBps=2**256 - 1)  # past uint256: the largest sum
    pool.set_targets([1_250] * 8)
    _refused(lambda: pool.set_fee_spread(10_000), "InvalidBps", bps=10_000)
    _refused(lambda: pool.set_price_id("B", 128), "AssetNotInBasket", asset="B")
    _refused(lambda: pool.set_price_id("USDT", 300), "InvalidPriceInput", pairId=300)
    pool.set_price_id(None, 130)
    assert pool.assets[0].price_id == 130
    pool.set_price_source(None)
    _refused(lambda: pool.set_price_id("USDT", 130), "ZeroAddress")
    pool.set_price_id("USDT", FACE_VALUE)  # back to face value needs no source


def test_deposit_and_withdrawal_refusals_in_the_contracts_order():
    pool = PoolModel(decimals=6, payout_key="USDC", cooldown_s=0)
    prices = _Prices({128: (600 * U, 601 * U)})
    pool.set_price_source(prices)
    pool.list_asset("BNB", 18, 128)
    pool.set_targets([9_000, 1_000])
    _refused(lambda: pool.deposit("lp", 0, 0, asset="DOGE"), "ZeroAmount")
    _refused(lambda: pool.deposit("lp", 1, 0, asset="DOGE"), "AssetNotInBasket", asset="DOGE")
    too_many = (2**256 - 1) // BPS + 1
    _refused(lambda: pool.deposit("lp", too_many, 0, asset="BNB"), "AmountTooLarge", amount=too_many,
             max=too_many - 1)
    # the first deposit: worth no more than the locked 1,000 units after its fee
    _refused(lambda: pool.deposit("lp", 1, 0, asset="BNB"), "AmountTooSmall", amount=1)  # 600 wei of USD
    # 1,000 USDC at face value into an empty basket: e = 0, nothing toward the target, 30 bp
    alp = pool.deposit("lp", 1_000 * 10**6, 0)
    assert alp == 1_000 * U * (BPS - 30) // BPS - MINIMUM_LIQUIDITY
    _refused(lambda: pool.deposit("lp", 10**18, 0, min_alp_out=10**30, asset="BNB"), "InsufficientAlpOut",
             alpOut=pool.quote_deposit(10**18, 0, "BNB").alp_out, minAlpOut=10**30)
    pool.deposit("lp", 10**17, 0, asset="BNB")  # 0.1 BNB in at 600: 60 USD
    assert pool.holdings_of("BNB") == 10**17 and pool.pool_balance == 1_000 * 10**6
    _refused(lambda: pool.withdraw("lp", 0, 0, asset="BNB"), "ZeroAmount")
    _refused(lambda: pool.withdraw("lp", 1, 0, asset="DOGE"), "AssetNotInBasket", asset="DOGE")
    _refused(lambda: pool.withdraw("lp", alp * 2, 0, asset="BNB"), "InsufficientAlpBalance", holder="lp",
             balance=pool.alp["lp"], requested=alp * 2)
    # half the ALP in BNB: more than the 0.1 BNB the basket holds
    half = pool.alp["lp"] // 2
    out = pool.quote_withdraw("lp", half, 0, "BNB").amount_out
    _refused(lambda: pool.withdraw("lp", half, 0, asset="BNB"), "BasketHoldingsShort", asset="BNB",
             holdings=10**17, amountOut=out)
    _refused(lambda: pool.withdraw("lp", half, 0, min_out=out + 1, asset="BNB"), "InsufficientOutput",
             amountOut=out, minOut=out + 1)
    # nearly all of it in USDC: the basket holds 1,000 USDC, the ALP is worth ~1,060
    _refused(lambda: pool.withdraw("lp", pool.alp["lp"], 0), "ReserveNotCovered",
             poolBalanceAfterUsd=0, reserveUsd=0)
    pool.cooldown_s = 3_600
    pool.deposit("lp", 10**6, 100)
    _refused(lambda: pool.withdraw("lp", 1, 200), "CooldownActive", holder="lp", unlocksAt=3_700)


def test_bnb_is_valued_in_low_and_out_high_and_the_basket_the_other_way():
    pool = PoolModel(decimals=18, payout_key="USDT", cooldown_s=0)
    pool.set_price_source(_Prices({128: (500 * U, 505 * U)}))
    pool.list_asset("BNB", 18, 128)
    pool.set_targets([9_200, 800])
    pool.deposit("a", 920_000 * U, 0)
    q = pool.quote_deposit(160 * U, 0, "BNB")
    assert q.amount_usd == 160 * 500 * U  # in at the lower price
    pool.deposit("a", 160 * U, 0, asset="BNB")
    # a deposit values the basket at the higher price, a withdrawal at the lower; the events'
    # NAV is the NAV after, at those prices
    assert pool.quote_deposit(U, 0, None).nav_usd == 920_000 * U + 160 * 505 * U + U
    w = pool.quote_withdraw("a", 10**21, 0, "BNB")
    nav, supply = 920_000 * U + 160 * 500 * U, pool.alp_supply
    # BNB is 80,000 of 1,000,000 at the lower price: exactly 8%, so the withdrawal moves it away: 30 bp
    out_usd = 10**21 * (BPS - 30) * nav // (supply * BPS)
    assert w.amount_out == out_usd * U // (505 * U)  # out at the higher price
    assert w.nav_usd == nav - w.amount_out * 505  # less what it paid, at the price paid at
    assert pool.nav_usd == 920_000 * U + 160 * 500 * U  # the mark: the keeper's (the stand-in's low)


def test_set_asset_prices_and_bounds_as_the_oracle():
    m = ExchangeModel(decimals=18, settings=Settings(execution_fee_usd=0))
    _refused(lambda: m.set_asset_prices([128], [U], 0), "InvalidPriceInput", pairId=128)  # no feed
    m.set_reference(128, 600 * U, 100)
    _refused(lambda: m.set_asset_prices([128, 129], [U], 100), "InvalidPriceInput", pairId=2)
    _refused(lambda: m.set_asset_prices([127], [U], 100), "InvalidPriceInput", pairId=127)
    _refused(lambda: m.set_asset_prices([256], [U], 100), "InvalidPriceInput", pairId=256)
    _refused(lambda: m.set_asset_prices([128], [0], 100), "InvalidPriceInput", pairId=128)
    _refused(lambda: m.set_asset_prices([128], [2**128], 100), "InvalidPriceInput", pairId=128)
    _refused(lambda: m.set_asset_prices([128, 128], [U, 0], 100), "InvalidPriceInput", pairId=128)
    assert m.mark_price(128) == 0  # all or nothing
    _refused(lambda: m.asset_price_bounds(128, 100), "PriceStale", pairId=128, updatedAt=0, maxAge=60)
    m.set_asset_prices([128], [603 * U], 100)
    assert m.asset_price_bounds(128, 160) == (600 * U, 603 * U)
    _refused(lambda: m.asset_price_bounds(128, 161), "PriceStale", pairId=128, updatedAt=100, maxAge=60)
    m.set_asset_prices([128], [607 * U], 150)  # 1.17% above the reference: past the 1% breaker
    _refused(lambda: m.asset_price_bounds(128, 150), "CircuitBreakerTripped", pairId=128, keeperPrice=607 * U,
             referencePrice=600 * U)
    m.set_asset_prices([128], [594 * U], 200)
    _refused(lambda: m.asset_price_bounds(128, 200), "ReferenceStale", pairId=128, updatedAt=100, maxAge=60)
    assert m.mark_price(128) == 594 * U  # the mark is unguarded
