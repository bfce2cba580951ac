"""Faults: the keeper stops and a new one picks up; the node dies mid-scenario; many traders
trade at once on one node."""

from __future__ import annotations

import itertools
import threading
import time

import pytest

from alpsim import errors
from alpsim.client import Alpsim
from alpsim.deployment import deploy_system
from alpsim.devnet import AnvilDevnet
from alpsim.errors import NodeError
from alpsim.keeper import Keeper
from alpsim.paths import find_project
from alpsim.profiles import get_profile
from alpsim.scenario import ScenarioRunner, load_scenario
from alpsim.service import KeeperLoop, connect


def test_keeper_stops_requests_expire_and_a_new_keeper_picks_up(mirror):
    sim = mirror.sim
    for trader in (1, 2, 3):
        mirror.fund(trader, 1_000)
    survivor = mirror.open(1, "BTC/USD", "long", 500, 50)
    doomed = mirror.open(2, "ETH/USD", "short", 500, 500)
    # the keeper stops: two requests wait in escrow
    expired = mirror.request_open(3, "SOL/USD", "long", 400, 10)
    mirror.mine(11)
    late = mirror.request_open(2, "BTC/USD", "short", 300, 20)
    assert sim.collateral_units(3) == sim.to_units(600)
    # the trader whose request expired cancels and gets every unit back
    mirror.cancel(3, expired.request_id)
    assert sim.collateral_units(3) == sim.to_units(1_000)
    # a new keeper, with nothing but the chain's logs, takes over
    new = Keeper(sim.session, sim.deployment, sim.devnet.chain_clock)
    new.prices = dict(sim.keeper.prices)
    new.reference_updated_at = dict(sim.keeper.reference_updated_at)
    new.sync()
    assert new.open_positions == {survivor.position.id: 0, doomed.position.id: 1}
    # only the late request is pending: the expired one was cancelled
    assert [(rid, kind) for rid, kind, _ in new.pending_requests()] == [(late.request_id, "open")]
    assert new.cursor == sim.devnet.block_number
    sim.keeper = new
    executed = new.execute_pending()
    assert len(executed) == 1
    opened = sim.opened_from(late, sim.collateral_units(2) + late.amount_units, executed[0])
    assert opened.position.trader == sim.address(2)
    mirror.model.execute_open(late.request_id, late.order, {0: sim.keeper.prices[0]},
                              sim.devnet.timestamp, sim.devnet.block_number, sim.keeper.address)
    mirror.check()
    # the new keeper liquidates a position opened under the old one
    mirror.set_prices({"ETH/USD": 3_100})
    closed = mirror.run_triggers()
    assert [(c.position.id, c.reason) for c in closed] == [(doomed.position.id, "liquidation")]


def test_node_killed_mid_scenario_is_a_clear_error_and_a_partial_report(build):
    """The node dies between a trader's request and the keeper's execution."""
    scenario = load_scenario(find_project().root / "scenarios" / "profit_cap.yaml")

    def dying_node(sim):  # noqa: ANN001
        execute = sim.keeper.execute_open

        def kill_then_execute(*args, **kwargs):  # noqa: ANN002, ANN003
            sim.devnet.process.stop()
            return execute(*args, **kwargs)

        sim.keeper.execute_open = kill_then_execute

    runner = ScenarioRunner(scenario, backend="anvil", build=build, on_launch=dying_node)
    run = runner.run()
    assert run.steps_done == 2  # prices and deposit; the open (step 2) failed
    assert run.error is not None and "step 2 (open) failed: NodeError" in run.error and "does not answer" in run.error
    report = run.report
    assert report["incomplete"] == {"steps_done": 2, "error": run.error, "interrupted": False}
    # nothing half-applied is reported as done: the request was sent, the position never opened
    assert {pid: p["status"] for pid, p in report["positions"].items()} == {"capped": "pending"}
    assert report["positions"]["capped"]["entry_price"] is None
    assert report["pool"] is None and report["accounts"] is None
    assert report["expectations"] == []


def test_client_raises_node_error_when_the_node_is_gone(build):
    with Alpsim.launch("arbitrum", backend="anvil", build=build) as sim:
        sim.fund(1, 100)
        sim.devnet.process.popen.kill()
        sim.devnet.process.popen.wait()
        with pytest.raises(NodeError) as info:
            sim.deposit(1, 100)
        assert "does not answer" in str(info.value)
        assert isinstance(info.value, errors.AlpsimError)


def test_many_traders_at_once_on_one_node(tmp_path, build):
    """Six trader threads, each with its own connection, send requests while the keeper runs
    in its own thread; every request ends executed, or cancelled with its refund, and every
    balance reconciles."""
    profile = get_profile("bnb")
    devnet = AnvilDevnet(profile, stamp_blocks=False)
    try:
        deployment, _ = deploy_system(devnet, build)
        path = deployment.write(tmp_path / "bnb.json")
        admin = connect(devnet.rpc_url, path)
        admin.fund(7, 1_000_000)
        admin.deposit(7, 1_000_000)
        traders = [1, 2, 3, 4, 5, 6]
        for t in traders:
            admin.fund(t, 1_000)
        loop = KeeperLoop(admin, itertools.repeat({"BTC/USD": 60_000, "ETH/USD": 3_000}), interval_s=0.05,
                          log=lambda message: None)
        loop.tick()
        loop.start()
        pendings, failures = [], []
        lock = threading.Lock()

        def trade(t: int) -> None:
            try:
                client = connect(devnet.rpc_url, path)  # each thread its own connection
                for i in range(3):
                    pending = client.request_open(t, "BTC/USD" if i % 2 else "ETH/USD", "long" if t % 2 else "short",
                                                  100, 10 * (i + 1))
                    with lock:
                        pendings.append(pending)
            except Exception as exc:  # noqa: BLE001 - reported below
                failures.append(exc)

        threads = [threading.Thread(target=trade, args=(t,)) for t in traders]
        for th in threads:
            th.start()
        for th in threads:
            th.join(timeout=120)
        trading = admin.contracts["trading"]
        def executable(p) -> bool:  # noqa: ANN001 - pending and not yet expired
            r = trading.call("request", p.request_id)
            return r["status"] == 1 and devnet.block_number < r["blockNumber"] + 10

        deadline = time.monotonic() + 60
        while any(executable(p) for p in pendings) and time.monotonic() < deadline:
            time.sleep(0.1)
        loop.stop()
        assert not failures, failures
        assert len(pendings) == 18
        # a request the keeper missed expires, and its trader cancels it for a full refund
        executed = [p for p in pendings if trading.call("request", p.request_id)["status"] == 2]
        left = [p for p in pendings if trading.call("request", p.request_id)["status"] == 1]
        if left:
            devnet.mine(11)
        for p in left:
            admin.cancel(p.trader, p.request_id)
        assert len(executed) + len(left) == 18 and executed  # the rest expired while the keeper was busy
        # every balance reconciles: what was minted is with traders, pool, escrow, treasury, keeper
        token = admin.contracts["collateral"]
        holders = [admin.address(t) for t in traders + [7]] + [deployment.keeper, deployment.treasury,
                                                                admin.contracts["pool"].address,
                                                                admin.contracts["trading"].address]
        assert sum(token.call("balanceOf", h) for h in holders) == token.call("totalSupply")
        open_ids = [pid for pid in range(1, 19) if trading.call("position", pid)["trader"] != "0x" + "00" * 20]
        assert len(open_ids) == len(executed)
        margins = sum(trading.call("position", pid)["marginTokens"] for pid in open_ids)
        assert token.call("balanceOf", trading.address) == margins
        for t in traders:
            spent = sum(p.amount_units for p in executed if p.trader == admin.address(t))
            assert admin.collateral_units(t) == admin.to_units(1_000) - spent
    finally:
        devnet.close()
