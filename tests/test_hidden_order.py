"""The hidden order (SPEC section 5): what `requestOpen` puts on chain, read as an outsider
would (calldata, logs, storage), does not reveal pair, side or leverage. Runs on anvil, whose
prestate tracer shows every storage slot the transaction wrote."""

from __future__ import annotations

import itertools

import pytest
from eth_abi import decode as abi_decode
from eth_utils import keccak

from alpsim.client import Alpsim
from alpsim.model.trading import Order
from alpsim.orders import UndecryptableOrder, commitment, unseal
from alpsim.keys import dev_private_key

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
        # storage: the request's slots hold the trader, kind, status, block, amount and
        # commitment, and the request counter: nothing else
        written = {int(v, 16) for v in view["storage"].values()}
        trader = int(sim.address(TRADER), 16)
        block = pending.receipt["blockNumber"]
        packed = trader | (0 << 160) | (1 << 168) | (block << 176)  # trader, kind Open, status Pending, block
        expected = {packed, sim.to_units(100), int.from_bytes(sent_commitment, "big"), pending.request_id + 1}
        assert written == expected
        assert trading.call("request", pending.request_id)["commitment"] == sent_commitment
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
