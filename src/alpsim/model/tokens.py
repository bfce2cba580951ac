"""The model's token accounts and transfers, mirroring the ERC20 moves of
`contracts/tokens/MockCollateral.sol` between the engine's escrow, the pool, the treasury,
traders and LPs (docs/mechanics.md sections 5 and 6, docs/mechanics.md section 10).
`balances` are the payout token's per address; `asset_balances` every other basket asset's,
asset key -> holder -> units. ESCROW, POOL and TREASURY name the engine, the pool and the
treasury.
"""

from __future__ import annotations

from .errors import ModelRefusal

ESCROW, POOL, TREASURY = "escrow", "pool", "treasury"


class Tokens:
    """Token transfers of `ExchangeModel` (trading_engine.py holds the books)."""

    def book_of(self, asset: str | None = None) -> dict[str, int]:
        """The balances of `asset` (None: the payout token)."""
        if asset is None or asset == self.pool.payout_key:
            return self.balances
        return self.asset_balances.setdefault(asset, {})

    def mint_asset(self, to: str, amount: int, asset: str | None = None) -> None:
        """Tokens minted to `to` (a devnet `mint`, or a fork's storage write)."""
        book = self.book_of(asset)
        book[to] = book.get(to, 0) + amount

    def _move(self, frm: str, to: str, amount: int, asset: str | None = None) -> None:
        if amount == 0:
            return
        book = self.book_of(asset)
        if book.get(frm, 0) < amount:
            raise ModelRefusal("ERC20InsufficientBalance", sender=frm, balance=book.get(frm, 0), needed=amount)
        book[frm] = book.get(frm, 0) - amount
        book[to] = book.get(to, 0) + amount

    def _pool_receive(self, amount: int) -> None:
        """Escrow to the pool, booked in its balance (`AlpPool.increaseReserve`/`decreaseReserve`'s tokensIn)."""
        self._move(ESCROW, POOL, amount)
        self.pool.pool_balance += amount

    def _pool_pay(self, to: str, amount: int) -> None:
        """The pool pays out of its balance (`AlpPool.payTokens`)."""
        self._move(POOL, to, amount)
        self.pool.pool_balance -= amount
