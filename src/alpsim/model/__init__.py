"""The pure-Python reference model: integer arithmetic mirroring the contracts' scales and
rounding, no chain needed. The contracts are tested against it."""

from ..protocol import CloseReason, OpenCharges, Order, Position, RejectReason, Settlement
from .pool import PoolModel, PoolRefusal
from .trading import ExchangeModel, ModelRefusal, PairParams, Settings, default_pairs

__all__ = ["CloseReason", "ExchangeModel", "ModelRefusal", "OpenCharges", "Order", "PairParams", "PoolModel",
           "PoolRefusal", "Position", "RejectReason", "Settings", "Settlement", "default_pairs"]
