"""Orders the keeper cannot use (docs/mechanics.md section 5.7): the keeper rejects them on
chain with `rejectOpen`, like a failed check. Chain and reference model in lockstep (Mirror):
the sender is refunded its amount less the execution fee, the keeper is paid the fee, and the
`OpenRejected` event names the reason with every order field zero."""

from __future__ import annotations

import os

import pytest

from alpsim import errors
from alpsim.keys import encrypt_to
from alpsim.orders import ORDER_ECIES, ORDER_PAYLOAD_BYTES, commitment, seal
from alpsim.protocol import Order, RejectReason

GRIEFER = 5


def _undecryptable(sim) -> bytes:  # noqa: ANN001
    return os.urandom(148)


def _garbage_plaintext(sim) -> bytes:  # noqa: ANN001
    payload = bytearray(os.urandom(ORDER_PAYLOAD_BYTES))
    payload[2] = 7  # the side byte is 0 or 1
    return encrypt_to(sim.keeper_public_key, bytes(payload), ORDER_ECIES)


def _wrong_commitment(sim) -> bytes:  # noqa: ANN001
    return seal(Order(0, True, 100, 0, 0, 0), b"\x01" * 32, sim.keeper_public_key)


@pytest.mark.parametrize(("make", "reason"), [
    (_undecryptable, RejectReason.UNDECRYPTABLE_ORDER),
    (_garbage_plaintext, RejectReason.MALFORMED_ORDER),
    (_wrong_commitment, RejectReason.MALFORMED_ORDER),
])
def test_the_keeper_rejects_an_unusable_order_and_keeps_the_fee(mirror, make, reason):
    sim = mirror.sim
    mirror.fund(GRIEFER, 100)
    keeper_before = sim.collateral_units(sim.keeper.address)
    rid = mirror.request_open_raw(GRIEFER, 100, make(sim), commitment=b"\x22" * 32)
    event = mirror.reject_open(rid, reason)  # the mirror compares chain and model after it
    fee = sim.contracts["trading"].call("executionFeeTokens")
    assert (event["requestId"], event["reason"]) == (rid, reason)
    assert (event["refundTokens"], event["executionFeeTokens"]) == (sim.to_units(100) - fee, fee)
    assert tuple(event["order"].values()) == (0, False, 0, 0, 0, 0)
    assert sim.collateral_units(GRIEFER) == sim.to_units(100) - fee
    assert sim.collateral_units(sim.keeper.address) == keeper_before + fee
    assert sim.contracts["trading"].call("request", rid)["status"] == 3  # Rejected
    # rejected once: the request is no longer pending, and the trader cannot cancel it
    with pytest.raises(errors.RequestNotPending):
        mirror.reject_open(rid, reason)
    with pytest.raises(errors.RequestNotPending):
        sim.cancel(GRIEFER, rid)


def test_a_real_order_rejected_as_malformed_is_refunded_like_any(mirror):
    """The keeper is trusted with the judgement: a well-formed order it calls malformed is
    refunded less the fee, the same as a failed check (never more lost)."""
    sim = mirror.sim
    mirror.fund(GRIEFER, 100)
    order, salt = Order(0, True, 100, 0, 0, 0), b"\x03" * 32
    ciphertext = seal(order, salt, sim.keeper_public_key)
    rid = mirror.request_open_raw(GRIEFER, 100, ciphertext, commitment(sim.address(GRIEFER), order, salt))
    mirror.reject_open(rid, RejectReason.MALFORMED_ORDER)
    fee = sim.contracts["trading"].call("executionFeeTokens")
    assert sim.collateral_units(GRIEFER) == sim.to_units(100) - fee
