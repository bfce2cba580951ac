"""The alpsim client: one call per user action against a deployed system."""

from __future__ import annotations

import random
from decimal import Decimal
from functools import cached_property
from pathlib import Path
from typing import Literal

from .compiler import BuildResult
from .contracts import BoundContract, Session
from .deployment import Deployment, deploy_system
from .devnet import Devnet, start_devnet
from .errors import AlpsimError, ConfigError, UnknownNameError
from .keeper import Keeper
from .profiles import ChainProfile, get_profile
from .model.quote import fresh_liquidation_price
from .model.engine_settings import Settings
from .orders import PlainOrdersRefused, commitment, describe_devnet, own_devnet, plain_frame, seal
from .positions import CLOSE_REASONS, ClosedPosition, OpenedPosition, PositionInfo, position_from_chain
from .protocol import CloseReason, Order, RejectReason
from .model.pool import value_usd
from .units import BPS, WAD, Number, from_units, to_units, wad_to_decimal

ZERO_ADDRESS = "0x" + "00" * 20
MAX_UINT = 2**256 - 1
REQUEST_GAS = 500_000
"""Explicit gas of a trader's request (an open request uses about 130,000): many of them fit
in one block, which a 15,000,000 limit each would not allow."""


from .client_types import (Account, CloseRejected, CloseRequest, DepositResult, OpenRequest,  # noqa: F401
                           OrderRejected, PendingOpen, PoolState, WithdrawResult)


class AlpsimReader:
    """A read-only view of a deployed alpsim system on a devnet: the contract handles, unit
    conversions and every read of chain state (pool, balances, positions, settings) and the
    decoding of receipts. It sends no transaction and changes nothing on chain."""

    def __init__(self, devnet: Devnet, deployment: Deployment, session: Session | None = None):
        self.devnet = devnet
        self.closed: dict[int, ClosedPosition] = {}
        self.deployment = deployment
        self.session = session or Session(devnet)
        self.contracts: dict[str, BoundContract] = {
            role: self.session.bind(entry.name, entry.address, entry.abi)
            for role, entry in deployment.contracts.items()
        }
        self.decimals: int = self.contracts["collateral"].call("decimals")

    @property
    def profile(self) -> ChainProfile:
        return self.devnet.profile

    @property
    def pool_contract(self) -> BoundContract:
        return self.contracts["pool"]

    def address(self, who: Account) -> str:
        if isinstance(who, int):
            accounts = self.devnet.accounts
            if not 0 <= who < len(accounts):
                raise UnknownNameError("account index", str(who), [str(i) for i in range(len(accounts))])
            return accounts[who]
        return who

    # ----- collateral
    def to_units(self, amount: Number) -> int:
        return to_units(amount, self.decimals, "collateral amount")

    def collateral_units(self, who: Account) -> int:
        return self.contracts["collateral"].call("balanceOf", self.address(who))

    def collateral_balance(self, who: Account) -> Decimal:
        return from_units(self.collateral_units(who), self.decimals)

    def _asset_role(self, asset: str | None) -> str:
        entry = self._basket_entry(asset)
        return "collateral" if entry is None else entry.role

    def asset_token(self, asset: str | None = None) -> BoundContract:
        """The token of basket `asset` (its symbol or address; default the payout stablecoin)."""
        return self.contracts[self._asset_role(asset)]

    def _basket_entry(self, asset: str | None):  # noqa: ANN202
        """The basket entry of `asset` (symbol or token address): UnknownNameError naming the
        basket's symbols for any other value, before anything is sent."""
        if asset is not None and not isinstance(asset, str):
            raise UnknownNameError("basket asset", repr(asset), [e.symbol for e in self.deployment.basket])
        return self.deployment.basket_asset(asset)

    def asset_decimals(self, asset: str | None = None) -> int:
        entry = self._basket_entry(asset)
        return self.decimals if entry is None else entry.decimals

    def asset_units(self, who: Account, asset: str | None = None) -> int:
        """`who`'s balance of basket `asset`, in token units."""
        return self.asset_token(asset).call("balanceOf", self.address(who))

    def alp_balance_wad(self, who: Account) -> int:
        return self.contracts["alp"].call("balanceOf", self.address(who))

    # ----- pairs and settings
    def pair_id(self, pair: str | int) -> int:
        """The id of `pair`: its name, or an id checked to exist."""
        return self.deployment.pair_id(pair)

    @cached_property
    def settings(self) -> Settings:
        """The trading engine's settings, as the reference model's."""
        raw = self.contracts["trading"].call("settings")
        snake = {"".join("_" + ch.lower() if ch.isupper() else ch for ch in k): v for k, v in raw.items()}
        return Settings(**snake)

    @cached_property
    def keeper_public_key(self) -> bytes:
        return bytes(self.contracts["trading"].call("keeperPublicKey"))

    # ----- referrals and platform token
    def has_referral(self, who: Account) -> bool:
        return self.contracts["referrals"].call("hasReferral", self.address(who))

    def platform_token_units(self, who: Account) -> int:
        return self.contracts["platform_token"].call("balanceOf", self.address(who))

    # ----- receipts
    def _request_id(self, receipt: dict, event: str) -> int:
        return self.session.events(receipt, event)[0]["requestId"]

    def opened_from(self, pending: PendingOpen, balance_before: int, receipt: dict) -> OpenedPosition:
        """The position an execution opened, or OrderRejected (refund checked on chain)."""
        request_id, trader, request_receipt = pending.request_id, pending.trader, pending.receipt
        events = {e["event"]: e for e in self.session.events(receipt)}
        if "OpenRejected" in events:
            event = events["OpenRejected"]
            reason = RejectReason(event["reason"]).label
            spent = balance_before - self.collateral_units(trader)
            if spent != event["executionFeeTokens"]:
                raise AlpsimError(f"order {request_id} rejected ({reason}) but the refund is not on chain: "
                                  f"{spent} token units gone, {event['executionFeeTokens']} expected")
            raise OrderRejected(request_id, reason, event["refundTokens"], event["executionFeeTokens"])
        event = events["PositionOpened"]
        charges = event["charges"]
        return OpenedPosition(
            request_id=request_id, position=self.position_info(event["positionId"], event["position"]),
            oracle_price_wad=charges["oraclePrice"], slippage_wad=charges["slippageWad"],
            execution_fee_tokens=charges["executionFeeTokens"], open_fee_wad=charges["openFeeUsd"],
            open_fee_tokens=charges["openFeeTokens"], fee_in_token=event["position"]["feeInToken"],
            fee_discount_bps=charges["feeDiscountBps"], gas_request=request_receipt["gasUsed"],
            gas_execute=receipt["gasUsed"],
        )

    def closed_from(self, receipt: dict) -> list[ClosedPosition]:
        """The settlements in a receipt (closes, triggers, liquidations), also kept in `closed`."""
        out = []
        for event in self.session.events(receipt, "PositionClosed"):
            st = event["settlement"]
            closed = ClosedPosition(
                position=self.position_info(event["positionId"], event["position"]),
                reason=CLOSE_REASONS[CloseReason(st["reason"])], oracle_price_wad=st["oraclePrice"],
                exit_price_wad=st["exitPrice"], pnl_wad=st["pnlUsd"], close_fee_wad=st["closeFeeUsd"],
                holding_wad=st["holdingUsd"], funding_wad=st["fundingUsd"], payout_wad=st["payoutUsd"],
                payout_tokens=st["payoutTokens"], pool_delta_tokens=st["poolDeltaTokens"],
                fee_in_token=st["feeInToken"], block=receipt["blockNumber"], gas=receipt["gasUsed"],
            )
            self.closed[closed.position.id] = closed
            out.append(closed)
        return out

    # ----- positions
    def position_info(self, position_id: int, raw: dict) -> PositionInfo:
        """A position from the engine's raw struct (a `position` call's result, or an event's
        `position`), with its liquidation price at the current settings."""
        bare = position_from_chain(position_id, raw, self.deployment.pairs, 0)
        liq = fresh_liquidation_price(self.settings, self.decimals, bare.to_model(), self.has_referral(raw["trader"]))
        return bare.model_copy(update={"liquidation_price_wad": liq})

    def position(self, position_id: int) -> PositionInfo | None:
        raw = self.contracts["trading"].call("position", position_id)
        return None if raw["trader"] == ZERO_ADDRESS else self.position_info(position_id, raw)

    # ----- reads
    def pool(self) -> PoolState:
        from .quote import FACE_VALUE, basket_symbols

        pool, oracle = self.pool_contract, self.contracts["oracle"]
        tokens, decimals, targets, price_ids, held = pool.call("basket")
        symbols = basket_symbols(self, tokens)
        marks = [WAD if pid == FACE_VALUE else oracle.call("markPrice", pid) for pid in price_ids]
        values = [value_usd(h, d, p) for h, d, p in zip(held, decimals, marks)]
        total = sum(values)
        return PoolState(
            nav_wad=pool.call("nav"),
            alp_price_wad=pool.call("alpPrice"),
            alp_supply_wad=self.contracts["alp"].call("totalSupply"),
            reserve_wad=pool.call("reserveUsd"),
            balance_units=pool.call("poolBalance"),
            collateral_decimals=self.decimals,
            holdings={s: from_units(h, d) for s, h, d in zip(symbols, held, decimals)},
            weights_bps={s: (Decimal(0) if total == 0 else Decimal(v * BPS) / Decimal(total)).quantize(Decimal("0.01"))
                         for s, v in zip(symbols, values)},
            targets_bps=dict(zip(symbols, targets)),
            prices={s: wad_to_decimal(p) for s, p in zip(symbols, marks) if p},
            reserve_capacity_wad=pool.call("reserveCapacityUsd"),
        )

    def quote_lp(self, asset: str, amount: Number, withdraw: bool = False) -> dict:
        """What a deposit of `amount` whole tokens of basket `asset` (or, `withdraw`, a
        withdrawal of `amount` ALP for it) would give now, to the unit, from the reference model
        at the pool's state and prices (`alpsim.quote.quote_lp`: the keys of `alpsim quote-lp
        --json`). Sends nothing."""
        from .quote import quote_lp

        return quote_lp(self, asset, amount, withdraw)


class Alpsim(AlpsimReader):
    """A deployed alpsim system on a devnet, driven as trader, LP and keeper: every read of
    `AlpsimReader` plus every action that sends a transaction (funding, deposits, withdrawals,
    open and close requests, cancels, approvals, referrals, fee settings) and the keeper
    (`self.keeper`) that executes them."""

    def __init__(self, devnet: Devnet, deployment: Deployment, session: Session | None = None,
                 seed: int | None = None):
        self.rng = random.Random(seed) if seed is not None else random.SystemRandom()
        self._seeded = seed is not None
        self._approved: set[tuple[str, str]] = set()
        super().__init__(devnet, deployment, session)
        self.plain_orders_allowed = own_devnet(devnet)
        """Whether plain orders (a research switch, docs/mev.md) may be sent: only on a devnet
        alpsim started itself. The keeper reads them (its research mode) only then."""
        self.keeper = Keeper(self.session, self.deployment, self.devnet.chain_clock,
                             plain_orders=self.plain_orders_allowed)

    # ----- set-up
    @classmethod
    def launch(cls, chain: str | ChainProfile = "bnb", backend: str = "embedded", *, rpc_url: str | None = None,
               build: BuildResult | None = None, profiles_file: str | Path | None = None,
               seed: int | None = None, fork_url: str | None = None, accounts: int = 10,
               block_time_s: float | None = None) -> "Alpsim":
        """Starts a devnet for `chain` and deploys the whole system on it. `seed` makes salts
        and encryption randomness reproducible. `fork_url` starts anvil forking that chain and
        uses the profile's real collateral token. `accounts`: how many funded dev accounts
        (of the dev mnemonic) the devnet has. `block_time_s` (anvil only): the node mines a
        block every that many seconds (interval mining, a public mempool between blocks) and
        keeps its own time; the deployment's own transactions are mined at once."""
        from contextlib import nullcontext

        from .devnet import AnvilDevnet

        profile = chain if isinstance(chain, ChainProfile) else get_profile(chain, profiles_file)
        if block_time_s is not None:
            if backend != "anvil" or rpc_url or fork_url:
                raise ConfigError("block_time_s (interval mining) needs backend='anvil' on a fresh chain "
                                  "(no rpc_url, no fork_url)")
            if not 0 < block_time_s <= 60:
                raise ConfigError(f"block_time_s must be in (0, 60] seconds, got {block_time_s}")
            devnet = AnvilDevnet(profile, stamp_blocks=False, accounts=accounts, block_time_s=block_time_s)
        else:
            devnet = start_devnet(profile, "anvil" if fork_url else backend, rpc_url=rpc_url, fork_url=fork_url,
                                  accounts=accounts)
        try:
            on_demand = devnet.blocks_on_demand() if block_time_s is not None else nullcontext()
            with on_demand:
                deployment, session = deploy_system(devnet, build, real_collateral=fork_url is not None)
            return cls(devnet, deployment, session, seed=seed)
        except BaseException:
            devnet.close()
            raise

    def stop(self) -> None:
        """Stops the devnet (and its node, for anvil)."""
        self.devnet.close()

    def __enter__(self) -> "Alpsim":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def snapshot(self) -> tuple:
        """Snapshots the chain and the client's own state (keeper's books, approvals)."""
        import copy

        local = (set(self._approved), dict(self.closed), self.keeper.state(),
                 copy.copy(self.rng.getstate()) if self._seeded else None)
        return self.devnet.snapshot(), local

    def revert(self, snap: tuple) -> None:
        devnet_snap, local = snap
        self.devnet.revert(devnet_snap)
        approved, closed, keeper_state, rng_state = local
        self._approved, self.closed = set(approved), dict(closed)
        self.keeper.restore(keeper_state)
        if rng_state is not None:
            self.rng.setstate(rng_state)

    # ----- collateral
    def fund(self, who: Account, amount: Number, *, asset: str | None = None) -> None:
        """Gives `who` `amount` (whole tokens, e.g. "1000.5") of collateral or of basket `asset`
        (its symbol): minted on the devnet's mock; on a fork of a real chain, written into the
        token's balance storage (anvil's `anvil_setStorageAt`, as Foundry's `deal`)."""
        units = to_units(amount, self.asset_decimals(asset), "fund amount")
        if units <= 0:
            raise ConfigError(f"fund amount must be positive, got {amount}")
        token = self.asset_token(asset)
        holder = self.address(who)
        if self.deployment.contracts[self._asset_role(asset)].name == "MockCollateral":
            token.transact("mint", holder, units, sender=self.deployment.deployer)
        else:
            self._deal(token, holder, token.call("balanceOf", holder) + units)

    def _deal(self, token: BoundContract, holder: str, balance: int) -> None:
        from eth_abi import encode as abi_encode
        from eth_utils import keccak

        rpc = getattr(self.devnet, "rpc", None)
        if rpc is None:
            raise ConfigError("funding a real token needs an anvil node (anvil_setStorageAt)")
        for slot in range(0, 64):  # the balances mapping's slot: try each until balanceOf follows
            key = "0x" + keccak(abi_encode(["address", "uint256"], [holder, slot])).hex()
            old = rpc("eth_getStorageAt", [token.address, key, "latest"])
            rpc("anvil_setStorageAt", [token.address, key, "0x" + balance.to_bytes(32, "big").hex()])
            if token.call("balanceOf", holder) == balance:
                return
            rpc("anvil_setStorageAt", [token.address, key, old])
        raise ConfigError(f"could not find the balance storage of {token.address} to fund {holder}")

    # ----- LP
    def deposit_at_targets(self, who: Account, usd: Number) -> list[DepositResult]:
        """Funds `who` and deposits `usd` spread over the basket at its target weights, each
        asset's share at the keeper's price cut down to 8 decimals (or its own, if fewer), the
        payout stablecoin first; an asset whose share rounds to nothing is left out."""
        from decimal import ROUND_DOWN

        from .units import to_decimal

        total, out = to_decimal(usd, "usd"), []
        self.keeper.adopt_asset_prices()
        for entry in self.deployment.basket:
            wad = self.keeper.price_wad(entry.price_id)
            if wad is None:
                raise ConfigError(f"the keeper has no price for {entry.symbol}: set one first "
                                  f"(keeper.set_prices({{{entry.symbol!r}: ...}}))")
            tokens = (total * entry.target_bps / BPS / wad_to_decimal(wad)).quantize(
                Decimal(1).scaleb(-min(entry.decimals, 8)), rounding=ROUND_DOWN)
            if tokens > 0:
                self.fund(who, tokens, asset=entry.symbol)
                out.append(self.deposit(who, tokens, asset=entry.symbol))
        return out

    def deposit(self, who: Account, amount: Number, *, asset: str | None = None,
                min_alp_out: Number = 0) -> DepositResult:
        """Approves and deposits `amount` (whole tokens) of basket `asset` (its symbol; default
        the payout stablecoin) for ALP."""
        units = to_units(amount, self.asset_decimals(asset), "deposit amount")
        if units < 0:
            raise ConfigError(f"deposit amount must not be negative, got {amount}")
        return self.deposit_units(who, units, asset=asset, min_alp_out_wad=to_units(min_alp_out, 18))

    def deposit_units(self, who: Account, amount_units: int, *, asset: str | None = None,
                      min_alp_out_wad: int = 0) -> DepositResult:
        lp = self.address(who)
        token = self.asset_token(asset)
        token.transact("approve", self.pool_contract.address, amount_units, sender=lp)
        self.keeper.fresh_basket_prices(asset)
        receipt = self.pool_contract.transact("deposit", token.address, amount_units, min_alp_out_wad, sender=lp)
        event = self.session.events(receipt, "Deposit")[0]
        return DepositResult(lp=lp, amount_units=amount_units, alp_out_wad=event["alpOut"], fee_wad=event["feeUsd"],
                             unlocks_at=event["unlocksAt"], gas_used=receipt["gasUsed"])

    def withdraw(self, who: Account, alp: Number | Literal["all"] = "all", *, asset: str | None = None,
                 min_out: Number = 0) -> WithdrawResult:
        """Redeems `alp` ALP (or all the holder's ALP) for basket `asset` (default the payout
        stablecoin)."""
        lp = self.address(who)
        alp_wad = self.alp_balance_wad(lp) if alp == "all" else to_units(alp, 18, "ALP amount")
        return self.withdraw_wad(lp, alp_wad, asset=asset,
                                 min_out_units=to_units(min_out, self.asset_decimals(asset), "minimum out"))

    def withdraw_wad(self, who: Account, alp_wad: int, *, asset: str | None = None,
                     min_out_units: int = 0) -> WithdrawResult:
        lp = self.address(who)
        token = self.asset_token(asset)
        self.keeper.fresh_basket_prices(asset)
        receipt = self.pool_contract.transact("withdraw", alp_wad, token.address, min_out_units, sender=lp)
        event = self.session.events(receipt, "Withdraw")[0]
        return WithdrawResult(lp=lp, alp_in_wad=alp_wad, amount_out_units=event["amountOut"], fee_wad=event["feeUsd"],
                              gas_used=receipt["gasUsed"])

    # ----- trader
    def _approve(self, token: str, owner: str, spender: str) -> None:
        if (token, owner) not in self._approved:
            self.contracts[token].transact("approve", spender, MAX_UINT, sender=owner)
            self._approved.add((token, owner))

    def request_open(self, who: Account, pair: str | int, side: str, amount: Number, leverage: int, *,
                     take_profit: Number = 0, stop_loss: Number = 0, acceptable_price: Number = 0,
                     plain: bool = False) -> PendingOpen:
        """Step one only: escrows `amount` behind a commitment and the encrypted order
        (`plain`: the order in the clear, a research switch; see `open`)."""
        trader, tx, order, salt, ciphertext, amount_units = self._open_request(
            who, pair, side, amount, leverage, take_profit, stop_loss, acceptable_price, plain)
        self._approve("collateral", trader, self.contracts["trading"].address)
        receipt = self.session.send(tx)
        return PendingOpen(self._request_id(receipt, "OpenRequested"), trader, order, salt, ciphertext, amount_units,
                           receipt)

    def request_opens(self, requests: list[OpenRequest], *, gas: int = REQUEST_GAS) -> list[PendingOpen]:
        """Many open requests, each the trader's own transaction, in as few blocks as their
        explicit `gas` limits allow, as many traders' requests share a block on a real chain.
        The traders must have approved the trading engine (`approve_collateral`)."""
        for r in requests:
            if not isinstance(r, OpenRequest):
                raise ConfigError(f"request_opens takes OpenRequest objects (alpsim.client.OpenRequest), got {r!r}")
        built = [self._open_request(r.who, r.pair, r.side, r.amount, r.leverage, r.take_profit, r.stop_loss,
                                    r.acceptable_price)
                 for r in requests]
        receipts = self.session.send_many([{**b[1], "gas": gas} for b in built])
        return [PendingOpen(self._request_id(receipt, "OpenRequested"), trader, order, salt, ciphertext, units, receipt)
                for (trader, _, order, salt, ciphertext, units), receipt in zip(built, receipts)]

    def _open_request(self, who: Account, pair: str | int, side: str, amount: Number, leverage: int,
                      take_profit: Number, stop_loss: Number, acceptable_price: Number, plain: bool = False
                      ) -> tuple[str, dict, Order, bytes, bytes, int]:
        """The request's transaction and what only the trader and the keeper know (`plain`:
        what everyone knows, the order in the clear)."""
        if plain is not False and plain is not True:
            raise ConfigError(f"plain must be True or False, got {plain!r}")
        if plain:
            self.check_plain_allowed()
        trader = self.address(who)
        if side not in ("long", "short"):
            raise ConfigError(f"side must be 'long' or 'short', got {side!r}")
        order = Order(self.pair_id(pair), side == "long", int(leverage), to_units(take_profit, 18, "take-profit"),
                      to_units(stop_loss, 18, "stop-loss"), to_units(acceptable_price, 18, "acceptable price"))
        salt = self.rng.getrandbits(256).to_bytes(32, "big")
        randomness = self.rng.getrandbits(8 * 48).to_bytes(48, "big") if self._seeded else None
        ciphertext = plain_frame(order, salt) if plain else seal(order, salt, self.keeper_public_key, randomness)
        trading = self.contracts["trading"]
        amount_units = self.to_units(amount)
        data = trading.encode("requestOpen", commitment(trader, order, salt), ciphertext, amount_units)
        return trader, {"from": trader, "to": trading.address, "data": data}, order, salt, ciphertext, amount_units

    def approve_collateral(self, *who: Account) -> None:
        """The traders' unlimited approvals of the trading engine (once per trader), sent
        together in as few blocks as they fit."""
        token, spender = self.contracts["collateral"], self.contracts["trading"].address
        owners = [o for o in dict.fromkeys(self.address(w) for w in who) if ("collateral", o) not in self._approved]
        self.session.send_many([{"from": o, "to": token.address, "data": token.encode("approve", spender, MAX_UINT),
                                 "gas": REQUEST_GAS} for o in owners])
        self._approved.update(("collateral", o) for o in owners)

    def check_plain_allowed(self) -> None:
        """PlainOrdersRefused unless this client runs on a devnet alpsim started itself."""
        if not self.plain_orders_allowed:
            raise PlainOrdersRefused(
                "plain (unencrypted) orders are a research switch for a devnet alpsim started itself "
                f"(embedded, revm, or its own anvil without a fork); this client's chain is "
                f"{describe_devnet(self.devnet)}: send hidden orders (plain=False)")

    def open(self, who: Account, pair: str | int, side: str, amount: Number, leverage: int, *,
             take_profit: Number = 0, stop_loss: Number = 0, acceptable_price: Number = 0,
             plain: bool = False) -> OpenedPosition:
        """One click: encrypts and sends the order, has the keeper execute it, and returns the
        position. A rejected order raises OrderRejected after checking the refund on chain.
        `plain=True` (research, docs/mev.md): the order travels in the clear under the same
        commitment, and the engine executes it exactly as a hidden one; refused
        (PlainOrdersRefused) anywhere but a devnet alpsim started itself."""
        trader = self.address(who)
        before = self.collateral_units(trader)
        pending = self.request_open(trader, pair, side, amount, leverage, take_profit=take_profit,
                                    stop_loss=stop_loss, acceptable_price=acceptable_price, plain=plain)
        receipt = self.keeper.execute_open(pending.request_id, pending.ciphertext)
        return self.opened_from(pending, before, receipt)

    def request_close(self, who: Account, position_id: int) -> tuple[int, dict]:
        receipt = self.contracts["trading"].transact("requestClose", position_id, sender=self.address(who))
        return self._request_id(receipt, "CloseRequested"), receipt

    def request_closes(self, closes: list[CloseRequest], *, gas: int = REQUEST_GAS) -> list[int]:
        """Many close requests (each the trader's own transaction) in as few blocks as their
        explicit `gas` limits allow; their request ids. A plain (trader, position id) tuple is
        a `CloseRequest` too."""
        trading = self.contracts["trading"]
        receipts = self.session.send_many([
            {"from": self.address(who), "to": trading.address, "data": trading.encode("requestClose", pid), "gas": gas}
            for who, pid in closes])
        return [self._request_id(receipt, "CloseRequested") for receipt in receipts]

    def close(self, who: Account, position_id: int) -> ClosedPosition:
        """Requests the close and has the keeper execute it; returns the settlement."""
        request_id, _ = self.request_close(who, position_id)
        receipt = self.keeper.execute_close(request_id)
        rejected = self.session.events(receipt, "CloseRejected")
        if rejected:
            raise CloseRejected(request_id, position_id, RejectReason(rejected[0]["reason"]).label)
        return self.closed_from(receipt)[0]

    def cancel(self, who: Account, request_id: int) -> dict:
        return self.contracts["trading"].transact("cancelRequest", request_id, sender=self.address(who))

    def register_referral_code(self, who: Account, code: str) -> None:
        self.contracts["referrals"].transact("registerCode", _code(code), sender=self.address(who))

    def bind_referral(self, who: Account, code: str) -> None:
        self.contracts["referrals"].transact("bindReferral", _code(code), sender=self.address(who))

    def fund_platform_token(self, who: Account, amount: Number) -> None:
        """Mints platform tokens to `who` and approves the trading engine to take fees in them."""
        trader = self.address(who)
        self.contracts["platform_token"].transact("mint", trader, to_units(amount, 18), sender=self.deployment.deployer)
        self._approve("platform_token", trader, self.contracts["trading"].address)

    def set_fee_in_token(self, who: Account, enabled: bool = True) -> None:
        self.contracts["trading"].transact("setFeeInToken", enabled, sender=self.address(who))

    # ----- positions
    def positions(self, who: Account | None = None) -> list[PositionInfo]:
        """Open positions (of `who`, or all), read in one call."""
        ids = sorted(self.keeper.open_positions)
        if not ids:
            return []
        raws = self.contracts["trading"].call("positionsOf", ids)
        trader = self.address(who) if who is not None else None
        return [self.position_info(i, r) for i, r in zip(ids, raws)
                if r["trader"] != ZERO_ADDRESS and (trader is None or r["trader"] == trader)]

def _code(code: str) -> bytes:
    raw = code.encode()
    if not 0 < len(raw) <= 32:
        raise ConfigError(f"a referral code is 1 to 32 bytes, got {code!r}")
    return raw.ljust(32, b"\0")

