"""The pure-Python reference model: integer arithmetic mirroring the contracts' scales and
rounding, no chain needed. The contracts are tested against it."""

from .pool import PoolModel, PoolRefusal
from .trading import (
    CloseReason,
    ExchangeModel,
    ModelRefusal,
    OpenCharges,
    Order,
    PairParams,
    Position,
    RejectReason,
    Settings,
    Settlement,
    default_pairs,
)

__all__ = ["CloseReason", "ExchangeModel", "ModelRefusal", "OpenCharges", "Order", "PairParams", "PoolModel",
           "PoolRefusal", "Position", "RejectReason", "Settings", "Settlement", "default_pairs"]
