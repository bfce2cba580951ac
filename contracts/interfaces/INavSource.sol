// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title INavSource
/// @notice What open positions add to (or take from) the ALP pool's NAV: holding and funding
///         owed to the pool minus the traders' unrealized pnl, aggregated per pair and side,
///         in 18-decimal USD. The trading engine implements it; until it is set the pool's NAV
///         is its balance alone.
interface INavSource {
    /// @notice The pool's claim on open positions in USD (negative when traders are winning).
    function poolClaimUsd() external view returns (int256);

    /// @notice The claim, reverting (PriceStale) unless every pair with open interest has a
    ///         fresh price: one pass for a deposit or withdrawal.
    function freshPoolClaimUsd() external view returns (int256);

    /// @notice Reverts (PriceStale) unless every pair with open interest has a fresh price:
    ///         deposits and withdrawals are priced at NAV and need it current.
    function requireFreshPrices() external view;
}
