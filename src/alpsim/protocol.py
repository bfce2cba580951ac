"""The Python mirror of `contracts/trading/Types.sol`: its enums `RejectReason` and `CloseReason`
(same order, same numbers) and its structs `Order`, `Request`, `Position`, `OpenCharges` and
`Settlement` (same fields, snake_case), amounts as integers in the contracts' units: 18-decimal
fixed point (`units.WAD`) for USD and prices, the token's own decimals for token amounts.

The reference model (`alpsim.model`), the client and the keeper share these types. `Request` and
`Position` carry their id besides the struct's fields; `Request` keeps `RequestKind` and
`RequestStatus` as lower-case names. This module imports only the standard library, so anything
in the package may import it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class RejectReason(IntEnum):
    """Mirrors `RejectReason` in contracts/trading/Types.sol (same order)."""

    NONE = 0
    PAIR_NOT_LISTED = 1
    PAIR_PAUSED = 2
    LEVERAGE_OUT_OF_RANGE = 3
    EXTREME_LEVERAGE_NOT_OFFERED = 4
    LEVERAGE_ABOVE_NOTIONAL_TIER = 5
    NOTIONAL_TOO_LARGE = 6
    NOTIONAL_TOO_SMALL = 7
    OPEN_INTEREST_CAP_EXCEEDED = 8
    RESERVE_EXCEEDED = 9
    SLIPPAGE_EXCEEDED = 10
    TAKE_PROFIT_BEYOND_CAP = 11
    TAKE_PROFIT_WRONG_SIDE = 12
    STOP_LOSS_WRONG_SIDE = 13
    OPEN_LOSS_TOO_HIGH = 14
    PRICE_STALE = 15
    CIRCUIT_BREAKER = 16
    TOO_MANY_EXECUTIONS = 17
    UNDECRYPTABLE_ORDER = 18
    MALFORMED_ORDER = 19

    @property
    def label(self) -> str:
        return "".join(w.capitalize() for w in self.name.split("_"))


class CloseReason(IntEnum):
    """Mirrors `CloseReason` in Types.sol: how a position ended."""

    TRADER_CLOSE = 0
    TAKE_PROFIT = 1
    STOP_LOSS = 2
    LIQUIDATION = 3


@dataclass(frozen=True)
class Order:
    """Mirrors `Order` in Types.sol: the hidden part of an open request, revealed at execution."""

    pair_id: int
    is_long: bool
    leverage: int
    take_profit: int = 0
    stop_loss: int = 0
    acceptable_price: int = 0


@dataclass
class Request:
    """Mirrors `Request` in Types.sol, plus its id; `kind` and `status` are the enums' names in lower case."""

    id: int
    trader: str
    kind: str  # "open" | "close"
    block: int
    amount_in: int  # open: tokens; close: position id
    commitment: bytes = b""
    status: str = "pending"  # pending | executed | rejected | cancelled
    execution_fee_tokens: int = 0  # open: fixed when requested


@dataclass
class Position:
    """Mirrors `Position` in Types.sol, plus its id."""

    id: int
    trader: str
    pair_id: int
    is_long: bool
    fee_in_token: bool
    leverage: int
    opened_at: int
    margin_tokens: int
    margin_usd: int
    notional_usd: int
    qty: int
    entry_price: int
    cost_usd: int
    take_profit: int
    stop_loss: int
    max_profit_usd: int
    holding_index: int
    funding_index: int


@dataclass(frozen=True)
class OpenCharges:
    """Mirrors `OpenCharges` in Types.sol: what an open cost, as charged."""

    oracle_price: int
    slippage_wad: int
    execution_fee_tokens: int
    open_fee_usd: int
    open_fee_tokens: int
    fee_discount_bps: int


@dataclass(frozen=True)
class Settlement:
    """Mirrors `Settlement` in Types.sol: how a position was settled."""

    reason: CloseReason
    oracle_price: int
    exit_price: int
    pnl_usd: int
    close_fee_usd: int
    holding_usd: int
    funding_usd: int
    payout_usd: int
    payout_tokens: int
    pool_delta_tokens: int
    fee_in_token: bool
