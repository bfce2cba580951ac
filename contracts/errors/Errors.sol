// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title Errors
/// @notice Every refusal of the system, as a custom error with its arguments. The Python
///         client turns each into an exception of the same name carrying these fields.
library Errors {
    // ----- common -----
    /// @notice Thrown when an amount that must be positive is zero.
    error ZeroAmount();
    /// @notice Thrown when an address that must be set is the zero address.
    error ZeroAddress();
    /// @notice Thrown when an amount is so small that its output rounds to zero.
    error AmountTooSmall(uint256 amount);
    /// @notice Thrown when a basis-point setting is above 100%.
    error InvalidBps(uint256 bps);
    /// @notice Thrown when a token's decimals are above 18.
    error UnsupportedDecimals(uint8 decimals);

    // ----- ALP pool -----
    /// @notice Thrown when a deposit would mint less ALP than the depositor's minimum.
    error InsufficientAlpOut(uint256 alpOut, uint256 minAlpOut);
    /// @notice Thrown when a withdrawal would pay less collateral than the holder's minimum.
    error InsufficientOutput(uint256 amountOut, uint256 minOut);
    /// @notice Thrown when a holder redeems more ALP than they hold.
    error InsufficientAlpBalance(address holder, uint256 balance, uint256 requested);
    /// @notice Thrown when ALP is moved before the holder's 48-hour cooldown has passed.
    error CooldownActive(address holder, uint256 unlocksAt);
    /// @notice Thrown when a withdrawal would leave the pool unable to cover its reserve.
    error ReserveNotCovered(uint256 poolBalanceAfterUsd, uint256 reserveUsd);
    /// @notice Thrown when ALP exists but the pool's NAV is zero or negative.
    error PoolInsolvent(int256 navUsd, uint256 alpSupply);
}
