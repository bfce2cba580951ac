// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {INavSource} from "../interfaces/INavSource.sol";

/// @title MockNavSource
/// @notice Test helper: an open-positions NAV contribution set by hand (e.g. traders winning
///         more than the pool holds, to test the pool's insolvency refusal).
contract MockNavSource is INavSource {
    int256 public poolClaimUsd;

    function setPoolClaimUsd(int256 claimUsd) external {
        poolClaimUsd = claimUsd;
    }
}
