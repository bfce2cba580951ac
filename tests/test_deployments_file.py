"""The deployments file carries what a client in another language needs besides addresses and
ABIs: the contracts' enums (read from Types.sol at deploy time) and the order encryption
(`alpsim.orders`, the key the trading engine publishes), and it round-trips."""

from __future__ import annotations

import json

import pytest

from alpsim.deployment import TYPES_SOURCE, Deployment, deploy_system, solidity_enums
from alpsim.devnet import EmbeddedDevnet
from alpsim.errors import ConfigError
from alpsim.keys import dev_private_key, public_key_bytes
from alpsim.orders import ORDER_PAYLOAD_BYTES, encode_order, seal, unseal
from alpsim.protocol import CloseReason, Order, RejectReason
from alpsim.profiles import get_profile

KEEPER = 9


@pytest.fixture(scope="module")
def deployed(build, tmp_path_factory):
    """(deployment, its file, devnet, session) on the embedded devnet."""
    devnet = EmbeddedDevnet(get_profile("arbitrum"))
    try:
        deployment, session = deploy_system(devnet, build)
        path = deployment.write(tmp_path_factory.mktemp("deployments") / "arbitrum.json")
        yield deployment, path, devnet, session
    finally:
        devnet.close()


def _camel(name: str) -> str:
    return "".join(w.capitalize() for w in name.split("_"))


def _ast_nodes(build, node_type: str) -> dict[str, list[str]]:
    """{name: member names} of Types.sol's `node_type` declarations, from the compiler's AST."""
    ast = json.loads(build.build_info.read_text())["output"]["sources"][TYPES_SOURCE]["ast"]
    return {n["name"]: [m["name"] for m in n["members"]] for n in ast["nodes"] if n["nodeType"] == node_type}


def test_the_file_has_enums_and_ecies_with_camel_case_keys(deployed):
    _, path, _, _ = deployed
    data = json.loads(path.read_text())
    assert list(data)[-2:] == ["enums", "ecies"]
    assert list(data["enums"]) == ["RejectReason", "CloseReason", "RequestStatus", "RequestKind"]
    assert data["ecies"] == {
        "curve": "secp256k1",
        "keeperPublicKey": data["ecies"]["keeperPublicKey"],
        "ephemeralKeyCompressed": True,
        "hkdfKeyCompressed": False,
        "symmetricCipher": "aes-256-gcm",
        "nonceBytes": 12,
        "tagBytes": 16,
        "plaintextBytes": 87,
        "ciphertextBytes": 148,
        "plaintextLayout": [["pairId", 2], ["isLong", 1], ["leverage", 4], ["takeProfit", 16], ["stopLoss", 16],
                            ["acceptablePrice", 16], ["salt", 32]],
    }


def test_enums_are_the_compiled_contracts_and_the_python_mirrors(deployed, build):
    enums = deployed[0].enums
    # the compiler's own reading of Types.sol: same names, same order, numbered from 0
    compiled = _ast_nodes(build, "EnumDefinition")
    for name, members in enums.items():
        assert list(members) == compiled[name]
        assert list(members.values()) == list(range(len(members)))
    assert enums["RejectReason"] == {r.label: r.value for r in RejectReason}
    assert enums["CloseReason"] == {_camel(r.name): r.value for r in CloseReason}
    assert enums["CloseReason"]["TraderClose"] == 0
    # the model's request states and kinds, lower-cased
    assert [s.lower() for s in enums["RequestStatus"]] == ["none", "pending", "executed", "rejected", "cancelled"]
    assert list(enums["RequestKind"]) == ["Open", "Close"]


def test_enum_parser_ignores_comments_and_trailing_commas():
    source = """
    /// @notice enum Fake { Not, This }
    enum A { X, /* } */ Y, // Z }
        W, }
    /* enum B { Q } */
    enum B {Only}
    """
    assert solidity_enums(source, ("A", "B")) == {"A": {"X": 0, "Y": 1, "W": 2}, "B": {"Only": 0}}
    with pytest.raises(ConfigError, match="no enum C"):
        solidity_enums(source, ("A", "C"))


def test_the_key_is_the_engines_and_the_keepers(deployed):
    deployment, _, _, session = deployed
    trading = session.bind("TradingEngine", deployment.contracts["trading"].address, deployment.contracts["trading"].abi)
    on_chain = bytes(trading.call("keeperPublicKey"))
    assert deployment.ecies.keeper_public_key == "0x" + on_chain.hex()
    assert on_chain == public_key_bytes(dev_private_key(KEEPER))


def test_the_ecies_block_describes_a_real_ciphertext(deployed, build):
    ecies = deployed[0].ecies
    key = bytes.fromhex(ecies.keeper_public_key[2:])
    order = Order(pair_id=3, is_long=True, leverage=1001, take_profit=2**128 - 1, stop_loss=7, acceptable_price=12345)
    salt = bytes(range(32))
    ciphertext = seal(order, salt, key)
    assert len(ciphertext) == ecies.ciphertext_bytes
    assert ecies.plaintext_bytes == ORDER_PAYLOAD_BYTES == sum(w for _, w in ecies.plaintext_layout)
    framing = 33 if ecies.ephemeral_key_compressed else 65
    assert ecies.ciphertext_bytes == framing + ecies.nonce_bytes + ecies.tag_bytes + ecies.plaintext_bytes
    assert unseal(ciphertext, dev_private_key(KEEPER)) == (order, salt)
    # packing the fields by the file's layout gives the bytes alpsim encrypts
    values = {"pairId": 3, "isLong": 1, "leverage": 1001, "takeProfit": 2**128 - 1, "stopLoss": 7,
              "acceptablePrice": 12345, "salt": int.from_bytes(salt, "big")}
    packed = b"".join(values[field].to_bytes(width, "big") for field, width in ecies.plaintext_layout)
    assert packed == encode_order(order, salt)
    # the layout's fields are the contract's Order struct (and the commitment's) plus the salt
    assert [f for f, _ in ecies.plaintext_layout] == _ast_nodes(build, "StructDefinition")["Order"] + ["salt"]


def test_round_trip_and_old_files(deployed, tmp_path):
    deployment, path, _, _ = deployed
    assert Deployment.read(path) == deployment
    again = deployment.write(tmp_path / "again.json")
    assert again.read_text() == path.read_text()

    # a file from before the enums and the ecies block still reads; writing one without them is refused
    data = json.loads(path.read_text())
    del data["enums"], data["ecies"]
    old = tmp_path / "old.json"
    old.write_text(json.dumps(data))
    legacy = Deployment.read(old)
    assert (legacy.enums, legacy.ecies) == (None, None)
    assert legacy.contracts == deployment.contracts
    with pytest.raises(ConfigError, match="needs enums and ecies"):
        legacy.write(tmp_path / "legacy.json")
    assert not (tmp_path / "legacy.json").exists()

    # still strict: an unknown key, or a malformed key, is an error
    for broken in ({**json.loads(path.read_text()), "extra": 1},
                   {**json.loads(path.read_text()), "ecies": {**data_ecies(path), "keeperPublicKey": "0x04ab"}},
                   {**json.loads(path.read_text()), "ecies": {**data_ecies(path), "surprise": True}}):
        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps(broken))
        with pytest.raises(ValueError):
            Deployment.read(bad)


def data_ecies(path) -> dict:
    return json.loads(path.read_text())["ecies"]
