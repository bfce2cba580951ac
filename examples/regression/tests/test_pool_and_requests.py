"""The pool's deposit and cooldown, and who may cancel a request: what a change to the pool or
the request flow must keep."""

from __future__ import annotations

from alpsim import errors
from alpsim.testing import balance_change, emits, reverts

EXPIRY_BLOCKS = 10


def test_deposit_moves_collateral_into_the_pool_and_emits_deposit(alpsim, lp):
    with emits(alpsim, "Deposit", lp=lp.address) as capture, \
            balance_change(alpsim, {"lp": lp, "pool": alpsim.pool_contract}, lp=-1_000, pool=+1_000):
        result = lp.deposit(1_000)
    assert capture.event["alpOut"] == result.alp_out_wad > 0


def test_lp_cannot_withdraw_during_the_cooldown(alpsim, lp):
    with reverts(errors.CooldownActive, holder=lp.address) as caught:
        lp.withdraw()
    assert caught.value.unlocksAt > alpsim.devnet.timestamp


def test_only_the_trader_cancels_an_expired_request_and_gets_it_all_back(alpsim, trader, lp, prices):
    pending = trader.request_open("BTC/USD", "long", 500, 50)
    intruder = alpsim.address(2)
    alpsim.devnet.mine(EXPIRY_BLOCKS + 1)

    with reverts(errors.NotOwner, caller=intruder, owner=trader.address):
        alpsim.cancel(intruder, pending.request_id)
    with emits(alpsim, "RequestCancelled", requestId=pending.request_id), \
            balance_change(alpsim, {"trader": trader}, trader=+500):
        trader.cancel(pending.request_id)
