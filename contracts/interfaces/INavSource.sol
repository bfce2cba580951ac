// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title INavSource
/// @notice What open positions add to (or take from) the ALP pool's NAV: holding and funding
///         owed to the pool minus the traders' unrealized pnl, aggregated per pair and side,
///         in 18-decimal USD. The trading engine's market implements it; until it is set the
///         pool's NAV is its balance alone.
/// @dev Two claims price LPs conservatively (docs/mechanics.md section 10): deposits at
///      `claimUsd`, with every side's holding and funding owed as of now; withdrawals at
///      `redeemClaimUsd`, which leaves out what a side came to owe the pool since the pair's
///      last accrual (no trigger has checked it against the margins yet). So
///      redeemClaimUsd <= claimUsd.
interface INavSource {
    /// @notice The pool's claim on open positions in USD (negative when traders are winning).
    function poolClaimUsd() external view returns (int256);

    /// @notice Both claims at the last prices: deposits' and withdrawals'.
    function poolClaimsUsd() external view returns (int256 claimUsd, int256 redeemClaimUsd);

    /// @notice Both claims, reverting unless every pair with open interest has a price LPs may
    ///         be priced at: fresh, guarded (reference fresh, within the circuit breaker) and
    ///         settled (the triggers ran at it). One pass for a deposit or withdrawal.
    function settledPoolClaimsUsd() external view returns (int256 claimUsd, int256 redeemClaimUsd);

    /// @notice Reverts unless every pair with open interest has a settled price (as
    ///         `settledPoolClaimsUsd`): deposits and withdrawals are priced at NAV and need it
    ///         current and checked.
    function requireSettledPrices() external view;
}
