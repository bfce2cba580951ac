// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";

import {WAD, BPS} from "./Units.sol";

/// @title TradeMath
/// @notice The formulas of docs/mechanics.md sections 3 to 11, pure, in 18-decimal fixed point. Rounding is
///         always in the pool's favour; the direction is in each function's name. The Python
///         reference model (`alpsim.model.trading`) mirrors every line.
library TradeMath {
    /// @dev 1 bp as a WAD fraction.
    uint256 internal constant BP_WAD = 1e14;

    /// @notice A bps rate after a discount (in bps of the rate), as a WAD fraction. Exact.
    function discountedRateWad(uint256 rateBps, uint256 discountBps) internal pure returns (uint256) {
        return rateBps * BP_WAD * (BPS - discountBps) / BPS;
    }

    /// @notice floor(a * b / WAD) for a signed a.
    function mulWadFloorSigned(int256 a, uint256 b) internal pure returns (int256) {
        if (a >= 0) return int256(Math.mulDiv(uint256(a), b, WAD));
        return -int256(Math.mulDiv(uint256(-a), b, WAD, Math.Rounding.Ceil));
    }

    /// @notice ceil(a * b / WAD) for a signed a.
    function mulWadCeilSigned(int256 a, uint256 b) internal pure returns (int256) {
        if (a >= 0) return int256(Math.mulDiv(uint256(a), b, WAD, Math.Rounding.Ceil));
        return -int256(Math.mulDiv(uint256(-a), b, WAD));
    }

    /// @notice Slippage fraction: spread + (sideOI + notional) / depth1pct x 1%, rounded up.
    function slippageWadUp(uint256 spreadBps, uint256 sideOiUsd, uint256 notionalUsd, uint256 depth1PctUsd)
        internal
        pure
        returns (uint256)
    {
        return spreadBps * BP_WAD + Math.mulDiv(sideOiUsd + notionalUsd, WAD / 100, depth1PctUsd, Math.Rounding.Ceil);
    }

    /// @notice The oracle price moved by slippage against the trader: up when the trader buys
    ///         (opens a long, closes a short), down when the trader sells.
    function fillPrice(uint256 oraclePrice, uint256 slippageWad, bool traderBuys) internal pure returns (uint256) {
        if (traderBuys) return Math.mulDiv(oraclePrice, WAD + slippageWad, WAD, Math.Rounding.Ceil);
        if (slippageWad >= WAD) return 0;
        return Math.mulDiv(oraclePrice, WAD - slippageWad, WAD);
    }

    /// @notice Margin out of what is left after the execution fee: (A - X) / (1 + L x f),
    ///         rounded down (the fee, the rest, rounds up).
    function marginTokensDown(uint256 netTokens, uint256 leverage, uint256 openFeeRateWad)
        internal
        pure
        returns (uint256)
    {
        return Math.mulDiv(netTokens, WAD, WAD + leverage * openFeeRateWad);
    }

    /// @notice pnl = qty x (exit - entry) for a long, qty x (entry - exit) for a short, floored.
    function pnlUsdFloor(bool isLong, uint256 qty, uint256 entryPrice, uint256 exitPrice)
        internal
        pure
        returns (int256)
    {
        int256 move = isLong ? int256(exitPrice) - int256(entryPrice) : int256(entryPrice) - int256(exitPrice);
        return mulWadFloorSigned(move, qty);
    }

    /// @notice The take-profit cap price: where pnl reaches maxProfit (never past it).
    function takeProfitCapPrice(bool isLong, uint256 entryPrice, uint256 qty, uint256 maxProfitUsd)
        internal
        pure
        returns (uint256)
    {
        if (isLong) return entryPrice + Math.mulDiv(maxProfitUsd, WAD, qty);
        uint256 move = Math.mulDiv(maxProfitUsd, WAD, qty);
        return move >= entryPrice ? 0 : entryPrice - move;
    }

    /// @notice The close fee (before any cut). Standard: rate x close notional. Extreme:
    ///         max(profitRate x max(pnl, 0), minRate x close notional). Rounded up.
    function closeFeeUsdUp(
        bool extreme,
        int256 pnlUsd,
        uint256 closeNotionalUsd,
        uint256 notionalRateWad,
        uint256 profitRateWad
    ) internal pure returns (uint256) {
        uint256 byNotional = Math.mulDiv(closeNotionalUsd, notionalRateWad, WAD, Math.Rounding.Ceil);
        if (!extreme || pnlUsd <= 0) return byNotional;
        uint256 byProfit = Math.mulDiv(uint256(pnlUsd), profitRateWad, WAD, Math.Rounding.Ceil);
        return Math.max(byNotional, byProfit);
    }

    /// @notice What an index move costs a position: ceil(notional x (now - atOpen) / WAD);
    ///         negative when the position receives.
    function indexChargeUsdUp(uint256 notionalUsd, int256 indexDelta) internal pure returns (int256) {
        return mulWadCeilSigned(indexDelta, notionalUsd);
    }
}
