"""The model's refusals, mirroring the custom errors of `contracts/errors/Errors.sol` (and
OpenZeppelin's, such as `ERC20InsufficientBalance`): where a contract reverts, the model raises
`ModelRefusal` with the error's name and its arguments (docs/mechanics.md section 13)."""

from __future__ import annotations


class ModelRefusal(Exception):
    """The model refuses what the contract reverts; `name` is the Solidity error."""

    def __init__(self, name: str, **fields: object):
        self.name, self.fields = name, fields
        super().__init__(f"{name}({fields})")
