"""Every bad input to the tokens (ALP, the devnet collateral, the platform token), table-driven,
on both chain profiles: ALP moves only by its owner the pool and never during its holder's
cooldown (docs/mechanics.md §10), only MINTER mints, ERC20 moves no more than a balance or an allowance.
Each refusal raises the exact error with its arguments and leaves every balance unchanged to
the unit.

Rows name a prepared state (`conftest.PreparedStates`), an
optional preparation, the caller, the contract, the call and its arguments, the expected error
and its fields. Arguments and fields may be functions of the deployed system, read just before
the call."""

from __future__ import annotations

from typing import Callable

import pytest

from bad_inputs_helpers import (ADMIN, HOLDER, KEEPER, LP, MAX_UINT, ROW_ARGS, TRADER, TRADER3, TREASURY, WAD,
                                ZERO_ADDRESS, addr, build_funded, params, RefusalTable, role_of,
                                wait_until_next_block_at)



EOA_ROLES = {"admin": ADMIN, "trader": TRADER, "lp": LP, "treasury": TREASURY, "keeper": KEEPER}
NON_ADMINS = {k: v for k, v in EOA_ROLES.items() if k != "admin"}


# ------------------------------------------------------------------ prepared states


BUILDERS = {"funded": build_funded}


def _tokens(sim) -> dict:
    """The supplies and who owns ALP."""
    c = sim.contracts
    return {"supplies": [c[t].call("totalSupply") for t in ("collateral", "platform_token")],
            "alp_owner": c["alp"].call("owner")}


TABLE = RefusalTable(BUILDERS, extra=_tokens)
enter, refused, run_row, snapshot = TABLE.enter, TABLE.refused, TABLE.run_row, TABLE.snapshot


# ------------------------------------------------------------------ values read from the chain


def contract_addr(role: str) -> Callable:
    return lambda s: s.contracts[role].address


def balance(token: str, i: int, plus: int = 0) -> Callable:
    return lambda s: s.contracts[token].call("balanceOf", s.address(i)) + plus


def unlocks_at(i: int) -> Callable:
    return lambda s: s.contracts["alp"].call("unlocksAt", s.address(i))


def units(whole: int) -> Callable:
    return lambda s: whole * 10**s.decimals


def approve(token: str, owner: int, spender: int, amount: int) -> Callable:
    return lambda s: s.contracts[token].transact("approve", s.address(spender), amount, sender=s.address(owner))


def last_second_of_cooldown(i: int) -> Callable:
    return lambda s: wait_until_next_block_at(s, unlocks_at(i)(s) - 1)


def top_up_deposit(i: int) -> Callable:
    """`i` deposits one more token: its whole ALP balance is locked again for 48 h."""
    return lambda s: s.pool_contract.transact("deposit", s.pool_contract.call("collateral"), 10**s.decimals, 0,
                                              sender=s.address(i))


# ------------------------------------------------------------------ ALP: only the pool mints and burns

OWNER_CALLS = [
    ("mint", lambda who: (addr(who), WAD, 0)),
    ("burn", lambda who: (addr(LP), 1)),
    ("transferOwnership", lambda who: (addr(who),)),
    ("renounceOwnership", lambda who: ()),
]
ALP_OWNER_ROWS = [(f"alp-{fn}-by-{name}", "funded", None, who, "alp", fn, args(who),
                   "OwnableUnauthorizedAccount", {"account": addr(who)})
                  for fn, args in OWNER_CALLS for name, who in EOA_ROLES.items()]


@pytest.mark.parametrize(ROW_ARGS, **params(ALP_OWNER_ROWS))
def test_alp_mint_and_burn_only_by_the_pool(sim, state, prep, caller, contract, function, args, error, fields):
    assert sim.contracts["alp"].call("owner") == sim.pool_contract.address  # no EOA can act as the owner
    run_row(sim, state, prep, caller, contract, function, args, error, fields)


# ------------------------------------------------------------------ ALP: cooldown and ERC20 transfers

HOLDER_LOCKED = {"holder": addr(HOLDER), "unlocksAt": unlocks_at(HOLDER)}
ALP_TRANSFER_ROWS = [
    # --- in cooldown: nothing moves, whatever the amount or the recipient
    ("transfer-all-in-cooldown", "funded", None, HOLDER, "alp", "transfer", (addr(TRADER), balance("alp", HOLDER)),
     "CooldownActive", HOLDER_LOCKED),
    ("transfer-one-wei-in-cooldown", "funded", None, HOLDER, "alp", "transfer", (addr(TRADER), 1),
     "CooldownActive", HOLDER_LOCKED),
    ("transfer-zero-in-cooldown", "funded", None, HOLDER, "alp", "transfer", (addr(TRADER), 0),
     "CooldownActive", HOLDER_LOCKED),
    ("transfer-to-self-in-cooldown", "funded", None, HOLDER, "alp", "transfer", (addr(HOLDER), balance("alp", HOLDER)),
     "CooldownActive", HOLDER_LOCKED),
    ("transfer-to-the-pool-in-cooldown", "funded", None, HOLDER, "alp", "transfer",
     (contract_addr("pool"), balance("alp", HOLDER)), "CooldownActive", HOLDER_LOCKED),
    ("transfer-over-balance-in-cooldown", "funded", None, HOLDER, "alp", "transfer",
     (addr(TRADER), balance("alp", HOLDER, 1)), "CooldownActive", HOLDER_LOCKED),
    ("transfer-from-by-approved-spender-in-cooldown", "funded", approve("alp", HOLDER, TRADER3, MAX_UINT), TRADER3, "alp",
     "transferFrom", (addr(HOLDER), addr(TRADER3), balance("alp", HOLDER)), "CooldownActive", HOLDER_LOCKED),
    ("transfer-last-second-of-cooldown", "funded", last_second_of_cooldown(HOLDER), HOLDER, "alp", "transfer",
     (addr(TRADER), 1), "CooldownActive", HOLDER_LOCKED),
    ("transfer-after-a-top-up-deposit", "funded", top_up_deposit(LP), LP, "alp", "transfer", (addr(TRADER), 1),
     "CooldownActive", {"holder": addr(LP), "unlocksAt": unlocks_at(LP)}),
    # --- past the cooldown: ERC20 rules
    ("transfer-balance-plus-one", "funded", None, LP, "alp", "transfer", (addr(TRADER), balance("alp", LP, 1)),
     "ERC20InsufficientBalance", {"sender": addr(LP), "balance": balance("alp", LP), "needed": balance("alp", LP, 1)}),
    ("transfer-max-uint", "funded", None, LP, "alp", "transfer", (addr(TRADER), MAX_UINT),
     "ERC20InsufficientBalance", {"sender": addr(LP), "balance": balance("alp", LP), "needed": MAX_UINT}),
    ("transfer-without-alp", "funded", None, TRADER, "alp", "transfer", (addr(LP), 1),
     "ERC20InsufficientBalance", {"sender": addr(TRADER), "balance": 0, "needed": 1}),
    ("transfer-from-someone-elses-alp", "funded", None, TRADER, "alp", "transferFrom", (addr(LP), addr(TRADER), 1),
     "ERC20InsufficientAllowance", {"spender": addr(TRADER), "allowance": 0, "needed": 1}),
    ("transfer-from-over-allowance", "funded", approve("alp", LP, TRADER, 5), TRADER, "alp", "transferFrom",
     (addr(LP), addr(TRADER), 6), "ERC20InsufficientAllowance", {"spender": addr(TRADER), "allowance": 5, "needed": 6}),
    ("transfer-to-zero-address", "funded", None, LP, "alp", "transfer", (ZERO_ADDRESS, 1),
     "ERC20InvalidReceiver", {"receiver": ZERO_ADDRESS}),
    ("approve-zero-address", "funded", None, LP, "alp", "approve", (ZERO_ADDRESS, 1),
     "ERC20InvalidSpender", {"spender": ZERO_ADDRESS}),
]


@pytest.mark.parametrize(ROW_ARGS, **params(ALP_TRANSFER_ROWS))
def test_alp_transfer_refused(sim, state, prep, caller, contract, function, args, error, fields):
    run_row(sim, state, prep, caller, contract, function, args, error, fields)


# ------------------------------------------------------------------ collateral and platform token

def minter_rows(token: str) -> list[tuple]:
    rows = [(f"{token}-mint-by-{name}", "funded", None, who, token, "mint", (addr(who), units(1_000_000)),
             "AccessControlUnauthorizedAccount", {"account": addr(who), "neededRole": role_of(token, "MINTER_ROLE")})
            for name, who in NON_ADMINS.items()]
    rows += [(f"{token}-grant-minter-to-self-by-{name}", "funded", None, who, token, "grantRole",
              (role_of(token, "MINTER_ROLE"), addr(who)), "AccessControlUnauthorizedAccount",
              {"account": addr(who), "neededRole": role_of(token, "DEFAULT_ADMIN_ROLE")})
             for name, who in NON_ADMINS.items()]
    return rows


def erc20_rows(token: str) -> list[tuple]:
    bal = lambda i, plus=0: balance(token, i, plus)  # noqa: E731
    return [
        (f"{token}-minter-mints-max-uint", "funded", None, ADMIN, token, "mint", (addr(TRADER), MAX_UINT),
         "Panic", {"code": 0x11}),
        (f"{token}-minter-mints-to-zero-address", "funded", None, ADMIN, token, "mint", (ZERO_ADDRESS, 1),
         "ERC20InvalidReceiver", {"receiver": ZERO_ADDRESS}),
        (f"{token}-transfer-balance-plus-one", "funded", None, TRADER, token, "transfer", (addr(LP), bal(TRADER, 1)),
         "ERC20InsufficientBalance", {"sender": addr(TRADER), "balance": bal(TRADER), "needed": bal(TRADER, 1)}),
        (f"{token}-transfer-max-uint", "funded", None, TRADER, token, "transfer", (addr(LP), MAX_UINT),
         "ERC20InsufficientBalance", {"sender": addr(TRADER), "balance": bal(TRADER), "needed": MAX_UINT}),
        (f"{token}-transfer-by-keeper-with-nothing", "funded", None, KEEPER, token, "transfer", (addr(LP), 1),
         "ERC20InsufficientBalance", {"sender": addr(KEEPER), "balance": 0, "needed": 1}),
        (f"{token}-transfer-from-without-allowance", "funded", None, TRADER3, token, "transferFrom",
         (addr(TRADER), addr(TRADER3), 1),
         "ERC20InsufficientAllowance", {"spender": addr(TRADER3), "allowance": 0, "needed": 1}),
        (f"{token}-transfer-from-over-balance-unlimited-allowance", "funded", approve(token, TRADER, TRADER3, MAX_UINT),
         TRADER3, token, "transferFrom", (addr(TRADER), addr(TRADER3), bal(TRADER, 1)),
         "ERC20InsufficientBalance", {"sender": addr(TRADER), "balance": bal(TRADER), "needed": bal(TRADER, 1)}),
        (f"{token}-transfer-to-zero-address", "funded", None, TRADER, token, "transfer", (ZERO_ADDRESS, 1),
         "ERC20InvalidReceiver", {"receiver": ZERO_ADDRESS}),
    ]


POOL_FUNDS_ROWS = [  # the pool's collateral moves only through withdraw / payTokens
    (f"collateral-transfer-from-the-pool-by-{name}", "funded", None, who, "collateral", "transferFrom",
     (contract_addr("pool"), addr(who), 1),
     "ERC20InsufficientAllowance", {"spender": addr(who), "allowance": 0, "needed": 1})
    for name, who in EOA_ROLES.items()
]

TOKEN_ROWS = (minter_rows("collateral") + erc20_rows("collateral") + POOL_FUNDS_ROWS
              + minter_rows("platform_token") + erc20_rows("platform_token"))


@pytest.mark.parametrize(ROW_ARGS, **params(TOKEN_ROWS))
def test_collateral_and_platform_token_refused(sim, state, prep, caller, contract, function, args, error, fields):
    run_row(sim, state, prep, caller, contract, function, args, error, fields)


def test_only_the_admin_mints_the_tokens(sim):
    """The premise of the minter rows: on both tokens MINTER is the admin's alone."""
    for token in ("collateral", "platform_token"):
        contract = sim.contracts[token]
        minter = contract.call("MINTER_ROLE")
        holders = [i for i in range(10) if contract.call("hasRole", minter, sim.address(i))]
        assert holders == [ADMIN], token
        for role in ("pool", "trading"):
            assert not contract.call("hasRole", minter, sim.contracts[role].address)
