"""The pure-Python reference model: integer arithmetic mirroring the contracts' scales and
rounding, no chain needed. The contracts are tested against it. One module per contract file
(trading_engine.py lists them); `ExchangeModel` composes them."""

from ..protocol import CloseReason, OpenCharges, Order, Position, RejectReason, Settlement
from .engine_settings import Settings
from .errors import ModelRefusal
from .pair_registry import PairParams, default_pairs
from .pool import PoolModel, PoolRefusal
from .trading_engine import ExchangeModel

__all__ = ["CloseReason", "ExchangeModel", "ModelRefusal", "OpenCharges", "Order", "PairParams", "PoolModel",
           "PoolRefusal", "Position", "RejectReason", "Settings", "Settlement", "default_pairs"]
