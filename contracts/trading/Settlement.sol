// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";

import {ITradingEngine} from "../interfaces/ITradingEngine.sol";
import {PairRegistry} from "./PairRegistry.sol";
import {TradeMath} from "../libraries/TradeMath.sol";
import {Units, WAD, BPS} from "../libraries/Units.sol";
import {EngineState, EngineContext, StoredRequest, StoredSettings, EngineStorage} from "./EngineStorage.sol";
import {Position, Settlement as SettlementRecord, CloseReason} from "./Types.sol";

/// @title Settlement
/// @notice How a position ends (docs/mechanics.md sections 6 and 11): the waterfall of margin,
///         profit and loss, holding and funding, the close fee and its split, and the token
///         flows between the trader, the treasury and the pool. Also the fee helpers an open
///         shares (a fee in the platform token, a referral's discount, a fee's split).
/// @dev Internal functions only: compiled into `ClosePipeline` and `Triggers` (and the fee
///      helpers into `OpenPipeline`), which run by delegatecall in the engine's frame.
library Settlement {
    using SafeERC20 for IERC20;
    using EngineStorage for EngineState;

    /// @dev Settles a position at `exitPrice`: the waterfall of docs/mechanics.md sections 6 and 11.
    ///      `discountBps` is the trader's referral discount (`referralDiscount`), which the
    ///      caller has read (a trigger reads it once for the liquidation check and the close).
    ///      The calls before the position leaves storage go to the system's own oracle and
    ///      market (role-gated, no callbacks), and every entry point of the engine is
    ///      nonReentrant.
    function settle(
        EngineState storage $,
        EngineContext memory ctx,
        uint256 positionId,
        Position memory p,
        uint256 oraclePrice,
        uint256 exitPrice,
        CloseReason reason,
        uint256 discountBps
    ) internal {
        SettlementRecord memory st = _emptySettlement();
        // effects first: the position (held in memory) leaves storage before any call
        removePosition($, positionId);
        st.reason = reason;
        st.oraclePrice = oraclePrice;
        st.exitPrice = exitPrice;
        // 1. indexes to now, out of the side's aggregates
        (uint256 holdingIndex, int256 fundingIndex) = ctx.market.removePosition(
            p.pairId, p.isLong, p.notionalUsd, p.qty, p.costUsd, p.holdingIndex, p.fundingIndex
        );
        st.holdingUsd = uint256(holding(p, holdingIndex));
        st.fundingUsd = funding(p, fundingIndex);
        st.pnlUsd = TradeMath.pnlUsdFloor(p.isLong, p.qty, p.entryPrice, exitPrice);
        uint256 feeTokens = _waterfall($, ctx, p, st, discountBps);
        _moveTokens($, ctx, positionId, p, st, feeTokens);
    }

    /// @dev Steps 2 and 3 of `settle`: the close fee and the payout, into `st`. Returns the fee
    ///      in platform tokens when it is paid in them.
    function _waterfall(
        EngineState storage $,
        EngineContext memory ctx,
        Position memory p,
        SettlementRecord memory st,
        uint256 discount
    ) private view returns (uint256 feeTokens) {
        StoredSettings storage s = $.settings;
        // 2. close fee: in platform token when preferred and payable (never on liquidation)
        if (st.reason != CloseReason.Liquidation && $.feeInToken[p.trader]) {
            uint256 feeUsd = closeFeeUsd(s, p, st.pnlUsd, st.exitPrice, discount + s.tokenDiscountBps);
            feeTokens = platformTokens(ctx, feeUsd);
            if (feeTokens != 0 && canPull(ctx, p.trader, feeTokens)) {
                st.feeInToken = true;
                st.closeFeeUsd = feeUsd;
            }
        }
        // 3. the waterfall: margin + pnl - holding - funding, then the fee, cut first
        int256 available = int256(p.marginUsd) + st.pnlUsd - int256(st.holdingUsd) - st.fundingUsd;
        if (!st.feeInToken) {
            uint256 fee = closeFeeUsd(s, p, st.pnlUsd, st.exitPrice, discount);
            st.closeFeeUsd = available <= 0 ? 0 : Math.min(fee, uint256(available));
            available -= int256(st.closeFeeUsd);
        }
        // a payout never passes margin + the reserved maximum profit: a funding receipt beyond
        // it stays in the pool, so the reserve always covers the largest payout
        st.payoutUsd = st.reason == CloseReason.Liquidation || available <= 0
            ? 0
            : Math.min(uint256(available), p.marginUsd + p.maxProfitUsd);
        st.payoutTokens = Units.usdToTokenDown(st.payoutUsd, ctx.tokenToUsdScale);
    }

    /// @dev Step 4 of `settle`: the token flows (trader + treasury + pool = margin), the
    ///      reserve's release, and `PositionClosed`.
    function _moveTokens(
        EngineState storage $,
        EngineContext memory ctx,
        uint256 positionId,
        Position memory p,
        SettlementRecord memory st,
        uint256 feeTokens
    ) private {
        uint256 treasuryTokens = 0;
        if (st.feeInToken) {
            // The position's own trader, who opted in to paying fees in the platform token.
            // slither-disable-next-line arbitrary-send-erc20
            ctx.platformToken.safeTransferFrom(p.trader, address(this), feeTokens);
            splitFee($, ctx, positionId, false, true, feeTokens);
        } else if (st.closeFeeUsd != 0) {
            uint256 collateralFee = Units.usdToTokenUp(st.closeFeeUsd, ctx.tokenToUsdScale);
            treasuryTokens = collateralFee * (BPS - $.settings.poolFeeShareBps) / BPS;
            emit ITradingEngine.FeeSplit(positionId, false, false, collateralFee, collateralFee - treasuryTokens, treasuryTokens);
        }
        st.poolDeltaTokens = int256(p.marginTokens) - int256(st.payoutTokens) - int256(treasuryTokens);
        ctx.pool.decreaseReserve(p.maxProfitUsd, _payOut($, ctx, p, st, treasuryTokens));
        emit ITradingEngine.PositionClosed(positionId, p.trader, p, st);
    }

    /// @dev Closed: the position's two slots are zeroed (margin zero). The head stays: it is
    ///      the request's record.
    function removePosition(EngineState storage $, uint256 positionId) internal {
        StoredRequest storage r = $.requests[positionId];
        if ($.position(positionId).hasLimits) delete $.limits[positionId];
        // slot 1 whole (margin and entry price, over the request's amount and fee), one write
        assembly ("memory-safe") {
            sstore(add(r.slot, 1), 0)
        }
        r.commitment = 0; // and the close request mark
    }

    /// @dev Closing fill: the side's open interest (this position included) sets the slippage.
    function closeFill(EngineContext memory ctx, Position memory p, uint256 price) internal view returns (uint256) {
        PairRegistry.TradeConfig memory pair = ctx.pairs.tradeConfig(p.pairId);
        uint256 sideOi = ctx.market.sideOiUsd(p.pairId, p.isLong);
        uint256 slip = TradeMath.slippageWadUp(pair.spreadBps, sideOi - p.notionalUsd, p.notionalUsd, pair.depth1PctUsd);
        return TradeMath.fillPrice(price, slip, !p.isLong);
    }

    function closeFeeUsd(StoredSettings storage s, Position memory p, int256 pnl, uint256 exitPrice, uint256 discountBps)
        internal
        view
        returns (uint256)
    {
        uint256 closeNotional = Math.mulDiv(p.qty, exitPrice, WAD);
        bool extreme = p.leverage >= s.extremeLeverage;
        uint256 notionalRate = TradeMath.discountedRateWad(extreme ? s.extremeMinCloseFeeBps : s.closeFeeBps, discountBps);
        uint256 profitRate = TradeMath.discountedRateWad(s.extremeProfitFeeBps, discountBps);
        return TradeMath.closeFeeUsdUp(extreme, pnl, closeNotional, notionalRate, profitRate);
    }

    function holding(Position memory p, uint256 holdingIndex) internal pure returns (int256) {
        return TradeMath.indexChargeUsdUp(p.notionalUsd, int256(holdingIndex) - int256(p.holdingIndex));
    }

    function funding(Position memory p, int256 fundingIndex) internal pure returns (int256) {
        return TradeMath.indexChargeUsdUp(p.notionalUsd, fundingIndex - p.fundingIndex);
    }

    function referralDiscount(StoredSettings storage s, EngineContext memory ctx, address trader)
        internal
        view
        returns (uint256)
    {
        return ctx.referrals.hasReferral(trader) ? s.referralDiscountBps : 0;
    }

    /// @dev Platform-token amount for a USD fee at the token's oracle price (rounded up);
    ///      zero when the token has no price.
    function platformTokens(EngineContext memory ctx, uint256 feeUsd) internal view returns (uint256) {
        uint256 price = ctx.oracle.platformTokenPriceUsd();
        if (price == 0 || address(ctx.platformToken) == address(0)) return 0;
        return Math.mulDiv(feeUsd, WAD, price, Math.Rounding.Ceil);
    }

    function canPull(EngineContext memory ctx, address trader, uint256 amount) internal view returns (bool) {
        return ctx.platformToken.balanceOf(trader) >= amount && ctx.platformToken.allowance(trader, address(this)) >= amount;
    }

    /// @dev Sends a fee held here: the pool's share to the pool, the rest to the treasury.
    ///      Returns the collateral the pool is to book (zero for a platform-token fee: those
    ///      are held by the pool contract for ALP holders, outside NAV).
    function splitFee(
        EngineState storage $,
        EngineContext memory ctx,
        uint256 positionId,
        bool isOpen,
        bool inToken,
        uint256 amount
    ) internal returns (uint256 poolTokensIn) {
        uint256 treasuryAmount = amount * (BPS - $.settings.poolFeeShareBps) / BPS;
        uint256 poolAmount = amount - treasuryAmount;
        IERC20 token = inToken ? ctx.platformToken : ctx.collateral;
        if (poolAmount != 0) token.safeTransfer(address(ctx.pool), poolAmount);
        if (treasuryAmount != 0) token.safeTransfer($.settings.treasury, treasuryAmount);
        emit ITradingEngine.FeeSplit(positionId, isOpen, inToken, amount, poolAmount, treasuryAmount);
        return inToken ? 0 : poolAmount;
    }

    /// @dev Moves a settlement's collateral; returns what it sent the pool, for the pool to
    ///      book with the reserve's release.
    function _payOut(
        EngineState storage $,
        EngineContext memory ctx,
        Position memory p,
        SettlementRecord memory st,
        uint256 treasuryTokens
    ) private returns (uint256 poolTokensIn) {
        IERC20 collateral = ctx.collateral;
        if (st.poolDeltaTokens >= 0) {
            if (st.payoutTokens != 0) collateral.safeTransfer(p.trader, st.payoutTokens);
            if (treasuryTokens != 0) collateral.safeTransfer($.settings.treasury, treasuryTokens);
            poolTokensIn = uint256(st.poolDeltaTokens);
            if (poolTokensIn != 0) collateral.safeTransfer(address(ctx.pool), poolTokensIn);
            return poolTokensIn;
        }
        // the pool pays: the escrowed margin covers the treasury first, then the trader
        uint256 fromEscrowToTreasury = Math.min(treasuryTokens, p.marginTokens);
        uint256 fromEscrowToTrader = p.marginTokens - fromEscrowToTreasury;
        if (fromEscrowToTreasury != 0) collateral.safeTransfer($.settings.treasury, fromEscrowToTreasury);
        if (treasuryTokens > fromEscrowToTreasury) ctx.pool.payTokens($.settings.treasury, treasuryTokens - fromEscrowToTreasury);
        if (fromEscrowToTrader != 0) collateral.safeTransfer(p.trader, fromEscrowToTrader);
        ctx.pool.payTokens(p.trader, st.payoutTokens - fromEscrowToTrader);
    }

    function _emptySettlement() private pure returns (SettlementRecord memory st) {
        return st;
    }
}
