"""Units: 18-decimal USD fixed point, and token amounts in the token's own decimals.

Conversions between human numbers (Decimal) and integers happen here and nowhere else.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from .errors import ConfigError

WAD = 10**18
"""1.0 in 18-decimal fixed point, the contracts' scale for USD, prices and rates."""
USD = WAD
"""1 USD, and the scale of every price (18-decimal fixed point)."""
BPS = 10_000
"""100% in basis points."""

Number = int | str | Decimal


def to_decimal(value: Number | float, what: str = "amount") -> Decimal:
    try:
        number = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        raise ConfigError(f"{what} must be a number, got {value!r}") from None
    if not number.is_finite():
        raise ConfigError(f"{what} must be finite, got {value!r}")
    return number


def to_units(value: Number | float, decimals: int, what: str = "amount") -> int:
    """A human amount (`"12.5"`) to integer units of `decimals`; refuses lost precision."""
    number = to_decimal(value, what)
    scaled = number.scaleb(decimals)
    if scaled != scaled.to_integral_value():
        raise ConfigError(f"{what} {value} has more than {decimals} decimals")
    return int(scaled)


def from_units(units: int, decimals: int) -> Decimal:
    """Integer units of `decimals` to an exact Decimal."""
    return Decimal(units).scaleb(-decimals)


def wad_to_decimal(value: int) -> Decimal:
    return from_units(value, 18)
