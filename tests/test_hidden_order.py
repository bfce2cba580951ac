"""The hidden order (docs/mechanics.md section 5): what `requestOpen` puts on chain, read as an outsider
would (calldata, logs, storage), does not reveal pair, side or leverage. Runs on anvil, whose
prestate tracer shows every storage slot the transaction wrote."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from eth_abi import decode as abi_decode
from eth_utils import keccak

from alpsim.client import Alpsim
from alpsim.keys import dev_private_key, encrypt_to, public_key_bytes
from alpsim.orders import (ORDER_ECIES, ORDER_PAYLOAD_BYTES, OrderOutOfRange, UndecryptableOrder, commitment,
                           encode_order, seal, unseal)
from alpsim.protocol import Order

TRADER = 1
ORDERS = [("BTC/USD", "long", 1001), ("ETH/USD", "short", 20), ("SOL/USD", "long", 5)]


@pytest.fixture(scope="module", params=["bnb", "arbitrum"])
def anvil_sim(request, build):
    sim = Alpsim.launch(request.param, backend="anvil", build=build)
    sim.fund(TRADER, 10_000)
    yield sim
    sim.stop()


def _outsider_view(sim: Alpsim, receipt: dict) -> dict:
    w3 = sim.devnet.w3
    tx = w3.eth.get_transaction(receipt["transactionHash"])
    trace = sim.devnet.rpc("debug_traceTransaction", [receipt["transactionHash"].to_0x_hex(),
                                                      {"tracer": "prestateTracer", "tracerConfig": {"diffMode": True}}])
    trading = sim.contracts["trading"].address.lower()
    post = {k.lower(): v for k, v in trace["post"].items()}
    written = post.get(trading, {}).get("storage", {})
    return {"input": bytes(tx["input"]), "logs": receipt["logs"], "storage": written}


def test_request_reveals_only_amount_commitment_and_ciphertext(anvil_sim):
    sim = anvil_sim
    views, pendings = [], []
    for pair, side, leverage in ORDERS:
        pending = sim.request_open(TRADER, pair, side, 100, leverage)
        pendings.append(pending)
        views.append(_outsider_view(sim, pending.receipt))
    trading = sim.contracts["trading"]
    selector = keccak(text="requestOpen(bytes32,bytes,uint256)")[:4]
    for pending, view in zip(pendings, views):
        # calldata: exactly (commitment, ciphertext, amount)
        assert view["input"][:4] == selector
        sent_commitment, ciphertext, amount = abi_decode(["bytes32", "bytes", "uint256"], view["input"][4:])
        assert (ciphertext, amount) == (pending.ciphertext, sim.to_units(100))
        # logs: the collateral transfer and OpenRequested(requestId, trader, amount, commitment, ciphertext)
        events = [e["event"] for e in sim.session.events(pending.receipt)]
        assert events == ["Transfer", "OpenRequested"]
        request_log = [log for log in view["logs"] if log["address"] == trading.address][0]
        logged = abi_decode(["uint256", "bytes32", "bytes"], request_log["data"])
        assert logged == (sim.to_units(100), sent_commitment, ciphertext)
        assert len(request_log["topics"]) == 3  # event id, request id, trader
        # storage: the request's slots hold the trader, kind, status, block, amount, the
        # execution fee fixed at the request, and commitment, and the request counter: nothing else
        written = {int(v, 16) for v in view["storage"].values()}
        trader = int(sim.address(TRADER), 16)
        block = pending.receipt["blockNumber"]
        packed = trader | (0 << 160) | (1 << 168) | (block << 176)  # trader, kind Open, status Pending, block
        fee = sim.to_units(sim.profile.execution_fee_usd)  # the profile's fee: not order-specific
        amount_and_fee = sim.to_units(100) | (fee << 128)  # amountIn (uint128) | executionFeeTokens (uint128)
        expected = {packed, amount_and_fee, int.from_bytes(sent_commitment, "big"), pending.request_id + 1}
        assert written == expected
        stored = trading.call("request", pending.request_id)
        assert stored["commitment"] == sent_commitment
        assert stored["executionFeeTokens"] == fee == trading.call("executionFeeTokens")
    # every ciphertext has the same length whatever the order; the ciphertexts all differ
    assert len({len(v["input"]) for v in views}) == 1
    assert len({p.ciphertext for p in pendings}) == len(pendings)


def test_commitment_cannot_be_matched_without_the_salt(anvil_sim):
    """An outsider enumerating every pair, side and leverage finds no match."""
    sim = anvil_sim
    pending = sim.request_open(TRADER, "BTC/USD", "long", 100, 1001)
    target = sim.contracts["trading"].call("request", pending.request_id)["commitment"]
    trader = sim.address(TRADER)
    guesses = itertools.product(range(4), (True, False), range(1, 1002))
    for salt in (b"\0" * 32, b"\xff" * 32):
        assert not any(commitment(trader, Order(p, s, lev), salt) == target for p, s, lev in guesses)
    # with the salt (what the keeper decrypts) it matches
    order, salt = unseal(pending.ciphertext, dev_private_key(9))
    assert commitment(trader, order, salt) == target
    assert (order.pair_id, order.is_long, order.leverage) == (0, True, 1001)


def test_only_the_keeper_key_opens_the_ciphertext(anvil_sim):
    pending = anvil_sim.request_open(TRADER, "ETH/USD", "short", 100, 50)
    with pytest.raises(UndecryptableOrder):
        unseal(pending.ciphertext, dev_private_key(1))
    order, _ = unseal(pending.ciphertext, dev_private_key(9))
    assert (order.pair_id, order.is_long, order.leverage) == (1, False, 50)


# --- the packed order plaintext (alpsim.orders): what the ciphertext carries, at what length

U128 = 2**128 - 1
orders_in_range = st.builds(
    Order, st.integers(0, 2**16 - 1), st.booleans(), st.integers(0, 2**32 - 1),
    st.integers(0, U128), st.integers(0, U128), st.integers(0, U128))


@settings(max_examples=200, deadline=None)
@given(order=orders_in_range, salt=st.binary(min_size=32, max_size=32))
def test_every_order_in_range_round_trips_through_a_ciphertext_of_one_length(order, salt):
    ciphertext = seal(order, salt, public_key_bytes(dev_private_key(9)))
    # compressed ephemeral key 33, nonce 12, tag 16, then the 87-byte plaintext
    assert len(encode_order(order, salt)) == ORDER_PAYLOAD_BYTES == 87
    assert len(ciphertext) == 33 + 12 + 16 + ORDER_PAYLOAD_BYTES
    assert unseal(ciphertext, dev_private_key(9)) == (order, salt)


@pytest.mark.parametrize("field, value, bits", [
    ("pair_id", 2**16, 16), ("leverage", 2**32, 32), ("take_profit", 2**128, 128),
    ("stop_loss", 2**128, 128), ("acceptable_price", 2**128, 128), ("leverage", -1, 32),
])
def test_a_field_too_wide_for_the_order_is_named_before_anything_is_encrypted(field, value, bits):
    order = Order(**{**Order(0, True, 10).__dict__, field: value})
    with pytest.raises(OrderOutOfRange, match=f"{field.replace('_', ' ')} {value} does not fit the order's {bits}-bit"):
        encode_order(order, b"\x01" * 32)


def test_a_plaintext_that_is_no_order_is_refused_by_the_keeper():
    key = public_key_bytes(dev_private_key(9))
    good = encode_order(Order(1, False, 50), b"\x02" * 32)
    for payload, says in ((good[:-1], "87 bytes, this plaintext 86"), (good[:2] + b"\x02" + good[3:], "side byte")):
        with pytest.raises(UndecryptableOrder, match=says):
            unseal(encrypt_to(key, payload, ORDER_ECIES), dev_private_key(9))


def test_an_order_too_wide_to_encode_sends_nothing(sim):
    """Refused in the client: no request, no escrow, the trader's balance as it was."""
    sim.fund(TRADER, 1_000)
    before = (sim.contracts["collateral"].call("balanceOf", sim.address(TRADER)),
              sim.contracts["trading"].call("nextRequestId"))
    with pytest.raises(OrderOutOfRange, match="take profit"):
        sim.request_open(TRADER, "BTC/USD", "long", 100, 10, take_profit=10**21)
    assert (sim.contracts["collateral"].call("balanceOf", sim.address(TRADER)),
            sim.contracts["trading"].call("nextRequestId")) == before
