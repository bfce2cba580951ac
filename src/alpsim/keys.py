"""Dev account keys and the keeper's order encryption (ECIES on secp256k1, eciespy)."""

from __future__ import annotations

from functools import cache

import ecies
from ecies.config import ECIES_CONFIG, Config
from coincurve import PrivateKey
from eth_account import Account

from .devnet.base import DEV_HD_PATH, DEV_MNEMONIC


@cache
def dev_private_key(index: int) -> bytes:
    """The private key of dev account `index` (anvil's default mnemonic)."""
    Account.enable_unaudited_hdwallet_features()
    return bytes(Account.from_mnemonic(DEV_MNEMONIC, account_path=f"{DEV_HD_PATH}/{index}").key)


def public_key_bytes(private_key: bytes) -> bytes:
    """64-byte uncompressed public key (no 0x04 prefix), as the contract publishes it."""
    return PrivateKey(private_key).public_key.format(compressed=False)[1:]


def encrypt_to(public_key: bytes, message: bytes, config: Config = ECIES_CONFIG) -> bytes:
    """ECIES-encrypts `message` to a secp256k1 public key (64 or 65 bytes)."""
    key = public_key if len(public_key) == 65 else b"\x04" + public_key
    return ecies.encrypt(key, message, config)


def decrypt_with(private_key: bytes, ciphertext: bytes, config: Config = ECIES_CONFIG) -> bytes:
    return ecies.decrypt(private_key, ciphertext, config)


def encrypt_to_seeded(public_key: bytes, message: bytes, randomness: bytes, config: Config = ECIES_CONFIG) -> bytes:
    """ECIES as `ecies.encrypt` with `config` (same frame: ephemeral key, nonce, tag,
    ciphertext), the ephemeral key and nonce drawn from `randomness` (32 bytes and the nonce's
    length), so a seeded run sends the same bytes every time. Decrypts with `ecies.decrypt`."""
    from Crypto.Cipher import AES
    from ecies.keys import PrivateKey as EciesPrivateKey
    from ecies.keys import PublicKey as EciesPublicKey

    curve = config.elliptic_curve
    key = public_key if len(public_key) == 65 else b"\x04" + public_key
    ephemeral = EciesPrivateKey(curve, randomness[:32])
    sym_key = ephemeral.encapsulate(EciesPublicKey(curve, key), config.is_hkdf_key_compressed)
    nonce = randomness[32:32 + config.symmetric_nonce_length]
    encrypted, tag = AES.new(sym_key, AES.MODE_GCM, nonce).encrypt_and_digest(message)
    return ephemeral.public_key.to_bytes(config.is_ephemeral_key_compressed) + nonce + tag + encrypted
