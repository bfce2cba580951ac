"""The reference model of the exchange (docs/mechanics.md sections 3 to 11), mirroring
`contracts/trading/TradingEngine.sol`, the entry that composes the engine's parts, with the
engine's state (`contracts/trading/EngineStorage.sol`). `ExchangeModel` holds the whole system's state as
integers in the contracts' units; its methods come from one mixin per contract file:

    request_book.py    RequestBook.sol      requests, cancel, rejectOpen, execution fee
    open_pipeline.py   OpenPipeline.sol     executing opens
    close_pipeline.py  ClosePipeline.sol    executing closes
    triggers.py        Triggers.sol         liquidation, take-profit, stop-loss; price updates
    settlement.py      Settlement.sol       settling a position, fees and their split
    market.py          Market.sol           indexes, side aggregates, the pool's claims
    price_oracle.py    PriceOracle.sol      keeper and reference prices, the guard
    pair_registry.py   PairRegistry.sol     pairs and notional tiers
    pool.py            AlpPool.sol          deposits, withdrawals, NAV (and `PoolModel`)
    tokens.py          MockCollateral.sol   escrow, pool, treasury and LP balances per token, transfers

and the rest of the model: engine_settings.py (EngineSettings.sol: `Settings`), math.py
(TradeMath.sol), errors.py (Errors.sol: `ModelRefusal`), quote.py (no contract: it runs the
model). This module keeps what the engine itself does: applying the keeper's prices before an
execution. Time and block numbers come from outside (the chain, or a caller simulating one);
the model does not mine.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from ..protocol import Position, Request
from .close_pipeline import ClosePipeline
from .engine_settings import Settings
from .errors import ModelRefusal
from .market import Indexes, Market, Side
from .open_pipeline import OpenPipeline
from .pair_registry import DEFAULT_TIERS, PairParams, PairRegistry, default_pairs
from .pool import AlpPool, PoolModel
from .price_oracle import PriceOracle
from .request_book import RequestBook
from .settlement import Settler
from .tokens import ESCROW, POOL, TREASURY, Tokens
from .triggers import Triggers

__all__ = ["ESCROW", "POOL", "TREASURY", "ExchangeModel"]


@dataclass
class ExchangeModel(RequestBook, OpenPipeline, ClosePipeline, Triggers, Settler, Market, PriceOracle, PairRegistry,
                    AlpPool, Tokens):
    """The whole system's state, as integers in the contracts' units."""

    decimals: int
    settings: Settings
    pairs: list[PairParams] = field(default_factory=default_pairs)
    tiers: tuple[tuple[int, int], ...] = DEFAULT_TIERS
    holding_rate_per_hour_wad: int = 10**13
    funding_rate_per_hour_wad: int = 10**14
    max_price_age_s: int = 60
    circuit_breaker_bps: int = 100
    worse_price_bps: int = 10
    pool: PoolModel | None = None
    # state
    balances: dict[str, int] = field(default_factory=dict)
    """The payout token's balances, holder -> units."""
    asset_balances: dict[str, dict[str, int]] = field(default_factory=dict)
    """The other basket assets' balances, asset key -> holder -> units."""
    token_balances: dict[str, int] = field(default_factory=dict)
    token_allowance_ok: dict[str, bool] = field(default_factory=dict)
    platform_token_price: int = 0
    keeper_prices: dict[int, tuple[int, int]] = field(default_factory=dict)  # pair -> (price, at)
    settled_until: dict[int, int] = field(default_factory=dict)  # pair -> until when its price is settled
    reference_prices: dict[int, tuple[int, int]] = field(default_factory=dict)
    reference_feeds: set[int] = field(default_factory=set)  # price ids with a reference feed
    indexes: dict[int, Indexes] = field(default_factory=dict)
    longs: dict[int, Side] = field(default_factory=dict)
    shorts: dict[int, Side] = field(default_factory=dict)
    positions: dict[int, Position] = field(default_factory=dict)
    requests: dict[int, Request] = field(default_factory=dict)
    referred: set[str] = field(default_factory=set)
    fee_in_token: set[str] = field(default_factory=set)
    executions: dict[int, tuple[int, int]] = field(default_factory=dict)  # pair -> (block, count)
    next_request_id: int = 1  # a position's id is its open request's

    def __post_init__(self) -> None:
        if self.pool is None:
            self.pool = PoolModel(decimals=self.decimals)

    @property
    def scale(self) -> int:
        return 10 ** (18 - self.decimals)

    def copy(self) -> "ExchangeModel":
        return copy.deepcopy(self)

    def apply_prices(self, prices: dict[int, int], now: int, triggers_run: bool = False) -> None:
        """As `TradingEngine._applyPrices`: each pair accrues, then takes its price at the oracle:
        `set_settled_price` when the triggers run at it, else `set_price`."""
        # a dict names each pair once, as the contract requires
        for pair_id, price in prices.items():
            if pair_id >= len(self.pairs) or price == 0 or price > 2**128 - 1:
                raise ModelRefusal("InvalidPriceInput", pairId=pair_id)
            self.accrue(pair_id, now)  # before the price: see `_settled_elapsed`
            if triggers_run:
                self.set_settled_price(pair_id, price, now)
            else:
                self.set_price(pair_id, price, now)
