"""The keeper follows the chain with a log cursor: each block's logs are read once, in one
eth_getLogs per round filtered by the engine's address and the watched events; a request sent
between rounds is executed by the next, within two blocks of its own; an expired one is
skipped without a transaction; `sync()` rebuilds the same books from history; the client's
snapshots carry the keeper's state. Embedded devnet, both chain profiles."""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest

from alpsim.keeper import WATCHED_EVENTS, Keeper
from alpsim.service import REFERENCE_DEVIATION_BPS, KeeperLoop

TRADERS = (1, 2, 3)
PENDING, EXECUTED, CANCELLED = 1, 2, 4  # RequestStatus in Types.sol
EXPIRY_BLOCKS = 10
ALL_PAIRS = [0, 1, 2, 3]
WAD = 10**18


@pytest.fixture
def market(mirror):
    sim = mirror.sim
    for who in TRADERS:
        sim.fund(who, 10_000)
    sim.approve_collateral(*TRADERS)
    return sim


@pytest.fixture
def log_reads(market, monkeypatch):
    """Every eth_getLogs filter the client sends through its session (the real read runs)."""
    session = market.session
    real, reads = session.logs, []

    def spy(address, topics, from_block, to_block="latest"):  # noqa: ANN001, ANN202
        reads.append({"address": address, "topics": topics, "fromBlock": from_block, "toBlock": to_block})
        return real(address, topics, from_block, to_block)

    monkeypatch.setattr(session, "logs", spy)
    return reads


def _open(sim, who: int, pair: str = "BTC/USD", side: str = "long"):
    return sim.request_open(who, pair, side, 100, 10)


def test_each_blocks_logs_are_read_once(market, log_reads):
    sim, keeper = market, market.keeper
    keeper.sync()
    assert [(r["fromBlock"], r["toBlock"]) for r in log_reads] == [(sim.deployment.block, sim.devnet.block_number)]
    pending = [_open(sim, 1), _open(sim, 2, "ETH/USD", "short")]
    keeper.run_round()
    sim.devnet.mine(3)
    keeper.poll()
    keeper.poll()  # nothing new: no call
    reads_before = len(log_reads)
    keeper.run_round()  # no block since the poll: no call
    close_id, _ = sim.request_close(1, pending[0].request_id)
    _open(sim, 3, "SOL/USD")
    keeper.run_round()
    keeper.run_round()
    assert len(log_reads) == reads_before + 2  # one call per round with new blocks
    ranges = [(r["fromBlock"], r["toBlock"]) for r in log_reads]
    for (_, previous_to), (start, end) in zip(ranges, ranges[1:]):
        assert start == previous_to + 1 and end >= start  # contiguous, never twice
    assert keeper.cursor == ranges[-1][1]
    trading = sim.contracts["trading"]
    for read in log_reads:
        assert read["address"] == trading.address
        assert len(read["topics"]) == 1 and len(set(read["topics"][0])) == len(WATCHED_EVENTS)
    assert trading.call("request", close_id)["status"] == EXECUTED


def test_a_request_sent_between_rounds_executes_within_two_blocks(market):
    sim, keeper = market, market.keeper
    keeper.sync()
    idle = keeper.run_round()
    # no open position: the trigger transaction still records every priced pair
    assert idle.errors == [] and sorted(idle.price_pairs) == ALL_PAIRS and idle.executed == []
    pending = _open(sim, 2, "ETH/USD", "short")
    report = keeper.run_round()
    request_block = pending.receipt["blockNumber"]
    assert report.executed == [pending.request_id]
    opened = sim.session.events(report.receipts[-1], "PositionOpened")
    assert [e["requestId"] for e in opened] == [pending.request_id]
    assert report.trigger_block == request_block + 1
    assert report.receipts[-1]["blockNumber"] - request_block == 2
    assert keeper.open_positions == {pending.request_id: 1}


@pytest.mark.parametrize("idle_blocks, executed", [(EXPIRY_BLOCKS - 2, True), (EXPIRY_BLOCKS - 1, False)],
                         ids=["last-block", "expired"])
def test_an_expired_request_is_skipped_without_a_transaction(market, idle_blocks, executed):
    """The trigger transaction takes one block: a request whose window ends before the next
    block after it is left to its trader, who cancels it for a full refund."""
    sim, keeper = market, market.keeper
    keeper.sync()
    before = sim.collateral_units(3)
    pending = _open(sim, 3)
    sim.devnet.mine(idle_blocks)
    report = keeper.run_round()
    assert report.errors == [] and report.failed == []
    status = sim.contracts["trading"].call("request", pending.request_id)["status"]
    if executed:
        assert report.executed == [pending.request_id] and status == EXECUTED
        assert report.receipts[-1]["blockNumber"] == pending.receipt["blockNumber"] + EXPIRY_BLOCKS
        return
    assert report.expired == [pending.request_id] and report.executed == [] and status == PENDING
    assert len(report.receipts) == 1 and sim.devnet.block_number == report.trigger_block  # no other transaction
    assert keeper.pending == {}
    sim.cancel(3, pending.request_id)
    assert sim.collateral_units(3) == before
    assert keeper.run_round().errors == []  # the cancellation's log is read, nothing to do


def test_sync_rebuilds_the_books_of_a_keeper_that_followed_the_chain(market):
    sim, keeper = market, market.keeper
    keeper.sync()
    first = [_open(sim, 1), _open(sim, 2, "ETH/USD", "short", ), _open(sim, 3, "SOL/USD")]
    keeper.run_round()
    sim.request_close(1, first[0].request_id)
    stopped = sim.request_open(2, "BTC/USD", "long", 100, 10, stop_loss=59_000)
    keeper.run_round()  # closes position 1, opens the stop-loss one
    sim.keeper.set_prices({"BTC/USD": 58_000})
    keeper.run_round()  # the stop-loss triggers
    expired = _open(sim, 3, "AAPL/USD")
    sim.devnet.mine(EXPIRY_BLOCKS)
    sim.cancel(3, expired.request_id)
    in_flight = _open(sim, 1, "ETH/USD")
    close_id, _ = sim.request_close(3, first[2].request_id)
    keeper.poll()
    fresh = Keeper(sim.session, sim.deployment, sim.devnet.chain_clock)
    fresh.sync()
    assert fresh.cursor == keeper.cursor == sim.devnet.block_number
    assert fresh.open_positions == keeper.open_positions == {first[1].request_id: 1, first[2].request_id: 2}
    assert fresh.pending == keeper.pending
    assert sorted(fresh.pending) == [in_flight.request_id, close_id]
    assert fresh.pending[in_flight.request_id].ciphertext == in_flight.ciphertext
    assert fresh.pending[close_id].position_id == first[2].request_id
    assert stopped.request_id not in fresh.open_positions
    # the new keeper takes over at the next round
    fresh.prices = dict(keeper.prices)
    sim.keeper = fresh
    report = fresh.run_round()
    assert sorted(report.executed) == [in_flight.request_id, close_id] and report.errors == []


def test_snapshots_carry_the_keepers_state(market):
    sim, keeper = market, market.keeper
    keeper.sync()
    _open(sim, 1)
    keeper.poll()
    before = keeper.state()
    assert list(before.pending) and before.cursor == sim.devnet.block_number
    snap = sim.snapshot()
    keeper.run_round()
    sim.devnet.mine(2)
    keeper.poll()
    assert keeper.state() != before
    sim.revert(snap)
    assert keeper.state() == before
    assert keeper.run_round().executed == list(before.pending)  # and it goes on from there


def test_the_loop_moves_prices_per_tick_and_the_references_on_deviation(market):
    """Each tick moves the keeper's prices to the source's next; a reference feed moves only
    when the price is more than REFERENCE_DEVIATION_BPS from it. A round without a price move
    runs at the same prices."""
    sim = market
    oracle = sim.contracts["oracle"]
    base = Decimal(60_000)
    step = base * REFERENCE_DEVIATION_BPS / 10_000
    path = [{"BTC/USD": base}, {"BTC/USD": base + step}, {"BTC/USD": base + step + 1}]
    logged: list[str] = []
    loop = KeeperLoop(sim, itertools.chain(path, itertools.repeat(path[-1])), interval_s=60, log=logged.append)
    references = []
    for _ in path:
        report = loop.tick()
        assert report.errors == [] and sorted(report.price_pairs) == ALL_PAIRS
        references.append(oracle.call("referencePrice", 0)[0])
    assert references == [60_000 * WAD, 60_000 * WAD, int((base + step + 1) * WAD)]
    assert sim.keeper.prices[0] == int((base + step + 1) * WAD)
    pending = _open(sim, 2)
    report = loop.tick(move_prices=False)
    assert report.executed == [pending.request_id]
    opened = sim.session.events(report.receipts[-1], "PositionOpened")[0]
    assert opened["charges"]["oraclePrice"] == int((base + step + 1) * WAD)
    assert any(f"PositionOpened request {pending.request_id}" in m for m in logged)
    assert (loop.ticks, loop.executed, loop.rejected, len(loop.rounds)) == (4, 1, 0, 4)
