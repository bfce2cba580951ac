"""Every bad input to `rejectOpen`, the keeper's rejection of an order it cannot use: the wrong
role, a request that is unknown, not pending, a close, or outside its window (too early: its
own block; too late: after 10 blocks), and a reason other than UndecryptableOrder or
MalformedOrder. Each refusal is a revert with the exact custom error and its arguments, and
leaves every balance and request as it was, to the unit. The window's edges are shown from
both sides. Embedded devnet, both chain profiles."""

from __future__ import annotations

import pytest
from eth_utils import keccak

from alpsim import errors
from alpsim.protocol import RejectReason

ADMIN, TRADER, LP, TREASURY, KEEPER = 0, 1, 7, 8, 9
TRADER_FUNDS = 10_000
AMOUNT = 100
EXPIRY_BLOCKS = 10
KEEPER_ROLE = keccak(text="KEEPER")
NONE, PENDING, EXECUTED, REJECTED, CANCELLED = 0, 1, 2, 3, 4  # RequestStatus in Types.sol
UNDECRYPTABLE, MALFORMED = int(RejectReason.UNDECRYPTABLE_ORDER), int(RejectReason.MALFORMED_ORDER)
REQUEST_GAS = 500_000
MAX_UINT = 2**256 - 1


def balances(sim, requests=()) -> dict:
    """Everything a refused call must leave as it was."""
    trading, pool, token = sim.contracts["trading"], sim.contracts["pool"], sim.contracts["collateral"]
    holders = [sim.address(i) for i in range(10)] + [trading.address, pool.address]
    return {
        "collateral": {a: token.call("balanceOf", a) for a in holders},
        "pool": (pool.call("poolBalance"), pool.call("reserveUsd"), sim.contracts["alp"].call("totalSupply")),
        "counters": trading.call("nextRequestId"),
        "requests": {r: trading.call("request", r) for r in requests},
    }


def refused_each(sim, error_class, cases: dict, *, requests=()) -> None:
    """Each action of `cases` {label: (action, fields)} reverts with exactly `error_class`
    carrying exactly `fields`; nothing in `balances` moves."""
    before = balances(sim, requests)
    for label, (action, fields) in cases.items():
        with pytest.raises(errors.ContractRevert) as info:
            action()
        err = info.value
        assert type(err) is error_class, f"{label}: expected {error_class.__name__}, got {err!r}"
        assert err.error_args == fields, f"{label}: {err!r} carries {err.error_args}, expected {fields}"
    after = balances(sim, requests)
    assert after == before, {k: (before[k], after[k]) for k in before if before[k] != after[k]}


def _reject(sim, request_id: int, reason: int, sender: int = KEEPER):
    return lambda: sim.contracts["trading"].transact("rejectOpen", request_id, reason, sender=sim.address(sender))


@pytest.fixture
def world(mirror):
    """Pool liquidity and prices (the mirror fixture), a funded trader, and one open request
    of it mined a block ago (inside its window)."""
    sim = mirror.sim
    sim.fund(TRADER, TRADER_FUNDS)
    sim.approve_collateral(TRADER)
    pending = sim.request_open(TRADER, "BTC/USD", "long", AMOUNT, 10)
    sim.devnet.mine(1)
    return sim, pending.request_id


def test_reject_open_by_a_non_keeper_is_refused(world):
    sim, rid = world
    cases = {f"account {who}": (_reject(sim, rid, UNDECRYPTABLE, sender=who),
                                {"account": sim.address(who), "neededRole": KEEPER_ROLE})
             for who in (ADMIN, TRADER, LP, TREASURY)}
    # the role is checked before the reason
    cases["bad reason too"] = (_reject(sim, rid, 0, sender=TRADER),
                               {"account": sim.address(TRADER), "neededRole": KEEPER_ROLE})
    refused_each(sim, errors.AccessControlUnauthorizedAccount, cases, requests=[rid])
    receipt = _reject(sim, rid, UNDECRYPTABLE)()  # the same call by the keeper rejects
    assert sim.session.events(receipt, "OpenRejected")[0]["requestId"] == rid


def test_reject_open_with_a_reason_other_than_the_two_is_refused(world):
    """None, and every reason a check at execution gives, are InvalidRejectReason; a number
    past the enum does not even decode (a revert without data)."""
    sim, rid = world
    others = [r for r in RejectReason if r not in (RejectReason.UNDECRYPTABLE_ORDER, RejectReason.MALFORMED_ORDER)]
    assert RejectReason.NONE in others and RejectReason.SLIPPAGE_EXCEEDED in others
    refused_each(sim, errors.InvalidRejectReason,
                 {r.name: (_reject(sim, rid, int(r)), {"reason": int(r)}) for r in others}, requests=[rid])
    for beyond in (len(RejectReason), 255):
        with pytest.raises(errors.UnknownRevert) as info:
            _reject(sim, rid, beyond)()
        assert info.value.data == b""
    # the reason is checked before the request: an unknown request with a bad reason
    refused_each(sim, errors.InvalidRejectReason, {"unknown": (_reject(sim, 10**6, 0), {"reason": 0})})
    assert sim.contracts["trading"].call("request", rid)["status"] == PENDING


def test_reject_open_of_an_unknown_or_close_request_is_refused(world):
    sim, rid = world
    position = sim.open(TRADER, "ETH/USD", "short", AMOUNT, 10).position.id
    close_id, _ = sim.request_close(TRADER, position)
    sim.devnet.mine(1)
    after_last = sim.contracts["trading"].call("nextRequestId")
    refused_each(sim, errors.UnknownRequest, {
        "zero": (_reject(sim, 0, MALFORMED), {"requestId": 0}),
        "next": (_reject(sim, after_last, MALFORMED), {"requestId": after_last}),
        "max": (_reject(sim, MAX_UINT, UNDECRYPTABLE), {"requestId": MAX_UINT}),
        "close request": (_reject(sim, close_id, MALFORMED), {"requestId": close_id}),
    }, requests=[rid, close_id])


def test_reject_open_of_a_request_no_longer_pending_is_refused(world):
    sim, rid = world
    trading = sim.contracts["trading"]
    executed = sim.open(TRADER, "BTC/USD", "short", AMOUNT, 10).request_id
    _reject(sim, rid, MALFORMED)()  # rejected once
    cancelled = sim.request_open(TRADER, "SOL/USD", "long", AMOUNT, 10).request_id
    sim.devnet.mine(EXPIRY_BLOCKS)
    sim.cancel(TRADER, cancelled)
    statuses = {executed: EXECUTED, rid: REJECTED, cancelled: CANCELLED}
    assert {r: trading.call("request", r)["status"] for r in statuses} == statuses
    refused_each(sim, errors.RequestNotPending, {
        f"status {status}": (_reject(sim, r, UNDECRYPTABLE), {"requestId": r, "status": status})
        for r, status in statuses.items()}, requests=list(statuses))


def test_reject_open_in_the_requests_own_block_is_refused(world):
    """Too early: the request and its rejection in one block."""
    sim, _ = world
    trading, trader = sim.contracts["trading"], sim.address(TRADER)
    rid = trading.call("nextRequestId")
    before = balances(sim)
    request_tx = {"from": trader, "to": trading.address, "gas": REQUEST_GAS,
                  "data": trading.encode("requestOpen", bytes(32), b"\x01" * 148, sim.to_units(AMOUNT))}
    reject_tx = {"from": sim.address(KEEPER), "to": trading.address, "gas": REQUEST_GAS,
                 "data": trading.encode("rejectOpen", rid, UNDECRYPTABLE)}
    with pytest.raises(errors.ContractRevert) as info:
        sim.session.send_many([request_tx, reject_tx])
    block = sim.devnet.block_number
    assert type(info.value) is errors.RequestNotExecutable
    assert info.value.error_args == {"requestId": rid, "requestBlock": block, "currentBlock": block}
    # only the request moved anything: its amount in escrow, still pending
    after = balances(sim)
    units = sim.to_units(AMOUNT)
    before["collateral"][trader] -= units
    before["collateral"][trading.address] += units
    before["counters"] += 1
    assert after == before
    assert trading.call("request", rid)["status"] == PENDING


def test_reject_open_after_the_window_is_refused_and_at_its_last_block_works(world):
    sim, _ = world
    trading = sim.contracts["trading"]
    late = sim.request_open(TRADER, "BTC/USD", "long", AMOUNT, 10)
    sim.devnet.mine(3)  # room for the refused call's block before `last`'s last block
    last = sim.request_open(TRADER, "BTC/USD", "short", AMOUNT, 10)
    late_block, last_block = late.receipt["blockNumber"], last.receipt["blockNumber"]
    sim.devnet.mine(late_block + EXPIRY_BLOCKS - sim.devnet.block_number)  # head: late's last block
    refused_each(sim, errors.RequestNotExecutable, {
        "one block late": (_reject(sim, late.request_id, UNDECRYPTABLE),
                           {"requestId": late.request_id, "requestBlock": late_block,
                            "currentBlock": late_block + EXPIRY_BLOCKS + 1})}, requests=[late.request_id])
    sim.devnet.mine(last_block + EXPIRY_BLOCKS - 1 - sim.devnet.block_number)
    receipt = _reject(sim, last.request_id, MALFORMED)()  # mined in the window's last block
    assert receipt["blockNumber"] == last_block + EXPIRY_BLOCKS
    assert trading.call("request", last.request_id)["status"] == REJECTED
    sim.devnet.mine(20)
    refused_each(sim, errors.RequestNotExecutable, {
        "long after": (_reject(sim, late.request_id, MALFORMED),
                       {"requestId": late.request_id, "requestBlock": late_block,
                        "currentBlock": sim.devnet.block_number + 1})}, requests=[late.request_id])
