"""Fork mode without the internet: a first anvil plays the upstream chain (tokens with the
real symbols and decimals placed at the profile's real collateral and basket addresses), a
second anvil forks it, and the system deploys, trades and takes basket deposits there on the
real addresses."""

from __future__ import annotations

from decimal import Decimal

import pytest
from eth_abi import encode as abi_encode
from eth_utils import keccak

from alpsim.client import Alpsim
from alpsim.contracts import Session
from alpsim.devnet import AnvilProcess, RpcDevnet
from alpsim.profiles import get_profile

# OpenZeppelin 5 storage of MockCollateral (ERC20, then AccessControl): name 3, symbol 4, roles 5
NAME_SLOT, SYMBOL_SLOT, ROLES_SLOT = 3, 4, 5


def _slot_hex(slot: int | bytes) -> str:
    return "0x" + (slot if isinstance(slot, bytes) else slot.to_bytes(32, "big")).hex()


def _has_role_slot(role: bytes, account: str) -> bytes:
    role_data = keccak(abi_encode(["bytes32", "uint256"], [role, ROLES_SLOT]))
    return keccak(abi_encode(["address", "bytes32"], [account, role_data]))


def _place_token(chain, session, art, address: str, name: str, symbol: str, decimals: int, deployer: str) -> None:  # noqa: ANN001
    """Puts a MockCollateral with `name`, `symbol` and `decimals` at `address` (its code, and
    the storage of its name, symbol and the deployer's roles)."""
    mock = session.deploy(art, ["string", "string", "uint8", "address"], [name, symbol, decimals, deployer], deployer)
    chain.rpc("anvil_setCode", [address, chain.w3.eth.get_code(mock).to_0x_hex()])
    minter = keccak(text="MINTER")
    slots = [NAME_SLOT, SYMBOL_SLOT, _has_role_slot(b"\0" * 32, deployer), _has_role_slot(minter, deployer)]
    for slot in slots:
        value = chain.rpc("eth_getStorageAt", [mock, _slot_hex(slot), "latest"])
        chain.rpc("anvil_setStorageAt", [address, _slot_hex(slot), value])
    token = session.bind("real", address, art.abi)
    assert (token.call("symbol"), token.call("decimals")) == (symbol, decimals)


@pytest.fixture(params=["bnb", "arbitrum"])
def upstream(request, build):
    """An anvil playing the real chain, with the profile's collateral and every other basket
    token (WBNB, BTCB, WBTC, ...) at its real address, with its real symbol and decimals."""
    profile = get_profile(request.param)
    node = AnvilProcess(profile.chain_id)
    try:
        chain = RpcDevnet(profile, node.url, stamp_blocks=False)
        session = Session(chain)
        deployer = chain.accounts[0]
        art = build.artifacts["MockCollateral"]
        c = profile.collateral
        _place_token(chain, session, art, c.address, c.name, c.symbol, c.decimals, deployer)
        for a in profile.basket[1:]:
            _place_token(chain, session, art, a.address, a.name, a.token_symbol or a.symbol, a.decimals, deployer)
        yield profile, node
    finally:
        node.stop()


def test_fork_deploys_on_the_real_collateral_and_trades(upstream, build):
    profile, node = upstream
    with Alpsim.launch(profile, fork_url=node.url, build=build, seed=3) as sim:
        assert sim.devnet.chain_id == profile.chain_id
        assert sim.contracts["collateral"].address == profile.collateral.address
        assert sim.deployment.contracts["collateral"].name == "ERC20"
        assert sim.contracts["pool"].call("collateral") == profile.collateral.address
        sim.fund(7, 1_000_000)
        sim.deposit(7, 1_000_000)
        sim.keeper.set_prices({"BTC/USD": 60_000})
        sim.fund(1, 100)
        opened = sim.open(1, "BTC/USD", "long", 100, 100)
        sim.keeper.set_prices({"BTC/USD": 60_300})
        closed = sim.close(1, opened.position.id)
        assert closed.pnl_wad > 0
        assert sim.collateral_units(1) == closed.payout_tokens
        # every unit funded is with the trader, the pool, the treasury or the keeper
        holders = [sim.address(1), sim.contracts["pool"].address, sim.deployment.treasury, sim.deployment.keeper,
                   sim.contracts["trading"].address]
        assert sum(sim.collateral_units(h) for h in holders) == sim.to_units(1_000_100)
        assert sim.pool().balance_units == sim.collateral_units(sim.contracts["pool"].address)


def test_fork_basket_is_the_real_tokens_and_takes_deposits(upstream, build):
    profile, node = upstream
    with Alpsim.launch(profile, fork_url=node.url, build=build, seed=3) as sim:
        assert [(e.symbol, e.address, e.decimals, e.target_bps) for e in sim.deployment.basket] == \
            [(a.symbol, a.address or profile.collateral.address, a.decimals or profile.collateral.decimals, a.target_bps)
             for a in profile.basket]
        for entry in sim.deployment.basket[1:]:
            assert sim.deployment.contracts[entry.role].name == "ERC20"  # the real token, not a mock
            assert sim.asset_token(entry.symbol).call("decimals") == entry.decimals
        tokens = sim.contracts["pool"].call("basket")[0]
        assert tokens == [a.address or profile.collateral.address for a in profile.basket]
        sim.keeper.set_prices({"BTC/USD": 60_000, "ETH/USD": 3_000})
        sim.fund(7, 100_000)
        sim.deposit(7, 100_000)
        volatile = [("BTC", "0.5", 30_000)] + ([("BNB", "10", 6_000)] if profile.name == "bnb" else [])
        for symbol, amount, usd in volatile:
            sim.fund(1, amount, asset=symbol)  # written into the real token's balance storage (_deal)
            units = sim.asset_units(1, symbol)
            assert units == int(Decimal(amount).scaleb(sim.asset_decimals(symbol)))
            q = sim.quote_lp(symbol, amount)
            result = sim.deposit(1, amount, asset=symbol)
            assert result.alp_out_wad == q["units"]["alp_out_wad"] and q["units"]["action_usd_wad"] == usd * 10**18
            assert sim.asset_units(1, symbol) == 0
            assert sim.contracts["pool"].call("holdingsOf", sim.asset_token(symbol).address) == units
            assert sim.asset_units(sim.contracts["pool"].address, symbol) == units
        assert sim.pool().holdings["BTC"] == Decimal("0.5")


def test_fork_mode_refuses_a_chain_without_the_real_token(build):
    profile = get_profile("arbitrum")
    bare = AnvilProcess(profile.chain_id)
    try:
        with pytest.raises(Exception) as info:
            Alpsim.launch(profile, fork_url=bare.url, build=build)
        assert "no contract at 0xaf88d065e77c8cC2239327C5EDb3A432268e5831" in str(info.value)
    finally:
        bare.stop()
