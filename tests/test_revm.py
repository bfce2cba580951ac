"""The revm backend (pyrevm): what it does beyond the devnet tests every backend passes
(tests/test_devnet.py): nested snapshots unwound last in first out and a consumed one refused,
revert data decoded into the same exceptions as on the other backends, logs and receipts
served to web3, transient storage cleared between transactions, and no gas figure where revm
cannot give an exact one."""

from __future__ import annotations

import pytest
from eth_utils import keccak

from alpsim import errors
from alpsim.contracts import Session
from alpsim.devnet import RevmDevnet
from alpsim.devnet.revm import SnapshotError
from alpsim.profiles import get_profile


@pytest.fixture(params=["bnb", "arbitrum"])
def devnet(request):
    with RevmDevnet(get_profile(request.param)) as net:
        yield net


def _balance(devnet, who: int) -> int:
    return devnet.w3.eth.get_balance(devnet.accounts[who])


def _pay(devnet, wei: int) -> None:
    devnet.send({"from": devnet.accounts[0], "to": devnet.accounts[1], "value": wei})


def _token(session, build, symbol: str, decimals: int):  # noqa: ANN001, ANN202
    """A mock collateral whose admin (minter) is dev account 0."""
    artifact = build.artifacts["MockCollateral"]
    admin = session.devnet.accounts[0]
    address = session.deploy(artifact, ["string", "string", "uint8", "address"], [symbol, symbol, decimals, admin], admin)
    return session.bind("MockCollateral", address, artifact.abi)


def test_nested_snapshots_unwind_last_in_first_out(devnet):
    start = _balance(devnet, 1)
    outer = devnet.snapshot()
    _pay(devnet, 1)
    middle = devnet.snapshot()
    _pay(devnet, 10)
    inner = devnet.snapshot()
    _pay(devnet, 100)
    devnet.revert(inner)
    assert _balance(devnet, 1) == start + 11
    devnet.revert(middle)
    assert _balance(devnet, 1) == start + 1
    devnet.revert(outer)
    assert _balance(devnet, 1) == start
    with pytest.raises(SnapshotError, match="already reverted"):
        devnet.revert(inner)


def test_reverting_an_older_snapshot_consumes_the_newer_ones(devnet):
    start, head = _balance(devnet, 1), devnet.block_number
    outer = devnet.snapshot()
    _pay(devnet, 5)
    newer = devnet.snapshot()
    _pay(devnet, 7)
    devnet.revert(outer)
    assert (_balance(devnet, 1), devnet.block_number) == (start, head)
    with pytest.raises(SnapshotError):
        devnet.revert(newer)
    with pytest.raises(SnapshotError):
        devnet.revert(12345)
    # the chain goes on from the reverted state: blocks, receipts and logs of the undone
    # branch are gone
    _pay(devnet, 3)
    assert _balance(devnet, 1) == start + 3 and devnet.block_number == head + 1


def test_reverts_decode_to_the_same_exceptions(devnet, build):
    session = Session(devnet)
    probe_address = session.deploy(build.artifacts["RevertProbe"], [], [], devnet.accounts[0])
    probe = session.bind("RevertProbe", probe_address, build.artifacts["RevertProbe"].abi)
    with pytest.raises(errors.ContractRevert, match="no way"):
        probe.transact("failWithReason", "no way", sender=devnet.accounts[0])
    with pytest.raises(errors.ContractRevert, match="(?i)panic"):
        probe.call("failWithPanic", 0)
    token = _token(session, build, "USDT", 18)
    token_address = token.address
    with pytest.raises(errors.ContractRevert) as info:  # OpenZeppelin's custom error, with its fields
        token.transact("transfer", devnet.accounts[2], 1, sender=devnet.accounts[1])
    assert info.value.error_name == "ERC20InsufficientBalance"
    assert (info.value.balance, info.value.needed) == (0, 1)
    # out of gas: a halt, reverted without data, and the block still holds the failed transaction
    head = devnet.block_number
    with pytest.raises(errors.ContractRevert, match="without data"):
        session.send({"from": devnet.accounts[1], "to": token_address, "data": token.encode("mint", devnet.accounts[1], 1),
                      "gas": 22_000})
    assert devnet.block_number == head + 1


def test_logs_and_receipts_reach_web3(devnet, build):
    session = Session(devnet)
    token = _token(session, build, "USDC", 6)
    token_address = token.address
    first = token.transact("mint", devnet.accounts[1], 5, sender=devnet.accounts[0])
    second = token.transact("transfer", devnet.accounts[2], 2, sender=devnet.accounts[1])
    transfer = "0x" + keccak(text="Transfer(address,address,uint256)").hex()
    logs = devnet.w3.eth.get_logs({"address": token_address, "fromBlock": first["blockNumber"], "topics": [transfer]})
    assert [log["transactionHash"] for log in logs] == [first["transactionHash"], second["transactionHash"]]
    assert [session.decode_log(log)["value"] for log in logs] == [5, 2]
    fetched = devnet.w3.eth.get_transaction_receipt(second["transactionHash"])
    assert (fetched["status"], fetched["blockNumber"], fetched["logs"][0]["logIndex"]) == (1, second["blockNumber"], 0)
    block = devnet.w3.eth.get_block(second["blockNumber"])
    assert block["transactions"] == [second["transactionHash"]] and block["timestamp"] == devnet.timestamp
    assert devnet.w3.eth.get_logs({"address": token_address, "fromBlock": second["blockNumber"] + 1}) == []


def test_no_gas_figure_where_revm_cannot_give_an_exact_one(devnet, build):
    """pyrevm never finalizes state between transactions (slots stay warm), so its gas reads
    low: receipts carry no gas figure rather than a wrong one."""
    session = Session(devnet)
    token = _token(session, build, "USDT", 18)
    receipt = token.transact("mint", devnet.accounts[1], 5, sender=devnet.accounts[0])
    assert devnet.exact_gas is False
    assert receipt["gasUsed"] is None
    assert devnet.w3.eth.get_transaction_receipt(receipt["transactionHash"])["gasUsed"] is None


_MEMORY_PROBE = """
import json
from alpsim.client import Alpsim
from alpsim.throughput import make_workload, prepare, run_fast

def rss_kb():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))

with Alpsim.launch("bnb", "revm", accounts=30) as sim:
    workload = make_workload(seed=1, traders=20, round_trips=20, per_round=10)
    prepare(sim, workload)

    def paths(n, revert):
        for _ in range(n):
            snap = sim.snapshot()
            run_fast(sim, workload)
            if revert:
                sim.revert(snap)

    paths(20, True)
    before = rss_kb()
    paths(120, True)
    reverted_kb = (rss_kb() - before) / 120
    before = rss_kb()
    paths(10, False)
    kept_kb = (rss_kb() - before) / 10
print(json.dumps({"reverted_kb": reverted_kb, "kept_kb": kept_kb}))
"""


def test_memory_stays_flat_over_paths_reverted_to_a_snapshot(build):
    """A long run of paths (each a snapshot, the seeded workload's fast path, a revert) holds
    no memory per path once reverted: the study and bench loop. Kept, the same paths grow the
    process by hundreds of KiB each (blocks, receipts and logs, revm's journal); reverted, by
    less than 16 KiB a path over 120 paths (allocator noise), after 20 paths of warm-up. In a
    fresh interpreter, so that nothing else in the process moves its resident set."""
    import json
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", _MEMORY_PROBE], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    probe = json.loads(done.stdout.strip().splitlines()[-1])
    assert probe["kept_kb"] > 100, probe  # the probe sees growth where there is some
    assert probe["reverted_kb"] < 16, probe
