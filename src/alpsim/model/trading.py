"""Compatibility only: the names `alpsim.model.trading` exported before the model was split by
contract file (see trading_engine.py for the map). Import from the modules named below instead;
this module is to be deleted once no importer is left.
"""

from ..protocol import CloseReason, OpenCharges, Order, Position, RejectReason, Request, Settlement
from .engine_settings import Settings
from .errors import ModelRefusal
from .market import HOUR, Indexes, Side
from .open_pipeline import OpenResult
from .pair_registry import DEFAULT_TIERS, PairParams, default_pairs
from .pool import PoolModel
from .tokens import ESCROW, POOL, TREASURY
from .trading_engine import ExchangeModel

__all__ = ["DEFAULT_TIERS", "ESCROW", "HOUR", "POOL", "TREASURY", "CloseReason", "ExchangeModel", "Indexes",
           "ModelRefusal", "OpenCharges", "OpenResult", "Order", "PairParams", "PoolModel", "Position",
           "RejectReason", "Request", "Settings", "Settlement", "Side", "default_pairs"]
