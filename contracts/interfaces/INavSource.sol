// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title INavSource
/// @notice What open positions add to (or take from) the ALP pool's NAV: holding and funding
///         owed to the pool minus the traders' unrealized pnl, aggregated per pair and side,
///         in 18-decimal USD. The trading engine's market implements it; until it is set the
///         pool's NAV is its balance alone.
/// @dev Two claims price LPs conservatively (docs/mechanics.md section 10): deposits at
///      `claimUsd`, withdrawals at `redeemClaimUsd`, which leaves out the holding and funding
///      owed to the pool (fees a trader has not paid yet and may never pay) and keeps what the
///      pool owes. So redeemClaimUsd <= claimUsd.
interface INavSource {
    /// @notice The pool's claim on open positions in USD (negative when traders are winning).
    function poolClaimUsd() external view returns (int256);

    /// @notice Both claims at the last prices: deposits' and withdrawals'.
    function poolClaimsUsd() external view returns (int256 claimUsd, int256 redeemClaimUsd);

    /// @notice Both claims, reverting (PriceStale) unless every pair with open interest has a
    ///         fresh price: one pass for a deposit or withdrawal.
    function freshPoolClaimsUsd() external view returns (int256 claimUsd, int256 redeemClaimUsd);

    /// @notice Reverts (PriceStale) unless every pair with open interest has a fresh price:
    ///         deposits and withdrawals are priced at NAV and need it current.
    function requireFreshPrices() external view;
}
