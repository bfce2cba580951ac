// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title RevertProbe
/// @notice Test helper: reverts in the two built-in ways (`Error(string)` and `Panic`), so the
///         client's decoding of both is tested against real EVM output.
contract RevertProbe {
    function failWithReason(string calldata reason) external pure {
        revert(reason);
    }

    function failWithPanic(uint256 divisor) external pure returns (uint256) {
        return 1 / divisor;
    }
}
