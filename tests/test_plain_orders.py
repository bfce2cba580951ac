"""Plain orders, the research switch of docs/mev.md: an open whose order travels in the clear in
`encryptedOrder` (`PLAIN_MAGIC` + the packed order and salt) under the same commitment. The
engine executes it exactly as the same hidden order; only alpsim's own devnets allow it; a
keeper outside its research mode rejects it as an order its key does not open; a malformed
plain frame is rejected like a malformed ciphertext and the next order still executes."""

from __future__ import annotations

import pytest

from alpsim.client import Alpsim
from alpsim.devnet import AnvilDevnet, RpcDevnet
from alpsim.orders import (PLAIN_FRAME_BYTES, PLAIN_MAGIC, PlainOrdersRefused, UndecryptableOrder, commitment,
                           encode_order, plain_frame, read_plain_frame)
from alpsim.errors import ConfigError
from alpsim.protocol import Order, RejectReason

TRADER, OTHER = 1, 2
ORDER = ("BTC/USD", "long", 250)


@pytest.fixture(scope="module")
def world(build):
    """bnb on the embedded devnet, seeded: pool liquidity, prices, two funded traders."""
    with Alpsim.launch("bnb", build=build, seed=29) as sim:
        sim.fund(7, 5_000_000)
        sim.deposit(7, 5_000_000)
        sim.keeper.set_prices({"BTC/USD": 60_000, "ETH/USD": 3_000, "SOL/USD": 150, "AAPL/USD": 200})
        for who in (TRADER, OTHER):
            sim.fund(who, 100_000)
        sim.approve_collateral(TRADER, OTHER)
        yield sim


@pytest.fixture
def sim(world):
    snap = world.snapshot()
    yield world
    world.revert(snap)


def test_the_frame_round_trips_and_refuses_what_is_not_one():
    order, salt = Order(3, False, 40, 0, 7 * 10**18, 0), bytes(range(32))
    frame = plain_frame(order, salt)
    assert len(frame) == PLAIN_FRAME_BYTES == len(PLAIN_MAGIC) + 87 and frame.startswith(b"ALPSIM-PLAIN-v1")
    assert read_plain_frame(frame) == (order, salt)
    for bad in (frame[:-1], frame + b"\0", b"ALPSIM-PLAIN-v2" + frame[15:], frame[:17] + b"\x02" + frame[18:]):
        with pytest.raises(UndecryptableOrder):
            read_plain_frame(bad)


def test_a_plain_order_executes_to_the_same_position_as_the_hidden_one(sim):
    snap = sim.snapshot()
    hidden = sim.open(TRADER, *ORDER[:2], 2_000, ORDER[2])
    hidden_request = sim.contracts["trading"].call("request", hidden.request_id)
    sim.revert(snap)
    plain = sim.open(TRADER, *ORDER[:2], 2_000, ORDER[2], plain=True)
    plain_request = sim.contracts["trading"].call("request", plain.request_id)
    # the same seed gives the same salt, so the same commitment; only the bytes differ
    assert plain_request["commitment"] == hidden_request["commitment"]
    assert plain.position == hidden.position  # every field: pair, side, leverage, entry price, margin, qty...
    assert (plain.oracle_price_wad, plain.slippage_wad, plain.open_fee_tokens, plain.execution_fee_tokens) == (
        hidden.oracle_price_wad, hidden.slippage_wad, hidden.open_fee_tokens, hidden.execution_fee_tokens)
    assert plain.position.leverage == 250 and plain.position.is_long


def test_a_keeper_outside_its_research_mode_rejects_a_plain_order(sim):
    sim.keeper.plain_orders = False
    try:
        before = sim.collateral_units(TRADER)
        pending = sim.request_open(TRADER, *ORDER[:2], 2_000, ORDER[2], plain=True)
        assert pending.ciphertext.startswith(PLAIN_MAGIC)
        receipts = sim.keeper.execute_pending()
        rejected = [e for r in receipts for e in sim.session.events(r, "OpenRejected")]
        assert [(e["requestId"], e["reason"]) for e in rejected] == [
            (pending.request_id, int(RejectReason.UNDECRYPTABLE_ORDER))]
        fee = rejected[0]["executionFeeTokens"]
        assert fee > 0 and before - sim.collateral_units(TRADER) == fee  # refunded less the fee
    finally:
        sim.keeper.plain_orders = True


def test_a_malformed_plain_frame_is_rejected_and_the_next_order_executes(sim):
    trading = sim.contracts["trading"]
    good = Order(0, True, 10, 0, 0, 0)
    salt = b"\x11" * 32
    trader = sim.address(OTHER)
    frames = {
        "side byte 2": PLAIN_MAGIC + encode_order(good, salt)[:2] + b"\x02" + encode_order(good, salt)[3:],
        "too short": plain_frame(good, salt)[:-5],
        "not its commitment": plain_frame(Order(0, False, 10, 0, 0, 0), salt),
    }
    bad_ids = []
    for frame in frames.values():
        receipt = trading.transact("requestOpen", commitment(trader, good, salt), frame, sim.to_units(500),
                                   sender=trader)
        bad_ids.append(sim.session.events(receipt, "OpenRequested")[0]["requestId"])
    then = sim.request_open(TRADER, "ETH/USD", "short", 1_000, 20, plain=True)
    receipts = sim.keeper.execute_pending()
    rejected = {e["requestId"]: e["reason"] for r in receipts for e in sim.session.events(r, "OpenRejected")}
    assert rejected == {rid: int(RejectReason.MALFORMED_ORDER) for rid in bad_ids}
    opened = [e for r in receipts for e in sim.session.events(r, "PositionOpened")]
    assert [e["requestId"] for e in opened] == [then.request_id]
    assert opened[0]["position"]["pairId"] == 1 and not opened[0]["position"]["isLong"]


def test_plain_orders_are_refused_on_a_fork_and_on_an_attached_node(build):
    with Alpsim.launch("arbitrum", backend="anvil", build=build) as own:
        assert own.plain_orders_allowed and own.keeper.plain_orders
        own.fund(TRADER, 1_000)
        attached = Alpsim(RpcDevnet(own.profile, own.devnet.rpc_url, stamp_blocks=False), own.deployment)
        fork = AnvilDevnet(own.profile, fork_url=own.devnet.rpc_url, stamp_blocks=False)
        try:
            forked = Alpsim(fork, own.deployment)
            for sim, where in ((attached, "attached node"), (forked, "fork")):
                assert not sim.plain_orders_allowed and not sim.keeper.plain_orders
                next_id = sim.contracts["trading"].call("nextRequestId")
                with pytest.raises(PlainOrdersRefused, match=where) as info:
                    sim.open(TRADER, "BTC/USD", "long", 100, 10, plain=True)
                assert isinstance(info.value, ConfigError)
                assert sim.contracts["trading"].call("nextRequestId") == next_id  # nothing sent
        finally:
            fork.close()
    with Alpsim.launch("bnb", backend="revm", build=build) as revm:
        assert revm.plain_orders_allowed
        with pytest.raises(ConfigError, match="plain must be True or False"):
            revm.request_open(TRADER, "BTC/USD", "long", 100, 10, plain="yes")
