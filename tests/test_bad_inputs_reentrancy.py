"""Re-entrancy through the collateral token (docs/mechanics.md section 13: every refusal is a custom
error). A second pool and trading engine run on ReentrantCollateral
(contracts/test/ReentrantCollateral.sol), a token that calls back into a chosen contract from
inside a transfer, as a token with transfer hooks could. A call back into the pool's `deposit`
/ `withdraw` or the engine's `requestOpen` / `cancelRequest` made while one of their own
transfers is under way is refused with OpenZeppelin's `ReentrancyGuardReentrantCall` (the
token records the revert data; the outer call completes), every balance reconciles afterwards
to the unit, and the same call made by the same account outside a transfer succeeds (so the
guard, nothing else, is what refused it). Both chain profiles (the token takes the profile's
collateral decimals)."""

from __future__ import annotations

import pytest

from alpsim import errors
from alpsim.compiler import linked
from alpsim.deployment import contract_abi
from alpsim.orders import commitment
from alpsim.protocol import Order

TRADER, LP = 1, 7
WAD = 10**18
MAX_UINT = 2**256 - 1
BTC = 0
EXPIRY_BLOCKS = 10
PRICES = {"BTC/USD": 60_000, "ETH/USD": 3_000, "SOL/USD": 150, "AAPL/USD": 200}
ORDER = Order(BTC, True, 10)
SALT = b"\x05" * 32
PENDING, EXECUTED, CANCELLED = 1, 2, 4  # RequestStatus in Types.sol
OPEN = 0  # RequestKind.Open
ENGINE_ARGS = ["address"] * 8 + ["uint256", "address"]  # TradingEngine constructor


# ---------------------------------------------------------------- the second system

@pytest.fixture(scope="module")
def alt(deployed, build):
    """Once per profile: ReentrantCollateral, an ALP token and pool on it (cooldown 0, so
    withdrawals follow deposits at once) and a trading engine on it that shares the first
    system's pairs, oracle, market, referrals and platform token, with the roles wired as
    deployment.py wires them. The pool gets no NAV source: the shared market's open interest
    belongs to the first pool. The engine links the first system's libraries. The LP has deposited 100,000; the token contract itself holds
    tokens, allowances, ALP and an open request of its own (so each call it re-enters with
    would succeed on its own); TRADER has an expired request. The `sim` fixture (taken after
    this one) reverts to this state after every test."""
    sim = deployed
    snap = sim.snapshot()
    admin, art, session = sim.deployment.deployer, build.artifacts, sim.session

    def deploy(name, types, args, label):
        # the engine's pipelines are the first system's libraries (they hold no state)
        artifact = linked(art[name], sim.deployment.libraries)
        return session.bind(label, session.deploy(artifact, types, args, admin), contract_abi(art, name))

    c = sim.contracts
    token = deploy("ReentrantCollateral", ["string", "string", "uint8"], ["Reentrant USD", "rUSD", sim.decimals],
                   "ReentrantCollateral")
    alp = deploy("AlpToken", ["address"], [admin], "alt_alp")
    pool = deploy("AlpPool", ["address", "address", "address"], [token.address, alp.address, admin], "alt_pool")
    alp.transact("transferOwnership", pool.address, sender=admin)
    engine = deploy("TradingEngine", ENGINE_ARGS,
                    [token.address, pool.address, c["pairs"].address, c["oracle"].address, c["market"].address,
                     c["referrals"].address, c["platform_token"].address, sim.deployment.treasury,
                     sim.profile.execution_fee_wad, admin], "alt_trading")
    pool.transact("grantRole", pool.call("TRADING_ROLE"), engine.address, sender=admin)
    c["market"].transact("grantRole", c["market"].call("ENGINE_ROLE"), engine.address, sender=admin)
    c["oracle"].transact("grantRole", c["oracle"].call("UPDATER_ROLE"), engine.address, sender=admin)
    engine.transact("grantRole", engine.call("KEEPER_ROLE"), sim.deployment.keeper, sender=admin)
    engine.transact("setKeeperPublicKey", sim.keeper_public_key, sender=admin)
    pool.transact("setSettings", 25, 25, 0, 8_000, sender=admin)
    sim.keeper.set_prices(PRICES)

    units = 10**sim.decimals
    lp, trader, me = sim.address(LP), sim.address(TRADER), token.address
    token.transact("mint", lp, 1_000_000 * units, sender=admin)
    token.transact("mint", trader, 10_000 * units, sender=admin)
    token.transact("mint", me, 10_000 * units, sender=admin)
    token.transact("approve", pool.address, MAX_UINT, sender=lp)
    token.transact("approve", engine.address, MAX_UINT, sender=trader)
    pool.transact("deposit", pool.call("collateral"), 100_000 * units, 0, sender=lp)

    def fire(target, fn, *args):
        token.transact("fire", target.address, _data(target, fn, *args), sender=admin)
        assert token.call("called") is True and token.call("callbackReverted") is False, fn

    fire(token, "approve", pool.address, MAX_UINT)
    fire(token, "approve", engine.address, MAX_UINT)
    fire(pool, "deposit", pool.call("collateral"), 1_000 * units, 0)
    token_rid = engine.call("nextRequestId")
    fire(engine, "requestOpen", commitment(me, ORDER, SALT), b"", 100 * units)
    trader_rid = engine.call("nextRequestId")
    engine.transact("requestOpen", commitment(trader, ORDER, SALT), b"", 1_000 * units, sender=trader)
    sim.devnet.mine(EXPIRY_BLOCKS)  # both requests expired: cancellable
    assert alp.call("balanceOf", me) > 0
    yield {"token": token, "alp": alp, "pool": pool, "engine": engine, "units": units,
           "token_rid": token_rid, "trader_rid": trader_rid}
    sim.revert(snap)


def _data(contract, fn, *args) -> bytes:
    return bytes.fromhex(contract.encode(fn, *args)[2:])


# ---------------------------------------------------------------- shared helpers

def balances(sim, alt, requests=()) -> dict:
    """Every token balance and book of the second system (and the first's collateral and
    platform token), for the ten dev accounts, the token contract, the pool and the engine."""
    token, pool, engine, alp = alt["token"], alt["pool"], alt["engine"], alt["alp"]
    holders = [sim.address(i) for i in range(10)] + [token.address, pool.address, engine.address]
    collateral, platform = sim.contracts["collateral"], sim.contracts["platform_token"]
    return {
        "token": {a: token.call("balanceOf", a) for a in holders},
        "collateral": {a: collateral.call("balanceOf", a) for a in holders},
        "platform_token": {a: platform.call("balanceOf", a) for a in holders},
        "alp": {a: alp.call("balanceOf", a) for a in (sim.address(LP), token.address)},
        "pool": (pool.call("poolBalance"), pool.call("reserveUsd"), alp.call("totalSupply")),
        "counters": engine.call("nextRequestId"),
        "requests": {r: engine.call("request", r) for r in requests},
    }


def refused(sim, error_class, action, *, alt, **fields):
    """`action` must raise exactly `error_class` with exactly `fields`, with nothing in
    `balances` moved. (A re-entrant call is refused inside a transfer, where the token records
    the revert instead: `recorded`.)"""
    before = balances(sim, alt)
    with pytest.raises(errors.ContractRevert) as info:
        action()
    err = info.value
    assert type(err) is error_class, f"expected {error_class.__name__}, got {err!r}"
    assert err.error_args == fields, f"{err!r} carries {err.error_args}, expected {fields}"
    assert balances(sim, alt) == before
    return err


def recorded(sim, token) -> dict:
    """The token's record of its last callback, the revert data decoded."""
    result = bytes(token.call("callbackResult"))
    return {"called": token.call("called"), "reverted": token.call("callbackReverted"),
            "error": sim.session.decoder.decode(result) if token.call("callbackReverted") else None,
            "from": token.call("triggerFrom"), "to": token.call("triggerTo"), "value": token.call("triggerValue"),
            "armed": token.call("armed")}


def escrow_reconciles(alt) -> None:
    """The engine holds exactly its pending opens' amounts plus its open positions' margins;
    the pool's booked balance is exactly what it holds."""
    engine, token, pool = alt["engine"], alt["token"], alt["pool"]
    pending = 0
    for rid in range(1, engine.call("nextRequestId")):
        r = engine.call("request", rid)
        if r["kind"] == OPEN and r["status"] == PENDING:
            pending += r["amountIn"]
    # a position's id is its open request's
    margins = sum(engine.call("position", pid)["marginTokens"] for pid in range(1, engine.call("nextRequestId")))
    assert token.call("balanceOf", engine.address) == pending + margins
    assert token.call("balanceOf", pool.address) == pool.call("poolBalance")


# ---------------------------------------------------------------- the calls re-entered with

def _reentry(sim, alt, name) -> tuple:
    """(target, calldata) of a call the token makes as itself; each succeeds outside a transfer."""
    pool, engine, token, units = alt["pool"], alt["engine"], alt["token"], alt["units"]
    if name == "pool.deposit":
        return pool, _data(pool, "deposit", pool.call("collateral"), 100 * units, 0)
    if name == "pool.withdraw":
        return pool, _data(pool, "withdraw", alt["alp"].call("balanceOf", token.address) // 2, pool.call("collateral"), 0)
    if name == "trading.requestOpen":
        return engine, _data(engine, "requestOpen", commitment(token.address, ORDER, SALT), b"", 100 * units)
    if name == "trading.cancelRequest":
        return engine, _data(engine, "cancelRequest", alt["token_rid"])
    raise AssertionError(name)


# ---------------------------------------------------------------- the calls whose transfer re-enters
# Each returns (the transfer's from, to, value, the expected balance changes, requests to watch)
# given the state before; `go` sends it.

def _trigger_deposit(sim, alt):
    pool, units, lp = alt["pool"], alt["units"], sim.address(LP)
    amount = 1_000 * units
    receipt = pool.transact("deposit", pool.call("collateral"), amount, 0, sender=lp)
    alp_out = sim.session.events(receipt, "Deposit")[0]["alpOut"]
    return (lp, pool.address, amount), {"token": {lp: -amount, pool.address: amount},
                                        "alp": {lp: alp_out}, "pool": (amount, 0, alp_out)}


def _trigger_withdraw(sim, alt):
    pool, lp = alt["pool"], sim.address(LP)
    alp_in = alt["alp"].call("balanceOf", lp) // 10
    receipt = pool.transact("withdraw", alp_in, pool.call("collateral"), 0, sender=lp)
    out = sim.session.events(receipt, "Withdraw")[0]["amountOut"]
    assert out > 0
    return (pool.address, lp, out), {"token": {lp: out, pool.address: -out}, "alp": {lp: -alp_in},
                                     "pool": (-out, 0, -alp_in)}


def _trigger_request_open(sim, alt):
    engine, trader = alt["engine"], sim.address(TRADER)
    amount = 1_000 * alt["units"]
    rid = engine.call("nextRequestId")
    engine.transact("requestOpen", commitment(trader, ORDER, SALT), b"", amount, sender=trader)
    assert engine.call("request", rid)["status"] == PENDING
    return (trader, engine.address, amount), {"token": {trader: -amount, engine.address: amount},
                                              "counters": 1}


def _trigger_cancel(sim, alt):
    engine, trader, rid = alt["engine"], sim.address(TRADER), alt["trader_rid"]
    amount = engine.call("request", rid)["amountIn"]
    engine.transact("cancelRequest", rid, sender=trader)
    assert engine.call("request", rid)["status"] == CANCELLED
    return (engine.address, trader, amount), {"token": {trader: amount, engine.address: -amount}}


def _prepare_execute(sim, alt):
    """A fresh request of TRADER, one block old: what the keeper's execution needs."""
    engine, trader = alt["engine"], sim.address(TRADER)
    alt["exec_rid"] = engine.call("nextRequestId")
    engine.transact("requestOpen", commitment(trader, ORDER, SALT), b"", 1_000 * alt["units"], sender=trader)
    sim.devnet.mine(1)


def _trigger_execute(sim, alt):
    """The keeper's execution: its first transfer is the execution fee to the keeper."""
    engine, pool, keeper, treasury = alt["engine"], alt["pool"], sim.deployment.keeper, sim.deployment.treasury
    rid = alt["exec_rid"]
    fee = engine.call("executionFeeTokens")
    receipt = engine.transact("executeOpen", rid, (BTC, True, 10, 0, 0, 0), SALT,
                              [(BTC, PRICES["BTC/USD"] * WAD)], sender=keeper)
    opened = sim.session.events(receipt, "PositionOpened")[0]
    split = sim.session.events(receipt, "FeeSplit")[0]
    assert opened["requestId"] == rid and engine.call("request", rid)["status"] == EXECUTED
    open_fee = opened["charges"]["openFeeTokens"]
    assert split["poolAmount"] + split["treasuryAmount"] == open_fee > 0
    assert opened["position"]["marginTokens"] + open_fee + fee == 1_000 * alt["units"]
    reserve = opened["position"]["maxProfitUsd"]
    # the execution's first transfer is the pool's share of the open fee (the keeper is paid
    # last, in one transfer for a whole batch)
    return (engine.address, pool.address, split["poolAmount"]), {
        "token": {keeper: fee, treasury: split["treasuryAmount"], pool.address: split["poolAmount"],
                  engine.address: -(fee + open_fee)},
        "pool": (split["poolAmount"], reserve, 0)}  # the position takes its request's id: no counter moves


TRIGGERS = {
    "pool.deposit": (None, _trigger_deposit),
    "pool.withdraw": (None, _trigger_withdraw),
    "trading.requestOpen": (None, _trigger_request_open),
    "trading.cancelRequest": (None, _trigger_cancel),
    "trading.executeOpen": (_prepare_execute, _trigger_execute),
}

CASES = [(t, r) for t in ("pool.deposit", "pool.withdraw") for r in ("pool.deposit", "pool.withdraw")] + [
    (t, r) for t in ("trading.requestOpen", "trading.cancelRequest", "trading.executeOpen")
    for r in ("trading.requestOpen", "trading.cancelRequest")]


def _apply(before: dict, deltas: dict) -> dict:
    expected = {k: (dict(v) if isinstance(v, dict) else v) for k, v in before.items()}
    for key, change in deltas.items():
        if isinstance(change, dict):
            for holder, d in change.items():
                expected[key][holder] += d
        elif isinstance(change, int):
            expected[key] = before[key] + change
        else:
            expected[key] = tuple(b + d for b, d in zip(before[key], change))
    return expected


@pytest.mark.parametrize("trigger, reentry", CASES, ids=[f"{r}-during-{t}" for t, r in CASES])
def test_reentrant_call_during_a_transfer_is_refused(alt, sim, trigger, reentry):
    token = alt["token"]
    prepare, send = TRIGGERS[trigger]
    if prepare:
        prepare(sim, alt)
    target, data = _reentry(sim, alt, reentry)
    before = balances(sim, alt)
    token.transact("arm", target.address, data, sender=sim.deployment.deployer)

    (frm, to, value), deltas = send(sim, alt)

    got = recorded(sim, token)
    assert (got["called"], got["reverted"], got["armed"]) == (True, True, False)
    assert type(got["error"]) is errors.ReentrancyGuardReentrantCall, got["error"]
    assert got["error"].error_args == {}
    assert (got["from"], got["to"], got["value"]) == (frm, to, value)  # inside the outer call's own transfer
    # balances reconcile: exactly the outer call's movements, nothing of the re-entrant one
    assert balances(sim, alt) == _apply(before, deltas)
    escrow_reconciles(alt)

    # control: the same call by the same account outside a transfer succeeds
    moved = balances(sim, alt)["token"][token.address]
    token.transact("fire", target.address, data, sender=sim.deployment.deployer)
    got = recorded(sim, token)
    assert (got["called"], got["reverted"], got["from"]) == (True, False, "0x" + "00" * 20)
    assert balances(sim, alt)["token"][token.address] != moved
    escrow_reconciles(alt)


def test_a_callback_into_an_unguarded_function_inside_a_transfer_goes_through(alt, sim):
    """The control of the mechanism: the token's callback inside requestOpen's transfer does
    run, and a call with no guard (setFeeInToken) succeeds there."""
    token, engine = alt["token"], alt["engine"]
    assert engine.call("feeInToken", token.address) is False
    token.transact("arm", engine.address, _data(engine, "setFeeInToken", True), sender=sim.deployment.deployer)
    before = balances(sim, alt)
    (frm, to, value), deltas = _trigger_request_open(sim, alt)
    got = recorded(sim, token)
    assert (got["called"], got["reverted"], got["from"], got["to"], got["value"]) == (True, False, frm, to, value)
    assert engine.call("feeInToken", token.address) is True
    assert balances(sim, alt) == _apply(before, deltas)


def test_an_outer_call_refused_for_its_own_reason_moves_nothing_with_the_token_armed(alt, sim):
    """An outer call refused for its own reason (the LP's deposit with a minimum ALP out it
    cannot meet) reverts with its own error and moves nothing, armed token or not."""
    token, pool, units = alt["token"], alt["pool"], alt["units"]
    target, data = _reentry(sim, alt, "pool.deposit")
    token.transact("arm", target.address, data, sender=sim.deployment.deployer)
    err = refused(sim, errors.InsufficientAlpOut,
                  lambda: pool.transact("deposit", pool.call("collateral"), 1_000 * units, 10**30, sender=sim.address(LP)),
                  alt=alt, alpOut=_alp_out(alt, 1_000 * units), minAlpOut=10**30)
    assert err.alpOut > 0
    assert token.call("armed") is True  # refused before its transfer: the callback never ran
    escrow_reconciles(alt)


def _alp_out(alt, amount: int) -> int:
    """ALP out of a deposit of `amount` (docs/mechanics.md section 10: amount x (1 - 0.25%) / ALP price)."""
    pool, alp = alt["pool"], alt["alp"]
    scale = 10 ** (18 - alt["token"].call("decimals"))
    return amount * scale * (10_000 - 25) * alp.call("totalSupply") // (pool.call("nav") * 10_000)
