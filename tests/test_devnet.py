"""Every backend presents the profile's chain: chain id from RPC and from the opcode, signed
transactions for that chain id, snapshots, and block stamping at the profile's block time."""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_abi import encode
from eth_utils import keccak
from web3 import Web3

from alpsim.client import Alpsim
from alpsim.devnet import AnvilDevnet, EmbeddedDevnet, RevmDevnet
from alpsim.devnet.base import DEV_MNEMONIC, BlockClock, GENESIS_TIMESTAMP, MAX_BLOCKS_PER_ADVANCE
from alpsim.profiles import get_profile

BACKENDS = {"embedded": EmbeddedDevnet, "revm": RevmDevnet, "anvil": AnvilDevnet}
CHAIN_ID_SELECTOR = "0x" + keccak(text="chainId()")[:4].hex()


@pytest.fixture(params=[(b, c) for b in BACKENDS for c in ("bnb", "arbitrum")], ids=lambda p: f"{p[0]}-{p[1]}")
def devnet(request):
    backend, chain = request.param
    with BACKENDS[backend](get_profile(chain)) as net:
        yield net


def _probe(devnet, build) -> str:
    receipt = devnet.send({"from": devnet.accounts[0], "data": build.artifacts["ChainIdProbe"].bytecode})
    return receipt["contractAddress"]


def _opcode_chain_id(devnet, probe: str) -> int:
    return int.from_bytes(devnet.call({"from": devnet.accounts[0], "to": probe, "data": CHAIN_ID_SELECTOR}), "big")


def test_chain_id_from_rpc_and_opcode_survives_snapshot_and_revert(devnet, build):
    expected = devnet.profile.chain_id
    assert devnet.w3.eth.chain_id == expected
    probe = _probe(devnet, build)
    assert _opcode_chain_id(devnet, probe) == expected
    snap = devnet.snapshot()
    devnet.advance_time(60)
    devnet.revert(snap)
    assert devnet.w3.eth.chain_id == expected
    assert _opcode_chain_id(devnet, probe) == expected
    # a fresh deploy after the revert still runs on the profile's chain
    assert _opcode_chain_id(devnet, _probe(devnet, build)) == expected


def test_signed_transaction_for_the_profile_chain_id_is_accepted(devnet):
    Account.enable_unaudited_hdwallet_features()
    key = Account.from_mnemonic(DEV_MNEMONIC, account_path="m/44'/60'/0'/0/9")
    assert key.address == devnet.accounts[9]
    w3 = devnet.w3
    tx = {"to": devnet.accounts[8], "value": 12345, "gas": 21000, "maxFeePerGas": 10**11,
          "maxPriorityFeePerGas": 0, "nonce": w3.eth.get_transaction_count(key.address),
          "chainId": devnet.profile.chain_id, "type": 2}
    before = w3.eth.get_balance(devnet.accounts[8])
    tx_hash = w3.eth.send_raw_transaction(key.sign_transaction(tx).raw_transaction)
    assert w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)["status"] == 1
    assert w3.eth.get_balance(devnet.accounts[8]) == before + 12345
    wrong = {**tx, "nonce": tx["nonce"] + 1, "chainId": 1}
    with pytest.raises(Exception):
        w3.eth.send_raw_transaction(key.sign_transaction(wrong).raw_transaction)


def test_send_block_puts_transactions_in_one_block_and_returns_reverted_receipts(devnet, build):
    """`send_block`: one block, in order; a revert is a status-0 receipt with its revert data,
    and the other transactions of the block stand."""
    artifact = build.artifacts["RevertProbe"]
    probe = devnet.send({"from": devnet.accounts[0], "data": artifact.bytecode})["contractAddress"]
    fail = Web3().eth.contract(abi=artifact.abi).encode_abi("failWithReason", ["in one block"])
    first, reverted, last = devnet.send_block([
        {"from": devnet.accounts[1], "to": devnet.accounts[2], "value": 7},
        {"from": devnet.accounts[1], "to": probe, "data": fail},
        {"from": devnet.accounts[3], "to": devnet.accounts[2], "value": 5},
    ])
    assert first["blockNumber"] == reverted["blockNumber"] == last["blockNumber"] == devnet.block_number
    assert [r["transactionIndex"] for r in (first, reverted, last)] == [0, 1, 2]
    assert (first["status"], reverted["status"], last["status"]) == (1, 0, 1)
    error_string = bytes.fromhex("08c379a0")  # Error(string)
    assert devnet.revert_data(reverted["transactionHash"]) == error_string + encode(["string"], ["in one block"])
    assert devnet.revert_data(first["transactionHash"]) == b""


def test_ten_funded_dev_accounts(devnet):
    assert len(devnet.accounts) == 10 and len(set(devnet.accounts)) == 10
    assert devnet.accounts[0] == "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"  # same on both backends
    assert all(devnet.w3.eth.get_balance(a) >= 10**21 for a in devnet.accounts)


def test_blocks_are_stamped_at_the_profile_block_time(devnet):
    block_ms = devnet.profile.block_time_ms
    start = devnet.block_number
    devnet.mine(8)
    stamps = [devnet.w3.eth.get_block(start + i)["timestamp"] for i in range(1, 9)]
    expected = [(GENESIS_TIMESTAMP * 1000 + block_ms * (start + i)) // 1000 for i in range(1, 9)]
    assert stamps == expected
    if block_ms < 1000:  # sub-second blocks share timestamps, as on the real chain
        assert len(set(stamps)) < len(stamps)


def test_advance_time_moves_time_exactly_and_mines_blocks(devnet):
    t0, n0 = devnet.timestamp, devnet.block_number
    devnet.advance_time(3600)
    assert devnet.timestamp == t0 + 3600
    assert devnet.block_number - n0 == MAX_BLOCKS_PER_ADVANCE  # capped: an hour is many blocks
    devnet.advance_time(devnet.profile.block_time_ms * 3 / 1000)
    assert devnet.block_number - n0 == MAX_BLOCKS_PER_ADVANCE + 3


def test_every_block_of_advance_time_is_stamped_as_planned_even_while_time_is_held(devnet):
    planned: list[int] = []
    first = devnet.block_number + 1
    for seconds, held in [(3600, False), (0.25, False), (7.3, False), (100, False), (30, True), (0, True), (2, False)]:
        clock = BlockClock(0 if held else devnet.clock.block_time_ms, devnet.clock.head_ms)
        planned += [stamp_ms // 1000 for stamp_ms in clock.plan_advance(seconds)]
        if held:
            with devnet.hold_time():
                devnet.advance_time(seconds)
        else:
            devnet.advance_time(seconds)
    stamps = [devnet.w3.eth.get_block(n)["timestamp"] for n in range(first, devnet.block_number + 1)]
    assert stamps == planned
    assert len(set(stamps)) < len(stamps)  # both profiles' block times put blocks in one second


def test_web3_filters_on_the_embedded_devnet_see_every_new_block_and_log(build):
    """The embedded devnet mines past eth-tester's filter bookkeeping while no filter is
    installed; once one is, every block and log reaches it."""
    with Alpsim.launch("bnb", build=build) as sim:
        w3, start = sim.devnet.w3, sim.devnet.block_number
        blocks = w3.eth.filter("latest")
        token = sim.contracts["collateral"]
        transfers = w3.eth.filter({"address": token.address, "fromBlock": start + 1})
        sim.devnet.mine(2)
        sim.devnet.advance_time(10)
        sim.fund(1, 100)
        head = sim.devnet.block_number
        assert blocks.get_new_entries() == [w3.eth.get_block(n)["hash"] for n in range(start + 1, head + 1)]
        (log,) = transfers.get_new_entries()
        assert log["blockNumber"] == head and log["address"] == token.address
        w3.eth.uninstall_filter(blocks.filter_id)
        w3.eth.uninstall_filter(transfers.filter_id)
        sim.devnet.mine(1)  # back on the direct path
        assert sim.devnet.block_number == head + 1


def test_snapshot_revert_restores_state_and_clock(devnet):
    snap = devnet.snapshot()
    t0, n0 = devnet.timestamp, devnet.block_number
    balance = devnet.w3.eth.get_balance(devnet.accounts[1])
    devnet.send({"from": devnet.accounts[0], "to": devnet.accounts[1], "value": 10**18})
    devnet.advance_time(100)
    devnet.revert(snap)
    assert (devnet.timestamp, devnet.block_number) == (t0, n0)
    assert devnet.w3.eth.get_balance(devnet.accounts[1]) == balance
    devnet.mine(1)
    assert devnet.block_number == n0 + 1
    assert devnet.timestamp == (GENESIS_TIMESTAMP * 1000 + devnet.profile.block_time_ms * (n0 + 1)) // 1000
