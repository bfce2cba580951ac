// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title IFundingAccrual
/// @notice What the oracle needs of the market: its holding and funding brought to now before
///         a setting changes how they accrue (docs/mechanics.md section 9).
interface IFundingAccrual {
    /// @notice Accrues every pair with open interest to now.
    function accrueAll() external;
}
