"""The keeper never stalls (issue 14): one round executes every good request and rejects on
chain, each with its reason, the opens it cannot use (ciphertext that does not decrypt,
plaintext that does not parse, commitment that does not match), after applying its prices in
the transaction that runs the triggers. A batch that reverts anyway falls back to one request
at a time. Embedded devnet, both chain profiles."""

from __future__ import annotations

import random

from alpsim.client import OpenRequest
from alpsim.keeper import Keeper
from alpsim.keys import encrypt_to
from alpsim.orders import ORDER_ECIES, ORDER_PAYLOAD_BYTES, commitment, seal
from alpsim.protocol import Order, RejectReason

GOOD = (1, 2, 3)
CLOSER, DOOMED, GRIEFER = 4, 5, 6
PENDING, EXECUTED, REJECTED = 1, 2, 3  # RequestStatus in Types.sol
LIQUIDATION = 3  # CloseReason in Types.sol
ALL_PAIRS = [0, 1, 2, 3]
CIPHERTEXT_BYTES = 148


def _fee(sim) -> int:
    return sim.contracts["trading"].call("executionFeeTokens")


def _holders(sim) -> list[str]:
    return [sim.address(i) for i in range(10)] + [sim.contracts["trading"].address, sim.pool_contract.address]


def _total(sim) -> int:
    return sum(sim.collateral_units(h) for h in _holders(sim))


def _bad_ciphertexts(sim, rng: random.Random) -> list[tuple[bytes, bytes, RejectReason]]:
    """(ciphertext, commitment, expected reason) of every kind of unusable order."""
    key, trader = sim.keeper_public_key, sim.address(GRIEFER)
    side_seven = bytearray(rng.randbytes(ORDER_PAYLOAD_BYTES))
    side_seven[2] = 7  # pair id (2 bytes), then the side byte: 0 or 1
    order, salt = Order(0, True, 10), rng.randbytes(32)
    return [
        (rng.randbytes(CIPHERTEXT_BYTES), rng.randbytes(32), RejectReason.UNDECRYPTABLE_ORDER),
        (encrypt_to(key, bytes(side_seven), ORDER_ECIES), rng.randbytes(32), RejectReason.MALFORMED_ORDER),
        (encrypt_to(key, rng.randbytes(ORDER_PAYLOAD_BYTES - 1), ORDER_ECIES), rng.randbytes(32),
         RejectReason.MALFORMED_ORDER),
        # a real order, but the commitment is to another salt
        (seal(order, salt, key), commitment(trader, order, rng.randbytes(32)), RejectReason.MALFORMED_ORDER),
        # the right commitment, but of another trader
        (seal(order, salt, key), commitment(sim.address(1), order, salt), RejectReason.MALFORMED_ORDER),
    ]


def _send_raw_opens(sim, who: int, amount, items: list[tuple[bytes, bytes]]) -> list[int]:
    """Open requests with any ciphertext and commitment, all in one block; their ids."""
    trading, trader = sim.contracts["trading"], sim.address(who)
    units = sim.to_units(amount)
    receipts = sim.session.send_many([
        {"from": trader, "to": trading.address, "data": trading.encode("requestOpen", c, ct, units), "gas": 500_000}
        for ct, c in items])
    return [sim.session.events(r, "OpenRequested")[0]["requestId"] for r in receipts]


def test_one_round_executes_the_good_rejects_the_bad_and_runs_triggers_first(mirror):
    sim, rng = mirror.sim, random.Random(14)
    for who in (*GOOD, CLOSER, DOOMED):
        mirror.fund(who, 10_000)
    mirror.fund(GRIEFER, 1_000)
    held = mirror.open(CLOSER, "BTC/USD", "long", 500, 20).position
    doomed = mirror.open(DOOMED, "ETH/USD", "short", 500, 500).position
    sim.approve_collateral(*GOOD, GRIEFER)
    keeper = sim.keeper
    keeper.sync()
    total = _total(sim)
    fee = _fee(sim)

    # between good requests (one block), the griefer's (one block), and two closes
    good = sim.request_opens([OpenRequest(1, "BTC/USD", "long", 100, 50), OpenRequest(2, "ETH/USD", "short", 200, 10)])
    bad = _bad_ciphertexts(sim, rng)
    griefer_before = sim.collateral_units(GRIEFER)
    bad_ids = _send_raw_opens(sim, GRIEFER, 20, [(ct, c) for ct, c, _ in bad])
    good += sim.request_opens([OpenRequest(3, "SOL/USD", "long", 150, 5)])
    close_held, close_doomed = sim.request_closes([(CLOSER, held.id), (DOOMED, doomed.id)])
    assert sim.collateral_units(GRIEFER) == griefer_before - len(bad) * sim.to_units(20)
    # the round's prices cross the doomed short's liquidation price
    keeper.set_prices({"ETH/USD": 3_100})
    balances = {sim.address(who): sim.collateral_units(who) for who in (*GOOD, CLOSER, DOOMED)}
    keeper_before = sim.collateral_units(keeper.address)

    report = keeper.run_round(log=print)

    assert report.errors == [] and report.failed == []
    events = {}
    for receipt in report.receipts:
        for e in sim.session.events(receipt, ("PositionOpened", "OpenRejected", "PositionClosed", "PriceUpdated")):
            events.setdefault(e["event"], []).append((receipt["blockNumber"], e))
    # prices and triggers first, in one transaction: every priced pair, the liquidation
    assert sorted(report.price_pairs) == ALL_PAIRS
    trigger_block = report.trigger_block
    assert all(block >= trigger_block for r in report.receipts for block in [r["blockNumber"]])
    assert [b for b, _ in events["PriceUpdated"]].count(trigger_block) == len(ALL_PAIRS)
    assert report.triggered == [doomed.id]
    liquidated = [e for b, e in events["PositionClosed"] if b == trigger_block]
    assert [(e["positionId"], e["settlement"]["reason"]) for e in liquidated] == [(doomed.id, LIQUIDATION)]
    # then the good requests, executed at the same prices in one batch, after the triggers
    opened = {e["requestId"]: (b, e) for b, e in events["PositionOpened"]}
    assert sorted(opened) == [p.request_id for p in good]
    assert len({b for b, _ in opened.values()}) == 1 and min(b for b, _ in opened.values()) > trigger_block
    assert opened[good[1].request_id][1]["charges"]["oraclePrice"] == 3_100 * 10**18
    for p in good:
        assert sim.contracts["trading"].call("request", p.request_id)["status"] == EXECUTED
        assert sim.collateral_units(p.trader) == balances[p.trader]  # the escrow became margin and fee
    # the close of the held position executes; the doomed one's close is skipped: no transaction
    closed = [e for b, e in events["PositionClosed"] if b > trigger_block]
    assert [e["positionId"] for e in closed] == [held.id]
    assert sorted(report.executed) == sorted([p.request_id for p in good] + [close_held])
    assert report.skipped == [close_doomed]
    assert sim.contracts["trading"].call("request", close_doomed)["status"] == PENDING
    assert sim.collateral_units(DOOMED) == balances[sim.address(DOOMED)]  # nothing paid twice
    assert sim.collateral_units(CLOSER) > balances[sim.address(CLOSER)]
    # each bad request rejected on chain with its reason, refunded less the execution fee
    rejected = {e["requestId"]: e for _, e in events["OpenRejected"]}
    assert sorted(rejected) == bad_ids
    for rid, (_, _, reason) in zip(bad_ids, bad):
        event = rejected[rid]
        assert (event["reason"], report.rejected[rid]) == (reason, reason)
        assert (event["refundTokens"], event["executionFeeTokens"]) == (sim.to_units(20) - fee, fee)
        assert tuple(event["order"].values()) == (0, False, 0, 0, 0, 0)
        assert sim.contracts["trading"].call("request", rid)["status"] == REJECTED
    # the griefer lost exactly one execution fee per bad request, which the keeper earned
    assert sim.collateral_units(GRIEFER) == griefer_before - len(bad) * fee
    assert sim.collateral_units(keeper.address) == keeper_before + (len(bad) + len(good)) * fee
    assert _total(sim) == total
    assert keeper.pending == {}


def test_a_failed_phase_or_batch_does_not_block_the_rest(mirror):
    """The keeper's own fault, a zero price for SOL/USD (the oracle refuses it): the trigger
    transaction, which carries every priced pair, reverts, and the requests still execute; the
    open batch, which carries SOL/USD's price, reverts, and its requests run one by one: the
    SOL/USD one fails alone, is logged and not retried, and the others open."""
    sim = mirror.sim
    for who in GOOD:
        mirror.fund(who, 10_000)
    sim.approve_collateral(*GOOD)
    keeper = sim.keeper
    keeper.sync()
    pending = sim.request_opens([OpenRequest(1, "BTC/USD", "long", 100, 50), OpenRequest(2, "SOL/USD", "short", 100, 10),
                                 OpenRequest(3, "ETH/USD", "long", 100, 20)])
    btc, sol, eth = (p.request_id for p in pending)
    keeper.prices[2] = 0
    logged: list[str] = []

    report = keeper.run_round(log=logged.append)

    assert report.trigger_block is None and report.price_pairs == []
    assert len(report.errors) == 1 and report.errors[0].startswith("prices and triggers: InvalidPriceInput")
    assert sorted(report.executed) == [btc, eth] and report.failed == [sol]
    assert any(f"open batch {[btc, sol, eth]} failed (InvalidPriceInput" in m for m in logged)
    assert any(m.startswith(f"keeper: request {sol} failed: InvalidPriceInput") for m in logged)
    trading = sim.contracts["trading"]
    assert [trading.call("request", r)["status"] for r in (btc, sol, eth)] == [EXECUTED, PENDING, EXECUTED]
    assert sol in keeper.handled_requests and keeper.pending == {}
    # with the price mended, the next round runs its triggers and does not retry the failed one
    keeper.prices[2] = 150 * 10**18
    again = keeper.run_round(log=logged.append)
    assert again.errors == [] and sorted(again.price_pairs) == ALL_PAIRS
    assert again.executed == [] and again.failed == []
    assert trading.call("request", sol)["status"] == PENDING  # its trader cancels after the window


def test_a_batch_reverted_by_one_named_request_is_retried_without_it(mirror, monkeypatch):
    """A keeper whose logs lag (its reads see nothing new) still holds a request another
    keeper has executed: the batch reverts naming it, and the others execute in one batch
    without it."""
    sim = mirror.sim
    for who in GOOD:
        mirror.fund(who, 10_000)
    sim.approve_collateral(*GOOD)
    keeper = sim.keeper
    keeper.sync()
    pending = sim.request_opens([OpenRequest(w, "BTC/USD", "long", 100, 10) for w in GOOD])
    a, b, c = (p.request_id for p in pending)
    keeper.poll()
    other = Keeper(sim.session, sim.deployment, sim.devnet.chain_clock)
    other.prices = dict(keeper.prices)
    other.execute_open(b, pending[1].ciphertext)
    monkeypatch.setattr(keeper, "poll", lambda to_block=None: [])
    logged: list[str] = []

    report = keeper.run_round(log=logged.append)

    assert report.errors == [] and report.failed == []
    assert sorted(report.executed) == [a, c] and report.skipped == [b]
    assert any(f"open batch {[a, b, c]} failed (RequestNotPending" in m and f"retrying without {b}" in m
               for m in logged)
    batch = report.receipts[-1]
    assert sorted(e["requestId"] for e in sim.session.events(batch, "PositionOpened")) == [a, c]
    assert keeper.pending == {}
