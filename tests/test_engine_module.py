"""The engine's cold functions live in `EngineModule`, which the engine deploys and reaches by
delegatecall (OpenZeppelin's `Proxy` fallback): one address, one ABI, one storage."""

from __future__ import annotations

import pytest

from alpsim import errors
from alpsim.deployment import KEEPER_ACCOUNT, contract_abi
from alpsim.keys import dev_private_key, public_key_bytes


def _names(abi, kind="function"):
    return {e["name"] for e in abi if e["type"] == kind}


def test_the_engines_abi_is_both_contracts(sim, build):
    engine = _names(build.artifacts["TradingEngine"].abi)
    module = _names(build.artifacts["EngineModule"].abi)
    merged = contract_abi(build.artifacts, "TradingEngine")
    assert {"settings", "setSettings", "cancelRequest", "request", "pendingClose", "keeperPublicKey"} <= module - engine
    assert _names(merged) == engine | module
    # each entry once, though both contracts inherit the roles, views and events of EngineStorage
    keys = [(e["type"], e.get("name"), tuple(p["type"] for p in e.get("inputs", []))) for e in merged]
    assert len(keys) == len(set(keys))
    assert sim.deployment.contracts["trading"].abi == merged


def test_module_functions_run_in_the_engines_storage(sim):
    trading = sim.contracts["trading"]
    module = trading.call("module")
    assert sim.devnet.w3.eth.get_code(module)  # deployed by the engine's constructor
    before = trading.call("settings")
    trading.transact("setSettings", tuple({**before, "openFeeBps": 9}.values()), sender=sim.deployment.deployer)
    assert trading.call("settings")["openFeeBps"] == 9
    assert trading.call("keeperPublicKey") == public_key_bytes(dev_private_key(KEEPER_ACCOUNT))


def test_the_module_called_directly_is_inert(sim, build):
    """At its own address the module sees its own, empty storage: no admin, no requests. The
    engine's state does not move."""
    trading = sim.contracts["trading"]
    module = sim.session.bind("EngineModule", trading.call("module"), build.artifacts["EngineModule"].abi)
    settings = trading.call("settings")
    with pytest.raises(errors.AccessControlUnauthorizedAccount):
        module.transact("setSettings", tuple({**settings, "openFeeBps": 9}.values()), sender=sim.deployment.deployer)
    with pytest.raises(errors.AccessControlUnauthorizedAccount):
        module.transact("pause", sender=sim.deployment.deployer)
    with pytest.raises(errors.UnknownRequest):
        module.transact("cancelRequest", 1, sender=sim.address(1))
    assert trading.call("settings") == settings and trading.call("paused") is False


def test_ether_sent_to_the_engine_is_refused(sim):
    """The fallback is payable (OpenZeppelin's Proxy), but nothing behind it takes value: a
    transfer, or a module call with value, reverts and the engine holds no ether."""
    trading = sim.contracts["trading"]
    sender = sim.address(1)
    for data in ("0x", trading.encode("settings"), trading.encode("setFeeInToken", True)):
        with pytest.raises(errors.UnknownRevert) as info:  # a bare revert: no function takes value
            sim.session.send({"from": sender, "to": trading.address, "value": 10**18, "data": data, "gas": 200_000})
        assert info.value.data == b""
    assert sim.devnet.w3.eth.get_balance(trading.address) == 0
    assert trading.call("feeInToken", sender) is False


def test_init_pair_is_admin_only_checked_and_idempotent(sim):
    """`initPair` (run for every pair by the deployment) writes the pair's execution counter;
    calling it again goes through, an unknown pair is refused, and only the admin may."""
    trading, admin = sim.contracts["trading"], sim.deployment.deployer
    pair_count = sim.contracts["pairs"].call("pairCount")
    receipt = trading.transact("initPair", 0, sender=admin)  # already done at deployment
    assert receipt["status"] == 1
    with pytest.raises(errors.UnknownPair) as info:
        trading.transact("initPair", pair_count, sender=admin)
    assert info.value.error_args == {"pairId": pair_count}
    with pytest.raises(errors.AccessControlUnauthorizedAccount):
        trading.transact("initPair", 0, sender=sim.address(1))
