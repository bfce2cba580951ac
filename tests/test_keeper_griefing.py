"""The keeper never stalls (issue 14) on a real node: while one account streams orders the
keeper cannot use (ciphertexts that do not decrypt, plaintexts that do not parse, commitments
that do not match), several traders open and close for a bounded time, each from its own
connection, in a process of their own (as a devnet's clients are), and the devnet's keeper
loop follows the chain in its own thread. The node mines a block every 0.25 s, as Arbitrum
(anvil's interval mining): the request window is then 2.5 s whatever the traders send, as on
the chain. Every good request executes, every bad one is rejected with the execution fee
charged, every round pushes every price with its triggers, and the collateral is conserved
to the unit."""

from __future__ import annotations

import multiprocessing
import random
import threading
import time
from concurrent.futures import ProcessPoolExecutor

import pytest

from alpsim.deployment import deploy_system
from alpsim.devnet import AnvilProcess, RpcDevnet
from alpsim.keeper import event_topics
from alpsim.keys import encrypt_to
from alpsim.orders import ORDER_ECIES, ORDER_PAYLOAD_BYTES, commitment, seal
from alpsim.protocol import Order, RejectReason
from alpsim.profiles import get_profile
from alpsim.service import GbmPrices, KeeperLoop, connect

pytestmark = pytest.mark.anvil

CHAIN = "arbitrum"
"""Blocks every 0.25 s: the shortest block time of the profiles, the most blocks per round."""
TRADERS = (1, 2, 3, 4)
GRIEFER, LP, KEEPER = 6, 7, 9
TRADING_S = 15.0
INTERVAL_S = 0.5
THINK_S = (0.05, 0.3)
"""A trader's pause between an outcome and its next request."""
MAX_ROUND_GAP_S = 3.0
"""Longest time between two rounds' starts: the price interval plus a loaded machine's slack."""
RESOLVE_TIMEOUT_S = 20.0
PENDING, EXECUTED, REJECTED = 1, 2, 3  # RequestStatus in Types.sol
ALL_PAIRS = [0, 1, 2, 3]


def _bad_order(sim, rng: random.Random, kind: int) -> tuple[bytes, bytes, RejectReason]:
    """(ciphertext, commitment, expected reason) of one of four kinds of unusable order."""
    key, griefer = sim.keeper_public_key, sim.address(GRIEFER)
    if kind == 0:
        return rng.randbytes(148), rng.randbytes(32), RejectReason.UNDECRYPTABLE_ORDER
    if kind == 1:
        payload = bytearray(rng.randbytes(ORDER_PAYLOAD_BYTES))
        payload[2] = 7  # the side byte is 0 or 1
        return encrypt_to(key, bytes(payload), ORDER_ECIES), rng.randbytes(32), RejectReason.MALFORMED_ORDER
    if kind == 2:
        return (encrypt_to(key, rng.randbytes(ORDER_PAYLOAD_BYTES + 5), ORDER_ECIES), rng.randbytes(32),
                RejectReason.MALFORMED_ORDER)
    order, salt = Order(0, True, 10), rng.randbytes(32)
    return seal(order, salt, key), commitment(griefer, order, rng.randbytes(32)), RejectReason.MALFORMED_ORDER


def _wait_resolved(sim, request_id: int) -> int:
    trading = sim.contracts["trading"]
    deadline = time.monotonic() + RESOLVE_TIMEOUT_S
    while (status := trading.call("request", request_id)["status"]) == PENDING and time.monotonic() < deadline:
        time.sleep(0.02)
    return status


def _actors(url: str, path: str, seconds: float) -> tuple[list, list, list[str]]:
    """The traders and the griefer, one thread each, for `seconds`: (request id, kind, final
    status) of the good requests, (request id, expected reason, final status) of the bad ones,
    and the errors."""
    deadline = time.monotonic() + seconds
    good: list[tuple[int, str, int]] = []
    bad: list[tuple[int, RejectReason, int]] = []
    failures: list[str] = []
    lock = threading.Lock()

    def trade(who: int) -> None:
        try:
            sim, rng = connect(url, path), random.Random(who)
            while time.monotonic() < deadline:
                pending = sim.request_open(who, rng.choice(["BTC/USD", "ETH/USD", "SOL/USD"]),
                                           rng.choice(["long", "short"]), rng.choice([50, 100, 200]),
                                           rng.choice([5, 10, 20]))
                status = _wait_resolved(sim, pending.request_id)
                with lock:
                    good.append((pending.request_id, "open", status))
                if status != EXECUTED:
                    return
                time.sleep(rng.uniform(*THINK_S))
                close_id, _ = sim.request_close(who, pending.request_id)
                status = _wait_resolved(sim, close_id)
                with lock:
                    good.append((close_id, "close", status))
                time.sleep(rng.uniform(*THINK_S))
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            failures.append(repr(exc))

    def grief() -> None:
        try:
            sim, rng = connect(url, path), random.Random(66)
            units, kind = sim.to_units(5), 0
            while time.monotonic() < deadline:
                ciphertext, commit, reason = _bad_order(sim, rng, kind % 4)
                kind += 1
                receipt = sim.contracts["trading"].transact("requestOpen", commit, ciphertext, units,
                                                            sender=sim.address(GRIEFER))
                rid = sim.session.events(receipt, "OpenRequested")[0]["requestId"]
                status = _wait_resolved(sim, rid)
                with lock:
                    bad.append((rid, reason, status))
        except BaseException as exc:  # noqa: BLE001
            failures.append(repr(exc))

    threads = [threading.Thread(target=trade, args=(who,)) for who in TRADERS] + [threading.Thread(target=grief)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=seconds + 2 * RESOLVE_TIMEOUT_S)
    failures += [f"{th.name} still running" for th in threads if th.is_alive()]
    return good, bad, failures


def test_a_griefer_streaming_unusable_orders_never_stalls_the_keeper(tmp_path, build):
    profile = get_profile(CHAIN)
    node = AnvilProcess(profile.chain_id, hardfork=profile.evm_version,
                        extra_args=["--block-time", str(profile.block_time_s)])
    loop = None
    logs: list[str] = []
    try:
        devnet = RpcDevnet(profile, node.url, stamp_blocks=False)
        with devnet.blocks_on_demand():  # the set-up's own blocks at once, as `alpsim devnet` does
            deployment, _ = deploy_system(devnet, build)
        path = deployment.write(tmp_path / f"{CHAIN}.json")
        assert devnet.rpc("anvil_getAutomine") is False  # blocks on the timer, not one per transaction
        admin = connect(devnet.rpc_url, path)
        with admin.devnet.blocks_on_demand():
            admin.fund(LP, 1_000_000)
            admin.deposit(LP, 1_000_000)
            for who in TRADERS:
                admin.fund(who, 10_000)
            admin.fund(GRIEFER, 1_000)
            admin.approve_collateral(*TRADERS, GRIEFER)
        reader = connect(devnet.rpc_url, path)  # the test's own reads, apart from the keeper's client
        token, trading = reader.contracts["collateral"], reader.contracts["trading"]
        holders = [reader.address(i) for i in range(10)] + [trading.address, reader.pool_contract.address]
        total = token.call("totalSupply")
        assert sum(token.call("balanceOf", h) for h in holders) == total
        fee = trading.call("executionFeeTokens")
        keeper_before, griefer_before = reader.collateral_units(KEEPER), reader.collateral_units(GRIEFER)

        loop = KeeperLoop(admin, iter(GbmPrices(seed=14, step_s=INTERVAL_S)), interval_s=INTERVAL_S, log=logs.append)
        loop.tick()
        loop.start()
        with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
            good, bad, failures = pool.submit(_actors, devnet.rpc_url, str(path), TRADING_S).result(
                timeout=TRADING_S + 3 * RESOLVE_TIMEOUT_S)
        loop.stop()
        rounds = list(loop.rounds)
        tail = "\n".join([m for m in logs if "expired" in m or "fail" in m][:20] + logs[-10:])
        assert not failures, (failures, tail)

        # every good request executed, every bad one rejected with its reason
        assert len(good) >= 4 * len(TRADERS) and len(bad) >= 20, (len(good), len(bad), tail)
        assert [g for g in good if g[2] != EXECUTED] == [], tail
        assert [b for b in bad if b[2] != REJECTED] == [], tail
        rejected = {e["requestId"]: e for e in _events(reader, "OpenRejected")}
        assert {rid: rejected[rid]["reason"] for rid, _, _ in bad} == {rid: reason for rid, reason, _ in bad}
        assert all(rejected[rid]["executionFeeTokens"] == fee for rid, _, _ in bad)
        # the griefer paid exactly one execution fee per bad order; the keeper earned every fee
        assert reader.collateral_units(GRIEFER) == griefer_before - len(bad) * fee
        opens = sum(1 for _, kind, _ in good if kind == "open")
        assert reader.collateral_units(KEEPER) == keeper_before + (opens + len(bad)) * fee
        # prices and triggers never paused: every round pushed every pair, no round failed
        assert len(rounds) >= TRADING_S / INTERVAL_S
        assert [r.errors for r in rounds if r.errors] == [] and [r.failed for r in rounds if r.failed] == []
        assert all(sorted(r.price_pairs) == ALL_PAIRS for r in rounds)
        gaps = [b.started_s - a.started_s for a, b in zip(rounds, rounds[1:])]
        assert max(gaps) < MAX_ROUND_GAP_S, max(gaps)
        assert loop.rejected == len(bad) and loop.executed == len(good)
        # conservation: every unit minted is with an account, the escrow or the pool
        assert token.call("totalSupply") == total
        assert sum(token.call("balanceOf", h) for h in holders) == total
    finally:
        if loop is not None:
            loop.stop()
        node.stop()


def _events(sim, name: str) -> list[dict]:
    """Every `name` event of the trading engine since deployment."""
    trading = sim.contracts["trading"]
    topic = event_topics(sim.deployment.contracts["trading"].abi, (name,))[name]
    logs = sim.session.logs(trading.address, [topic], sim.deployment.block)
    return [sim.session.decode_log(log) for log in logs]
