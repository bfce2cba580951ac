"""Revert decoding: one exception root, classes named after the Solidity errors."""

import pytest
from eth_abi import encode
from eth_utils import keccak

from alpsim import errors
from alpsim.errors import AlpsimError, ContractRevert, ErrorDecoder, UnknownRevert

ABI = [{"type": "error", "name": "LeverageTooHigh",
        "inputs": [{"name": "leverage", "type": "uint256"}, {"name": "max", "type": "uint256"}]}]


def test_custom_error_becomes_named_exception_with_fields():
    data = keccak(text="LeverageTooHigh(uint256,uint256)")[:4] + encode(["uint256", "uint256"], [2000, 1001])
    exc = ErrorDecoder([ABI]).decode(data)
    assert type(exc).__name__ == "LeverageTooHigh"
    assert (exc.leverage, exc.max) == (2000, 1001)
    assert isinstance(exc, ContractRevert) and isinstance(exc, AlpsimError)
    assert isinstance(exc, errors.LeverageTooHigh)
    assert str(exc) == "LeverageTooHigh(leverage=2000, max=1001)"


def test_unknown_and_empty_revert_data():
    assert isinstance(ErrorDecoder().decode(b"\x12\x34\x56\x78"), UnknownRevert)
    assert str(ErrorDecoder().decode(b"")) == "reverted without data"


def test_project_errors_are_reachable_by_name_with_a_hint_for_typos(build):
    assert issubclass(errors.CooldownActive, ContractRevert)
    with pytest.raises(AttributeError) as info:
        errors.CooldownActiv  # noqa: B018
    assert "CooldownActive" in str(info.value)
