// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title ChainIdProbe
/// @notice Test helper: returns what the `chainid` opcode says, to prove a devnet presents
///         itself as the profile's chain inside the EVM, not only over RPC.
contract ChainIdProbe {
    function chainId() external view returns (uint256) {
        return block.chainid;
    }
}
