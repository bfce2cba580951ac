"""Every bad input to the ALP basket's entry points (docs/mechanics.md section 10), table-driven,
on both chain profiles: the pool's listing, price ids, targets, fee spread and price source are
the admin's alone and in range; a deposit or withdrawal of a basket asset is refused for an
asset outside the basket, zero, a stale or unguarded price, holdings short, the minimum out, a
fee-on-transfer token and an amount past the pool's arithmetic; the oracle takes asset prices
from the keeper only, for ids 128-255, in range. Each refusal raises the exact error with its
arguments and leaves every balance (every basket token's too) and the basket unchanged: its
tokens, decimals, targets, price ids and holdings, the fee spread, the price source, and the
oracle's keeper and reference prices of ids 128-131.

Rows name a prepared state (`conftest.PreparedStates`), an optional preparation, the caller, the
contract, the call and its arguments, the expected error and its fields (`RefusalTable.run_row`).
Expected figures come from the chain's prices and holdings with the pool's arithmetic written
out here (the reference model's `value_usd`, `toward_usd`, `tokens_for_usd`)."""

from __future__ import annotations

import weakref
from decimal import Decimal
from typing import Callable

import pytest

from alpsim import errors
from alpsim.compiler import compile_contracts, linked
from alpsim.deployment import contract_abi
from alpsim.model.pool import tokens_for_usd, toward_usd, value_usd
from bad_inputs_helpers import (ADMIN, COOLDOWN_S, KEEPER, LP, MAX_UINT, PRICES, ROW_ARGS, TRADER, TREASURY, WAD,
                                ZERO_ADDRESS, addr, params, RefusalTable, resolve, settle, smallest_breaking_withdrawal,
                                unauthorized)

BPS = 10_000
FACE_VALUE = 2**16 - 1  # AlpPool.FACE_VALUE: 1 USD per token, no oracle read
MAX_BASKET_ASSETS = 8
ASSET_IDS = range(128, 132)  # asset-only price ids the profiles use (128 BNB, 130 USDT, 131 USDC)
EOA_ROLES = {"admin": ADMIN, "trader": TRADER, "lp": LP, "treasury": TREASURY, "keeper": KEEPER}
NON_ADMINS = {k: v for k, v in EOA_ROLES.items() if k != "admin"}
NON_KEEPERS = {k: v for k, v in EOA_ROLES.items() if k != "keeper"}

ASSET = {"bnb": "BNB", "arbitrum": "USDT"}
"""Each chain's basket asset with an asset-only price id beside the payout stablecoin: BNB (128,
at 600 USD) on BNB Chain, USDT (130, 6 decimals, at 1 USD) on Arbitrum. ETH (the ETH/USD pair's
price, id 1) is the pair-backed one on both."""
HELD = {"asset": {"bnb": "4", "arbitrum": "2000"}, "ETH": {"bnb": "1", "arbitrum": "1"}}
"""What LP deposits of each besides 10,000 of the payout stablecoin: 2,400 / 2,000 USD and 3,000 USD."""
BREAKER = {"bnb": (Decimal(600), Decimal(610)), "arbitrum": (Decimal(1), Decimal("1.02"))}
"""The asset's keeper price and a reference past the 1% circuit breaker (1.67%, 2%)."""


def symbol(key: str) -> Callable:
    """A row's asset by key: "payout" (the profile's stablecoin), "asset" (ASSET), or a symbol."""
    return lambda s: s.deployment.basket[0].symbol if key == "payout" else ASSET[s.profile.name] if key == "asset" \
        else key


def tok(key: str) -> Callable:
    return lambda s: s.asset_token(symbol(key)(s)).address


def pid(key: str) -> Callable:
    return lambda s: s.deployment.basket_asset(symbol(key)(s)).price_id


def units(key: str, amount: str | int) -> Callable:
    return lambda s: int(Decimal(amount) * 10 ** s.asset_decimals(symbol(key)(s)))


def other(name: str) -> Callable:
    return lambda s: s.contracts[name].address


# ------------------------------------------------------------------ prepared states

def _fund_and_deposit(sim, who: int, key: str, amount: str) -> None:
    sim.fund(who, Decimal(amount) * 2, asset=symbol(key)(sim))
    sim.deposit(who, amount, asset=symbol(key)(sim))


def _approve_all(sim, who: int) -> None:
    for entry in sim.deployment.basket:
        sim.asset_token(entry.symbol).transact("approve", sim.pool_contract.address, MAX_UINT, sender=sim.address(who))


def _build_basket(sim) -> None:
    """LP deposited 10,000 of the payout stablecoin, HELD of ASSET and of ETH (keeper and
    reference prices equal: PRICES, BNB 600, stablecoins 1), holds as much again of each, past
    its cooldown, every basket token approved to the pool; TRADER holds 1,000 of ASSET and of
    ETH, nothing approved. No position is open: the pool's claim is 0."""
    chain = sim.profile.name
    sim.keeper.set_prices(PRICES)
    sim.keeper.set_prices({"BNB": 600} if chain == "bnb" else {"USDT": 1})
    _fund_and_deposit(sim, LP, "payout", "10000")
    _fund_and_deposit(sim, LP, "asset", HELD["asset"][chain])
    _fund_and_deposit(sim, LP, "ETH", HELD["ETH"][chain])
    for key in ("asset", "ETH"):
        sim.fund(TRADER, 1_000, asset=symbol(key)(sim))
    sim.devnet.advance_time(COOLDOWN_S + 1)
    _approve_all(sim, LP)


VOLATILE = {"bnb": ("BNB", "100"), "arbitrum": ("ETH", "20")}
"""The reserve state's volatile asset and LP's deposit of it: 60,000 USD, six times the payout
stablecoin's holdings."""


def _build_reserve(sim) -> None:
    """10,000 of the payout stablecoin and 60,000 USD of the volatile asset; holding and
    funding rates at zero; a BTC long (600 at 10x) and an ETH short (100 at 10x) open: the
    reserve counts only the stablecoin's holdings."""
    chain = sim.profile.name
    asset, amount = VOLATILE[chain]
    sim.contracts["market"].transact("setRates", 0, 0, sender=sim.address(ADMIN))
    sim.keeper.set_prices(PRICES)
    sim.keeper.set_prices({"BNB": 600} if chain == "bnb" else {})
    _fund_and_deposit(sim, LP, "payout", "10000")
    _fund_and_deposit(sim, LP, asset, amount)
    sim.devnet.advance_time(COOLDOWN_S + 1)
    for who, pair, side, margin in ((TRADER, "BTC/USD", "long", 600), (3, "ETH/USD", "short", 100)):
        sim.fund(who, 1_000)
        sim.open(who, pair, side, margin, 10)


BUILDERS = {"basket": _build_basket, "reserve": _build_reserve}


def _basket_state(sim) -> dict:
    """The basket whole, the fee spread, the price source, the oracle's asset prices (keeper and
    reference) of ids 128-131 and the pairs', and every basket token's balances (dev accounts, pool)."""
    pool, oracle = sim.pool_contract, sim.contracts["oracle"]
    basket = pool.call("basket")
    holders = [sim.address(i) for i in range(10)] + [pool.address]
    return {
        "basket": basket,
        "fee_spread_bps": pool.call("feeSpreadBps"),
        "price_source": pool.call("priceSource"),
        "asset_prices": [(oracle.call("keeperPrice", i), oracle.call("referencePrice", i))
                         for i in [*ASSET_IDS, 0, 1]],
        "basket_balances": [[_erc20(sim, t).call("balanceOf", a) for a in holders] for t in basket[0]],
    }


TABLE = RefusalTable(BUILDERS, extra=_basket_state)
enter, refused, run_row = TABLE.enter, TABLE.refused, TABLE.run_row

_TOKENS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
"""Tokens the preparations deploy, per devnet: label -> bound contract."""


def _erc20(sim, address: str):
    for c in [*sim.contracts.values(), *_TOKENS.get(sim.devnet, {}).values()]:
        if c.address == address:
            return c
    raise KeyError(address)


def deploy(sim, name: str, types: list, args: list, label: str):
    build = compile_contracts()
    artifact = linked(build.artifacts[name], sim.deployment.libraries)
    address = sim.session.deploy(artifact, types, args, sim.address(ADMIN))
    bound = sim.session.bind(label, address, contract_abi(build.artifacts, name))
    _TOKENS.setdefault(sim.devnet, {})[label] = bound
    return bound


def deployed(label: str) -> Callable:
    return lambda s: _TOKENS[s.devnet][label].address


def mock_token(label: str, decimals: int = 18) -> Callable:
    return lambda s: deploy(s, "MockCollateral", ["string", "string", "uint8", "address"],
                            [label, label, decimals, s.address(ADMIN)], label)


# ------------------------------------------------------------------ the pool's arithmetic, written out

def _priced(s, index: int, is_deposit: bool) -> tuple[int, int, int, int]:
    """`_basketUsd`: the basket at the higher (deposit) or lower (withdrawal) of each held asset's
    keeper and reference prices; the asset's value, the price its amount is valued at (the lower
    in, the higher out), and its target."""
    tokens, decimals, targets, ids, held = s.pool_contract.call("basket")
    basket_usd = asset_usd = price = 0
    for j in range(len(tokens)):
        if held[j] == 0 and j != index:
            continue
        low, high = (WAD, WAD) if ids[j] == FACE_VALUE else s.contracts["oracle"].call("assetPriceBounds", ids[j])
        v = value_usd(held[j], decimals[j], high if is_deposit else low)
        basket_usd += v
        if j == index:
            asset_usd, price = v, low if is_deposit else high
    return basket_usd, asset_usd, price, targets[index]


def _index(s, key: str) -> tuple[int, int]:
    tokens, decimals = s.pool_contract.call("basket")[:2]
    i = tokens.index(tok(key)(s))
    return i, decimals[i]


def _spread(s, target: int, base: int) -> int:
    return 0 if target == BPS else min(s.pool_contract.call("feeSpreadBps"), base, BPS - base)


def alp_out(key: str, amount: Callable) -> Callable:
    """ALP a deposit mints: USD in at the lower price, x (BPS - base - spread) plus 2 x spread on
    its part toward the target, over NAV x BPS (no position: NAV is the basket), x supply."""
    def f(s):
        assert s.pool_contract.call("reserveUsd") == 0
        i, dec = _index(s, key)
        basket_usd, asset_usd, price_in, target = _priced(s, i, True)
        amount_usd = value_usd(resolve(amount, s), dec, price_in)
        base = s.pool_contract.call("mintFeeBps")
        spread = _spread(s, target, base)
        toward = toward_usd(asset_usd, basket_usd, target, amount_usd, True) if spread else 0
        net_times_bps = amount_usd * (BPS - base - spread) + 2 * spread * toward
        return net_times_bps * s.contracts["alp"].call("totalSupply") // (basket_usd * BPS)
    return f


def _mark_basket_usd(s) -> int:
    tokens, decimals, _, ids, held = s.pool_contract.call("basket")
    oracle = s.contracts["oracle"]
    return sum(value_usd(h, d, WAD if p == FACE_VALUE else oracle.call("markPrice", p))
               for h, d, p in zip(held, decimals, ids))


def amount_out(key: str, alp: Callable | int) -> Callable:
    """What a withdrawal of `alp` pays in `key`: NAV (the basket at the lower prices plus the
    positions' redemption claim, `redeemNav` less the basket at the keeper's prices) x alp /
    supply less the burn fee (its toward part judged on the gross), at the higher price."""
    def f(s):
        i, dec = _index(s, key)
        basket_usd, asset_usd, price_out, target = _priced(s, i, False)
        claim_usd = s.pool_contract.call("redeemNav") - _mark_basket_usd(s)
        nav_usd, supply, a = basket_usd + claim_usd, s.contracts["alp"].call("totalSupply"), resolve(alp, s)
        base = s.pool_contract.call("burnFeeBps")
        spread = _spread(s, target, base)
        toward = toward_usd(asset_usd, basket_usd, target, a * nav_usd // supply, False) if spread else 0
        out_usd = (a * (BPS - base - spread) * nav_usd + 2 * spread * toward * supply) // (supply * BPS)
        return tokens_for_usd(out_usd, dec, price_out)
    return f


def plus(f: Callable, n: int) -> Callable:
    return lambda s: f(s) + n


def max_amount(key: str) -> Callable:
    """AlpPool's largest deposit: type(uint256).max / (10^(18 - decimals) x BPS)."""
    return lambda s: MAX_UINT // (10 ** (18 - s.asset_decimals(symbol(key)(s))) * BPS)


def alp_of(who: int, divisor: int = 1) -> Callable:
    return lambda s: s.alp_balance_wad(who) // divisor


def held(key: str) -> Callable:
    return lambda s: s.pool_contract.call("holdingsOf", tok(key)(s))


def keeper_at(price_id: Callable) -> Callable:
    return lambda s: s.contracts["oracle"].call("keeperPrice", price_id(s))[1]


def reference_at(price_id: Callable) -> Callable:
    return lambda s: s.contracts["oracle"].call("referencePrice", price_id(s))[1]


# ------------------------------------------------------------------ row preparations

def fresh(s) -> None:
    """The keeper's prices of every held basket asset pushed (as before any LP action)."""
    s.keeper.fresh_basket_prices()


def _push(s, ids: list[int]) -> None:
    """The keeper's prices of `ids` recorded now, their references refreshed when stale."""
    s.keeper.push_asset_prices([i for i in ids if i >= 128])
    pairs = [i for i in ids if i < 128]
    if pairs:
        s.keeper.push_prices(pairs)


def _held_ids(s) -> list[int]:
    _, _, _, ids, holdings = s.pool_contract.call("basket")
    return [p for p, h in zip(ids, holdings) if h > 0 and p != FACE_VALUE]


def stale(key: str) -> Callable:
    """`key`'s keeper price 61 s old or more, every other held asset's pushed since."""
    def prep(s):
        fresh(s)
        s.devnet.advance_time(61)
        _push(s, [i for i in _held_ids(s) if i != pid(key)(s)])
    return prep


def reference_stale(key: str) -> Callable:
    """`key`'s reference round 61 s old, its keeper price recorded again since without a new
    round (`setAssetPrices`, or the engine's `updatePrices` for a pair), the others pushed."""
    def prep(s):
        stale(key)(s)
        p, oracle = pid(key)(s), s.contracts["oracle"]
        price = oracle.call("keeperPrice", p)[0]
        if p >= 128:
            oracle.transact("setAssetPrices", [p], [price], sender=s.keeper.address)
        else:
            s.contracts["trading"].transact("updatePrices", [(p, price)], sender=s.keeper.address)
    return prep


def breaker(reverse: bool = False) -> Callable:
    """ASSET's keeper price and its reference BREAKER apart (the keeper above when `reverse`)."""
    def prep(s):
        fresh(s)
        keeper, ref = BREAKER[s.profile.name][::-1] if reverse else BREAKER[s.profile.name]
        s.keeper.set_prices({symbol("asset")(s): keeper}, reference=False)
        s.keeper.set_reference(symbol("asset")(s), ref)
        s.keeper.push_asset_prices([pid("asset")(s)])
    return prep


def breaker_fields(reverse: bool = False) -> Callable:
    def f(s):
        keeper, ref = BREAKER[s.profile.name][::-1] if reverse else BREAKER[s.profile.name]
        return {"pairId": pid("asset")(s), "keeperPrice": int(keeper * WAD), "referencePrice": int(ref * WAD)}
    return f


def list_fot(s) -> None:
    """The admin lists a fee-on-transfer token (1% burnt per transfer; the admin holds 1,000,000)
    at face value and approves it to the pool; prices fresh."""
    fot = deploy(s, "FeeOnTransferToken", [], [], "FOT")
    s.pool_contract.transact("listAsset", fot.address, FACE_VALUE, sender=s.address(ADMIN))
    fot.transact("approve", s.pool_contract.address, MAX_UINT, sender=s.address(ADMIN))
    fresh(s)


def list_unpriced(s) -> None:
    """The admin lists a token at price id 200 (in range, never priced, no reference feed); LP
    holds 1,000 of it, approved; the other prices fresh."""
    token = mock_token("UNPRICED")(s)
    s.pool_contract.transact("listAsset", token.address, 200, sender=s.address(ADMIN))
    token.transact("mint", s.address(LP), 1_000 * WAD, sender=s.address(ADMIN))
    token.transact("approve", s.pool_contract.address, MAX_UINT, sender=s.address(LP))
    fresh(s)


def fill_basket(s) -> None:
    """New mock tokens listed at face value until the basket holds MAX_BASKET_ASSETS."""
    pool = s.pool_contract
    n = len(pool.call("basket")[0])
    for k in range(n, MAX_BASKET_ASSETS):
        pool.transact("listAsset", mock_token(f"FILL{k}")(s).address, FACE_VALUE, sender=s.address(ADMIN))
    assert len(pool.call("basket")[0]) == MAX_BASKET_ASSETS


def zero_price_source(s) -> None:
    s.pool_contract.transact("setPriceSource", ZERO_ADDRESS, sender=s.address(ADMIN))


# ------------------------------------------------------------------ LP actions on basket assets

D, W = "deposit", "withdraw"
ONE = {"asset": {"bnb": "1", "arbitrum": "100"}, "ETH": {"bnb": "0.5", "arbitrum": "0.5"}}


def one(key: str) -> Callable:
    return lambda s: units(key, ONE[key][s.profile.name])(s)


def lp_rows(fn: str, key: str) -> list[tuple]:
    """The rows a deposit (amount `one(key)`) or a withdrawal (1 ALP) of `key` shares."""
    args = (lambda *a: (tok(key), *a)) if fn == D else (lambda *a: (WAD, tok(key), *a[1:]))
    amount = one(key) if fn == D else WAD
    return [
        (f"{fn}-{key}-price-61s-old", "basket", stale(key), LP, "pool", fn, args(amount, 0),
         "PriceStale", {"pairId": pid(key), "updatedAt": keeper_at(pid(key)), "maxAge": 60}),
        (f"{fn}-{key}-reference-61s-old", "basket", reference_stale(key), LP, "pool", fn, args(amount, 0),
         "ReferenceStale", {"pairId": pid(key), "updatedAt": reference_at(pid(key)), "maxAge": 60}),
    ]


LP_ROWS = [
    # --- outside the basket
    *[(f"{fn}-{name}-not-in-basket", "basket", None, LP, "pool", fn, args, "AssetNotInBasket", {"asset": asset})
      for name, asset in (("platform-token", other("platform_token")), ("alp", other("alp")),
                          ("pool-itself", other("pool")), ("zero-address", ZERO_ADDRESS))
      for fn, args in ((D, (asset, WAD, 0)), (W, (WAD, asset, 0)))],
    # --- zero, checked before the asset
    ("deposit-zero-asset", "basket", None, LP, "pool", D, (tok("asset"), 0, 0), "ZeroAmount", {}),
    ("deposit-zero-eth-no-allowance", "basket", None, TRADER, "pool", D, (tok("ETH"), 0, 1), "ZeroAmount", {}),
    ("deposit-zero-not-in-basket", "basket", None, LP, "pool", D, (other("platform_token"), 0, 0), "ZeroAmount", {}),
    ("withdraw-zero-to-asset", "basket", None, LP, "pool", W, (0, tok("asset"), 0), "ZeroAmount", {}),
    ("withdraw-zero-not-in-basket", "basket", None, LP, "pool", W, (0, other("platform_token"), 0), "ZeroAmount", {}),
    # --- stale prices: the asset's own, a held asset's read for another asset, the reference
    *lp_rows(D, "asset"), *lp_rows(W, "asset"), *lp_rows(D, "ETH"), *lp_rows(W, "ETH"),
    ("deposit-payout-while-held-asset-price-stale", "basket", stale("asset"), LP, "pool", D,
     (tok("payout"), units("payout", 100), 0),
     "PriceStale", {"pairId": pid("asset"), "updatedAt": keeper_at(pid("asset")), "maxAge": 60}),
    ("withdraw-payout-while-held-eth-price-stale", "basket", stale("ETH"), LP, "pool", W, (WAD, tok("payout"), 0),
     "PriceStale", {"pairId": pid("ETH"), "updatedAt": keeper_at(pid("ETH")), "maxAge": 60}),
    ("deposit-asset-listed-at-an-id-never-priced", "basket", list_unpriced, LP, "pool", D,
     (deployed("UNPRICED"), WAD, 0), "PriceStale", {"pairId": 200, "updatedAt": 0, "maxAge": 60}),
    # --- keeper and reference past the circuit breaker
    *[(f"{fn}-asset-reference-past-breaker{tag}", "basket", breaker(rev), LP, "pool", fn, args,
       "CircuitBreakerTripped", breaker_fields(rev))
      for fn, args in ((D, (tok("asset"), one("asset"), 0)), (W, (WAD, tok("asset"), 0)))
      for tag, rev in (("", False), ("-keeper-above", True))],
    ("deposit-payout-while-held-asset-past-breaker", "basket", breaker(), LP, "pool", D,
     (tok("payout"), units("payout", 100), 0), "CircuitBreakerTripped", breaker_fields()),
    # --- more out than the basket holds of the asset
    *[(f"withdraw-half-lps-alp-to-{key}-beyond-holdings", "basket", fresh, LP, "pool", W, (alp_of(LP, 2), tok(key), 0),
       "BasketHoldingsShort", {"asset": tok(key), "holdings": held(key), "amountOut": amount_out(key, alp_of(LP, 2))})
      for key in ("asset", "ETH")],
    # --- the minimum out, one unit short
    *[(f"deposit-{key}-min-out-plus-one", "basket", fresh, LP, "pool", D,
       (tok(key), one(key), plus(alp_out(key, one(key)), 1)),
       "InsufficientAlpOut", {"alpOut": alp_out(key, one(key)), "minAlpOut": plus(alp_out(key, one(key)), 1)})
      for key in ("asset", "ETH")],
    *[(f"withdraw-to-{key}-min-out-plus-one", "basket", fresh, LP, "pool", W,
       (100 * WAD, tok(key), plus(amount_out(key, 100 * WAD), 1)),
       "InsufficientOutput", {"amountOut": amount_out(key, 100 * WAD), "minOut": plus(amount_out(key, 100 * WAD), 1)})
      for key in ("asset", "ETH")],
    ("deposit-asset-min-out-max-uint", "basket", fresh, LP, "pool", D, (tok("asset"), one("asset"), MAX_UINT),
     "InsufficientAlpOut", {"alpOut": alp_out("asset", one("asset")), "minAlpOut": MAX_UINT}),
    # --- the token's own refusals, after the quote
    ("deposit-asset-without-allowance", "basket", fresh, TRADER, "pool", D, (tok("asset"), one("asset"), 0),
     "ERC20InsufficientAllowance", {"spender": other("pool"), "allowance": 0, "needed": one("asset")}),
    ("deposit-eth-balance-plus-one", "basket", fresh, LP, "pool", D,
     (tok("ETH"), lambda s: s.asset_units(LP, "ETH") + 1, 0), "ERC20InsufficientBalance",
     {"sender": addr(LP), "balance": lambda s: s.asset_units(LP, "ETH"),
      "needed": lambda s: s.asset_units(LP, "ETH") + 1}),
    # --- a fee-on-transfer token the admin listed
    ("deposit-fee-on-transfer-token", "basket", list_fot, ADMIN, "pool", D, (deployed("FOT"), 100 * WAD, 0),
     "FeeOnTransferToken", {"asset": deployed("FOT"), "amount": 100 * WAD, "received": 99 * WAD}),
    # --- past the pool's arithmetic (checked before any price is read)
    *[(f"deposit-{key}-{name}", "basket", None, LP, "pool", D, (tok(key), amount, 0),
       "AmountTooLarge", {"amount": amount, "max": max_amount(key)})
      for key in ("payout", "asset", "ETH")
      for name, amount in (("max-plus-one", plus(max_amount(key), 1)), ("max-uint", MAX_UINT))],
]


@pytest.mark.parametrize(ROW_ARGS, **params(LP_ROWS))
def test_basket_lp_action_refused(sim, state, prep, caller, contract, function, args, error, fields):
    run_row(sim, state, prep, caller, contract, function, args, error, fields)



# ------------------------------------------------------------------ too large at its price

def max_priced(key: str) -> Callable:
    """The largest deposit of `key` at its price: the fee arithmetic multiplies the deposit's USD
    by up to BPS, so AlpPool refuses more than uint256 / BPS USD of it, valued at the lower price:
    mulDiv(MAX / BPS, WAD, scale x low). Below 1 USD the unit bound (`max_amount`) is the tighter."""
    def f(s):
        i, dec = _index(s, key)
        _, _, low, _ = _priced(s, i, True)
        return (MAX_UINT // BPS) * WAD // (10 ** (18 - dec) * low)
    return f


PRICED_ROWS = [
    # found by this table: such a deposit reverted with Panic(0x11) (its USD x 9,970 overflowed)
    # before AlpPool bounded the amount at its price as well as in units
    (f"deposit-ETH-{name}", "basket", fresh, LP, "pool", D, (tok("ETH"), amount, 0), "AmountTooLarge",
     {"amount": amount, "max": max_priced("ETH")})
    for name, amount in (("one-past-its-priced-max", lambda s: max_priced("ETH")(s) + 1),
                         ("the-unit-max", max_amount("ETH")))
]


@pytest.mark.parametrize(ROW_ARGS, **params(PRICED_ROWS))
def test_a_deposit_too_large_at_its_price_is_refused(sim, state, prep, caller, contract, function, args, error,
                                                     fields):
    run_row(sim, state, prep, caller, contract, function, args, error, fields)


def test_the_asset_only_asset_is_bounded_at_its_price_above_1_usd(sim):
    """BNB at 600 USD (bnb): past its priced max, AmountTooLarge names that max; USDT at 1 USD
    (arbitrum): the unit bound is the tighter and refuses first."""
    enter(sim, "basket")
    fresh(sim)
    priced, units = max_priced("asset")(sim), max_amount("asset")(sim)
    deposit = lambda amount: lambda: sim.pool_contract.transact(  # noqa: E731
        "deposit", tok("asset")(sim), amount, 0, sender=sim.address(LP))
    if sim.profile.name == "bnb":
        assert priced < units
        refused(sim, errors.AmountTooLarge, deposit(priced + 1), amount=priced + 1, max=priced)
        refused(sim, errors.AmountTooLarge, deposit(units), amount=units, max=priced)
    else:
        assert priced >= units
        refused(sim, errors.AmountTooLarge, deposit(units + 1), amount=units + 1, max=units)


def test_the_priced_max_itself_reaches_the_token(sim):
    """The bound is exact: at the priced max the quote passes (no overflow) and the token
    refuses the transfer (LP holds far less)."""
    enter(sim, "basket")
    fresh(sim)
    keys = ("asset", "ETH") if sim.profile.name == "bnb" else ("ETH",)
    for key in keys:
        amount = max_priced(key)(sim)
        refused(sim, errors.ERC20InsufficientBalance,
                lambda: sim.pool_contract.transact("deposit", tok(key)(sim), amount, 0, sender=sim.address(LP)),
                sender=sim.address(LP), balance=sim.asset_units(LP, symbol(key)(sim)), needed=amount)


# ------------------------------------------------------------------ the reserve: the payout stablecoin only

def _reserve_rule(s) -> Callable[[int], tuple[int, bool]]:
    """For an amount of LP's ALP taken in the payout stablecoin: its holdings after (USD) and
    whether that breaks the reserve rule (holdings after x 80% < reserve). The volatile asset's
    value does not count."""
    pool = s.pool_contract
    held_units, reserve = pool.call("poolBalance"), pool.call("reserveUsd")
    scale = 10 ** (18 - s.decimals)

    def after(alp: int) -> tuple[int, bool]:
        out = amount_out("payout", alp)(s)
        left = max(held_units - out, 0) * scale
        return left, out > held_units or left * pool.call("maxReserveBps") < reserve * BPS
    return after


def smallest_breaking(s) -> int:
    return smallest_breaking_withdrawal(_reserve_rule(s), s.alp_balance_wad(LP))


def reserve_fields(alp: Callable) -> Callable:
    def f(s):
        left, breaks = _reserve_rule(s)(resolve(alp, s))
        assert breaks
        return {"poolBalanceAfterUsd": left, "reserveUsd": s.pool_contract.call("reserveUsd")}
    return f


def settle_and_fresh(s) -> None:
    """The keeper's trigger run (the pairs with open interest settled), asset prices fresh."""
    settle(s)
    fresh(s)


RESERVE_ROWS = [
    ("withdraw-payout-smallest-below-reserve", "reserve", settle_and_fresh, LP, "pool", W,
     (smallest_breaking, tok("payout"), 0), "ReserveNotCovered", reserve_fields(smallest_breaking)),
    ("withdraw-payout-all-lps-alp", "reserve", settle_and_fresh, LP, "pool", W,
     (alp_of(LP), tok("payout"), 0), "ReserveNotCovered", reserve_fields(alp_of(LP))),
]


@pytest.mark.parametrize(ROW_ARGS, **params(RESERVE_ROWS))
def test_reserve_counts_the_payout_holdings_only(sim, state, prep, caller, contract, function, args, error, fields):
    run_row(sim, state, prep, caller, contract, function, args, error, fields)


def test_the_reserve_rows_premise(sim):
    """The basket is worth seven times the payout holdings, the reserve is open, one wei of ALP
    less than the smallest refused withdrawal is paid, and the same ALP in the volatile asset is
    paid too: the volatile asset is owed to no trader."""
    enter(sim, "reserve")
    settle_and_fresh(sim)
    pool, lp = sim.pool_contract, sim.address(LP)
    scale = 10 ** (18 - sim.decimals)
    payout_usd = pool.call("poolBalance") * scale
    assert pool.call("reserveUsd") > 0
    assert pool.call("redeemNav") > 6 * payout_usd
    smallest = smallest_breaking(sim)
    assert smallest * pool.call("redeemNav") // sim.contracts["alp"].call("totalSupply") < payout_usd
    assert pool.call(W, smallest - 1, tok("payout")(sim), 0, sender=lp) == amount_out("payout", smallest - 1)(sim)
    volatile = VOLATILE[sim.profile.name][0]
    assert pool.call(W, smallest, tok(volatile)(sim), 0, sender=lp) == amount_out(volatile, smallest)(sim) > 0


# ------------------------------------------------------------------ the admin's basket settings

def targets_plus(*extra: int, first: int = 0) -> Callable:
    """The profile's targets (listing order), `first` added to the first, `extra` appended."""
    def f(s):
        t = list(s.pool_contract.call("basket")[2])
        t[0] += first
        return [*t, *extra]
    return f


POOL_ADMIN_CALLS = [
    ("listAsset", (other("platform_token"), FACE_VALUE)),
    ("setPriceId", (tok("asset"), FACE_VALUE)),
    ("setTargets", (targets_plus(),)),
    ("setFeeSpread", (0,)),
    ("setPriceSource", (ZERO_ADDRESS,)),
]
ORACLE_CALLS = [  # (function, arguments, the role needed, who lacks it)
    ("setAssetPrices", ([128], [WAD]), "KEEPER_ROLE", NON_KEEPERS),
    ("setReferenceFeed", (129, other("feed_BTC_USD")), "ADMIN_ROLE", NON_ADMINS),
]
ROLE_ROWS = [
    *[(f"{fn}-by-{name}", "basket", None, who, "pool", fn, args,
       "AccessControlUnauthorizedAccount", unauthorized(who, "pool", "ADMIN_ROLE"))
      for fn, args in POOL_ADMIN_CALLS for name, who in NON_ADMINS.items()],
    *[(f"oracle-{fn}-by-{name}", "basket", None, who, "oracle", fn, args,
       "AccessControlUnauthorizedAccount", unauthorized(who, "oracle", role))
      for fn, args, role, callers in ORACLE_CALLS for name, who in callers.items()],
]


@pytest.mark.parametrize(ROW_ARGS, **params(ROLE_ROWS))
def test_basket_settings_role_gated(sim, state, prep, caller, contract, function, args, error, fields):
    run_row(sim, state, prep, caller, contract, function, args, error, fields)


BAD_PRICE_IDS = [256, FACE_VALUE - 1, FACE_VALUE + 1, FACE_VALUE + 2**16, MAX_UINT]
"""Above 255 and not FACE_VALUE: the last three would read as 0, 1 and FACE_VALUE once cast to uint16."""
OVERFLOW_TARGETS = [MAX_UINT, 10_001]
SETTINGS_ROWS = [
    # id, prep, function, arguments, error, fields
    # --- listAsset, in the order of its checks
    ("list-zero-address", None, "listAsset", (ZERO_ADDRESS, FACE_VALUE), "ZeroAddress", {}),
    ("list-zero-address-bad-id", None, "listAsset", (ZERO_ADDRESS, MAX_UINT), "ZeroAddress", {}),
    ("list-payout-again", None, "listAsset", (tok("payout"), FACE_VALUE),
     "AssetAlreadyListed", {"asset": tok("payout")}),
    ("list-asset-again", None, "listAsset", (tok("asset"), pid("asset")),
     "AssetAlreadyListed", {"asset": tok("asset")}),
    ("list-eth-again-bad-id", None, "listAsset", (tok("ETH"), 256), "AssetAlreadyListed", {"asset": tok("ETH")}),
    ("list-ninth-asset", fill_basket, "listAsset", (other("platform_token"), FACE_VALUE),
     "TooManyAssets", {"max": MAX_BASKET_ASSETS}),
    ("list-ninth-asset-bad-id", fill_basket, "listAsset", (other("platform_token"), 256),
     "TooManyAssets", {"max": MAX_BASKET_ASSETS}),
    *[(f"list-price-id-{i}", None, "listAsset", (other("platform_token"), i), "InvalidPriceInput", {"pairId": i})
      for i in BAD_PRICE_IDS],
    ("list-oracle-id-without-price-source", zero_price_source, "listAsset", (other("platform_token"), 128),
     "ZeroAddress", {}),
    ("list-19-decimals", mock_token("D19", 19), "listAsset", (deployed("D19"), FACE_VALUE),
     "UnsupportedDecimals", {"decimals": 19}),
    ("list-255-decimals", mock_token("D255", 255), "listAsset", (deployed("D255"), FACE_VALUE),
     "UnsupportedDecimals", {"decimals": 255}),
    # --- setPriceId
    ("price-id-of-unlisted", None, "setPriceId", (other("platform_token"), 128),
     "AssetNotInBasket", {"asset": other("platform_token")}),
    ("price-id-of-zero-address", None, "setPriceId", (ZERO_ADDRESS, 128), "AssetNotInBasket", {"asset": ZERO_ADDRESS}),
    ("price-id-of-unlisted-bad-id", None, "setPriceId", (other("alp"), MAX_UINT), "AssetNotInBasket",
     {"asset": other("alp")}),
    *[(f"price-id-{i}-for-{key}", None, "setPriceId", (tok(key), i), "InvalidPriceInput", {"pairId": i})
      for i in BAD_PRICE_IDS for key in ("payout", "asset")],
    ("price-id-without-price-source", zero_price_source, "setPriceId", (tok("asset"), 128), "ZeroAddress", {}),
    # --- setTargets: one per asset, summing to exactly 10,000
    ("targets-none", None, "setTargets", ([],), "InvalidTargets", {"sumBps": 0}),
    ("targets-one", None, "setTargets", ([BPS],), "InvalidTargets", {"sumBps": BPS}),
    ("targets-one-too-many", None, "setTargets", (targets_plus(0),), "InvalidTargets", {"sumBps": BPS}),
    ("targets-one-short", None, "setTargets", (lambda s: targets_plus()(s)[:-1],), "InvalidTargets",
     {"sumBps": lambda s: sum(targets_plus()(s)[:-1])}),
    ("targets-sum-9999", None, "setTargets", (targets_plus(first=-1),), "InvalidTargets", {"sumBps": 9_999}),
    ("targets-sum-10001", None, "setTargets", (targets_plus(first=1),), "InvalidTargets", {"sumBps": 10_001}),
    ("targets-above-uint16", None, "setTargets", (targets_plus(first=2**16),), "InvalidTargets",
     {"sumBps": BPS + 2**16}),
    # a sum past uint256 (found by this table: it was a Panic) is refused as the largest sum; no
    # wrap-around, so no target can be truncated by the uint16 cast
    ("targets-sum-overflow", None, "setTargets", (lambda s: [*OVERFLOW_TARGETS, *[0] * (len(targets_plus()(s)) - 2)],),
     "InvalidTargets", {"sumBps": MAX_UINT}),
    # --- setFeeSpread: below 100%
    *[(f"fee-spread-{v}", None, "setFeeSpread", (v,), "InvalidBps", {"bps": v}) for v in (BPS, 2**16, MAX_UINT)],
]


@pytest.mark.parametrize("prep, function, args, error, fields", [r[1:] for r in SETTINGS_ROWS],
                         ids=[r[0] for r in SETTINGS_ROWS])
def test_basket_settings_refused(sim, prep, function, args, error, fields):
    run_row(sim, "basket", prep, ADMIN, "pool", function, args, error, fields)


def test_the_valid_settings_are_accepted(sim):
    """The rows above fail on what they name: in range, the same calls go through (the basket
    filled to 8 with an 18-decimal token at id 255; targets summing to 10,000 with one at 0;
    the spread at 9,999)."""
    enter(sim, "basket")
    pool, admin = sim.pool_contract, sim.address(ADMIN)
    pool.transact("setPriceId", tok("asset")(sim), 255, sender=admin)
    pool.transact("listAsset", mock_token("D18")(sim).address, 255, sender=admin)
    fill_basket(sim)
    targets = targets_plus(first=-1)(sim)
    targets[-1] = 1  # the payout's 1 bp to the last listed
    pool.transact("setTargets", targets, sender=admin)
    pool.transact("setFeeSpread", BPS - 1, sender=admin)
    tokens, decimals, got, ids, _ = pool.call("basket")
    assert (len(tokens), list(got), pool.call("feeSpreadBps")) == (MAX_BASKET_ASSETS, targets, BPS - 1)
    assert decimals[len(sim.deployment.basket)] == 18
    assert ids[[t.lower() for t in tokens].index(tok("asset")(sim).lower())] == 255


# ------------------------------------------------------------------ the oracle's asset prices

AID = pid("asset")  # 128 on bnb, 130 on arbitrum: an asset-only id with a reference feed
ORACLE_ROWS = [
    # id, function, arguments, error, fields
    *[(f"set-pair-id-{i}", "setAssetPrices", ([i], [WAD]), "InvalidPriceInput", {"pairId": i}) for i in (0, 1, 127)],
    *[(f"set-id-{i}", "setAssetPrices", ([i], [WAD]), "InvalidPriceInput", {"pairId": i}) for i in (256, MAX_UINT)],
    ("set-id-129-no-reference-feed", "setAssetPrices", ([129], [WAD]), "InvalidPriceInput", {"pairId": 129}),
    ("set-asset-price-zero", "setAssetPrices", (lambda s: ([AID(s)], [0])), "InvalidPriceInput", {"pairId": AID}),
    ("set-asset-price-2-128", "setAssetPrices", (lambda s: ([AID(s)], [2**128])), "InvalidPriceInput", {"pairId": AID}),
    ("set-asset-price-max-uint", "setAssetPrices", (lambda s: ([AID(s)], [MAX_UINT])), "InvalidPriceInput",
     {"pairId": AID}),
    ("set-valid-then-pair-id", "setAssetPrices", (lambda s: ([AID(s), 0], [WAD, WAD])), "InvalidPriceInput",
     {"pairId": 0}),
    ("set-valid-then-zero-price", "setAssetPrices", (lambda s: ([AID(s), AID(s)], [2 * WAD, 0])), "InvalidPriceInput",
     {"pairId": AID}),
    # lengths differ: the error names the ids' length
    ("set-one-id-no-price", "setAssetPrices", (lambda s: ([AID(s)], [])), "InvalidPriceInput", {"pairId": 1}),
    ("set-no-id-one-price", "setAssetPrices", ([], [WAD]), "InvalidPriceInput", {"pairId": 0}),
    ("set-two-ids-one-price", "setAssetPrices", (lambda s: ([AID(s), 131], [WAD])), "InvalidPriceInput",
     {"pairId": 2}),
]


@pytest.mark.parametrize("function, args, error, fields", [r[1:] for r in ORACLE_ROWS],
                         ids=[r[0] for r in ORACLE_ROWS])
def test_set_asset_prices_refused(sim, function, args, error, fields):
    run_row(sim, "basket", None, KEEPER, "oracle", function, args, error, fields)


@pytest.mark.parametrize("price_id", [129, 200, 255, 256, MAX_UINT])
def test_asset_price_bounds_of_an_id_never_priced(sim, price_id):
    """A view: PriceStale(id, 0, 60) for an id the keeper never priced (129 and 200 have no
    feed; any id reads)."""
    run_row(sim, "basket", None, LP, "oracle", "assetPriceBounds", (price_id,), "PriceStale",
            {"pairId": price_id, "updatedAt": 0, "maxAge": 60}, view=True)
