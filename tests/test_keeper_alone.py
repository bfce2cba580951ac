"""The keeper needs no trader's client: built from a session of its own, the deployment and the
devnet's clock, it follows the requests a client sends and executes them. Its price inputs are
a read; refreshing the reference feeds is a step of its own, which each of its priced
transactions takes first. Both chain profiles."""

from __future__ import annotations

from alpsim.contracts import Session
from alpsim.keeper import REFERENCE_REFRESH_S, Keeper


def test_a_keeper_on_its_own_session_executes_a_clients_requests(mirror):
    sim = mirror.sim
    sim.fund(1, 1_000)
    sim.approve_collateral(1)
    keeper = Keeper(Session(sim.devnet), sim.deployment, sim.devnet.chain_clock)
    assert keeper.session is not sim.session and keeper.trading is not sim.contracts["trading"]
    assert keeper.address == sim.keeper.address and keeper.private_key == sim.keeper.private_key
    keeper.prices = dict(sim.keeper.prices)
    keeper.sync()
    pending = sim.request_open(1, "ETH/USD", "short", 100, 10)
    closing = sim.open(1, "BTC/USD", "long", 100, 5).position  # the client's own keeper opens it
    close_id, _ = sim.request_close(1, closing.id)

    report = keeper.run_round()

    assert report.errors == [] and sorted(report.price_pairs) == [0, 1, 2, 3]
    assert sorted(report.executed) == [pending.request_id, close_id]
    events = {e["event"]: e for e in report.events}
    assert events["PositionOpened"]["requestId"] == pending.request_id
    assert events["PositionClosed"]["positionId"] == closing.id
    assert keeper.open_positions == {pending.request_id: 1} and keeper.pending == {}
    assert sim.contracts["trading"].call("request", pending.request_id)["status"] == 2  # Executed


def test_price_inputs_are_a_read_and_the_refresh_a_step_of_its_own(mirror):
    sim, keeper = mirror.sim, mirror.sim.keeper
    oracle = sim.contracts["oracle"]
    sim.devnet.advance_time(REFERENCE_REFRESH_S + 1)  # every reference feed the keeper set is stale now
    head, set_at = sim.devnet.block_number, dict(keeper.reference_updated_at)
    answer = oracle.call("referencePrice", 0)[0]

    assert keeper.price_inputs([1, 0, 9]) == [(0, keeper.prices[0]), (1, keeper.prices[1])]  # 9: not priced
    assert sim.devnet.block_number == head  # nothing sent

    assert keeper.refresh_stale_references([0]) == [0]
    assert sim.devnet.block_number == head + 1
    assert oracle.call("referencePrice", 0) == (answer, sim.devnet.timestamp)  # a new round, the same answer
    assert keeper.reference_updated_at[0] == sim.devnet.timestamp and keeper.reference_updated_at[1] == set_at[1]
    assert keeper.refresh_stale_references([0]) == []  # fresh now

    receipt = keeper.push_prices([1])  # its pair's stale feed is refreshed first, then the price pushed
    assert receipt["blockNumber"] == head + 3 and keeper.reference_updated_at[1] == sim.session.block(head + 2).timestamp
    with mirror.reference_outage():
        assert keeper.refresh_stale_references([2, 3]) == []
    assert keeper.reference_updated_at[2] == set_at[2]
