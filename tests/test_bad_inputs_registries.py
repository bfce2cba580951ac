"""Every bad input to the pair registry and the referral registry (docs/mechanics.md sections 1, 3, 4, 13),
table-driven, on both chain profiles: pairs and tiers are the admin's alone, a pair's settings
must be in range and its id listed; a referral code is registered once, never zero, bound once
per trader, never to oneself. Each refusal raises the exact error with its arguments and leaves
every balance, pair, tier and referral unchanged.

Rows name a prepared state (`conftest.PreparedStates`), an
optional preparation, the caller, the contract, the call and its arguments, the expected error
and its fields. Arguments and fields may be functions of the deployed system, read just before
the call."""

from __future__ import annotations


import pytest

from bad_inputs_helpers import (MAX_UINT, ROW_ARGS, WAD, addr, params, RefusalTable, role_of, unauthorized)
from conftest import pair_config


U16_MAX = 2**16 - 1
PAIR_COUNT = 4  # docs/mechanics.md §3: BTC, ETH, SOL, AAPL; a new pair gets id 4

ADMIN, TRADER, REFERRER, BOUND, LP, TREASURY, KEEPER = 0, 1, 2, 3, 7, 8, 9
EOA_ROLES = {"admin": ADMIN, "trader": TRADER, "lp": LP, "treasury": TREASURY, "keeper": KEEPER}
NON_ADMINS = {k: v for k, v in EOA_ROLES.items() if k != "admin"}


def code(text: str) -> bytes:
    return text.encode().ljust(32, b"\0")


ZERO_CODE = b"\0" * 32
REF_CODE, BOUND_OWN_CODE, UNKNOWN_CODE = code("alpsim"), code("bound-own"), code("nobody-registered-this")
ONE_BIT_CODE = b"\0" * 31 + b"\x01"  # not the zero code: one bit set, in the last byte
SECOND_CODE = code("second")


# ------------------------------------------------------------------ prepared states

def _build_registries(sim) -> None:
    """Pool liquidity and trader funds (so balances are not all zero); REFERRER registered
    REF_CODE; BOUND registered BOUND_OWN_CODE and is bound to REF_CODE; TRADER is unbound."""
    sim.fund(LP, 10_000)
    sim.deposit(LP, 10_000)
    sim.fund(TRADER, 1_000)
    sim.contracts["platform_token"].transact("mint", sim.address(TRADER), 100 * WAD, sender=sim.address(ADMIN))
    referrals = sim.contracts["referrals"]
    referrals.transact("registerCode", REF_CODE, sender=sim.address(REFERRER))
    referrals.transact("registerCode", BOUND_OWN_CODE, sender=sim.address(BOUND))
    referrals.transact("bindReferral", REF_CODE, sender=sim.address(BOUND))


BUILDERS = {"registries": _build_registries}


def _registries(sim) -> dict:
    """Every pair, the tiers, and the referral codes and bindings the table touches."""
    pairs, referrals = sim.contracts["pairs"], sim.contracts["referrals"]
    count = pairs.call("pairCount")
    return {
        "pairs": [count] + [pairs.call("pair", i) for i in range(count + 1)],
        "tiers": pairs.call("tiers"),
        "codes": [referrals.call("referrerOfCode", k) for k in (ZERO_CODE, REF_CODE, BOUND_OWN_CODE, UNKNOWN_CODE,
                                                                   SECOND_CODE, ONE_BIT_CODE)],
        "bindings": [referrals.call("codeOf", sim.address(i)) for i in (TRADER, REFERRER, BOUND)],
    }


TABLE = RefusalTable(BUILDERS, extra=_registries)
enter, refused, run_row, snapshot = TABLE.enter, TABLE.refused, TABLE.run_row, TABLE.snapshot


# ------------------------------------------------------------------ pair registry

VALID = pair_config()
ADMIN_CALLS = [
    ("listPair", (VALID,)),
    ("updatePair", (0, pair_config("BTC/USD", max_leverage=2))),
    ("setPaused", (0, True)),
    ("setTiers", ([],)),
]
PAIR_ROLE_ROWS = [
    *[(f"{fn}-by-{name}", "registries", None, who, "pairs", fn, args,
       "AccessControlUnauthorizedAccount", unauthorized(who, "pairs", "ADMIN_ROLE"))
      for fn, args in ADMIN_CALLS for name, who in NON_ADMINS.items()],
    *[(f"grant-admin-to-self-by-{name}", "registries", None, who, "pairs", "grantRole",
       (role_of("pairs", "ADMIN_ROLE"), addr(who)),
       "AccessControlUnauthorizedAccount", unauthorized(who, "pairs", "DEFAULT_ADMIN_ROLE"))
      for name, who in NON_ADMINS.items()],
]


@pytest.mark.parametrize(ROW_ARGS, **params(PAIR_ROLE_ROWS))
def test_pair_registry_admin_only(sim, state, prep, caller, contract, function, args, error, fields):
    run_row(sim, state, prep, caller, contract, function, args, error, fields)


NEW = {"pairId": PAIR_COUNT}
PAIR_SETTINGS_ROWS = [
    # --- a new pair out of range: it would get id 4
    ("list-max-leverage-0", "listPair", (pair_config(max_leverage=0),), "InvalidPairSettings", NEW),
    ("list-depth-0", "listPair", (pair_config(depth=0),), "InvalidPairSettings", NEW),
    ("list-spread-100pct", "listPair", (pair_config(spread_bps=10_000),), "InvalidPairSettings", NEW),
    ("list-spread-uint16-max", "listPair", (pair_config(spread_bps=U16_MAX),), "InvalidPairSettings", NEW),
    ("list-everything-out-of-range", "listPair", (pair_config(max_leverage=0, spread_bps=U16_MAX, depth=0),),
     "InvalidPairSettings", NEW),
    ("list-tiered-max-leverage-0", "listPair", (pair_config("BIG/USD", tiered=True, max_leverage=0),),
     "InvalidPairSettings", NEW),
    # a pair is one storage slot: its USD amounts fit 96 bits (79 billion USD)
    ("list-depth-above-96-bits", "listPair", (pair_config(depth=2**96),), "InvalidPairSettings", NEW),
    ("list-max-oi-above-96-bits", "listPair", (pair_config(max_oi=2**96),), "InvalidPairSettings", NEW),
    ("update-btc-max-oi-max-uint", "updatePair", (0, pair_config("BTC/USD", max_oi=MAX_UINT)),
     "InvalidPairSettings", {"pairId": 0}),
    # --- a listed pair updated out of range
    ("update-btc-max-leverage-0", "updatePair", (0, pair_config("BTC/USD", max_leverage=0)),
     "InvalidPairSettings", {"pairId": 0}),
    ("update-eth-spread-100pct", "updatePair", (1, pair_config("ETH/USD", spread_bps=10_000)),
     "InvalidPairSettings", {"pairId": 1}),
    ("update-aapl-depth-0", "updatePair", (3, pair_config("AAPL/USD", depth=0)), "InvalidPairSettings", {"pairId": 3}),
    # --- unknown pair ids
    ("update-unknown-next-id", "updatePair", (PAIR_COUNT, VALID), "UnknownPair", {"pairId": PAIR_COUNT}),
    ("update-unknown-max-uint", "updatePair", (MAX_UINT, VALID), "UnknownPair", {"pairId": MAX_UINT}),
    ("update-unknown-and-invalid", "updatePair", (PAIR_COUNT, pair_config(max_leverage=0, depth=0)),
     "UnknownPair", {"pairId": PAIR_COUNT}),
    ("pause-unknown-next-id", "setPaused", (PAIR_COUNT, True), "UnknownPair", {"pairId": PAIR_COUNT}),
    ("unpause-unknown-1000", "setPaused", (1000, False), "UnknownPair", {"pairId": 1000}),
    ("pause-unknown-max-uint", "setPaused", (MAX_UINT, True), "UnknownPair", {"pairId": MAX_UINT}),
]


@pytest.mark.parametrize("function, args, error, fields", [r[1:] for r in PAIR_SETTINGS_ROWS],
                         ids=[r[0] for r in PAIR_SETTINGS_ROWS])
def test_pair_settings_refused(sim, function, args, error, fields):
    assert sim.contracts["pairs"].call("pairCount") == PAIR_COUNT
    run_row(sim, "registries", None, ADMIN, "pairs", function, args, error, fields)


def test_the_valid_rows_arguments_are_accepted(sim):
    """The rows above fail on the one setting named, not on the rest: the same calls with that
    setting in range go through (listPair then gives id 4)."""
    enter(sim, "registries")
    pairs, admin = sim.contracts["pairs"], sim.address(ADMIN)
    pairs.transact("listPair", pair_config(max_leverage=1, spread_bps=9_999, depth=1), sender=admin)
    assert pairs.call("pairCount") == PAIR_COUNT + 1
    assert pairs.call("pair", PAIR_COUNT)["listed"] is True
    pairs.transact("updatePair", 0, pair_config("BTC/USD", max_leverage=1), sender=admin)
    assert pairs.call("pair", 0)["maxLeverage"] == 1
    top = 2**96 - 1  # the largest amounts a pair's slot holds
    pairs.transact("updatePair", 1, pair_config("ETH/USD", depth=top, max_oi=top), sender=admin)
    eth = pairs.call("pair", 1)
    assert (eth["name"], eth["depth1PctUsd"], eth["maxOiPerSideUsd"]) == ("ETH/USD", top, top)
    # what an execution reads is the same pair, without the name
    assert pairs.call("tradeConfig", 1) == {"listed": True, "paused": False, "maxLeverage": 20, "spreadBps": 5,
                                            "depth1PctUsd": top, "maxOiPerSideUsd": top}
    pairs.transact("setPaused", PAIR_COUNT, True, sender=admin)
    assert pairs.call("pair", PAIR_COUNT)["paused"] is True


# ------------------------------------------------------------------ referral registry

def register_second_code(s) -> None:
    """TRADER registers SECOND_CODE, a code BOUND could otherwise bind."""
    s.contracts["referrals"].transact("registerCode", SECOND_CODE, sender=s.address(TRADER))


REFERRAL_ROWS = [
    # id, preparation, function, caller, arguments, error, fields
    # --- registerCode
    ("register-zero-code", None, "registerCode", TRADER, (ZERO_CODE,), "ReferralCodeTaken", {"code": ZERO_CODE}),
    ("register-zero-code-by-admin", None, "registerCode", ADMIN, (ZERO_CODE,),
     "ReferralCodeTaken", {"code": ZERO_CODE}),
    ("register-code-taken-by-another", None, "registerCode", TRADER, (REF_CODE,),
     "ReferralCodeTaken", {"code": REF_CODE}),
    ("register-own-code-again", None, "registerCode", REFERRER, (REF_CODE,), "ReferralCodeTaken", {"code": REF_CODE}),
    ("register-code-taken-by-keeper", None, "registerCode", KEEPER, (BOUND_OWN_CODE,),
     "ReferralCodeTaken", {"code": BOUND_OWN_CODE}),
    # --- bindReferral
    ("bind-unknown-code", None, "bindReferral", TRADER, (UNKNOWN_CODE,),
     "ReferralCodeUnknown", {"code": UNKNOWN_CODE}),
    ("bind-zero-code", None, "bindReferral", TRADER, (ZERO_CODE,), "ReferralCodeUnknown", {"code": ZERO_CODE}),
    ("bind-one-bit-code", None, "bindReferral", TRADER, (ONE_BIT_CODE,),
     "ReferralCodeUnknown", {"code": ONE_BIT_CODE}),
    ("bind-own-code", None, "bindReferral", REFERRER, (REF_CODE,), "SelfReferral", {"trader": addr(REFERRER)}),
    ("bind-own-code-when-already-bound", None, "bindReferral", BOUND, (BOUND_OWN_CODE,),
     "SelfReferral", {"trader": addr(BOUND)}),
    ("bind-same-code-twice", None, "bindReferral", BOUND, (REF_CODE,),
     "ReferralAlreadyBound", {"trader": addr(BOUND), "code": REF_CODE}),
    ("bind-unknown-code-when-already-bound", None, "bindReferral", BOUND, (UNKNOWN_CODE,),
     "ReferralCodeUnknown", {"code": UNKNOWN_CODE}),
    ("bind-second-code", register_second_code, "bindReferral", BOUND, (SECOND_CODE,),
     "ReferralAlreadyBound", {"trader": addr(BOUND), "code": REF_CODE}),
]


@pytest.mark.parametrize("prep, function, caller, args, error, fields", [r[1:] for r in REFERRAL_ROWS],
                         ids=[r[0] for r in REFERRAL_ROWS])
def test_referral_refused(sim, prep, function, caller, args, error, fields):
    run_row(sim, "registries", prep, caller, "referrals", function, args, error, fields)


def test_the_prepared_referrals(sim):
    """The premise of the referral rows."""
    enter(sim, "registries")
    referrals = sim.contracts["referrals"]
    assert referrals.call("referrerOfCode", REF_CODE) == sim.address(REFERRER)
    assert referrals.call("referrerOfCode", BOUND_OWN_CODE) == sim.address(BOUND)
    assert referrals.call("codeOf", sim.address(BOUND)) == REF_CODE
    assert not referrals.call("hasReferral", sim.address(TRADER))
    assert not referrals.call("hasReferral", sim.address(REFERRER))
