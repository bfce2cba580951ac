"""The ALP basket's part of the Mirror (docs/mechanics.md section 10): the pool's listed assets,
their prices and the basket's admin state taken from the chain; deposits and withdrawals in any
basket asset through the client, after the keeper's price pushes (played in the model, each at
its block's timestamp); the comparison of holdings, token balances and asset prices per asset.
`alpsim.mirror.Mirror` inherits it."""

from __future__ import annotations

from typing import Any

from .client import Account
from .errors import AlpsimError, UnknownNameError
from .model.pool import FACE_VALUE, BasketAsset
from .model.trading_engine import ESCROW, POOL, TREASURY

ZERO = "0x" + "00" * 20


class MirrorMismatch(AlpsimError, AssertionError):
    """The chain and the reference model disagree."""


class BasketMirror:
    """Needs the Mirror's `sim`, `model`, `accounts`, `_stamp`, `_key` and `_after`."""

    def _sync_asset_prices(self, keeper_prices: bool = True) -> None:
        """The reference feeds of the basket's price ids that are no pair's, and the keeper's
        prices there (the keeper sends them with its own transactions, outside the engine)."""
        oracle = self.sim.contracts["oracle"]
        for price_id in self._asset_price_ids():
            ref, ref_at = oracle.call("referencePrice", price_id)
            if ref:
                self.model.set_reference(price_id, ref, ref_at)
            price, at, until = oracle.call("keeperPrice", price_id)
            if keeper_prices and price:
                self.model.keeper_prices[price_id] = (price, at)
                self.model.settled_until[price_id] = until

    def _asset_price_ids(self) -> list[int]:
        return sorted({a.price_id for a in self.model.pool.assets if a.price_id != FACE_VALUE}
                      - set(range(len(self.model.pairs))))

    def sync_basket(self) -> None:
        """Takes the pool's basket and settings as the admin left them (listings, targets, price
        ids, the fee spread, the price source, the assets' reference feeds): admin actions
        happen outside the mirror."""
        pool, oracle, model = self.sim.pool_contract, self.sim.contracts["oracle"], self.model.pool
        tokens, decimals, targets, price_ids, _ = pool.call("basket")
        for j, token in enumerate(tokens):
            if j >= len(model.assets):
                symbol = self._token(token).call("symbol")
                model.assets.append(BasketAsset(token, decimals[j], 0, price_ids[j], symbol))
            model.assets[j].target_bps, model.assets[j].price_id = targets[j], price_ids[j]
        model.fee_spread_bps = pool.call("feeSpreadBps")
        model.mint_fee_bps, model.burn_fee_bps = pool.call("mintFeeBps"), pool.call("burnFeeBps")
        model.cooldown_s, model.max_reserve_bps = pool.call("cooldownSeconds"), pool.call("maxReserveBps")
        if pool.call("priceSource") != ZERO:
            self.model.set_pool_price_source()
        asset_ids = self._asset_price_ids()
        for price_id in asset_ids:
            if oracle.call("referenceFeed", price_id) != ZERO:
                self.model.set_reference_feed(price_id)
        if asset_ids:
            self._sync_asset_prices()

    def _token(self, address: str):  # noqa: ANN202
        """A basket asset's ERC20, bound with the payout token's ABI (MockCollateral's)."""
        return self.sim.session.contract("basket asset", address, self.sim.contracts["collateral"].abi)

    def asset_key(self, asset: str | None) -> str | None:
        """A basket asset's key in the model (its address) from its symbol or address; None (the
        payout token) stays None."""
        if asset is None:
            return None
        try:
            entry = self.sim.deployment.basket_asset(asset)
        except UnknownNameError:
            entry = None
        if entry is not None:
            return entry.address
        for a in self.model.pool.assets:
            if asset in (a.key, a.symbol) or asset.lower() == a.key.lower():
                return a.key
        return asset  # not listed: the chain and the model refuse it (AssetNotInBasket)

    def _asset_decimals(self, key: str | None) -> int:
        assets = self.model.pool.assets
        return next((a.decimals for a in assets if a.key == key), self.sim.decimals) if key else self.sim.decimals

    def _client_asset(self, key: str | None) -> str | None:
        """The client's name of a model key: None (the payout token) or a token address."""
        return None if key is None or key == self.model.pool.payout_key else key

    def fresh_basket_prices(self, asset: str | None = None) -> None:
        """The keeper's pushes before an LP action (`Keeper.fresh_basket_prices`: asset-only
        prices by `setAssetPrices`, pair-backed ones by a trigger run that accrues the market),
        each played in the model at its block's timestamp; the reference feeds read back."""
        self._play_pushes(self.sim.keeper.fresh_basket_prices(self._client_asset(asset)))

    def push_asset_prices(self, price_ids: list[int] | None = None) -> None:
        """`Keeper.push_asset_prices`: the keeper's asset-only prices (of `price_ids`, default
        all it has) recorded on the oracle, their stale reference feeds refreshed first."""
        receipt = self.sim.keeper.push_asset_prices(price_ids)
        self._play_pushes([] if receipt is None else [receipt])
        self._after()

    def _play_pushes(self, receipts: list[dict]) -> None:
        """The keeper's price transactions in the model, each at its block's timestamp: an
        oracle `setAssetPrices`, or an engine trigger run (which accrues the market); the
        reference feeds read back first (the keeper moves them outside the model)."""
        self._sync_references()
        oracle = self.sim.contracts["oracle"].address.lower()
        for receipt in receipts:
            ts, _ = self._stamp(receipt)
            pushed = self._pushed(receipt)
            if receipt["to"].lower() == oracle:
                self.model.set_asset_prices([i for i, _ in pushed], [p for _, p in pushed], ts)
            else:
                self.model.run_triggers([], dict(pushed), ts)

    def _client_action(self, action, blocks: int):  # noqa: ANN001, ANN202
        """Runs the client's LP action after `fresh_basket_prices`, checking it sent `blocks`
        transactions and no more (a push of its own would be one the model missed); the
        result and the timestamp of its last block."""
        start = self.sim.devnet.block_number
        result = action()
        latest = self.sim.session.block("latest")
        if latest.number != start + blocks:
            raise MirrorMismatch(f"the client mined {latest.number - start} blocks for an LP action, "
                                      f"the mirror expected {blocks}")
        return result, latest.timestamp

    def deposit_units(self, who: Account, units: int, asset: str | None = None, *, min_alp_out_wad: int = 0):
        """`Alpsim.deposit_units` of `units` of the payout token or of basket `asset` (its symbol or
        address) from `who`, after the keeper's pushes, and the model's; the client's result."""
        addr, key = self.sim.address(who), self.asset_key(asset)
        self.fresh_basket_prices(key)
        result, ts = self._client_action(lambda: self.sim.deposit_units(
            addr, units, asset=self._client_asset(key), min_alp_out_wad=min_alp_out_wad), 2)
        self.model.deposit(addr, units, ts, min_alp_out_wad, asset=key)
        self._after()
        return result

    def withdraw_wad(self, who: Account, alp_wad: int, asset: str | None = None, *, min_out_units: int = 0):
        """`Alpsim.withdraw_wad`: `alp_wad` ALP from `who` for the payout token or basket
        `asset`, after the keeper's pushes, and the model's; the client's result."""
        addr, key = self.sim.address(who), self.asset_key(asset)
        self.fresh_basket_prices(key)
        result, ts = self._client_action(lambda: self.sim.withdraw_wad(
            addr, alp_wad, asset=self._client_asset(key), min_out_units=min_out_units), 1)
        self.model.withdraw(addr, alp_wad, ts, min_out_units, asset=key)
        self._after()
        return result

    def set_asset_prices(self, prices_wad: dict[int, int]) -> None:
        """The keeper's asset-only prices (`PriceOracle.setAssetPrices`, price id -> 18-decimal
        USD); the reference feeds are read as they stand."""
        ids = sorted(prices_wad)
        receipt = self.sim.contracts["oracle"].transact("setAssetPrices", ids, [prices_wad[i] for i in ids],
                                                        sender=self.sim.keeper.address)
        ts, _ = self._stamp(receipt)
        self._sync_references()
        self.model.set_asset_prices(ids, [prices_wad[i] for i in ids], ts)
        self._after()

    def _check_basket(self, eq: Any) -> None:
        """The basket's listing, targets, price ids and holdings; each account's, the pool's and
        the engine's balance of each asset after the first."""
        sim, model = self.sim, self.model
        tokens, decimals, targets, price_ids, holdings = sim.pool_contract.call("basket")
        eq("basket", [(t, d, w, p, h) for t, d, w, p, h in zip(tokens, decimals, targets, price_ids, holdings)],
           model.pool.basket())
        for a in model.pool.assets[1:]:
            token, book = self._token(a.key), model.book_of(a.key)
            for addr in sorted(self.accounts | set(book) - {POOL, ESCROW, TREASURY}):
                eq(f"{a.symbol or a.key} of {addr}", token.call("balanceOf", addr), book.get(self._key(addr), 0))
            eq(f"{a.symbol or a.key} of the pool", token.call("balanceOf", sim.contracts["pool"].address),
               book.get(POOL, 0))
        oracle = sim.contracts["oracle"]
        for price_id in self._asset_price_ids():
            price, at, _ = oracle.call("keeperPrice", price_id)
            eq(f"keeper price {price_id}", (price, at), model.keeper_prices.get(price_id, (0, 0)))
