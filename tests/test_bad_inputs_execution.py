"""Every bad input to the keeper's and the admin's entry points of the trading engine (docs/mechanics.md
sections 1, 5, 6, 8 and 13): `executeOpen`, `executeClose`, `runTriggers`, `updatePrices`, and
the admin setters (`setSettings`, `setKeeperPublicKey`, `setTreasury`, `pause`, `unpause`, role
management). Each refusal is a revert with the exact custom error and its arguments, and leaves
every balance and setting as it was, to the unit. Price guards (stale, zero reference,
circuit breaker) are rejections, not reverts: one case each shows the request ends Rejected and
refunded (the full table is tests/test_rejections.py). Both chain profiles."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest
from eth_utils import keccak

from alpsim import errors
from alpsim.orders import commitment
from alpsim.protocol import Order, RejectReason
from bad_inputs_helpers import engine_books


ADMIN, TRADER, OTHER, LP, TREASURY, KEEPER = 0, 1, 2, 7, 8, 9
TRADER_FUNDS = 10_000
POOL_LIQUIDITY = 1_000_000
PRICES = {"BTC/USD": 60_000, "ETH/USD": 3_000, "SOL/USD": 150, "AAPL/USD": 200}
EXECUTION_FEE_USD = {"bnb": Decimal("0.50"), "arbitrum": Decimal("0.20")}  # docs/mechanics.md sections 4 and 12
EXPIRY_BLOCKS = 10
WAD = 10**18
BTC, ETH = 0, 1
PAIR_COUNT = 4
MAX_UINT = 2**256 - 1
MAX_PRICE = 2**128 - 1  # the largest keeper price (PriceOracle.KeeperPrice.price is a uint128; uint192 before)
NONE, PENDING, EXECUTED, REJECTED, CANCELLED = 0, 1, 2, 3, 4  # RequestStatus in Types.sol
ZERO_ADDRESS = "0x" + "00" * 20
DEFAULT_ADMIN_ROLE = b"\x00" * 32
ADMIN_ROLE, KEEPER_ROLE = keccak(text="ADMIN"), keccak(text="KEEPER")  # TradingEngine's constants
NEW_ACCOUNT = 5  # the admin setters' target: a new treasury, keeper or admin
BTC_PRICES = [(BTC, PRICES["BTC/USD"] * WAD)]
ORDER = Order(BTC, True, 10, 70_000 * WAD, 55_000 * WAD, 61_000 * WAD)
SALT = bytes(range(32))

NON_KEEPERS = {"admin": ADMIN, "trader": TRADER, "lp": LP, "treasury": TREASURY}
NON_ADMINS = {"trader": TRADER, "lp": LP, "treasury": TREASURY, "keeper": KEEPER}


# ---------------------------------------------------------------- shared helpers

def balances(sim, requests=(), positions=()) -> dict:
    """Everything a refused call must leave as it was: balances, the pool's books, counters,
    the engine's settings and roles, the requests and positions involved, the keeper prices."""
    oracle = sim.contracts["oracle"]
    return {**engine_books(sim, LP, requests, positions), "config": config(sim),
            "keeper_prices": [oracle.call("keeperPrice", i) for i in (BTC, ETH)]}


def config(sim) -> tuple:
    """The engine's settings, treasury, keeper key, pause and the roles the setters move."""
    trading = sim.contracts["trading"]
    admin, keeper, new = (sim.address(i) for i in (ADMIN, KEEPER, NEW_ACCOUNT))
    roles = [(DEFAULT_ADMIN_ROLE, admin), (DEFAULT_ADMIN_ROLE, new), (ADMIN_ROLE, admin), (ADMIN_ROLE, new),
             (KEEPER_ROLE, keeper), (KEEPER_ROLE, new)]
    return (trading.call("settings"), trading.call("treasury"), bytes(trading.call("keeperPublicKey")),
            trading.call("paused"), [trading.call("hasRole", r, a) for r, a in roles])


def refused(sim, error_class, action, *, requests=(), positions=(), **fields):
    """Runs `action`, which must revert with exactly `error_class` carrying exactly `fields`,
    and checks that nothing in `balances` moved."""
    return refused_each(sim, error_class, {"": (action, fields)}, requests=requests, positions=positions)[""]


def refused_each(sim, error_class, cases, *, requests=(), positions=()):
    """`refused` for several calls {label: (action, fields)}, each refused with `error_class`
    and its own fields; `balances` is compared once around all of them."""
    before = balances(sim, requests, positions)
    raised = {}
    for label, (action, fields) in cases.items():
        with pytest.raises(errors.ContractRevert) as info:
            action()
        err = raised[label] = info.value
        assert type(err) is error_class, f"{label or 'call'}: expected {error_class.__name__}, got {err!r}"
        assert err.error_args == fields, f"{label or 'call'}: {err!r} carries {err.error_args}, expected {fields}"
    after = balances(sim, requests, positions)
    assert after == before, f"{error_class.__name__} moved state: " + repr(
        {k: (before[k], after[k]) for k in before if before[k] != after[k]})
    return raised


class OneOf:
    """An expected error argument that may be any of `values`."""

    def __init__(self, *values):
        self.values = values

    def __eq__(self, other):
        return other in self.values

    def __repr__(self):
        return f"OneOf{self.values}"


def _fee(sim) -> int:
    return sim.to_units(EXECUTION_FEE_USD[sim.profile.name])


def _tuple(order: Order) -> tuple:
    return (order.pair_id, order.is_long, order.leverage, order.take_profit, order.stop_loss, order.acceptable_price)


def _request(sim, who=TRADER, order=ORDER, salt=SALT, amount=1000, committed_for=None) -> tuple[int, int]:
    """requestOpen straight on the engine; returns (request id, block)."""
    trader = sim.address(who)
    signer = sim.address(committed_for) if committed_for is not None else trader
    receipt = sim.contracts["trading"].transact("requestOpen", commitment(signer, order, salt), b"\x01",
                                                sim.to_units(amount), sender=trader)
    return sim.session.events(receipt, "OpenRequested")[0]["requestId"], receipt["blockNumber"]


def _execute_open(sim, rid, order=ORDER, salt=SALT, prices=BTC_PRICES, sender=KEEPER):
    return lambda: sim.contracts["trading"].transact("executeOpen", rid, _tuple(order), salt, prices,
                                                     sender=sim.address(sender))


def _execute_close(sim, rid, prices=BTC_PRICES, sender=KEEPER):
    return lambda: sim.contracts["trading"].transact("executeClose", rid, prices, sender=sim.address(sender))


def _run_triggers(sim, ids, prices=BTC_PRICES, sender=KEEPER):
    return lambda: sim.contracts["trading"].transact("runTriggers", ids, prices, sender=sim.address(sender))


def _update_prices(sim, prices=BTC_PRICES, sender=KEEPER):
    return lambda: sim.contracts["trading"].transact("updatePrices", prices, sender=sim.address(sender))


def _request_close(sim, position_id) -> tuple[int, int]:
    rid, receipt = sim.request_close(TRADER, position_id)
    return rid, receipt["blockNumber"]


# ---------------------------------------------------------------- state for the module

@pytest.fixture(scope="module")
def world(deployed):
    """Once per profile: pool liquidity, prices, two funded and approved traders and one open
    BTC long of TRADER (stop-loss 59,000). The `sim` fixture (taken after this one) reverts to
    this state after every test."""
    sim = deployed
    snap = sim.snapshot()
    sim.fund(LP, POOL_LIQUIDITY)
    sim.deposit(LP, POOL_LIQUIDITY)
    sim.keeper.set_prices(PRICES)
    for who in (TRADER, OTHER):
        sim.fund(who, TRADER_FUNDS)
    sim.approve_collateral(TRADER, OTHER)
    position = sim.open(TRADER, "BTC/USD", "long", 1000, 10, stop_loss=59_000).position.id
    yield {"position": position}
    sim.revert(snap)


# ---------------------------------------------------------------- keeper-only entry points

def test_role_constants_are_the_engines(sim):
    """The role ids this file computes locally (to keep `balances` cheap) are the engine's."""
    trading = sim.contracts["trading"]
    assert (trading.call("ADMIN_ROLE"), trading.call("KEEPER_ROLE")) == (ADMIN_ROLE, KEEPER_ROLE)
    assert trading.call("DEFAULT_ADMIN_ROLE") == DEFAULT_ADMIN_ROLE
    assert trading.call("hasRole", KEEPER_ROLE, sim.deployment.keeper) is True


def _by_every_non_keeper(sim, make_action) -> dict:
    return {label: (make_action(who), {"account": sim.address(who), "neededRole": KEEPER_ROLE})
            for label, who in NON_KEEPERS.items()}


def test_execute_open_by_a_non_keeper_is_refused(world, sim):
    rid, _ = _request(sim)
    sim.devnet.mine(1)
    refused_each(sim, errors.AccessControlUnauthorizedAccount,
                 _by_every_non_keeper(sim, lambda who: _execute_open(sim, rid, sender=who)), requests=[rid])
    receipt = _execute_open(sim, rid)()  # the same call by the keeper opens
    assert sim.session.events(receipt, "PositionOpened")[0]["requestId"] == rid


def test_execute_close_by_a_non_keeper_is_refused(world, sim):
    pid = world["position"]
    rid, _ = _request_close(sim, pid)
    refused_each(sim, errors.AccessControlUnauthorizedAccount,
                 _by_every_non_keeper(sim, lambda who: _execute_close(sim, rid, sender=who)),
                 requests=[rid], positions=[pid])
    receipt = _execute_close(sim, rid)()
    assert sim.session.events(receipt, "PositionClosed")[0]["positionId"] == pid


def test_run_triggers_by_a_non_keeper_is_refused(world, sim):
    """At a price that hits the stop-loss: only the keeper may close it."""
    pid = world["position"]
    sim.keeper.set_prices({"BTC/USD": 58_000})
    prices = [(BTC, 58_000 * WAD)]
    refused_each(sim, errors.AccessControlUnauthorizedAccount,
                 _by_every_non_keeper(sim, lambda who: _run_triggers(sim, [pid], prices, sender=who)),
                 positions=[pid])
    receipt = _run_triggers(sim, [pid], prices)()
    assert [e["positionId"] for e in sim.session.events(receipt, "PositionClosed")] == [pid]


def test_update_prices_by_a_non_keeper_is_refused(world, sim):
    prices = [(BTC, 60_100 * WAD), (ETH, 3_010 * WAD)]
    refused_each(sim, errors.AccessControlUnauthorizedAccount,
                 _by_every_non_keeper(sim, lambda who: _update_prices(sim, prices, sender=who)))
    _update_prices(sim, prices)()
    assert sim.contracts["oracle"].call("keeperPrice", BTC)[0] == 60_100 * WAD


# ---------------------------------------------------------------- executeOpen: the reveal

def _tampered(order: Order, salt: bytes, what: str) -> tuple[Order, bytes]:
    return {
        "salt": (order, bytes([salt[0] ^ 1]) + salt[1:]),
        "salt-zero": (order, b"\x00" * 32),
        "pair": (replace(order, pair_id=ETH), salt),
        "side": (replace(order, is_long=not order.is_long), salt),
        "leverage": (replace(order, leverage=order.leverage + 1), salt),
        "take-profit": (replace(order, take_profit=order.take_profit + 1), salt),
        "stop-loss": (replace(order, stop_loss=order.stop_loss - 1), salt),
        "acceptable-price": (replace(order, acceptable_price=0), salt),
    }[what]


REVEAL_FIELDS = ["salt", "salt-zero", "pair", "side", "leverage", "take-profit", "stop-loss", "acceptable-price"]


def test_reveal_with_a_wrong_field_is_refused(world, sim):
    """Each field of the order, and the salt, revealed wrong: the error carries the stored
    commitment and the hash of what was revealed. The true reveal still executes afterwards."""
    rid, _ = _request(sim)
    sim.devnet.mine(1)
    trader = sim.address(TRADER)
    stored = commitment(trader, ORDER, SALT)
    assert sim.contracts["trading"].call("request", rid)["commitment"] == stored
    cases = {}
    for what in REVEAL_FIELDS:
        order, salt = _tampered(ORDER, SALT, what)
        revealed = commitment(trader, order, salt)
        assert revealed != stored
        cases[what] = (_execute_open(sim, rid, order, salt),
                       {"requestId": rid, "commitment": stored, "revealed": revealed})
    refused_each(sim, errors.CommitmentMismatch, cases, requests=[rid])
    receipt = _execute_open(sim, rid)()
    assert sim.session.events(receipt, "PositionOpened")[0]["position"]["takeProfit"] == ORDER.take_profit


def test_reveal_of_a_commitment_made_for_another_trader_is_refused(world, sim):
    """TRADER escrows behind a commitment naming OTHER: the engine recomputes it with the
    request's own trader, so the order can never be revealed (and never opens for OTHER)."""
    rid, _ = _request(sim, TRADER, committed_for=OTHER)
    sim.devnet.mine(1)
    stored = commitment(sim.address(OTHER), ORDER, SALT)
    assert sim.contracts["trading"].call("request", rid)["commitment"] == stored
    refused(sim, errors.CommitmentMismatch, _execute_open(sim, rid), requests=[rid],
            requestId=rid, commitment=stored, revealed=commitment(sim.address(TRADER), ORDER, SALT))
    # expired, the trader gets the whole amount back
    sim.devnet.mine(EXPIRY_BLOCKS)
    before = sim.collateral_units(TRADER)
    sim.cancel(TRADER, rid)
    assert sim.collateral_units(TRADER) == before + sim.to_units(1000)


# ---------------------------------------------------------------- executeOpen / executeClose: the request

def test_execute_open_twice_is_refused(world, sim):
    rid, _ = _request(sim)
    sim.devnet.mine(1)
    _execute_open(sim, rid)()
    assert sim.contracts["trading"].call("request", rid)["status"] == EXECUTED
    refused(sim, errors.RequestNotPending, _execute_open(sim, rid), requests=[rid], requestId=rid, status=EXECUTED)


def test_execute_open_in_the_requests_own_block_is_refused(world, sim):
    """Request and execution in one block (`Devnet.send_block`): the
    execution reverts with RequestNotExecutable and moves nothing beyond the request's own
    escrow; the next block executes it."""
    trading = sim.contracts["trading"]
    trader = sim.address(TRADER)
    rid = trading.call("nextRequestId")
    amount = sim.to_units(1000)
    before = balances(sim, [rid])
    request_receipt, execute_receipt = sim.devnet.send_block([
        {"from": trader, "to": trading.address,
         "data": trading.encode("requestOpen", commitment(trader, ORDER, SALT), b"\x01", amount)},
        {"from": sim.deployment.keeper, "to": trading.address,
         "data": trading.encode("executeOpen", rid, _tuple(ORDER), SALT, BTC_PRICES)}])
    block = request_receipt["blockNumber"]
    assert execute_receipt["blockNumber"] == block
    assert (request_receipt["status"], execute_receipt["status"]) == (1, 0)
    err = sim.session.decoder.decode(sim.devnet.revert_data(execute_receipt["transactionHash"]))
    assert type(err) is errors.RequestNotExecutable
    assert err.error_args == {"requestId": rid, "requestBlock": block, "currentBlock": block}

    after = balances(sim, [rid])
    expected = {**before, "collateral": dict(before["collateral"]), "counters": rid + 1,
                "requests": {rid: {"trader": trader, "kind": 0, "status": PENDING, "blockNumber": block,
                                   "amountIn": amount, "commitment": commitment(trader, ORDER, SALT),
                                   "executionFeeTokens": _fee(sim)}}}
    expected["collateral"][trader] -= amount
    expected["collateral"][trading.address] += amount
    assert after == expected
    receipt = _execute_open(sim, rid)()  # one block later
    assert sim.session.events(receipt, "PositionOpened")[0]["requestId"] == rid


@pytest.mark.parametrize("late", [0, 5], ids=["first-expired-block", "5-blocks-later"])
def test_execute_open_after_expiry_is_refused(world, sim, late):
    rid, block = _request(sim)
    sim.devnet.mine(EXPIRY_BLOCKS + late)
    refused(sim, errors.RequestNotExecutable, _execute_open(sim, rid), requests=[rid],
            requestId=rid, requestBlock=block, currentBlock=block + EXPIRY_BLOCKS + late + 1)


def test_execute_close_after_expiry_is_refused(world, sim):
    pid = world["position"]
    rid, block = _request_close(sim, pid)
    sim.devnet.mine(EXPIRY_BLOCKS)
    refused(sim, errors.RequestNotExecutable, _execute_close(sim, rid), requests=[rid], positions=[pid],
            requestId=rid, requestBlock=block, currentBlock=block + EXPIRY_BLOCKS + 1)


def test_execute_close_in_its_own_block_is_refused_as_a_call(world, sim):
    pid = world["position"]
    rid, block = _request_close(sim, pid)
    with pytest.raises(errors.RequestNotExecutable) as info:
        sim.contracts["trading"].call("executeClose", rid, BTC_PRICES, sender=sim.deployment.keeper)
    assert info.value.error_args == {"requestId": rid, "requestBlock": block, "currentBlock": block}


@pytest.mark.parametrize("rid", [0, 999, MAX_UINT], ids=["id-0", "id-999", "max-uint"])
@pytest.mark.parametrize("entry", ["executeOpen", "executeClose"])
def test_execute_unknown_request_is_refused(world, sim, entry, rid):
    action = _execute_open(sim, rid) if entry == "executeOpen" else _execute_close(sim, rid)
    refused(sim, errors.UnknownRequest, action, requestId=rid)


def test_execute_open_on_a_close_request_is_refused(world, sim):
    pid = world["position"]
    rid, _ = _request_close(sim, pid)
    sim.devnet.mine(1)
    refused(sim, errors.UnknownRequest, _execute_open(sim, rid), requests=[rid], positions=[pid], requestId=rid)


def test_execute_close_on_an_open_request_is_refused(world, sim):
    rid, _ = _request(sim)
    sim.devnet.mine(1)
    refused(sim, errors.UnknownRequest, _execute_close(sim, rid), requests=[rid], requestId=rid)


def test_execute_close_twice_is_refused(world, sim):
    pid = world["position"]
    rid, _ = _request_close(sim, pid)
    _execute_close(sim, rid)()
    assert sim.contracts["trading"].call("request", rid)["status"] == EXECUTED
    refused(sim, errors.RequestNotPending, _execute_close(sim, rid), requests=[rid], positions=[pid],
            requestId=rid, status=EXECUTED)


def test_execute_close_of_a_position_a_trigger_closed_is_refused(world, sim):
    pid = world["position"]
    rid, _ = _request_close(sim, pid)
    sim.keeper.set_prices({"BTC/USD": 58_000})
    sim.keeper.run_triggers([pid])
    assert sim.position(pid) is None
    prices = [(BTC, 58_000 * WAD)]
    refused(sim, errors.PositionNotOpen, _execute_close(sim, rid, prices), requests=[rid], positions=[pid],
            positionId=pid)


# ---------------------------------------------------------------- price inputs

PRICE_CASES = {
    "unknown-pair": ([(PAIR_COUNT, 100 * WAD)], PAIR_COUNT),
    "max-uint-pair": ([(MAX_UINT, 100 * WAD)], MAX_UINT),
    "unknown-pair-after-a-good-one": ([(BTC, 60_000 * WAD), (PAIR_COUNT, 100 * WAD)], PAIR_COUNT),
    "zero-price": ([(BTC, 0)], BTC),
    "zero-price-after-a-good-one": ([(BTC, 60_000 * WAD), (ETH, 0)], ETH),
    "price-above-uint128": ([(BTC, MAX_PRICE + 1)], BTC),
    "price-above-uint128-after-a-good-one": ([(ETH, 3_000 * WAD), (BTC, MAX_PRICE + 1)], BTC),
    "price-uint192-max": ([(BTC, 2**192 - 1)], BTC),  # accepted before issue 26
    "price-above-uint192": ([(BTC, 2**192)], BTC),
    "max-uint-price": ([(BTC, MAX_UINT)], BTC),
}


@pytest.mark.parametrize("prices, pair_id", list(PRICE_CASES.values()), ids=list(PRICE_CASES))
def test_bad_price_input_is_refused(world, sim, prices, pair_id):
    """By each entry point that takes prices, with everything else valid."""
    pid = world["position"]
    open_rid, _ = _request(sim)
    close_rid, _ = _request_close(sim, pid)
    sim.devnet.mine(1)
    fields = {"pairId": pair_id}
    refused_each(sim, errors.InvalidPriceInput, {
        "updatePrices": (_update_prices(sim, prices), fields),
        "runTriggers": (_run_triggers(sim, [pid], prices), fields),
        "executeOpen": (_execute_open(sim, open_rid, prices=prices), fields),
        "executeClose": (_execute_close(sim, close_rid, prices), fields),
    }, requests=[open_rid, close_rid], positions=[pid])


def test_the_largest_price_is_recorded(world, sim):
    """The boundary of the `price-above-uint128` rows: 2^128-1 is recorded, by `updatePrices`
    and by `runTriggers` (no position passed). It is far past the circuit breaker, so not
    settled either way."""
    oracle = sim.contracts["oracle"]
    for action in (_update_prices(sim, [(ETH, MAX_PRICE)]), _run_triggers(sim, [], [(ETH, MAX_PRICE)])):
        action()
        assert tuple(oracle.call("keeperPrice", ETH)) == (MAX_PRICE, sim.devnet.timestamp, 0)
        _update_prices(sim, [(ETH, 3_000 * WAD)])()


def test_price_for_a_pair_named_twice_is_refused(world, sim):
    """Errors.sol: InvalidPriceInput is thrown when an execution names a price for a pair
    twice, or for a pair without a reference feed. An execution carrying two BTC prices must
    not pick one."""
    rid, _ = _request(sim)
    sim.devnet.mine(1)
    prices = [(BTC, 60_000 * WAD), (BTC, 60_500 * WAD)]
    refused(sim, errors.InvalidPriceInput, _execute_open(sim, rid, prices=prices), requests=[rid], pairId=BTC)


# ---------------------------------------------------------------- price guards reject, not revert

def _stale(sim):
    sim.devnet.advance_time(61)  # reference feeds older than 60 s (the keeper price is fed with the call)


def _zero_reference(sim):
    feed = sim.contracts["feed_BTC_USD"]
    feed.transact("setAnswer", 0, sender=sim.deployment.keeper)


def _breaker(sim):
    sim.keeper.set_reference("BTC/USD", 61_000)  # 1.67% from the keeper's 60,000


@pytest.mark.parametrize("make, reason", [(_stale, "PriceStale"), (_zero_reference, "PriceStale"),
                                          (_breaker, "CircuitBreaker")], ids=["stale", "zero-reference", "breaker"])
def test_price_guard_rejects_and_refunds(world, sim, make, reason):
    trading = sim.contracts["trading"]
    make(sim)
    rid, _ = _request(sim)
    sim.devnet.mine(1)
    before = balances(sim, [rid])
    receipt = _execute_open(sim, rid)()
    event = sim.session.events(receipt, "OpenRejected")[0]
    fee, amount = _fee(sim), sim.to_units(1000)
    assert RejectReason(event["reason"]).label == reason
    assert (event["refundTokens"], event["executionFeeTokens"]) == (amount - fee, fee)
    after = balances(sim, [rid])
    trader, keeper = sim.address(TRADER), sim.address(KEEPER)
    deltas = {a: after["collateral"][a] - before["collateral"][a] for a in before["collateral"]}
    assert deltas == {**{a: 0 for a in deltas}, trader: amount - fee, keeper: fee, trading.address: -amount}
    assert after["requests"][rid]["status"] == REJECTED
    assert (after["pool"], after["counters"]) == (before["pool"], before["counters"])


def test_price_guard_turns_down_a_close_without_moving_anything(world, sim):
    pid = world["position"]
    sim.keeper.set_reference("BTC/USD", 61_000)
    rid, _ = _request_close(sim, pid)
    before = balances(sim, [], [pid])
    receipt = _execute_close(sim, rid)()
    event = sim.session.events(receipt, "CloseRejected")[0]
    assert (event["requestId"], event["positionId"]) == (rid, pid)
    assert RejectReason(event["reason"]).label == "CircuitBreaker"
    after = balances(sim, [], [pid])
    assert after["collateral"] == before["collateral"] and after["pool"] == before["pool"]
    assert after["positions"][pid][0] == before["positions"][pid][0]  # still open, untouched
    assert sim.contracts["trading"].call("request", rid)["status"] == REJECTED


# ---------------------------------------------------------------- admin-only setters

def _settings(sim, **changes) -> tuple:
    current = dict(sim.contracts["trading"].call("settings"))
    assert set(changes) <= set(current)
    current.update(changes)
    return tuple(current.values())


ADMIN_CALLS = {
    "setSettings": (lambda s: ("setSettings", _settings(s, openFeeBps=9)), "ADMIN_ROLE"),
    "setKeeperPublicKey": (lambda s: ("setKeeperPublicKey", b"\x04" * 64), "ADMIN_ROLE"),
    "setTreasury": (lambda s: ("setTreasury", s.address(NEW_ACCOUNT)), "ADMIN_ROLE"),
    "pause": (lambda s: ("pause",), "ADMIN_ROLE"),
    "unpause": (lambda s: ("unpause",), "ADMIN_ROLE"),
    "grantRole-keeper": (lambda s: ("grantRole", KEEPER_ROLE, s.address(NEW_ACCOUNT)), "DEFAULT_ADMIN_ROLE"),
    "revokeRole-keeper": (lambda s: ("revokeRole", KEEPER_ROLE, s.address(KEEPER)), "DEFAULT_ADMIN_ROLE"),
    "grantRole-admin": (lambda s: ("grantRole", ADMIN_ROLE, s.address(NEW_ACCOUNT)), "DEFAULT_ADMIN_ROLE"),
}


@pytest.mark.parametrize("call, role", list(ADMIN_CALLS.values()), ids=list(ADMIN_CALLS))
def test_admin_setter_by_another_role_is_refused(world, sim, call, role):
    """By the trader, the LP, the treasury and the keeper; then the admin may."""
    trading = sim.contracts["trading"]
    fn, *args = call(sim)
    if fn == "unpause":  # paused, so that only the caller is wrong
        trading.transact("pause", sender=sim.deployment.deployer)
    needed = DEFAULT_ADMIN_ROLE if role == "DEFAULT_ADMIN_ROLE" else ADMIN_ROLE

    def by(who):
        return lambda: trading.transact(fn, *args, sender=sim.address(who))

    refused_each(sim, errors.AccessControlUnauthorizedAccount, {
        label: (by(who), {"account": sim.address(who), "neededRole": needed}) for label, who in NON_ADMINS.items()})
    before = config(sim)
    trading.transact(fn, *args, sender=sim.deployment.deployer)
    assert config(sim) != before  # the admin's call takes effect


INVALID_SETTINGS = {
    "pool-fee-share-10001": ({"poolFeeShareBps": 10_001}, 10_001),
    "pool-fee-share-max-uint": ({"poolFeeShareBps": MAX_UINT}, MAX_UINT),
    "referral-discount-10001": ({"referralDiscountBps": 10_001, "tokenDiscountBps": 0}, 10_001),
    "token-discount-10001": ({"referralDiscountBps": 0, "tokenDiscountBps": 10_001}, 10_001),
    # neither discount alone is above 100%, their sum is: the error names the offending value
    "discounts-sum-10001": ({"referralDiscountBps": 6_000, "tokenDiscountBps": 4_001}, OneOf(6_000, 4_001, 10_001)),
}


@pytest.mark.parametrize("changes, bps", list(INVALID_SETTINGS.values()), ids=list(INVALID_SETTINGS))
def test_set_settings_with_invalid_bps_is_refused(world, sim, changes, bps):
    trading = sim.contracts["trading"]
    refused(sim, errors.InvalidBps,
            lambda: trading.transact("setSettings", _settings(sim, **changes), sender=sim.deployment.deployer),
            bps=bps)


# settings are stored packed with the treasury (three slots): USD amounts in 96 bits, the
# request expiry in 32, the ROI caps in 24, the rest in 16
TOO_WIDE_SETTINGS = {
    "execution-fee-above-96-bits": ({"executionFeeUsd": 2**96}, 96, 2**96),
    "min-notional-max-uint": ({"minNotionalUsd": MAX_UINT}, 96, MAX_UINT),
    "open-fee-above-16-bits": ({"openFeeBps": 2**16}, 16, 2**16),
    "extreme-leverage-above-16-bits": ({"extremeLeverage": 2**16}, 16, 2**16),
    "roi-cap-above-24-bits": ({"roiCapStandardBps": 2**24}, 24, 2**24),
    "expiry-blocks-above-32-bits": ({"requestExpiryBlocks": 2**40}, 32, 2**40),
    "max-executions-max-uint": ({"maxExecutionsPerPairPerBlock": MAX_UINT}, 16, MAX_UINT),
}


@pytest.mark.parametrize("changes, bits, value", list(TOO_WIDE_SETTINGS.values()), ids=list(TOO_WIDE_SETTINGS))
def test_set_settings_wider_than_storage_is_refused(world, sim, changes, bits, value):
    trading = sim.contracts["trading"]
    before = trading.call("settings")
    refused(sim, errors.SafeCastOverflowedUintDowncast,
            lambda: trading.transact("setSettings", _settings(sim, **changes), sender=sim.deployment.deployer),
            bits=bits, value=value)
    assert trading.call("settings") == before


def test_set_settings_at_the_storage_widths_is_accepted(world, sim):
    trading = sim.contracts["trading"]
    widest = {"executionFeeUsd": 2**96 - 1, "minNotionalUsd": 2**96 - 1, "openFeeBps": 2**16 - 1,
              "extremeLeverage": 2**16 - 1, "roiCapMaxLeverageBps": 2**24 - 1,
              "requestExpiryBlocks": 2**32 - 1, "maxExecutionsPerPairPerBlock": 2**16 - 1}
    trading.transact("setSettings", _settings(sim, **widest), sender=sim.deployment.deployer)
    now = trading.call("settings")
    assert {k: now[k] for k in widest} == widest


@pytest.mark.parametrize("changes", [{"poolFeeShareBps": 10_000}, {"poolFeeShareBps": 0},
                                     {"referralDiscountBps": 5_000, "tokenDiscountBps": 5_000}],
                         ids=["pool-share-100%", "pool-share-0", "discounts-sum-100%"])
def test_set_settings_at_the_bounds_is_accepted(world, sim, changes):
    trading = sim.contracts["trading"]
    trading.transact("setSettings", _settings(sim, **changes), sender=sim.deployment.deployer)
    now = trading.call("settings")
    assert {k: now[k] for k in changes} == changes


def test_the_treasury_and_the_settings_share_storage_and_keep_each_other(world, sim):
    """The treasury is stored in the settings' last slot: setting one leaves the other."""
    trading, admin = sim.contracts["trading"], sim.deployment.deployer
    new_treasury = sim.address(NEW_ACCOUNT)
    settings = trading.call("settings")
    trading.transact("setTreasury", new_treasury, sender=admin)
    assert trading.call("settings") == settings
    trading.transact("setSettings", _settings(sim, openFeeBps=12, roiCapExtremeBps=60_000), sender=admin)
    assert trading.call("treasury") == new_treasury
    now = trading.call("settings")
    assert (now["openFeeBps"], now["roiCapExtremeBps"]) == (12, 60_000)
    assert {k: v for k, v in now.items() if k not in ("openFeeBps", "roiCapExtremeBps")} == \
        {k: v for k, v in settings.items() if k not in ("openFeeBps", "roiCapExtremeBps")}


def test_set_treasury_to_zero_is_refused(world, sim):
    trading = sim.contracts["trading"]
    refused(sim, errors.ZeroAddress,
            lambda: trading.transact("setTreasury", ZERO_ADDRESS, sender=sim.deployment.deployer))
    assert trading.call("treasury") == sim.deployment.treasury


def test_pause_twice_and_unpause_while_running_are_refused(world, sim):
    trading = sim.contracts["trading"]
    admin = sim.deployment.deployer
    refused(sim, errors.ExpectedPause, lambda: trading.transact("unpause", sender=admin))
    trading.transact("pause", sender=admin)
    refused(sim, errors.EnforcedPause, lambda: trading.transact("pause", sender=admin))
    assert trading.call("paused") is True


def test_renouncing_a_role_for_someone_else_is_refused(world, sim):
    trading = sim.contracts["trading"]
    refused(sim, errors.AccessControlBadConfirmation,
            lambda: trading.transact("renounceRole", KEEPER_ROLE, sim.address(KEEPER),
                                     sender=sim.deployment.deployer))
    assert trading.call("hasRole", KEEPER_ROLE, sim.address(KEEPER)) is True


# ---------------------------------------------------------------- the execution fee is the request's

# docs/mechanics.md section 5 (issue 26): `requestOpen` fixes the execution fee in the request;
# `executeOpen`, `executeOpenBatch` and `rejectOpen` charge that, whatever the admin set since
# (an admin's raise above a pending amount must not make its execution underflow), and a cancel
# after expiry refunds the whole amount.
FEE_CHANGES = {  # the admin's execution fee (USD) after the request; the request escrows 1,000
    "raised-above-the-amount": Decimal(2_000),
    "raised": Decimal("1.50"),
    "lowered": Decimal("0.05"),
    "lowered-to-zero": Decimal(0),
}
FEE_ACTIONS = ["executeOpen-opens", "executeOpen-rejected", "rejectOpen", "cancel-after-expiry"]
SLIPPED_ORDER = replace(ORDER, acceptable_price=59_000 * WAD)  # a long filled above 59,000: SlippageExceeded
SALT_2 = bytes(range(32, 64))


def _set_execution_fee(sim, fee_usd: Decimal) -> int:
    """The admin's `setSettings` with a new execution fee; the fee in tokens a request pays now."""
    trading = sim.contracts["trading"]
    trading.transact("setSettings", _settings(sim, executionFeeUsd=int(fee_usd * WAD)), sender=sim.deployment.deployer)
    fee = trading.call("executionFeeTokens")
    assert fee == sim.to_units(fee_usd)
    return fee


def _deltas(before: dict, after: dict) -> dict:
    return {a: after["collateral"][a] - before["collateral"][a] for a in before["collateral"]}


def _check_opened(sim, receipt, rid: int, fee: int, amount: int) -> int:
    """The request opened, charged `fee`: the rest of the amount is the margin and the open fee.
    Returns the open fee (tokens)."""
    opened = {e["requestId"]: e for e in sim.session.events(receipt, "PositionOpened")}[rid]
    charges = opened["charges"]
    assert charges["executionFeeTokens"] == fee
    assert opened["position"]["marginTokens"] + charges["openFeeTokens"] == amount - fee
    return charges["openFeeTokens"]


def _check_rejected(sim, receipt, rid: int, fee: int, amount: int, reason: RejectReason) -> None:
    rejected = {e["requestId"]: e for e in sim.session.events(receipt, "OpenRejected")}[rid]
    assert RejectReason(rejected["reason"]) == reason
    assert (rejected["refundTokens"], rejected["executionFeeTokens"]) == (amount - fee, fee)


def _fees_paid(sim, receipt) -> dict:
    return {e["requestId"]: (e["keeper"], e["amountTokens"]) for e in sim.session.events(receipt, "ExecutionFeePaid")}


@pytest.mark.parametrize("action", FEE_ACTIONS)
@pytest.mark.parametrize("new_fee_usd", list(FEE_CHANGES.values()), ids=list(FEE_CHANGES))
def test_a_pending_open_is_charged_the_fee_it_was_requested_at(world, sim, new_fee_usd, action):
    trading = sim.contracts["trading"]
    trader, keeper = sim.address(TRADER), sim.address(KEEPER)
    amount, stored = sim.to_units(1000), _fee(sim)
    order = SLIPPED_ORDER if action == "executeOpen-rejected" else ORDER
    rid, _ = _request(sim, order=order)
    assert trading.call("request", rid)["executionFeeTokens"] == stored
    new_fee = _set_execution_fee(sim, new_fee_usd)
    assert new_fee != stored
    assert trading.call("request", rid)["executionFeeTokens"] == stored  # the admin's change leaves it
    sim.devnet.mine(EXPIRY_BLOCKS if action == "cancel-after-expiry" else 1)

    before = balances(sim, [rid])
    receipt = {
        "executeOpen-opens": _execute_open(sim, rid),
        "executeOpen-rejected": _execute_open(sim, rid, order=SLIPPED_ORDER),
        "rejectOpen": lambda: trading.transact("rejectOpen", rid, int(RejectReason.MALFORMED_ORDER), sender=keeper),
        "cancel-after-expiry": lambda: trading.transact("cancelRequest", rid, sender=trader),
    }[action]()
    after = balances(sim, [rid])
    deltas = _deltas(before, after)
    assert sum(deltas.values()) == 0
    if action == "cancel-after-expiry":
        assert sim.session.events(receipt, "RequestCancelled")[0]["refundTokens"] == amount
        assert _fees_paid(sim, receipt) == {}
        assert deltas == {**{a: 0 for a in deltas}, trader: amount, trading.address: -amount}
        assert after["requests"][rid]["status"] == CANCELLED
    else:
        assert _fees_paid(sim, receipt) == {rid: (keeper, stored)}
        assert deltas[keeper] == stored
        if action == "executeOpen-opens":
            open_fee = _check_opened(sim, receipt, rid, stored, amount)
            assert deltas[trader] == 0  # the margin stays in escrow, the open fee to the pool and treasury
            assert deltas[trading.address] == -stored - open_fee
            assert trading.call("request", rid)["status"] == EXECUTED
        else:
            reason = {"executeOpen-rejected": RejectReason.SLIPPAGE_EXCEEDED,
                      "rejectOpen": RejectReason.MALFORMED_ORDER}[action]
            _check_rejected(sim, receipt, rid, stored, amount, reason)
            assert deltas == {**{a: 0 for a in deltas}, trader: amount - stored, keeper: stored,
                              trading.address: -amount}
            assert (after["requests"][rid]["status"], after["pool"]) == (REJECTED, before["pool"])

    # a request made now pays the new fee; below it, none is made
    if new_fee >= amount:
        refused(sim, errors.AmountBelowExecutionFee, lambda: _request(sim, salt=SALT_2),
                amountIn=amount, executionFee=new_fee)
        later, _ = _request(sim, salt=SALT_2, amount=2_500)
    else:
        later, _ = _request(sim, salt=SALT_2)
    assert trading.call("request", later)["executionFeeTokens"] == new_fee


@pytest.mark.parametrize("second", ["opens", "rejected"])
def test_a_batch_charges_each_request_the_fee_it_was_requested_at(world, sim, second):
    """Two requests made at different fees, executed together after a raise above both amounts:
    the keeper gets exactly the sum of the two stored fees, each trader's margin (or refund) is
    the amount less its own stored fee."""
    trading, keeper = sim.contracts["trading"], sim.address(KEEPER)
    amount, first_fee = sim.to_units(1000), _fee(sim)
    first, _ = _request(sim)
    second_fee = _set_execution_fee(sim, Decimal("1.50"))
    second_order = ORDER if second == "opens" else SLIPPED_ORDER
    later, _ = _request(sim, OTHER, order=second_order, salt=SALT_2)
    assert [trading.call("request", r)["executionFeeTokens"] for r in (first, later)] == [first_fee, second_fee]
    _set_execution_fee(sim, Decimal(5_000))
    sim.devnet.mine(1)

    before = balances(sim, [first, later])
    receipt = trading.transact("executeOpenBatch", [first, later], [_tuple(ORDER), _tuple(second_order)],
                               [SALT, SALT_2], BTC_PRICES, sender=keeper)
    deltas = _deltas(before, balances(sim, [first, later]))
    assert sum(deltas.values()) == 0
    assert _fees_paid(sim, receipt) == {first: (keeper, first_fee), later: (keeper, second_fee)}
    assert deltas[keeper] == first_fee + second_fee
    assert deltas[sim.address(TRADER)] == 0
    open_fees = _check_opened(sim, receipt, first, first_fee, amount)
    if second == "opens":
        open_fees += _check_opened(sim, receipt, later, second_fee, amount)
        assert deltas[sim.address(OTHER)] == 0
    else:
        _check_rejected(sim, receipt, later, second_fee, amount, RejectReason.SLIPPAGE_EXCEEDED)
        assert deltas[sim.address(OTHER)] == amount - second_fee
    escrow_out = first_fee + second_fee + open_fees + (0 if second == "opens" else amount - second_fee)
    assert deltas[trading.address] == -escrow_out
