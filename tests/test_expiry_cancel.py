"""Request windows, expiry and cancellation (docs/mechanics.md section 5.2 and 5.6, with 6 for closes): the
keeper executes a request at least 1 and at most 10 blocks after it (never in its own block);
after 10 blocks only the trader may cancel it, and an open's whole amount comes back (no
execution fee); a request that is no longer pending can be neither executed nor cancelled;
close requests expire the same way and can then be requested again. The mirror compares the
chain with the reference model. Both chain profiles."""

from __future__ import annotations

import pytest

from alpsim import errors
from alpsim.client import OrderRejected, PendingOpen
from alpsim.mirror import Mirror
from alpsim.orders import commitment, seal
from alpsim.protocol import Order
from conftest import PRICES, funded_mirror


TRADER, OTHER = 1, 2
TRADERS = (TRADER, OTHER)
TRADER_FUNDS = 10_000
WAD = 10**18
BTC = 0
EXPIRY_BLOCKS = 10
PENDING, EXECUTED, REJECTED, CANCELLED = 1, 2, 3, 4  # RequestStatus in Types.sol


mirror = pytest.fixture(name="mirror")(funded_mirror)
"""conftest's `funded_pool` (TRADERS funded and approved); each test ends with a full chain/model comparison."""


def _order_tuple(order: Order) -> tuple:
    return (order.pair_id, order.is_long, order.leverage, order.take_profit, order.stop_loss, order.acceptable_price)


def _mine_until(mirror: Mirror, block: int) -> None:
    """Mines empty blocks until the head is `block` (the next transaction lands in block + 1)."""
    head = mirror.sim.devnet.block_number
    assert head <= block
    mirror.mine(block - head)
    assert mirror.sim.devnet.block_number == block


def _request_close(mirror: Mirror, who: int, position_id: int) -> tuple[int, int]:
    """requestClose on chain and in the model; returns (request id, block)."""
    rid, receipt = mirror.sim.request_close(who, position_id)
    block = receipt["blockNumber"]
    assert mirror.model.request_close(mirror.sim.address(who), position_id, block) == rid
    return rid, block


def _balances(sim) -> list[int]:
    return [sim.collateral_units(a) for a in (sim.address(TRADER), sim.deployment.keeper, sim.deployment.treasury,
                                               sim.contracts["trading"].address, sim.contracts["pool"].address)]


# ---------------------------------------------------------------- the execution window

def test_executing_in_the_requests_own_block_reverts(mirror):
    """Request and execution sent into one block (`Devnet.send_block`): the execution
    reverts with RequestNotExecutable; the next block executes it."""
    sim = mirror.sim
    trading = sim.contracts["trading"]
    trader = sim.address(TRADER)
    order, salt = Order(BTC, True, 10), bytes([7]) * 32
    ciphertext = seal(order, salt, sim.keeper_public_key)
    amount = sim.to_units(1000)
    rid = trading.call("nextRequestId")
    request_receipt, execute_receipt = sim.devnet.send_block([
        {"from": trader, "to": trading.address,
         "data": trading.encode("requestOpen", commitment(trader, order, salt), ciphertext, amount)},
        {"from": sim.deployment.keeper, "to": trading.address,
         "data": trading.encode("executeOpen", rid, _order_tuple(order), salt, [(BTC, PRICES["BTC/USD"] * WAD)])}])
    block = request_receipt["blockNumber"]
    assert execute_receipt["blockNumber"] == block
    assert (request_receipt["status"], execute_receipt["status"]) == (1, 0)
    err = sim.session.decoder.decode(sim.devnet.revert_data(execute_receipt["transactionHash"]))
    assert isinstance(err, errors.RequestNotExecutable)
    assert (err.requestId, err.requestBlock, err.currentBlock) == (rid, block, block)
    assert trading.call("request", rid)["status"] == PENDING
    assert mirror.model.request_open(trader, amount, b"", block) == rid
    mirror.check()

    opened = mirror.execute_open(PendingOpen(rid, trader, order, salt, ciphertext, amount, request_receipt))
    assert opened.position.leverage == 10
    assert trading.call("request", rid)["status"] == EXECUTED
    mirror.check()


def test_a_call_in_the_request_block_is_refused_the_next_block_executes(mirror):
    sim = mirror.sim
    trading = sim.contracts["trading"]
    pending = mirror.request_open(TRADER, "BTC/USD", "long", 1000, 10)
    block = pending.receipt["blockNumber"]
    assert sim.devnet.block_number == block
    # simulated against the latest block, which is the request's own block
    with pytest.raises(errors.RequestNotExecutable) as info:
        trading.call("executeOpen", pending.request_id, _order_tuple(pending.order), pending.salt,
                     [(BTC, PRICES["BTC/USD"] * WAD)], sender=sim.deployment.keeper)
    assert (info.value.requestBlock, info.value.currentBlock) == (block, block)
    opened = mirror.execute_open(pending)
    assert sim.devnet.block_number == block + 1
    assert opened.request_id == pending.request_id
    mirror.check()


@pytest.mark.parametrize("empty_blocks, executable", [(0, True), (9, True), (10, False), (11, False)])
def test_execution_window_is_the_10_blocks_after_the_request(mirror, empty_blocks, executable):
    sim = mirror.sim
    trading = sim.contracts["trading"]
    pending = mirror.request_open(TRADER, "BTC/USD", "long", 1000, 10)
    block = pending.receipt["blockNumber"]
    mirror.mine(empty_blocks)
    if executable:
        opened = mirror.execute_open(pending)
        assert sim.devnet.block_number == block + empty_blocks + 1
        assert trading.call("request", pending.request_id)["status"] == EXECUTED
        assert sim.position(opened.position.id) is not None
    else:
        balances = _balances(sim)
        with pytest.raises(errors.RequestNotExecutable) as info:
            mirror.execute_open(pending)
        assert info.value.requestId == pending.request_id
        assert (info.value.requestBlock, info.value.currentBlock) == (block, block + empty_blocks + 1)
        assert info.value.currentBlock > block + EXPIRY_BLOCKS
        assert _balances(sim) == balances
        assert trading.call("request", pending.request_id)["status"] == PENDING
        # expired: the trader takes it back
        mirror.cancel(TRADER, pending.request_id)
        assert trading.call("request", pending.request_id)["status"] == CANCELLED
    mirror.check()


# ---------------------------------------------------------------- cancellation

def test_cancel_before_expiry_reverts_until_the_11th_block(mirror):
    sim = mirror.sim
    trading = sim.contracts["trading"]
    pending = mirror.request_open(TRADER, "BTC/USD", "long", 1000, 10)
    block = pending.receipt["blockNumber"]
    for last_refused in (block + 1, block + EXPIRY_BLOCKS):
        _mine_until(mirror, last_refused - 1)
        with pytest.raises(errors.RequestNotExpired) as info:
            mirror.cancel(TRADER, pending.request_id)
        assert (info.value.requestId, info.value.expiresAfterBlock) == (pending.request_id, block + EXPIRY_BLOCKS)
        assert trading.call("request", pending.request_id)["status"] == PENDING
    assert sim.devnet.block_number == block + EXPIRY_BLOCKS  # reverted transactions take blocks too
    mirror.cancel(TRADER, pending.request_id)  # block + 11
    assert trading.call("request", pending.request_id)["status"] == CANCELLED
    mirror.check()


def test_only_the_trader_cancels_and_gets_the_whole_amount_back(mirror):
    sim = mirror.sim
    trading = sim.contracts["trading"]
    trader, other, keeper = sim.address(TRADER), sim.address(OTHER), sim.deployment.keeper
    before = _balances(sim)
    pending = mirror.request_open(TRADER, "ETH/USD", "short", 1234, 20)
    amount = sim.to_units(1234)
    assert sim.collateral_units(TRADER) == before[0] - amount
    # someone else: refused before and after expiry, the keeper included
    for who in (OTHER, keeper):
        with pytest.raises(errors.NotOwner) as info:
            sim.cancel(who, pending.request_id)
        assert (info.value.caller, info.value.owner) == (sim.address(who), trader)
    mirror.mine(EXPIRY_BLOCKS)
    with pytest.raises(errors.NotOwner) as info:
        sim.cancel(OTHER, pending.request_id)
    assert (info.value.caller, info.value.owner) == (other, trader)

    receipt = mirror.cancel(TRADER, pending.request_id)

    event = sim.session.events(receipt, "RequestCancelled")[0]
    assert (event["requestId"], event["trader"], event["refundTokens"]) == (pending.request_id, trader, amount)
    assert _balances(sim) == before  # all of it back to the trader; the keeper got nothing
    assert trading.call("request", pending.request_id)["status"] == CANCELLED
    mirror.check()


def _executed(mirror):
    pending = mirror.request_open(TRADER, "BTC/USD", "long", 1000, 10)
    mirror.execute_open(pending)
    return pending, EXECUTED


def _rejected(mirror):
    pending = mirror.request_open(TRADER, "BTC/USD", "long", 1000, 0)
    with pytest.raises(OrderRejected):
        mirror.execute_open(pending)
    return pending, REJECTED


def _cancelled(mirror):
    pending = mirror.request_open(TRADER, "BTC/USD", "long", 1000, 10)
    mirror.mine(EXPIRY_BLOCKS)
    mirror.cancel(TRADER, pending.request_id)
    return pending, CANCELLED


@pytest.mark.parametrize("settle", [_executed, _rejected, _cancelled], ids=["executed", "rejected", "cancelled"])
def test_a_request_no_longer_pending_can_be_neither_executed_nor_cancelled(mirror, settle):
    sim = mirror.sim
    pending, status = settle(mirror)
    assert sim.contracts["trading"].call("request", pending.request_id)["status"] == status
    mirror.mine(EXPIRY_BLOCKS)  # past the window: the status decides first
    balances = _balances(sim)
    with pytest.raises(errors.RequestNotPending) as executing:
        sim.keeper.execute_open(pending.request_id, pending.ciphertext)
    with pytest.raises(errors.RequestNotPending) as cancelling:
        mirror.cancel(TRADER, pending.request_id)
    for info in (executing, cancelling):
        assert (info.value.requestId, info.value.status) == (pending.request_id, status)
    assert _balances(sim) == balances
    mirror.check()


# ---------------------------------------------------------------- close requests

def test_close_request_expires_and_can_be_requested_again(mirror):
    sim = mirror.sim
    trading = sim.contracts["trading"]
    p = mirror.open(TRADER, "BTC/USD", "long", 1000, 10).position
    with pytest.raises(errors.NotOwner):
        sim.request_close(OTHER, p.id)
    first, block = _request_close(mirror, TRADER, p.id)
    assert trading.call("pendingClose", p.id) == first
    # a second request while the first can still execute is refused, up to its last block
    for head in (block, block + EXPIRY_BLOCKS - 1):
        _mine_until(mirror, head)
        with pytest.raises(errors.CloseAlreadyPending) as info:
            sim.request_close(TRADER, p.id)
        assert (info.value.positionId, info.value.requestId) == (p.id, first)
    # expired: the keeper can no longer execute it...
    assert sim.devnet.block_number == block + EXPIRY_BLOCKS
    with pytest.raises(errors.RequestNotExecutable) as info:
        sim.keeper.execute_close(first)
    assert (info.value.requestBlock, info.value.currentBlock) == (block, block + EXPIRY_BLOCKS + 1)
    assert sim.position(p.id) is not None
    # ...and the trader asks again; the keeper executes the new request
    closed = mirror.close(TRADER, p.id)
    assert closed.reason == "close"
    assert closed.position.id == p.id
    assert sim.position(p.id) is None
    assert trading.call("request", first)["status"] == PENDING  # never executed; expired
    assert trading.call("pendingClose", p.id) == 0
    mirror.check()


def test_expired_close_request_can_be_cancelled_without_refund(mirror):
    sim = mirror.sim
    trading = sim.contracts["trading"]
    p = mirror.open(TRADER, "BTC/USD", "short", 1000, 10).position
    rid, _ = _request_close(mirror, TRADER, p.id)
    with pytest.raises(errors.RequestNotExpired):
        mirror.cancel(TRADER, rid)
    mirror.mine(EXPIRY_BLOCKS)
    balances = _balances(sim)
    receipt = mirror.cancel(TRADER, rid)
    assert sim.session.events(receipt, "RequestCancelled")[0]["refundTokens"] == 0
    assert _balances(sim) == balances
    assert trading.call("request", rid)["status"] == CANCELLED
    assert trading.call("pendingClose", p.id) == 0
    assert sim.position(p.id) is not None  # the position stays open
    assert mirror.close(TRADER, p.id).position.id == p.id
    mirror.check()


def test_cancelling_an_old_close_request_keeps_the_newer_one_the_only_pending(mirror):
    """After an expired close request is replaced by a new one, cancelling the old one must not
    clear the new one's guard: a third request while the second can still execute is refused,
    as it is for the second while the first could execute (and as the reference model does)."""
    sim = mirror.sim
    trading = sim.contracts["trading"]
    p = mirror.open(TRADER, "BTC/USD", "long", 1000, 10).position
    first, _ = _request_close(mirror, TRADER, p.id)
    mirror.mine(EXPIRY_BLOCKS)
    second, second_block = _request_close(mirror, TRADER, p.id)
    mirror.cancel(TRADER, first)
    assert trading.call("request", second)["status"] == PENDING
    assert sim.devnet.block_number < second_block + EXPIRY_BLOCKS  # the second can still execute
    with pytest.raises(errors.CloseAlreadyPending) as info:
        sim.request_close(TRADER, p.id)
    assert (info.value.positionId, info.value.requestId) == (p.id, second)
    mirror.check()


def test_close_request_of_a_position_closed_by_a_trigger_does_not_settle_it_again(mirror):
    """A close request is pending when the keeper's stop-loss trigger closes the position. The
    request can no longer close anything: executing it must not settle the position a second
    time (no second PositionClosed, nothing paid), whether it reverts or is turned down."""
    sim = mirror.sim
    p = mirror.open(TRADER, "BTC/USD", "long", 1000, 10, stop_loss=59_000).position
    rid, _ = _request_close(mirror, TRADER, p.id)
    mirror.set_prices({"BTC/USD": 58_000})
    assert [(c.position.id, c.reason) for c in mirror.run_triggers()] == [(p.id, "stop_loss")]
    mirror.check()
    balances = _balances(sim)
    try:
        receipt = sim.keeper.execute_close(rid)
    except errors.ContractRevert:
        closes = []
    else:
        closes = sim.session.events(receipt, "PositionClosed")
    assert closes == [], f"position {p.id} settled a second time: " + repr(
        [(e["positionId"], e["trader"], e["settlement"]["reason"]) for e in closes])
    assert _balances(sim) == balances
