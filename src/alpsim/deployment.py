"""Deploys the system for a chain profile and writes `deployments/<chain>.json`: everything a
third-party client needs (addresses and full ABIs by role, the protocol's enums, and how to
encrypt an order to the keeper)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from eth_utils import to_checksum_address
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from .compiler import BuildResult, compile_contracts, linked, source_files, source_hash
from .contracts import Session
from .devnet import Devnet
from .paths import find_project


class ContractEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    """The Solidity contract name."""
    address: str
    abi: list[dict[str, Any]]


class CompilerInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str
    settings: dict[str, Any]


TYPES_SOURCE = "contracts/trading/Types.sol"
"""The Solidity file whose enums the deployments file carries (by name and number)."""
ENUMS = ("RejectReason", "CloseReason", "RequestStatus", "RequestKind")


class EciesInfo(BaseModel):
    """How a client encrypts an order to the keeper (docs/mechanics.md section 5, `alpsim.orders`): ECIES
    on secp256k1 as eciespy / eciesjs frame it (ephemeral public key, nonce, tag, ciphertext),
    with these settings. Keys are camelCase in the file, as eciesjs names its settings."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True)

    curve: str
    keeper_public_key: str = Field(pattern=r"^0x[0-9a-f]{128}$")
    """The keeper's key as the trading engine publishes it (`keeperPublicKey()`): 64 bytes,
    uncompressed without the 0x04 prefix (prepend 04 for eciesjs / eciespy)."""
    ephemeral_key_compressed: bool
    hkdf_key_compressed: bool
    symmetric_cipher: str
    nonce_bytes: int
    tag_bytes: int
    plaintext_bytes: int
    ciphertext_bytes: int
    """Every order's ciphertext has this length (every plaintext field has a fixed width)."""
    plaintext_layout: list[tuple[str, int]]
    """The packed plaintext, in order: (field, bytes), each an unsigned big-endian integer
    (isLong 0 or 1, prices 18-decimal USD, the salt the commitment's bytes32)."""


class BasketEntry(BaseModel):
    """One asset of the ALP basket as deployed, in the pool's listing order."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True)

    symbol: str
    """The asset's name in alpsim (scenarios, the client): USDT, BNB, BTC."""
    address: str
    decimals: int
    price_id: int
    """The oracle id it is valued at: a pair's id (BTC, ETH) or an asset-only id (128-255)."""
    target_bps: int
    role: str
    """Its token's entry in `contracts`: `collateral` for the payout stablecoin, else `asset_<symbol>`."""
    feed_role: str
    """Its reference feed's entry in `contracts` (`feed_BTC_USD` for a pair-backed asset)."""


class Deployment(BaseModel):
    """The deployments file. `enums` and `ecies` are written by every deployment; a file from
    before them still reads (both None), but `write` refuses to write one without them."""

    model_config = ConfigDict(extra="forbid")

    chain: str
    chain_id: int
    block: int
    """Block of the last deployment transaction: the system is complete from here on."""
    deployer: str
    compiler: CompilerInfo
    source_hash: str
    contracts: dict[str, ContractEntry]
    """One entry per role: collateral, alp, pool, pairs, oracle, market, referrals,
    platform_token, trading, and one reference feed per pair (feed_BTC_USD, ...)."""
    libraries: dict[str, str] = {}
    """The external libraries linked into the contracts' code, name to address: OpenPipeline,
    ClosePipeline and Triggers, which the trading engine runs by delegatecall. For a reader:
    a client never calls them (their errors and events are in `contracts.trading.abi`). A
    file from before them reads with none."""
    keeper: str
    """The keeper account (KEEPER role; its public key encrypts orders)."""
    treasury: str
    """Receives the protocol's half of trading fees."""
    pairs: list[str]
    """Pair names by pair id."""
    basket: list[BasketEntry] = []
    """The ALP basket in listing order (the payout stablecoin first). A file from before the
    basket reads with none (the pool then holds the payout stablecoin alone)."""
    enums: dict[str, dict[str, int]] | None = None
    """The contracts' enums, name to number, as declared in contracts/trading/Types.sol:
    RejectReason, CloseReason, RequestStatus, RequestKind (events carry the numbers)."""
    ecies: EciesInfo | None = None
    """How to encrypt an order to the keeper for `requestOpen`."""

    def pair_id(self, pair: str | int) -> int:
        """The id of `pair`: its name, or an id checked to exist."""
        from .errors import UnknownNameError

        if isinstance(pair, int):
            if 0 <= pair < len(self.pairs):
                return pair
            raise UnknownNameError("pair id", str(pair), [str(i) for i in range(len(self.pairs))])
        if pair not in self.pairs:
            raise UnknownNameError("pair", pair, self.pairs)
        return self.pairs.index(pair)

    def basket_asset(self, asset: str | None) -> BasketEntry | None:
        """The basket entry of `asset` (its symbol or token address); None: the payout stablecoin
        of a deployment from before the basket."""
        from .errors import UnknownNameError

        if asset is None:
            return self.basket[0] if self.basket else None
        for entry in self.basket:
            if asset in (entry.symbol, entry.address) or asset.lower() == entry.address.lower():
                return entry
        raise UnknownNameError("basket asset", asset, [e.symbol for e in self.basket] or [self.contracts["collateral"].address])

    def price_id(self, name: str | int) -> int:
        """The oracle id of a pair (its name or id) or of a basket asset (its symbol)."""
        if isinstance(name, str) and name not in self.pairs:
            for entry in self.basket:
                if entry.symbol == name:
                    return entry.price_id
        return self.pair_id(name)

    def write(self, path: Path) -> Path:
        missing = [name for name in ("enums", "ecies") if getattr(self, name) is None]
        if missing:
            from .errors import ConfigError

            raise ConfigError(f"a deployments file needs {' and '.join(missing)} (deploy_system sets them); "
                              "not writing one without")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.model_dump(by_alias=True), indent=2) + "\n")
        return path

    @classmethod
    def read(cls, path: str | Path) -> "Deployment":
        return cls.model_validate_json(Path(path).read_text())


def solidity_enums(source: str, names: tuple[str, ...] = ENUMS) -> dict[str, dict[str, int]]:
    """The `enum X { A, B, ... }` declarations of a Solidity source (comments stripped), each
    member numbered by its position; `names` must all be there (and come out in that order)."""
    from .errors import ConfigError

    code = re.sub(r"/\*.*?\*/", " ", source, flags=re.S)
    code = re.sub(r"//[^\n]*", " ", code)
    found: dict[str, dict[str, int]] = {}
    for match in re.finditer(r"\benum\s+([A-Za-z_]\w*)\s*\{([^}]*)\}", code):
        members = [m.strip() for m in match.group(2).split(",")]
        if members and members[-1] == "":
            members.pop()  # a trailing comma
        if not members or not all(re.fullmatch(r"[A-Za-z_]\w*", m) for m in members):
            raise ConfigError(f"cannot parse enum {match.group(1)}: {match.group(2).strip()!r}")
        found[match.group(1)] = {m: i for i, m in enumerate(members)}
    missing = [n for n in names if n not in found]
    if missing:
        raise ConfigError(f"{TYPES_SOURCE} declares no enum {', '.join(missing)}")
    return {n: found[n] for n in names}


def ecies_info(keeper_public_key: bytes) -> EciesInfo:
    """The order encryption of `alpsim.orders`, for a client in any language."""
    from ecies.consts import AEAD_TAG_LENGTH

    from .errors import ConfigError
    from .orders import ORDER_ECIES, ORDER_LAYOUT, ORDER_PAYLOAD_BYTES, SALT_BYTES

    if len(keeper_public_key) != 64:
        raise ConfigError(f"the keeper's public key is 64 bytes (uncompressed, no 0x04), got {len(keeper_public_key)}")
    layout = [(to_camel(field), width) for field, width in ORDER_LAYOUT] + [("salt", SALT_BYTES)]
    assert sum(width for _, width in layout) == ORDER_PAYLOAD_BYTES
    return EciesInfo(
        curve=ORDER_ECIES.elliptic_curve,
        keeper_public_key="0x" + keeper_public_key.hex(),
        ephemeral_key_compressed=ORDER_ECIES.is_ephemeral_key_compressed,
        hkdf_key_compressed=ORDER_ECIES.is_hkdf_key_compressed,
        symmetric_cipher=ORDER_ECIES.symmetric_algorithm,
        nonce_bytes=ORDER_ECIES.symmetric_nonce_length,
        tag_bytes=AEAD_TAG_LENGTH,
        plaintext_bytes=ORDER_PAYLOAD_BYTES,
        ciphertext_bytes=ORDER_ECIES.ephemeral_key_size + ORDER_ECIES.symmetric_nonce_length + AEAD_TAG_LENGTH
        + ORDER_PAYLOAD_BYTES,
        plaintext_layout=layout,
    )


def default_path(chain: str) -> Path:
    return find_project().deployments / f"{chain}.json"


ERC20_NAME = "ERC20"
"""Contract name recorded for a collateral the system did not deploy (fork mode)."""
KEEPER_ACCOUNT = 9


def _real_token(devnet: Devnet, session: Session, abi: list[dict], address: str, symbol: str,
                decimals: int) -> Any:
    """A real token on a forked chain, checked to be what the profile says."""
    from .errors import ConfigError

    if not devnet.code_at(address):
        raise ConfigError(f"no contract at {address}, the real {symbol}: fork mode needs a "
                          "node forking the profile's chain")
    erc20 = [e for e in abi if e.get("type") in ("function", "event", "error") and
             e.get("name") in ("balanceOf", "transfer", "transferFrom", "approve", "allowance", "decimals",
                               "symbol", "name", "totalSupply", "Transfer", "Approval")]
    token = session.bind(ERC20_NAME, address, erc20)
    found = token.call("symbol"), token.call("decimals")
    if found != (symbol, decimals):
        raise ConfigError(f"{address} is {found[0]} with {found[1]} decimals; the profile expects "
                          f"{symbol} with {decimals}")
    return token
TREASURY_ACCOUNT = 8

LIBRARY_DEPLOY_GAS = 6_000_000
"""Gas limit of a library's deployment: enough for EIP-170's largest code (24,576 bytes at 200
gas a byte, plus its init code); the engine's three fit one block."""


def linked_libraries(artifacts: dict[str, Any], name: str) -> list[str]:
    """The external libraries contract `name` runs (by delegatecall), directly or through
    another library, each once, every library after the ones it links."""
    order: list[str] = []

    def visit(contract: str) -> None:
        for library in artifacts[contract].libraries:
            if library not in order:
                visit(library)
                order.append(library)

    visit(name)
    return order


def contract_abi(artifacts: dict[str, Any], name: str) -> list[dict]:
    """The ABI of contract `name` as a client sees it at its address: its own, with the
    errors and events of the external libraries it links (each entry once). A library runs
    in the contract's frame, so its reverts and logs come from the contract's address; its
    functions are not the contract's and are left out (a library's ABI lists none that take
    storage anyway)."""
    abi = list(artifacts[name].abi)
    seen = {_abi_key(e) for e in abi}
    for library in linked_libraries(artifacts, name):
        for entry in artifacts[library].abi:
            if entry["type"] in ("error", "event") and _abi_key(entry) not in seen:
                seen.add(_abi_key(entry))
                abi.append(entry)
    return abi


def _abi_key(entry: dict) -> tuple:
    return entry["type"], entry.get("name"), tuple(p["type"] for p in entry.get("inputs", []))


def feed_role(pair_name: str) -> str:
    return "feed_" + pair_name.replace("/", "_")


def asset_role(symbol: str) -> str:
    return "asset_" + symbol


def _deploy_basket(profile: Any, pair_names: list[str], collateral: Any, pool: Any, oracle: Any, deploy: Any,
                   keeper: str, deployer: str, role_id: Any, real_tokens: bool, devnet: Devnet, session: Session,
                   art: dict[str, Any], entries: dict[str, ContractEntry]) -> list[BasketEntry]:
    from .errors import ConfigError

    pool.transact("setPriceSource", oracle.address, sender=deployer)
    out = []
    for index, a in enumerate(profile.basket):
        decimals = profile.basket_decimals(a)
        if a.pair is not None:
            if a.pair not in pair_names:
                raise ConfigError(f"basket asset {a.symbol}: no pair {a.pair!r} (pairs: {', '.join(pair_names)})")
            price_id, feed = pair_names.index(a.pair), feed_role(a.pair)
        else:
            price_id, feed = a.price_id, feed_role(a.symbol)
            aggregator = deploy(feed, "MockAggregator", ["string", "address"], [f"{a.symbol} / USD", deployer])
            aggregator.transact("grantRole", role_id(aggregator, "FEEDER_ROLE"), keeper, sender=deployer)
            oracle.transact("setReferenceFeed", price_id, aggregator.address, sender=deployer)
        if index == 0:
            token, role = collateral, "collateral"
            pool.transact("setPriceId", token.address, price_id, sender=deployer)
        else:
            role, symbol = asset_role(a.symbol), a.token_symbol or a.symbol
            if real_tokens:
                token = _real_token(devnet, session, art["MockCollateral"].abi, a.address, symbol, decimals)
                entries[role] = ContractEntry(name=ERC20_NAME, address=token.address, abi=token.abi)
            else:
                token = deploy(role, "MockCollateral", ["string", "string", "uint8", "address"],
                               [a.name, symbol, decimals, deployer])
            pool.transact("listAsset", token.address, price_id, sender=deployer)
        out.append(BasketEntry(symbol=a.symbol, address=token.address, decimals=decimals, price_id=price_id,
                               target_bps=a.target_bps, role=role, feed_role=feed))
    pool.transact("setTargets", [a.target_bps for a in profile.basket], sender=deployer)
    return out


def deploy_system(devnet: Devnet, build: BuildResult | None = None, deployer: str | None = None,
                  keeper: str | None = None, treasury: str | None = None,
                  keeper_public_key: bytes | None = None, real_collateral: bool = False) -> tuple[Deployment, Session]:
    """Deploys every contract in dependency order and wires their roles. The deployer holds
    the admin roles; `keeper` (default dev account 9) the keeper roles; `treasury` (default
    dev account 8) receives the protocol's fee share. `real_collateral` (fork mode) uses the
    profile's real collateral token instead of deploying a mock."""
    from .keys import dev_private_key, public_key_bytes
    from .model.pair_registry import default_pairs

    build = build or compile_contracts()
    profile = devnet.profile
    accounts = devnet.accounts
    deployer = deployer or accounts[0]
    keeper = keeper or accounts[KEEPER_ACCOUNT]
    treasury = treasury or accounts[TREASURY_ACCOUNT]
    if keeper_public_key is None:
        keeper_public_key = public_key_bytes(dev_private_key(KEEPER_ACCOUNT))
    session = Session(devnet)
    art = build.artifacts
    entries: dict[str, ContractEntry] = {}
    bound = {}

    libraries: dict[str, str] = {}

    def link(name: str) -> Any:
        """`name`'s artifact with its libraries' addresses, deploying the ones not deployed
        yet, together in one block that takes no simulated time: every later block has the
        timestamp it would have without them."""
        missing = [lib for lib in linked_libraries(art, name) if lib not in libraries]
        if not missing:
            return linked(art[name], libraries)
        with devnet.hold_time():
            while missing:  # a block of the libraries whose own libraries are deployed
                ready = [lib for lib in missing if all(dep in libraries for dep in art[lib].libraries)]
                receipts = session.send_many([{"from": deployer, "data": linked(art[lib], libraries).bytecode,
                                               "gas": LIBRARY_DEPLOY_GAS} for lib in ready])
                for lib, receipt in zip(ready, receipts):
                    libraries[lib] = to_checksum_address(receipt["contractAddress"])
                    session.bind(lib, libraries[lib], art[lib].abi, art[lib].method_identifiers)
                missing = [lib for lib in missing if lib not in libraries]
        return linked(art[name], libraries)

    def deploy(role: str, name: str, types: list[str], args: list[Any]) -> Any:
        address = session.deploy(link(name), types, args, deployer)
        abi = contract_abi(art, name)
        entries[role] = ContractEntry(name=name, address=address, abi=abi)
        bound[role] = session.bind(name, address, abi)
        return bound[role]

    def role_id(contract: Any, name: str) -> bytes:
        return contract.call(name)

    # 1. collateral (a mock with the real symbol and decimals), ALP, the pool
    c = profile.collateral
    if real_collateral:
        collateral = _real_token(devnet, session, art["MockCollateral"].abi, c.address, c.symbol, c.decimals)
        entries["collateral"] = ContractEntry(name=ERC20_NAME, address=collateral.address, abi=collateral.abi)
    else:
        collateral = deploy("collateral", "MockCollateral", ["string", "string", "uint8", "address"],
                            [c.name, c.symbol, c.decimals, deployer])
    alp = deploy("alp", "AlpToken", ["address"], [deployer])
    pool = deploy("pool", "AlpPool", ["address", "address", "address"], [collateral.address, alp.address, deployer])
    alp.transact("transferOwnership", pool.address, sender=deployer)
    # 2. pairs (docs/mechanics.md section 3), the oracle and one reference feed per pair
    pairs = deploy("pairs", "PairRegistry", ["address"], [deployer])
    oracle = deploy("oracle", "PriceOracle", ["address"], [deployer])
    pair_names = []
    for pair_id, p in enumerate(default_pairs()):
        pairs.transact("listPair", (p.name, True, False, p.tiered, p.max_leverage, p.spread_bps,
                                    p.depth_1pct_usd, p.max_oi_per_side_usd), sender=deployer)
        feed = deploy(feed_role(p.name), "MockAggregator", ["string", "address"], [p.name.replace("/", " / "), deployer])
        feed.transact("grantRole", role_id(feed, "FEEDER_ROLE"), keeper, sender=deployer)
        oracle.transact("setReferenceFeed", pair_id, feed.address, sender=deployer)
        pair_names.append(p.name)
    # 2b. the ALP basket (docs/mechanics.md section 10): a token per asset after the payout
    #     stablecoin, a reference feed per asset-only price, listed, priced and weighted
    basket = _deploy_basket(profile, pair_names, collateral, pool, oracle, deploy, keeper, deployer, role_id,
                            real_collateral, devnet, session, art, entries) if profile.basket else []
    # 3. market aggregates, referrals, platform token, the trading engine
    market = deploy("market", "Market", ["address", "address", "address"], [pairs.address, oracle.address, deployer])
    referrals = deploy("referrals", "ReferralRegistry", [], [])
    platform = deploy("platform_token", "PlatformToken", ["address"], [deployer])
    trading = deploy(
        "trading", "TradingEngine",
        ["address", "address", "address", "address", "address", "address", "address", "address", "uint256", "address"],
        [collateral.address, pool.address, pairs.address, oracle.address, market.address, referrals.address,
         platform.address, treasury, profile.execution_fee_wad, deployer],
    )
    # 4. roles: the engine moves the pool's reserve and balance, the market's aggregates and
    #    the oracle's prices; the keeper executes and feeds
    pool.transact("grantRole", role_id(pool, "TRADING_ROLE"), trading.address, sender=deployer)
    pool.transact("setNavSource", market.address, sender=deployer)
    market.transact("grantRole", role_id(market, "ENGINE_ROLE"), trading.address, sender=deployer)
    oracle.transact("grantRole", role_id(oracle, "UPDATER_ROLE"), trading.address, sender=deployer)
    # the oracle accrues the market before a guard setting or a feed changes (section 9)
    oracle.transact("setFundingAccrual", market.address, sender=deployer)
    oracle.transact("grantRole", role_id(oracle, "KEEPER_ROLE"), keeper, sender=deployer)
    trading.transact("grantRole", role_id(trading, "KEEPER_ROLE"), keeper, sender=deployer)
    for pair_id in range(len(pair_names)):  # listing pays the pairs' first storage writes, not the first traders
        market.transact("initPair", pair_id, sender=deployer)
        trading.transact("initPair", pair_id, sender=deployer)
    receipt = trading.transact("setKeeperPublicKey", keeper_public_key, sender=deployer)
    sources = source_files(find_project())

    deployment = Deployment(
        chain=profile.name,
        chain_id=devnet.chain_id,
        block=receipt["blockNumber"],
        deployer=deployer,
        compiler=CompilerInfo(version=build.solc_version, settings=build.settings),
        source_hash=source_hash(sources),
        contracts=entries,
        libraries=libraries,
        keeper=keeper,
        treasury=treasury,
        pairs=pair_names,
        basket=basket,
        enums=solidity_enums(sources[TYPES_SOURCE]),
        ecies=ecies_info(bytes(trading.call("keeperPublicKey"))),
    )
    return deployment, session
