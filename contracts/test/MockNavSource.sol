// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {INavSource} from "../interfaces/INavSource.sol";
import {Errors} from "../errors/Errors.sol";

/// @title MockNavSource
/// @notice Test helper: an open-positions NAV contribution set by hand (e.g. traders winning
///         more than the pool holds, to test the pool's insolvency refusal).
contract MockNavSource is INavSource {
    int256 public poolClaimUsd;
    /// @notice The withdrawals' claim; follows `poolClaimUsd` unless set apart.
    int256 public redeemClaimUsd;

    bool public stale;

    function setPoolClaimUsd(int256 claimUsd) external {
        poolClaimUsd = claimUsd;
        redeemClaimUsd = claimUsd;
    }

    function setRedeemClaimUsd(int256 claimUsd) external {
        redeemClaimUsd = claimUsd;
    }

    function poolClaimsUsd() external view returns (int256, int256) {
        return (poolClaimUsd, redeemClaimUsd);
    }

    function setStale(bool stale_) external {
        stale = stale_;
    }

    function settledPoolClaimsUsd() external view returns (int256, int256) {
        if (stale) revert Errors.PriceStale(0, 0, 60);
        return (poolClaimUsd, redeemClaimUsd);
    }

    function requireSettledPrices() external view {
        if (stale) revert Errors.PriceStale(0, 0, 60);
    }
}
