"""A position lives in its open request's storage slots (issue 6: the request already paid
for them). So a position's id is its request's id, the request keeps its record (trader,
kind, status, block) for good, and a closed position reads as empty while its request still
reads as executed."""

from __future__ import annotations

import pytest

from alpsim import errors
from alpsim.client import OrderRejected
from conftest import LP, POOL_LIQUIDITY, PRICES

ZERO = "0x" + "00" * 20
OPEN, PENDING, EXECUTED, REJECTED = 0, 1, 2, 3


@pytest.fixture
def market(sim):
    sim.fund(LP, POOL_LIQUIDITY)
    sim.deposit(LP, POOL_LIQUIDITY)
    sim.keeper.set_prices(PRICES)
    for trader in (1, 2):
        sim.fund(trader, 10_000)
    return sim


def test_the_position_takes_its_requests_id_and_the_request_keeps_its_record(market):
    sim, trading = market, market.contracts["trading"]
    pending = sim.request_open(1, "BTC/USD", "long", 1_000, 50)
    before = trading.call("request", pending.request_id)
    assert (before["status"], before["amountIn"]) == (PENDING, sim.to_units(1_000))
    assert before["commitment"] != b"\x00" * 32
    opened = sim.keeper.execute_open(pending.request_id, pending.ciphertext)
    event = sim.session.events(opened, "PositionOpened")[0]
    assert event["positionId"] == event["requestId"] == pending.request_id
    after = trading.call("request", pending.request_id)
    # the head is the request's record; its amount and commitment slots now hold the position
    assert {k: after[k] for k in ("trader", "kind", "status", "blockNumber")} == {
        "trader": sim.address(1), "kind": OPEN, "status": EXECUTED, "blockNumber": before["blockNumber"]}
    assert (after["amountIn"], after["commitment"]) == (0, b"\x00" * 32)
    position = trading.call("position", pending.request_id)
    assert position == dict(event["position"])
    assert position["trader"] == sim.address(1) and position["leverage"] == 50


def test_a_closed_position_reads_empty_and_cannot_be_closed_again(market):
    sim, trading = market, market.contracts["trading"]
    opened = sim.open(1, "ETH/USD", "short", 500, 20, take_profit=2_900)
    pid = opened.position.id
    sim.close(1, pid)
    assert trading.call("position", pid)["trader"] == ZERO
    assert trading.call("request", pid)["status"] == EXECUTED  # the request's record stays
    with pytest.raises(errors.PositionNotOpen) as info:
        trading.transact("requestClose", pid, sender=sim.address(1))
    assert info.value.error_args == {"positionId": pid}


def test_pending_rejected_and_close_requests_are_not_positions(market):
    sim, trading = market, market.contracts["trading"]
    pending = sim.request_open(1, "BTC/USD", "long", 1_000, 50)
    assert trading.call("position", pending.request_id)["trader"] == ZERO
    with pytest.raises(errors.PositionNotOpen):
        trading.transact("requestClose", pending.request_id, sender=sim.address(1))
    sim.keeper.execute_open(pending.request_id, pending.ciphertext)
    # a rejected open (leverage above the pair's maximum) keeps its amount and commitment
    with pytest.raises(OrderRejected) as info:
        sim.open(2, "AAPL/USD", "long", 200, 1001)
    rejected = trading.call("request", info.value.request_id)
    assert rejected["status"] == REJECTED and rejected["amountIn"] == sim.to_units(200)
    assert trading.call("position", info.value.request_id)["trader"] == ZERO
    # a close request's id is no position either
    close_id, _ = sim.request_close(1, pending.request_id)
    assert trading.call("position", close_id)["trader"] == ZERO
    assert trading.call("request", close_id)["amountIn"] == pending.request_id


def test_ids_interleave_between_traders_in_request_order(market):
    sim = market
    first = sim.request_open(1, "BTC/USD", "long", 300, 10)
    second = sim.request_open(2, "SOL/USD", "short", 300, 10)
    # executed out of order: each position still carries its own request's id
    b = sim.keeper.execute_open(second.request_id, second.ciphertext)
    a = sim.keeper.execute_open(first.request_id, first.ciphertext)
    ids = [sim.session.events(r, "PositionOpened")[0]["positionId"] for r in (a, b)]
    assert ids == [first.request_id, second.request_id] and ids[0] < ids[1]
    owners = {p["trader"] for p in sim.contracts["trading"].call("positionsOf", ids)}
    assert owners == {sim.address(1), sim.address(2)}
