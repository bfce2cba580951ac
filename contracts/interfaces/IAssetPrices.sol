// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title IAssetPrices
/// @notice The prices the ALP pool values its basket at (the PriceOracle implements it).
interface IAssetPrices {
    /// @notice The lower and the higher of the keeper and reference prices (18-decimal USD),
    ///         reverting unless both are fresh and within the circuit breaker.
    function assetPriceBounds(uint256 priceId) external view returns (uint256 low, uint256 high);

    /// @notice The last keeper price, whatever its age; 0 when never set (views only).
    function markPrice(uint256 priceId) external view returns (uint256);
}
