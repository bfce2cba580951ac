"""Devnet backends: embedded (eth-tester + py-evm, the default), revm (pyrevm, in process) and
anvil (a real node)."""

from __future__ import annotations

from ..profiles import ChainProfile
from .anvil import AnvilDevnet, AnvilProcess, RpcDevnet, anvil_binary
from .base import Devnet, TransactionReverted
from .embedded import EmbeddedDevnet
from .revm import RevmDevnet

BACKENDS = ("embedded", "revm", "anvil")


def start_devnet(profile: ChainProfile, backend: str = "embedded", *, rpc_url: str | None = None,
                 port: int | None = None, fork_url: str | None = None, accounts: int = 10) -> Devnet:
    """A devnet for `profile`: `rpc_url` connects to a running node; otherwise `backend`
    picks the embedded EVM or a fresh anvil, with `accounts` funded dev accounts."""
    from ..errors import UnknownNameError

    if rpc_url:
        return RpcDevnet(profile, rpc_url)
    if backend == "embedded":
        return EmbeddedDevnet(profile, accounts=accounts)
    if backend == "revm":
        return RevmDevnet(profile, accounts=accounts)
    if backend == "anvil":
        return AnvilDevnet(profile, port=port, fork_url=fork_url, accounts=accounts)
    raise UnknownNameError("backend", backend, BACKENDS)


__all__ = ["AnvilDevnet", "AnvilProcess", "Devnet", "EmbeddedDevnet", "RevmDevnet", "RpcDevnet", "TransactionReverted",
           "anvil_binary", "start_devnet", "BACKENDS"]
