"""The Session is the package's one seam to a backend: logs from a cursor, blocks, code, mined
transactions and sends, the same on the embedded, revm and anvil backends; on a node that
keeps its own time, pipelined sends (all sent before any receipt is awaited) numbered by the
client, a transient refusal (the node's pending nonce lagging) tried again, any other refusal
raised at once, a revert never retried. Nothing outside `alpsim.devnet` talks web3."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from web3.exceptions import Web3RPCError

from alpsim import errors
from alpsim.client import Alpsim
from alpsim.deployment import deploy_system
from alpsim.devnet import AnvilDevnet
from alpsim.profiles import get_profile

SRC = Path(__file__).resolve().parents[1] / "src" / "alpsim"
GAS = 200_000


@pytest.fixture(scope="module", params=["embedded", "revm", "anvil"])
def system(request, build):
    with Alpsim.launch("bnb", request.param, build=build, seed=3) as sim:
        yield sim


@pytest.fixture(scope="module")
def live(build):
    """The system on anvil keeping its own time (the client stamps no block), as `alpsim
    devnet` runs it (one block per transaction here)."""
    devnet = AnvilDevnet(get_profile("arbitrum"), stamp_blocks=False)
    try:
        deployment, session = deploy_system(devnet, build)
        yield Alpsim(devnet, deployment, session)
    finally:
        devnet.close()


def _mint(sim, who: int, units: int) -> dict:
    token = sim.contracts["collateral"]
    return {"from": sim.deployment.deployer, "to": token.address, "gas": GAS,
            "data": token.encode("mint", sim.address(who), units)}


def _overdraw(sim, who: int) -> dict:
    """A transfer of more than `who` holds: reverts with ERC20InsufficientBalance."""
    token = sim.contracts["collateral"]
    return {"from": sim.address(who), "to": token.address, "gas": GAS,
            "data": token.encode("transfer", sim.address(2), sim.collateral_units(who) + 1)}


def test_logs_blocks_code_and_mined_transactions(system):
    sim, session = system, system.session
    token = sim.contracts["collateral"]
    tx = _mint(sim, 1, 12_345)
    receipt = session.send(tx)
    number = receipt["blockNumber"]
    transfer = "0x" + bytes(receipt["logs"][0]["topics"][0]).hex()
    logs = session.logs(token.address, [transfer], number, number)
    assert [session.decode_log(log)["value"] for log in logs] == [12_345]
    assert logs[0]["blockNumber"] == number
    assert session.logs(sim.contracts["pool"].address, [transfer], number, number) == []
    assert session.logs(token.address, [[transfer], None, "0x" + bytes(12).hex() + sim.address(1)[2:].lower()],
                        number) == logs
    block = session.block(number)
    assert block == session.block("latest") and block.number == sim.devnet.block_number
    assert block.timestamp == sim.devnet.timestamp and len(block.hash) == 32
    assert session.block(number - 1).timestamp <= block.timestamp and session.block(number - 1).hash != block.hash
    assert len(session.code_at(sim.contracts["trading"].address)) > 100 and session.code_at(sim.address(1)) == b""
    sim.devnet.mine()
    assert session.logs(token.address, [transfer], number + 1) == []  # from a cursor at the head
    mined = session.mined_transaction(receipt["transactionHash"])
    assert mined["to"] == token.address
    # revm keeps no transaction data (its receipts are what it keeps)
    assert mined["data"] == (b"" if sim.devnet.backend_name == "revm" else bytes.fromhex(tx["data"][2:]))


def test_send_each_decodes_a_revert_and_sends_the_rest(system):
    sim, session = system, system.session
    before = sim.collateral_units(3)
    heard: list[dict] = []
    session.receipt_listeners.append(lambda tx, receipt: heard.append(receipt))
    try:
        outcomes = session.send_each([_mint(sim, 3, 5), _overdraw(sim, 4), _mint(sim, 3, 7)])
    finally:
        session.receipt_listeners.pop()
    first, revert, last = outcomes
    assert isinstance(revert, errors.ERC20InsufficientBalance) and revert.tx_hash
    assert (revert.contract, revert.function) == ("MockCollateral", "transfer")
    assert first["status"] == last["status"] == 1 and heard == [first, last]
    assert first["blockNumber"] < last["blockNumber"]  # one block each: this client stamps them
    assert sim.collateral_units(3) == before + 12
    assert session.send_each([]) == []


def test_the_chain_clock_says_the_next_blocks_timestamp(system, live):
    clock, devnet = system.devnet.chain_clock, system.devnet
    assert (clock.block_number, clock.timestamp) == (devnet.block_number, devnet.timestamp)
    assert clock.next_timestamp == devnet.clock.next_timestamp
    devnet.advance_time(60)
    assert clock.next_timestamp == devnet.clock.next_timestamp >= clock.timestamp
    # a node keeping its own time: its head's timestamp, plus one
    assert live.devnet.chain_clock.next_timestamp == live.devnet.timestamp + 1


def test_pipelined_sends_are_numbered_here_and_a_revert_is_not_retried(live):
    sim, session = live, live.session
    assert session.pipelined and not sim.session.devnet.stamp_blocks
    before = sim.collateral_units(5)
    first, revert, last = session.send_each([_mint(sim, 5, 1), _overdraw(sim, 6), _mint(sim, 5, 2)])
    assert isinstance(revert, errors.ERC20InsufficientBalance) and (revert.contract, revert.function) == (
        "MockCollateral", "transfer")
    assert session.mined_transaction(revert.tx_hash)["to"] == sim.contracts["collateral"].address
    assert sim.collateral_units(5) == before + 3
    assert (first["blockNumber"], first["transactionIndex"]) < (last["blockNumber"], last["transactionIndex"])


def test_a_lagging_pending_nonce_is_tried_again(live, monkeypatch):
    """Right after a receipt a node's pending nonce can lag the transaction just mined: the
    node refuses the transaction numbered from it ("nonce too low"), and it goes once the
    count has caught up."""
    sim, session, devnet = live, live.session, live.devnet
    deployer = sim.deployment.deployer
    session.send(_mint(sim, 5, 1))  # numbered by the node
    real, asked = devnet.node_nonce, []

    def lagging(sender: str) -> int:
        asked.append(sender)
        return real(sender) - (1 if len(asked) == 1 else 0)

    devnet.forget_nonces()
    monkeypatch.setattr(devnet, "node_nonce", lagging)
    before = sim.collateral_units(5)
    (receipt,) = session.send_each([_mint(sim, 5, 9)])
    assert receipt["status"] == 1 and sim.collateral_units(5) == before + 9
    assert asked == [deployer, deployer]
    # the count it used is kept: the next batch takes the larger of it and the node's
    monkeypatch.setattr(devnet, "node_nonce", lambda sender: 0)
    (again,) = session.send_each([_mint(sim, 5, 1)])
    assert again["status"] == 1


def test_any_other_refusal_is_raised_at_once(live, monkeypatch):
    sim, devnet = live, live.devnet
    asked: list[str] = []
    real = devnet.node_nonce
    monkeypatch.setattr(devnet, "node_nonce", lambda sender: asked.append(sender) or real(sender))
    stranger = "0x" + "11" * 20  # no key on the node
    tx = {**_mint(sim, 5, 1), "from": stranger}
    with pytest.raises(Web3RPCError, match="No Signer available"):
        sim.session.send_each([tx])
    assert len(asked) == 1


def test_no_web3_outside_the_devnet_backends():
    """Every read and send goes through the Session: no `.w3` in the package outside its devnets."""
    uses = []
    for path in sorted(SRC.rglob("*.py")):
        if "devnet" in path.relative_to(SRC).parts:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"\.w3\b", line):
                uses.append(f"{path.relative_to(SRC)}:{number}")
    assert uses == []
