"""Hidden orders (docs/mechanics.md section 5): the commitment, and the order and salt encrypted to the
keeper's public key.

The ciphertext is calldata and event data of every open request, so its bytes are gas: 16 a
byte of calldata (all of it, as ciphertext has no zero bytes) and 8 a byte of log data. The
plaintext is therefore packed, not ABI-encoded (87 bytes instead of 224), and the ECIES frame
is eciespy's with a compressed ephemeral key and AES-GCM's standard 12-byte nonce (61 bytes of
framing instead of 97): 148 bytes of ciphertext instead of 321, about 4,400 gas less per
request. Every field has a fixed width, so the length of a ciphertext says nothing about the
order (pair, side, leverage, limits).

**Plain orders** (a research switch, docs/mev.md): the same packed plaintext behind a fixed
prefix, `PLAIN_MAGIC + encode_order(order, salt)`, sent in the clear in the request's
`encryptedOrder` bytes under the same commitment. The engine cannot tell the two apart and
executes a plain order exactly as a hidden one; only a keeper in its research mode
(`Keeper(plain_orders=True)`) reads the frame, and only on a devnet alpsim started itself.
"""

from __future__ import annotations

from typing import Any

from ecies.config import Config
from eth_abi import encode as abi_encode
from eth_utils import keccak

from .errors import AlpsimError, ConfigError
from .keys import decrypt_with, encrypt_to, encrypt_to_seeded
from .protocol import Order

ORDER_ECIES = Config(is_ephemeral_key_compressed=True, symmetric_nonce_length=12)
"""The ECIES frame of an order: 33-byte ephemeral key, 12-byte nonce, 16-byte tag."""

# the packed plaintext, big-endian: (field, bytes). The widths cover all the chain can open:
# it stores the pair id in 8 bits, the leverage in 16 and the limits in 128.
ORDER_LAYOUT: tuple[tuple[str, int], ...] = (
    ("pair_id", 2), ("is_long", 1), ("leverage", 4),
    ("take_profit", 16), ("stop_loss", 16), ("acceptable_price", 16),
)
SALT_BYTES = 32
ORDER_PAYLOAD_BYTES = sum(width for _, width in ORDER_LAYOUT) + SALT_BYTES  # 87


PLAIN_MAGIC = b"ALPSIM-PLAIN-v1"
"""The prefix of a plain order's frame (15 bytes, then the 87-byte packed order and salt)."""
PLAIN_FRAME_BYTES = len(PLAIN_MAGIC) + ORDER_PAYLOAD_BYTES  # 102


class OrderOutOfRange(ConfigError):
    """An order field too wide for the order's packed encoding (no request is sent)."""


class UndecryptableOrder(AlpsimError):
    """A ciphertext the keeper's key does not open, or that holds no order."""


def commitment(trader: str, order: Order, salt: bytes) -> bytes:
    """keccak256(abi.encode(trader, pairId, isLong, leverage, takeProfit, stopLoss,
    acceptablePrice, salt)), as the trading contract recomputes it."""
    return keccak(abi_encode(
        ["address", "uint256", "bool", "uint256", "uint256", "uint256", "uint256", "bytes32"],
        [trader, order.pair_id, order.is_long, order.leverage, order.take_profit, order.stop_loss,
         order.acceptable_price, salt],
    ))


def encode_order(order: Order, salt: bytes) -> bytes:
    """The packed plaintext: each field of `ORDER_LAYOUT` big-endian, then the salt."""
    if len(salt) != SALT_BYTES:
        raise OrderOutOfRange(f"salt must be {SALT_BYTES} bytes, got {len(salt)}")
    out = bytearray()
    for field, width in ORDER_LAYOUT:
        value = int(getattr(order, field))
        if not 0 <= value < 1 << (8 * width):
            raise OrderOutOfRange(f"order {field.replace('_', ' ')} {value} does not fit the order's "
                                  f"{8 * width}-bit field (0 to {(1 << (8 * width)) - 1})")
        out += value.to_bytes(width, "big")
    return bytes(out) + salt


def decode_order(payload: bytes) -> tuple[Order, bytes]:
    if len(payload) != ORDER_PAYLOAD_BYTES:
        raise UndecryptableOrder(f"an order is {ORDER_PAYLOAD_BYTES} bytes, this plaintext {len(payload)}")
    values, at = {}, 0
    for field, width in ORDER_LAYOUT:
        values[field] = int.from_bytes(payload[at:at + width], "big")
        at += width
    if values["is_long"] > 1:
        raise UndecryptableOrder(f"an order's side byte is 0 or 1, this one {values['is_long']}")
    values["is_long"] = bool(values["is_long"])
    return Order(**values), payload[at:]


def seal(order: Order, salt: bytes, keeper_public_key: bytes, randomness: bytes | None = None) -> bytes:
    """The order and salt, ECIES-encrypted to the keeper's key (`randomness`, 44 bytes or
    more: a seeded ephemeral key and nonce)."""
    payload = encode_order(order, salt)
    if randomness is None:
        return encrypt_to(keeper_public_key, payload, ORDER_ECIES)
    return encrypt_to_seeded(keeper_public_key, payload, randomness, ORDER_ECIES)


def unseal(ciphertext: bytes, keeper_private_key: bytes) -> tuple[Order, bytes]:
    try:
        payload = decrypt_with(keeper_private_key, ciphertext, ORDER_ECIES)
    except Exception as exc:  # eciespy raises ValueError / cryptography errors
        raise UndecryptableOrder(f"cannot decrypt order: {exc}") from exc
    return decode_order(payload)


class PlainOrdersRefused(ConfigError):
    """A plain (unencrypted) order asked for where alpsim does not allow one: anywhere but a
    devnet alpsim started itself (embedded, revm, or its own anvil without a fork)."""


def own_devnet(devnet: Any) -> bool:
    """Whether alpsim started this chain itself, where plain orders are allowed: the embedded
    or revm EVM, or its own anvil without a fork. An attached node (an RPC URL, backend
    "rpc") or a fork of a real chain is not."""
    if devnet.backend_name in ("embedded", "revm"):
        return True
    return devnet.backend_name == "anvil" and getattr(devnet.process, "fork_url", None) is None


def describe_devnet(devnet: Any) -> str:
    """A few words on where a devnet runs (for refusals)."""
    if devnet.backend_name == "anvil":
        return "a fork of a real chain" if devnet.process.fork_url else "alpsim's own anvil"
    url = getattr(devnet, "url", None)
    return f"an attached node at {url}" if url else f"a {devnet.backend_name} devnet"


def plain_frame(order: Order, salt: bytes) -> bytes:
    """A plain order's `encryptedOrder` bytes: `PLAIN_MAGIC` then the packed order and salt."""
    return PLAIN_MAGIC + encode_order(order, salt)


def is_plain_frame(data: bytes) -> bool:
    """Whether `data` claims to be a plain order (starts with `PLAIN_MAGIC`); it may still be
    malformed (`read_plain_frame` says)."""
    return bytes(data[:len(PLAIN_MAGIC)]) == PLAIN_MAGIC


def read_plain_frame(data: bytes) -> tuple[Order, bytes]:
    """The order and salt of a plain frame; UndecryptableOrder for anything else (no prefix,
    a wrong length, a field out of range)."""
    data = bytes(data)
    if not is_plain_frame(data):
        raise UndecryptableOrder("not a plain order frame (no ALPSIM-PLAIN-v1 prefix)")
    if len(data) != PLAIN_FRAME_BYTES:
        raise UndecryptableOrder(f"a plain order frame is {PLAIN_FRAME_BYTES} bytes, this one {len(data)}")
    return decode_order(data[len(PLAIN_MAGIC):])
