"""Hidden orders (SPEC section 5): the commitment, and the order and salt encrypted to the
keeper's public key."""

from __future__ import annotations

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import keccak

from .errors import AlpsimError
from .keys import decrypt_with, encrypt_to, encrypt_to_seeded
from .model.trading import Order

_ORDER_TYPES = ["uint256", "bool", "uint256", "uint256", "uint256", "uint256", "bytes32"]


def commitment(trader: str, order: Order, salt: bytes) -> bytes:
    """keccak256(abi.encode(trader, pairId, isLong, leverage, takeProfit, stopLoss,
    acceptablePrice, salt)), as the trading contract recomputes it."""
    return keccak(abi_encode(
        ["address", "uint256", "bool", "uint256", "uint256", "uint256", "uint256", "bytes32"],
        [trader, order.pair_id, order.is_long, order.leverage, order.take_profit, order.stop_loss,
         order.acceptable_price, salt],
    ))


def encode_order(order: Order, salt: bytes) -> bytes:
    return abi_encode(_ORDER_TYPES, [order.pair_id, order.is_long, order.leverage, order.take_profit,
                                     order.stop_loss, order.acceptable_price, salt])


def decode_order(payload: bytes) -> tuple[Order, bytes]:
    pair_id, is_long, leverage, tp, sl, acceptable, salt = abi_decode(_ORDER_TYPES, payload)
    return Order(pair_id, is_long, leverage, tp, sl, acceptable), salt


def seal(order: Order, salt: bytes, keeper_public_key: bytes, randomness: bytes | None = None) -> bytes:
    """The order and salt, ECIES-encrypted to the keeper's key."""
    payload = encode_order(order, salt)
    if randomness is None:
        return encrypt_to(keeper_public_key, payload)
    return encrypt_to_seeded(keeper_public_key, payload, randomness)


class UndecryptableOrder(AlpsimError):
    """A ciphertext the keeper's key does not open."""


def unseal(ciphertext: bytes, keeper_private_key: bytes) -> tuple[Order, bytes]:
    try:
        return decode_order(decrypt_with(keeper_private_key, ciphertext))
    except Exception as exc:  # eciespy raises ValueError / cryptography errors
        raise UndecryptableOrder(f"cannot decrypt order: {exc}") from exc
