"""Every bad input to the trader's entry points of the trading engine (docs/mechanics.md sections 5, 6 and
13): `requestOpen`, `requestClose`, `cancelRequest` and `setFeeInToken`. Each refusal is a
revert with the exact custom error and its arguments, and leaves every balance as it was, to
the unit: collateral and platform token of the ten dev accounts, the engine's escrow and the
pool; the pool's booked balance, reserve and ALP supply; the engine's request and position
counters, and the requests and positions involved. Rejections at execution (a failed check is
refunded, not reverted) are in tests/test_rejections.py, the request windows in
tests/test_expiry_cancel.py. Both chain profiles."""

from __future__ import annotations

from decimal import Decimal

import pytest

from alpsim import errors
from alpsim.orders import commitment
from alpsim.protocol import Order
from bad_inputs_helpers import engine_books

TRADER, OTHER, NO_ALLOWANCE = 1, 2, 3
ADMIN, LP, TREASURY, KEEPER = 0, 7, 8, 9
TRADER_FUNDS = 10_000
POOL_LIQUIDITY = 1_000_000
PRICES = {"BTC/USD": 60_000, "ETH/USD": 3_000, "SOL/USD": 150, "AAPL/USD": 200}
EXECUTION_FEE_USD = {"bnb": Decimal("0.50"), "arbitrum": Decimal("0.20")}  # docs/mechanics.md sections 4 and 12
EXPIRY_BLOCKS = 10
BTC = 0
MAX_UINT = 2**256 - 1
MAX_AMOUNT = 2**128 - 1  # the largest amountIn a request stores (StoredRequest.amountIn is a uint128)
NONE, PENDING, EXECUTED, REJECTED, CANCELLED = 0, 1, 2, 3, 4  # RequestStatus in Types.sol


# ---------------------------------------------------------------- shared helpers

def balances(sim, requests=(), positions=()) -> dict:
    """Everything a refused call must leave as it was."""
    return engine_books(sim, LP, requests, positions)


def refused(sim, error_class, action, *, requests=(), positions=(), **fields):
    """Runs `action`, which must revert with exactly `error_class` carrying exactly `fields`,
    and checks that nothing in `balances` moved."""
    before = balances(sim, requests, positions)
    with pytest.raises(errors.ContractRevert) as info:
        action()
    err = info.value
    assert type(err) is error_class, f"expected {error_class.__name__}, got {err!r}"
    assert err.error_args == fields, f"{err!r} carries {err.error_args}, expected {fields}"
    after = balances(sim, requests, positions)
    assert after == before, f"{err!r} moved state: " + repr(
        {k: (before[k], after[k]) for k in before if before[k] != after[k]})
    return err


def _units(sim, amount) -> int:
    return sim.to_units(amount)


def _fee(sim) -> int:
    return sim.to_units(EXECUTION_FEE_USD[sim.profile.name])


def _request_open_raw(sim, who: int, amount_units: int, order: Order | None = None, salt: bytes = b"\x07" * 32):
    """requestOpen straight on the engine (the client refuses some of these amounts first)."""
    trader = sim.address(who)
    order = order or Order(BTC, True, 10)
    return sim.contracts["trading"].transact("requestOpen", commitment(trader, order, salt), b"\x01\x02",
                                             amount_units, sender=trader)


# ---------------------------------------------------------------- state for the module

@pytest.fixture(scope="module")
def world(deployed):
    """Once per profile: pool liquidity, prices, two funded and approved traders, one open and
    one closed position of TRADER, a funded trader without allowance. The `sim` fixture (taken
    after this one) reverts to this state after every test."""
    sim = deployed
    snap = sim.snapshot()
    sim.fund(LP, POOL_LIQUIDITY)
    sim.deposit(LP, POOL_LIQUIDITY)
    sim.keeper.set_prices(PRICES)
    for who in (TRADER, OTHER, NO_ALLOWANCE):
        sim.fund(who, TRADER_FUNDS)
    sim.approve_collateral(TRADER, OTHER)
    closed = sim.open(TRADER, "BTC/USD", "long", 1000, 10).position.id
    sim.close(TRADER, closed)
    still_open = sim.open(TRADER, "ETH/USD", "short", 1000, 20).position.id
    assert sim.position(closed) is None and sim.position(still_open) is not None
    yield {"open": still_open, "closed": closed}
    sim.revert(snap)


# ---------------------------------------------------------------- requestOpen

def _bal(sim, who=TRADER) -> int:
    return sim.collateral_units(who)


# case -> (sender, amount (from sim), expected error name, expected fields (from sim))
OPEN_CASES = {
    "amount-0": (TRADER, lambda s: 0, "AmountBelowExecutionFee",
                 lambda s: {"amountIn": 0, "executionFee": _fee(s)}),
    "amount-1-unit": (TRADER, lambda s: 1, "AmountBelowExecutionFee",
                      lambda s: {"amountIn": 1, "executionFee": _fee(s)}),
    "dust-fee-minus-1-unit": (TRADER, lambda s: _fee(s) - 1, "AmountBelowExecutionFee",
                              lambda s: {"amountIn": _fee(s) - 1, "executionFee": _fee(s)}),
    "dust-equal-to-fee": (TRADER, _fee, "AmountBelowExecutionFee",
                          lambda s: {"amountIn": _fee(s), "executionFee": _fee(s)}),
    "above-balance-by-1-unit": (TRADER, lambda s: _bal(s) + 1, "ERC20InsufficientBalance",
                                lambda s: {"sender": s.address(TRADER), "balance": _bal(s), "needed": _bal(s) + 1}),
    # the largest amount a request stores: beyond the balance, refused by the token
    "uint128-max": (TRADER, lambda s: MAX_AMOUNT, "ERC20InsufficientBalance",
                    lambda s: {"sender": s.address(TRADER), "balance": _bal(s), "needed": MAX_AMOUNT}),
    # beyond it, refused before the transfer (issue 26; before, the token refused these two)
    "uint128-max-plus-one": (TRADER, lambda s: MAX_AMOUNT + 1, "AmountTooLarge",
                             lambda s: {"amount": MAX_AMOUNT + 1, "max": MAX_AMOUNT}),
    "max-uint": (TRADER, lambda s: MAX_UINT, "AmountTooLarge", lambda s: {"amount": MAX_UINT, "max": MAX_AMOUNT}),
    "no-allowance": (NO_ALLOWANCE, lambda s: _units(s, 100), "ERC20InsufficientAllowance",
                     lambda s: {"spender": s.contracts["trading"].address, "allowance": 0,
                                "needed": _units(s, 100)}),
    "no-allowance-uint128-max": (NO_ALLOWANCE, lambda s: MAX_AMOUNT, "ERC20InsufficientAllowance",
                                 lambda s: {"spender": s.contracts["trading"].address, "allowance": 0,
                                            "needed": MAX_AMOUNT}),
    "no-allowance-max-uint": (NO_ALLOWANCE, lambda s: MAX_UINT, "AmountTooLarge",
                              lambda s: {"amount": MAX_UINT, "max": MAX_AMOUNT}),
}


@pytest.mark.parametrize("sender, amount, name, fields", list(OPEN_CASES.values()), ids=list(OPEN_CASES))
def test_request_open_refused(world, sim, sender, amount, name, fields):
    units, expected = amount(sim), fields(sim)
    refused(sim, getattr(errors, name), lambda: _request_open_raw(sim, sender, units), **expected)


def _mint(sim, who: int, units: int) -> None:
    sim.contracts["collateral"].transact("mint", sim.address(who), units, sender=sim.deployment.deployer)


@pytest.mark.parametrize("amount", [MAX_AMOUNT + 1, 2**255], ids=["uint128-max-plus-one", "2^255"])
def test_request_open_beyond_uint128_is_refused_with_the_funds_there(world, sim, amount):
    """The trader holds and has approved the amount (minted on the mock collateral; max-uint
    cannot be held, the token's supply is not zero): only the request's width refuses it,
    before the transfer; nothing moves."""
    _mint(sim, TRADER, amount - _bal(sim))
    assert _bal(sim) == amount
    assert sim.contracts["collateral"].call("allowance", sim.address(TRADER), sim.contracts["trading"].address) \
        == MAX_UINT
    refused(sim, errors.AmountTooLarge, lambda: _request_open_raw(sim, TRADER, amount),
            amount=amount, max=MAX_AMOUNT)


def test_request_open_of_uint128_max_is_escrowed_whole_and_refunded_whole(world, sim):
    """The boundary of the rows above: 2^128-1 units are escrowed and stored without loss, with
    the execution fee of now; cancelled after expiry, all of it comes back."""
    _mint(sim, TRADER, MAX_AMOUNT - _bal(sim))
    trader, trading = sim.address(TRADER), sim.contracts["trading"]
    receipt = _request_open_raw(sim, TRADER, MAX_AMOUNT)
    rid = sim.session.events(receipt, "OpenRequested")[0]["requestId"]
    request = trading.call("request", rid)
    assert (request["status"], request["amountIn"], request["executionFeeTokens"]) == (PENDING, MAX_AMOUNT, _fee(sim))
    assert _bal(sim) == 0
    sim.devnet.mine(EXPIRY_BLOCKS)
    receipt = trading.transact("cancelRequest", rid, sender=trader)
    assert sim.session.events(receipt, "RequestCancelled")[0]["refundTokens"] == MAX_AMOUNT
    assert _bal(sim) == MAX_AMOUNT


def test_request_open_with_an_allowance_one_unit_short_is_refused(world, sim):
    trader, trading = sim.address(NO_ALLOWANCE), sim.contracts["trading"]
    amount = _units(sim, 100)
    sim.contracts["collateral"].transact("approve", trading.address, amount - 1, sender=trader)
    refused(sim, errors.ERC20InsufficientAllowance, lambda: _request_open_raw(sim, NO_ALLOWANCE, amount),
            spender=trading.address, allowance=amount - 1, needed=amount)
    assert sim.contracts["collateral"].call("allowance", trader, trading.address) == amount - 1


@pytest.mark.parametrize("amount", ["fee-plus-1-unit", "whole-balance"])
def test_request_open_smallest_and_largest_amounts_are_escrowed(world, sim, amount):
    """The controls of the table above: one unit more than the fee, and the whole balance."""
    units = _fee(sim) + 1 if amount == "fee-plus-1-unit" else _bal(sim)
    before = balances(sim)
    receipt = _request_open_raw(sim, TRADER, units)
    rid = sim.session.events(receipt, "OpenRequested")[0]["requestId"]
    after = balances(sim, [rid])
    trading = sim.contracts["trading"].address
    assert after["collateral"][sim.address(TRADER)] == before["collateral"][sim.address(TRADER)] - units
    assert after["collateral"][trading] == before["collateral"][trading] + units
    assert after["requests"][rid]["status"] == PENDING and after["requests"][rid]["amountIn"] == units
    assert after["requests"][rid]["executionFeeTokens"] == _fee(sim)  # fixed at the request


@pytest.mark.parametrize("amount", ["normal", "zero"])
def test_request_open_while_the_engine_is_paused_is_refused(world, sim, amount):
    trading = sim.contracts["trading"]
    trading.transact("pause", sender=sim.deployment.deployer)
    assert trading.call("paused") is True
    units = _units(sim, 1000) if amount == "normal" else 0  # the pause is checked before the amount
    refused(sim, errors.EnforcedPause, lambda: _request_open_raw(sim, TRADER, units))
    trading.transact("unpause", sender=sim.deployment.deployer)
    receipt = _request_open_raw(sim, TRADER, _units(sim, 1000))  # unpaused: accepted again
    assert sim.session.events(receipt, "OpenRequested")[0]["amountIn"] == _units(sim, 1000)


# ---------------------------------------------------------------- requestClose

def _request_close(sim, who, position_id):
    return lambda: sim.contracts["trading"].transact("requestClose", position_id, sender=sim.address(who))


CLOSE_CASES = {
    "unknown-id": (TRADER, lambda w: 999, "PositionNotOpen", lambda s, w: {"positionId": 999}),
    "id-0": (TRADER, lambda w: 0, "PositionNotOpen", lambda s, w: {"positionId": 0}),
    "max-uint-id": (TRADER, lambda w: MAX_UINT, "PositionNotOpen", lambda s, w: {"positionId": MAX_UINT}),
    "someone-elses": (OTHER, lambda w: w["open"], "NotOwner",
                      lambda s, w: {"caller": s.address(OTHER), "owner": s.address(TRADER)}),
    "someone-elses-by-the-keeper": (KEEPER, lambda w: w["open"], "NotOwner",
                                    lambda s, w: {"caller": s.address(KEEPER), "owner": s.address(TRADER)}),
    "someone-elses-by-the-admin": (ADMIN, lambda w: w["open"], "NotOwner",
                                   lambda s, w: {"caller": s.address(ADMIN), "owner": s.address(TRADER)}),
    "closed": (TRADER, lambda w: w["closed"], "PositionNotOpen", lambda s, w: {"positionId": w["closed"]}),
    "closed-by-someone-else": (OTHER, lambda w: w["closed"], "PositionNotOpen",
                               lambda s, w: {"positionId": w["closed"]}),
}


@pytest.mark.parametrize("sender, position, name, fields", list(CLOSE_CASES.values()), ids=list(CLOSE_CASES))
def test_request_close_refused(world, sim, sender, position, name, fields):
    pid = position(world)
    refused(sim, getattr(errors, name), _request_close(sim, sender, pid), positions=[pid], **fields(sim, world))


def test_request_close_while_one_is_pending_is_refused(world, sim):
    pid = world["open"]
    first, _ = sim.request_close(TRADER, pid)
    assert sim.contracts["trading"].call("pendingClose", pid) == first
    refused(sim, errors.CloseAlreadyPending, _request_close(sim, TRADER, pid), requests=[first], positions=[pid],
            positionId=pid, requestId=first)
    # someone else is told it is not theirs, pending or not
    refused(sim, errors.NotOwner, _request_close(sim, OTHER, pid), requests=[first], positions=[pid],
            caller=sim.address(OTHER), owner=sim.address(TRADER))


def test_request_close_of_a_position_closed_by_its_pending_close_is_refused(world, sim):
    pid = world["open"]
    sim.close(TRADER, pid)
    assert sim.position(pid) is None
    assert sim.contracts["trading"].call("pendingClose", pid) == 0
    refused(sim, errors.PositionNotOpen, _request_close(sim, TRADER, pid), positions=[pid], positionId=pid)


# ---------------------------------------------------------------- cancelRequest

def _cancel(sim, who, request_id):
    return lambda: sim.contracts["trading"].transact("cancelRequest", request_id, sender=sim.address(who))


def _open_request(sim, amount=1000) -> tuple[int, int]:
    receipt = _request_open_raw(sim, TRADER, _units(sim, amount))
    return sim.session.events(receipt, "OpenRequested")[0]["requestId"], receipt["blockNumber"]


@pytest.mark.parametrize("request_id", [0, 999, MAX_UINT], ids=["id-0", "id-999", "max-uint"])
def test_cancel_unknown_request_is_refused(world, sim, request_id):
    assert sim.contracts["trading"].call("request", request_id)["status"] == NONE
    refused(sim, errors.UnknownRequest, _cancel(sim, TRADER, request_id), requestId=request_id)


@pytest.mark.parametrize("who", [OTHER, ADMIN, LP, TREASURY, KEEPER], ids=["trader", "admin", "lp", "treasury", "keeper"])
@pytest.mark.parametrize("expired", [False, True], ids=["pending", "expired"])
def test_cancel_someone_elses_request_is_refused(world, sim, who, expired):
    rid, _ = _open_request(sim)
    if expired:
        sim.devnet.mine(EXPIRY_BLOCKS)
    refused(sim, errors.NotOwner, _cancel(sim, who, rid), requests=[rid],
            caller=sim.address(who), owner=sim.address(TRADER))


def test_cancel_someone_elses_close_request_is_refused(world, sim):
    rid, _ = sim.request_close(TRADER, world["open"])
    sim.devnet.mine(EXPIRY_BLOCKS)
    refused(sim, errors.NotOwner, _cancel(sim, OTHER, rid), requests=[rid], positions=[world["open"]],
            caller=sim.address(OTHER), owner=sim.address(TRADER))


@pytest.mark.parametrize("kind", ["open", "close"])
def test_cancel_before_expiry_is_refused(world, sim, kind):
    if kind == "open":
        rid, block = _open_request(sim)
    else:
        rid, receipt = sim.request_close(TRADER, world["open"])
        block = receipt["blockNumber"]
    sim.devnet.mine(EXPIRY_BLOCKS - 2)  # the cancel lands in block + 9, the last but one refused
    refused(sim, errors.RequestNotExpired, _cancel(sim, TRADER, rid), requests=[rid], positions=[world["open"]],
            requestId=rid, expiresAfterBlock=block + EXPIRY_BLOCKS)


@pytest.mark.parametrize("kind", ["open", "close"])
def test_cancel_twice_is_refused(world, sim, kind):
    if kind == "open":
        rid, _ = _open_request(sim)
        refund = _units(sim, 1000)
    else:
        rid, _ = sim.request_close(TRADER, world["open"])
        refund = 0
    sim.devnet.mine(EXPIRY_BLOCKS)
    before = sim.collateral_units(TRADER)
    sim.cancel(TRADER, rid)
    assert sim.collateral_units(TRADER) == before + refund
    assert sim.contracts["trading"].call("request", rid)["status"] == CANCELLED
    refused(sim, errors.RequestNotPending, _cancel(sim, TRADER, rid), requests=[rid], positions=[world["open"]],
            requestId=rid, status=CANCELLED)
    # and by someone else: the status is checked before the owner
    refused(sim, errors.RequestNotPending, _cancel(sim, OTHER, rid), requests=[rid], requestId=rid,
            status=CANCELLED)


# ---------------------------------------------------------------- setFeeInToken

@pytest.mark.parametrize("paused", [False, True], ids=["running", "paused"])
def test_set_fee_in_token_has_no_refusal(world, sim, paused):
    """Any account may set its own preference (and only its own), paused or not, with no token
    balance or allowance; it moves no token."""
    trading = sim.contracts["trading"]
    if paused:
        trading.transact("pause", sender=sim.deployment.deployer)
    before = balances(sim)
    for who in range(10):
        addr = sim.address(who)
        for enabled in (True, False, True):
            receipt = trading.transact("setFeeInToken", enabled, sender=addr)
            event = sim.session.events(receipt, "FeeTokenPreferenceSet")[0]
            assert (event["trader"], event["enabled"]) == (addr, enabled)
            assert trading.call("feeInToken", addr) is enabled
    assert [trading.call("feeInToken", sim.address(who)) for who in range(10)] == [True] * 10
    trading.transact("setFeeInToken", False, sender=sim.address(OTHER))
    assert [trading.call("feeInToken", sim.address(who)) for who in range(10)] == [
        who != OTHER for who in range(10)]
    assert balances(sim) == before
