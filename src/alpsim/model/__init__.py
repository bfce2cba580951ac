"""The pure-Python reference model: integer arithmetic mirroring the contracts' scales and
rounding, no chain needed. The contracts are tested against it."""

from .pool import PoolModel

__all__ = ["PoolModel"]
