"""The trading engine's shape (issue 27): one entry contract, `TradingEngine`, that holds the
state (one ERC-7201 struct) and calls three external libraries by job (OpenPipeline,
ClosePipeline, Triggers) from its guarded keeper functions. A client sees one address and the
ABI it always had; the libraries called at their own addresses change nothing; every deployed
contract leaves 8 KB of headroom under EIP-170."""

from __future__ import annotations

import json
import re
from dataclasses import astuple
from pathlib import Path

import pytest
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import keccak

from alpsim import errors
from alpsim.deployment import KEEPER_ACCOUNT, contract_abi, linked_libraries
from alpsim.devnet import TransactionReverted
from alpsim.keys import dev_private_key, public_key_bytes
from alpsim.paths import find_project

ROOT = find_project().root
RECORDED_ABI = Path(__file__).parent / "recorded_abi" / "TradingEngine.json"
LIBRARIES = ["ClosePipeline", "OpenPipeline", "Triggers"]
EIP170_BYTES = 24_576
HEADROOM_BYTES = 8_192
CONTEXT = "(address,uint256,address,address,address,address,address,address)"  # EngineContext
ORDER = "(uint256,bool,uint256,uint256,uint256,uint256)"
PRICES = {"BTC/USD": 60_000, "ETH/USD": 3_000, "SOL/USD": 150, "AAPL/USD": 200}
TRADER, LP = 1, 7


def _entry(e: dict) -> dict:
    """An ABI entry as a client decodes it: kind, name, mutability, parameters (names, types,
    struct components, indexing); no compiler-internal type names."""
    def param(p: dict) -> dict:
        out = {"name": p["name"], "type": p["type"]}
        if "components" in p:
            out["components"] = [param(c) for c in p["components"]]
        if "indexed" in p:
            out["indexed"] = p["indexed"]
        return out
    out = {"type": e["type"]}
    if "name" in e:
        out["name"] = e["name"]
    if "stateMutability" in e:
        out["stateMutability"] = e["stateMutability"]
    out["inputs"] = [param(p) for p in e.get("inputs", [])]
    if e["type"] == "function":
        out["outputs"] = [param(p) for p in e.get("outputs", [])]
    return out


def _key(e: dict) -> str:
    return json.dumps(_entry(e), sort_keys=True)


# ---------------------------------------------------------------- one address, one ABI

def test_the_engines_abi_is_the_one_clients_had(build, sim):
    """Every function, event and error a client decoded before the split (then: the engine's
    ABI merged with its module's) is there, the same to the parameter names and indexing;
    only the module's address (`module()`) and the forwarding fallback are gone. The errors
    raised only inside a library are in it too (CommitmentMismatch in OpenPipeline), and the
    deployments file carries exactly this ABI."""
    recorded = {json.dumps(e, sort_keys=True) for e in json.loads(RECORDED_ABI.read_text())}
    abi = contract_abi(build.artifacts, "TradingEngine")
    assert {_key(e) for e in abi} == recorded
    assert len(abi) == len(recorded)  # each entry once
    own_errors = {e["name"] for e in build.artifacts["TradingEngine"].abi if e["type"] == "error"}
    assert "CommitmentMismatch" not in own_errors
    assert {e["name"] for e in abi if e["type"] == "error"} >= own_errors | {"CommitmentMismatch"}
    assert sim.deployment.contracts["trading"].abi == abi
    assert not any(e.get("name") == "module" or e["type"] == "fallback" for e in abi)


def test_the_engine_links_three_libraries_recorded_in_the_deployment(build, sim):
    assert linked_libraries(build.artifacts, "TradingEngine") == LIBRARIES
    assert build.artifacts["TradingEngine"].libraries == LIBRARIES
    assert list(sim.deployment.libraries) == LIBRARIES
    addresses = set(sim.deployment.libraries.values())
    assert len(addresses) == 3 and sim.contracts["trading"].address not in addresses
    # nothing else links a library: the pool, market, oracle... deploy as they are
    assert [name for name, a in build.artifacts.items() if a.libraries] == ["TradingEngine"]


def test_a_call_trace_names_the_library_functions(build, sim):
    """A library's ABI leaves out its functions that take the engine's storage; the artifact
    keeps solc's method identifiers, so a call trace names them (`OpenPipeline.executeOne`)."""
    for library in LIBRARIES:
        selectors = _selectors(build, library)
        assert {name: bytes.fromhex(sel) for name, sel in
                ((sig.split("(")[0], sel) for sig, sel in build.artifacts[library].method_identifiers.items())} == selectors
        address = sim.deployment.libraries[library]
        for name, selector in selectors.items():
            assert sim.session.describe_call(address, selector + b"\0" * 64) == (library, name, {})
    assert sim.session.describe_call(sim.deployment.libraries["OpenPipeline"], b"\xde\xad\xbe\xef") == (
        "OpenPipeline", None, {})


def test_the_state_slot_is_the_erc7201_namespace():
    source = (ROOT / "contracts/trading/EngineStorage.sol").read_text()
    namespace = re.search(r"@custom:storage-location erc7201:(\S+)", source).group(1)
    slot = int(re.search(r"STATE_SLOT = (0x[0-9a-f]{64});", source).group(1), 16)
    expected = int.from_bytes(keccak((int.from_bytes(keccak(text=namespace), "big") - 1).to_bytes(32, "big")), "big")
    assert slot == expected & ~0xFF


def test_settings_and_keys_run_in_the_engines_storage(sim):
    trading = sim.contracts["trading"]
    before = trading.call("settings")
    trading.transact("setSettings", tuple({**before, "openFeeBps": 9}.values()), sender=sim.deployment.deployer)
    assert trading.call("settings") == {**before, "openFeeBps": 9}
    assert trading.call("keeperPublicKey") == public_key_bytes(dev_private_key(KEEPER_ACCOUNT))
    assert trading.call("nextRequestId") == 1


# ---------------------------------------------------------------- the libraries: reached only through the engine

def _library_calls(build) -> dict[str, tuple[set[str], str]]:
    """{engine function: (its modifiers, its mutability)} for each engine function that calls a
    library, read from the compiler's AST."""
    info = json.loads(build.build_info.read_text())
    ast = info["output"]["sources"]["contracts/trading/TradingEngine.sol"]["ast"]
    found: dict[str, tuple[set[str], str]] = {}

    def walk(node, function=None):
        if isinstance(node, dict):
            if node.get("nodeType") == "FunctionDefinition":
                function = node
            if (node.get("nodeType") == "MemberAccess" and node["expression"].get("nodeType") == "Identifier"
                    and node["expression"]["name"] in LIBRARIES and function is not None):
                modifiers = {m["modifierName"]["name"] for m in function.get("modifiers", [])}
                found[function["name"]] = (modifiers, function["stateMutability"])
            for value in node.values():
                walk(value, function)
        elif isinstance(node, list):
            for value in node:
                walk(value, function)

    walk(ast)
    return found


def test_every_library_call_is_from_a_guarded_keeper_function_or_a_view(build):
    calls = _library_calls(build)
    assert set(calls) == {"executeOpen", "executeOpenBatch", "executeClose", "executeCloseBatch", "runTriggers",
                          "isLiquidatable"}
    for function, (modifiers, mutability) in calls.items():
        if mutability == "view":
            assert function == "isLiquidatable"
        else:
            assert {"nonReentrant", "onlyKeeper"} <= modifiers, function


def _selectors(build, library: str) -> dict[str, bytes]:
    out = json.loads(build.build_info.read_text())["output"]["contracts"]
    source = build.artifacts[library].source
    return {sig.split("(")[0]: bytes.fromhex(sel) for sig, sel in out[source][library]["evm"]["methodIdentifiers"].items()}


def _context(sim) -> tuple:
    c = sim.contracts
    return (c["collateral"].address, 10 ** (18 - sim.decimals), c["pool"].address, c["pairs"].address,
            c["oracle"].address, c["market"].address, c["referrals"].address, c["platform_token"].address)


def _state_slot() -> int:
    source = (ROOT / "contracts/trading/EngineStorage.sol").read_text()
    return int(re.search(r"STATE_SLOT = (0x[0-9a-f]{64});", source).group(1), 16)


@pytest.fixture
def pending_open(sim):
    """A funded pool, prices, and an open request of TRADER's, executable (a block later)."""
    sim.fund(LP, 1_000_000)
    sim.deposit(LP, 1_000_000)
    sim.keeper.set_prices(PRICES)
    sim.keeper.push_prices()
    sim.fund(TRADER, 1_000)
    sim.approve_collateral(TRADER)
    pending = sim.request_open(TRADER, "BTC/USD", "long", 500, 20)
    sim.devnet.mine()
    return pending


def test_the_libraries_called_at_their_own_address_change_nothing(build, sim, pending_open):
    """A pipeline called straight at its address, by anyone (the keeper included), with the
    engine's state slot, the system's contracts and a request the engine would execute,
    reverts without data (Solidity's guard: a library's non-view function runs only by
    delegatecall) and with ether too; the request stays pending, and the engine then executes
    it. The view `isLiquidatable` at the library's address reads the library's own, empty
    storage: no position there."""
    keeper, trading = sim.deployment.keeper, sim.contracts["trading"]
    libraries = sim.deployment.libraries
    slot, ctx = _state_slot(), _context(sim)
    order, salt = astuple(pending_open.order), pending_open.salt
    rid = pending_open.request_id
    calls = [
        ("OpenPipeline", "executeOne", ["uint256", CONTEXT, "uint256", ORDER, "bytes32"], [slot, ctx, rid, order, salt]),
        ("OpenPipeline", "executeBatch", ["uint256", CONTEXT, "uint256[]", f"{ORDER}[]", "bytes32[]"],
         [slot, ctx, [rid], [order], [salt]]),
        ("ClosePipeline", "executeOne", ["uint256", CONTEXT, "uint256"], [slot, ctx, rid]),
        ("ClosePipeline", "executeBatch", ["uint256", CONTEXT, "uint256[]"], [slot, ctx, [rid]]),
        ("Triggers", "run", ["uint256", CONTEXT, "uint256[]"], [slot, ctx, [rid]]),
    ]
    for library, function, types, args in calls:
        data = "0x" + (_selectors(build, library)[function] + abi_encode(types, args)).hex()
        with pytest.raises(errors.UnknownRevert) as info:  # a transaction: one block of the request's ten
            sim.session.send({"from": keeper, "to": libraries[library], "data": data, "gas": 2_000_000})
        assert info.value.data == b"", (library, function)
        for sender, value in ((sim.address(TRADER), 0), (keeper, 10**18)):
            with pytest.raises(TransactionReverted) as raw:
                sim.devnet.call({"from": sender, "to": libraries[library], "data": data, "value": value})
            assert raw.value.data == b"", (library, function, sender)
    assert trading.call("request", rid)["status"] == 1  # Pending
    view = _selectors(build, "Triggers")["isLiquidatable"] + abi_encode(["uint256", CONTEXT, "uint256", "uint256"],
                                                                         [slot, ctx, rid, 1])
    out = sim.devnet.call({"from": keeper, "to": libraries["Triggers"], "data": "0x" + view.hex()})
    assert abi_decode(["bool"], out) == (False,)
    sim.keeper.execute_open(rid)
    assert trading.call("position", rid)["trader"] == sim.address(TRADER)


def test_a_revert_inside_a_library_decodes_as_before(sim, pending_open):
    """CommitmentMismatch is raised in OpenPipeline's code (in the engine's frame): the client
    decodes it from the engine's ABI to the same alpsim.errors class, with its arguments."""
    order, wrong_salt = astuple(pending_open.order), b"\x01" * 32
    assert pending_open.salt != wrong_salt
    with pytest.raises(errors.CommitmentMismatch) as info:  # the reveal is checked before any price
        sim.contracts["trading"].transact("executeOpen", pending_open.request_id, order, wrong_salt, [],
                                          sender=sim.deployment.keeper)
    assert info.value.requestId == pending_open.request_id
    assert info.value.contract == "TradingEngine" and info.value.function == "executeOpen"


def test_ether_sent_to_the_engine_is_refused(sim):
    """No function is payable and there is no receive or fallback: a transfer, or a call with
    value, reverts without data."""
    trading = sim.contracts["trading"]
    sender = sim.address(1)
    for data in ("0x", trading.encode("settings"), trading.encode("setFeeInToken", True), "0x12345678"):
        with pytest.raises(errors.UnknownRevert) as info:
            sim.session.send({"from": sender, "to": trading.address, "value": 10**18, "data": data, "gas": 200_000})
        assert info.value.data == b""
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


# ---------------------------------------------------------------- sizes

def test_every_deployed_contract_leaves_8_kb_under_eip170(build):
    """Libraries included: each runtime code is at most 24,576 - 8,192 = 16,384 bytes."""
    sizes = {name: (len(a.deployed_bytecode) - 2) // 2 for name, a in build.artifacts.items()}
    over = {name: size for name, size in sizes.items() if size > EIP170_BYTES - HEADROOM_BYTES}
    assert not over, over
    assert all(sizes[name] > 5_000 for name in ["TradingEngine", *LIBRARIES])  # real code, not stubs
