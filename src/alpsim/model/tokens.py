"""The model's collateral accounts and transfers, mirroring the ERC20 moves of
`contracts/tokens/MockCollateral.sol` between the engine's escrow, the pool, the treasury and
traders (docs/mechanics.md sections 5 and 6). Balances are kept per address, in token units;
ESCROW, POOL and TREASURY name the engine, the pool and the treasury.
"""

from __future__ import annotations

from .errors import ModelRefusal

ESCROW, POOL, TREASURY = "escrow", "pool", "treasury"


class Tokens:
    """Collateral transfers of `ExchangeModel` (trading_engine.py holds the balances)."""

    def _move(self, frm: str, to: str, amount: int) -> None:
        if amount == 0:
            return
        if self.balances.get(frm, 0) < amount:
            raise ModelRefusal("ERC20InsufficientBalance", sender=frm, balance=self.balances.get(frm, 0), needed=amount)
        self.balances[frm] = self.balances.get(frm, 0) - amount
        self.balances[to] = self.balances.get(to, 0) + amount

    def _pool_receive(self, amount: int) -> None:
        """Escrow to the pool, booked in its balance (`AlpPool.increaseReserve`/`decreaseReserve`'s tokensIn)."""
        self._move(ESCROW, POOL, amount)
        self.pool.pool_balance += amount

    def _pool_pay(self, to: str, amount: int) -> None:
        """The pool pays out of its balance (`AlpPool.payTokens`)."""
        self._move(POOL, to, amount)
        self.pool.pool_balance -= amount
