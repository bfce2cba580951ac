"""An unexpected revert explained: the decoded custom error with its arguments, the contract and
function called with their arguments, the transaction, and its call trace."""

from __future__ import annotations

from ..errors import ContractRevert


def find_revert(exc: BaseException | None) -> ContractRevert | None:
    """The ContractRevert behind `exc` (itself, or its cause or context, a few levels down)."""
    for _ in range(8):
        if exc is None:
            return None
        if isinstance(exc, ContractRevert):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def explain_revert(exc: ContractRevert) -> str:
    """Several lines: error, call, transaction, call trace."""
    lines = [f"error:    {exc.error_name}" + (f"  [{exc.signature}]" if exc.signature else "")]
    for name, value in exc.error_args.items():
        lines.append(f"          {name} = {value!r}")
    if exc.contract:
        args = ", ".join(f"{k}={v!r}" for k, v in (exc.call_args or {}).items())
        lines.append(f"call:     {exc.contract}.{exc.function or '?'}({args})")
    if exc.tx_hash:
        lines.append(f"tx:       {exc.tx_hash}")
    trace = exc.call_trace()
    if trace:
        lines.append("call trace:")
        lines += [f"  {line}" for line in trace]
    if exc.data and exc.error_name == "UnknownRevert":
        lines.append(f"raw data: 0x{exc.data.hex()}")
    return "\n".join(lines)
