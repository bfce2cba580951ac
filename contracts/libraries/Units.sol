// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";

/// @dev 1 in 18-decimal fixed point: 1 USD, and the scale of every price, quantity and rate
///      of the system.
uint256 constant WAD = 1e18;
/// @dev 100% in basis points.
uint256 constant BPS = 10_000;

/// @title Units
/// @notice The one USD scale of the system and the one place where collateral amounts
///         (token decimals) convert to USD (18 decimals). The collateral is a stablecoin
///         valued at exactly 1 USD.
///         WAD and BPS, the system's two constants, are declared here, once.
library Units {
    /// @notice Token amount -> USD (exact: the scale is a power of ten >= 1).
    function tokenToUsd(uint256 amount, uint256 tokenToUsdScale) internal pure returns (uint256) {
        return amount * tokenToUsdScale;
    }

    /// @notice USD -> token amount, rounded down (payouts round in the pool's favour).
    function usdToTokenDown(uint256 usd, uint256 tokenToUsdScale) internal pure returns (uint256) {
        return usd / tokenToUsdScale;
    }

    /// @notice USD -> token amount, rounded up (charges round in the pool's favour).
    function usdToTokenUp(uint256 usd, uint256 tokenToUsdScale) internal pure returns (uint256) {
        return Math.ceilDiv(usd, tokenToUsdScale);
    }

    /// @notice The factor that turns `decimals`-decimal token amounts into 18-decimal USD.
    function scaleFor(uint8 decimals) internal pure returns (uint256) {
        return 10 ** (18 - uint256(decimals));
    }
}
