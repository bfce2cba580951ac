"""Batched keeper execution: `executeOpenBatch` / `executeCloseBatch` (one transaction, one price
update for all the requests) through `Keeper.execute_open_batch` / `execute_close_batch`."""

from __future__ import annotations

import pytest

from alpsim import errors
from alpsim.client import REQUEST_GAS, OpenRequest
from alpsim.keeper import REFERENCE_REFRESH_S
from conftest import LP, POOL_LIQUIDITY, PRICES, PROFILES, embedded_system

# request gas is asserted here: the exact (embedded) backend
deployed = pytest.fixture(scope="module", params=PROFILES, name="deployed")(embedded_system)

TRADERS = (1, 2, 3)
ORDERS = [  # (trader, pair, side, amount, leverage)
    (1, "BTC/USD", "long", 100, 50),
    (2, "ETH/USD", "short", 250, 10),
    (3, "BTC/USD", "short", 60, 1001),
    (1, "SOL/USD", "long", 150, 5),
]


@pytest.fixture
def market(sim):
    sim.fund(LP, POOL_LIQUIDITY)
    sim.deposit(LP, POOL_LIQUIDITY)
    sim.keeper.set_prices(PRICES)
    for trader in TRADERS:
        sim.fund(trader, 10_000)
        sim.approve_collateral(trader)
    return sim


def _request(sim, orders=ORDERS):
    return sim.request_opens([OpenRequest(w, p, s, a, lev) for w, p, s, a, lev in orders])


def _position_facts(sim):
    """Every field of every open position: ids, fills, margins, sizes, indexes."""
    return sim.positions()


def _balances(sim):
    trading = sim.contracts["trading"].address
    return [sim.collateral_units(a) for a in (*TRADERS, sim.deployment.keeper, trading, sim.pool_contract.address)]


def test_requests_of_many_traders_share_one_block(market):
    pending = _request(market)
    assert len({p.receipt["blockNumber"] for p in pending}) == 1
    assert [p.request_id for p in pending] == sorted(p.request_id for p in pending)
    assert all(p.receipt["gasUsed"] < REQUEST_GAS for p in pending)


def test_a_batch_takes_typed_requests_and_refuses_dicts_before_sending_any(market):
    sim = market
    block, balance = sim.devnet.block_number, sim.collateral_units(1)
    with pytest.raises(errors.ConfigError, match="OpenRequest"):
        sim.request_opens([OpenRequest(1, "BTC/USD", "long", 100, 50),
                           {"who": 2, "pair": "ETH/USD", "side": "short", "amount": 250, "leverage": 10}])
    assert (sim.devnet.block_number, sim.collateral_units(1)) == (block, balance)  # nothing was sent


def test_open_batch_matches_single_opens(market):
    sim = market
    with sim.devnet.hold_time():  # the same block time for both ways
        pending = _request(sim)
        snap = sim.snapshot()
        for p in pending:
            sim.keeper.execute_open(p.request_id, p.ciphertext)
        single = _position_facts(sim)
        single_pool = sim.pool()
        sim.revert(snap)
        receipt = sim.keeper.execute_open_batch([p.request_id for p in pending], [p.ciphertext for p in pending])
    assert len(sim.session.events(receipt, "PositionOpened")) == len(ORDERS)
    assert _position_facts(sim) == single
    assert len(single) == len(ORDERS)
    assert sim.pool() == single_pool
    assert all(sim.contracts["trading"].call("request", p.request_id)["status"] == 2 for p in pending)


def test_open_batch_finds_the_ciphertexts_in_the_logs(market):
    pending = _request(market)
    market.keeper.execute_open_batch([p.request_id for p in pending])
    assert [(p.trader, p.pair) for p in market.positions()] == [
        (market.address(w), pair) for w, pair, *_ in ORDERS]


def test_open_batch_rejects_a_failed_check_and_opens_the_others(market):
    sim = market
    orders = [*ORDERS[:2], (3, "SOL/USD", "long", 100, 1001), ORDERS[3]]  # SOL/USD offers up to 100x
    before = sim.collateral_units(3)
    pending = _request(sim, orders)
    receipt = sim.keeper.execute_open_batch([p.request_id for p in pending], [p.ciphertext for p in pending])
    rejected = sim.session.events(receipt, "OpenRejected")
    assert [e["requestId"] for e in rejected] == [pending[2].request_id]
    fee = rejected[0]["executionFeeTokens"]
    assert rejected[0]["refundTokens"] == pending[2].amount_units - fee
    assert sim.collateral_units(3) == before - fee
    assert len(sim.positions()) == 3
    assert sim.contracts["trading"].call("request", pending[2].request_id)["status"] == 3  # rejected


def test_open_batch_with_a_wrong_reveal_reverts_as_a_whole(market):
    sim = market
    pending = _request(sim)
    balances = _balances(sim)
    keeper = sim.keeper
    orders = [(p.order.pair_id, p.order.is_long, p.order.leverage, p.order.take_profit, p.order.stop_loss,
               p.order.acceptable_price) for p in pending]
    salts = [p.salt for p in pending]
    salts[2] = bytes(32)
    pairs = sorted({o[0] for o in orders})
    # the keeper's price inputs as `execute_open_batch` sends them: the reference feeds `market` set are
    # fresh, so the keeper would not refresh them first
    assert all(sim.devnet.clock.next_timestamp - keeper.reference_updated_at[p] <= REFERENCE_REFRESH_S for p in pairs)
    price_inputs = [(pair_id, keeper.prices[pair_id]) for pair_id in pairs]
    with pytest.raises(errors.CommitmentMismatch) as err:
        sim.contracts["trading"].transact("executeOpenBatch", [p.request_id for p in pending], orders, salts,
                                          price_inputs, sender=keeper.address)
    assert err.value.requestId == pending[2].request_id
    assert _balances(sim) == balances
    assert sim.positions() == []
    assert all(sim.contracts["trading"].call("request", p.request_id)["status"] == 1 for p in pending)


def test_open_batch_with_mismatched_lengths_reverts(market):
    sim = market
    pending = _request(sim)
    keeper = sim.keeper
    orders = [(p.order.pair_id, p.order.is_long, p.order.leverage, 0, 0, 0) for p in pending]
    salts = [p.salt for p in pending]
    ids = [p.request_id for p in pending]
    with pytest.raises(errors.LengthMismatch) as err:
        sim.contracts["trading"].transact("executeOpenBatch", ids, orders[:-1], salts, [], sender=keeper.address)
    assert (err.value.requestIds, err.value.orders, err.value.salts) == (4, 3, 4)
    with pytest.raises(errors.LengthMismatch):
        sim.contracts["trading"].transact("executeOpenBatch", ids, orders, salts[:1], [], sender=keeper.address)


def test_close_batch_settles_them_all(market):
    sim = market
    pending = _request(sim)
    sim.keeper.execute_open_batch([p.request_id for p in pending], [p.ciphertext for p in pending])
    positions = sim.positions()
    request_ids = sim.request_closes([(p.trader, p.id) for p in positions])
    receipt = sim.keeper.execute_close_batch(request_ids)  # position ids read from the requests
    closed = sim.closed_from(receipt)
    assert sorted(c.position.id for c in closed) == [p.id for p in positions]
    assert all(c.reason == "close" for c in closed)
    assert sim.positions() == [] and sim.keeper.open_positions == {}
    assert all(sim.contracts["trading"].call("request", r)["status"] == 2 for r in request_ids)


def test_close_batch_with_a_request_out_of_its_window_reverts(market):
    sim = market
    pending = _request(sim)
    sim.keeper.execute_open_batch([p.request_id for p in pending], [p.ciphertext for p in pending])
    positions = sim.positions()
    request_ids = sim.request_closes([(p.trader, p.id) for p in positions])
    sim.devnet.mine(11)  # past the 10-block window
    with pytest.raises(errors.RequestNotExecutable):
        sim.keeper.execute_close_batch(request_ids, [p.id for p in positions])
    assert len(sim.positions()) == len(positions)
