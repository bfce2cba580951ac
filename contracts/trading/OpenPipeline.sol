// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";

import {ITradingEngine} from "../interfaces/ITradingEngine.sol";
import {PairRegistry} from "./PairRegistry.sol";
import {TradeMath} from "../libraries/TradeMath.sol";
import {Units, WAD, BPS} from "../libraries/Units.sol";
import {Errors} from "../errors/Errors.sol";
import {
    EngineState,
    EngineContext,
    EngineStorage,
    contextInMemory,
    StoredRequest,
    StoredPosition,
    StoredSettings,
    StoredLimits,
    BlockCount
} from "./EngineStorage.sol";
import {Settlement} from "./Settlement.sol";
import {Order, RequestKind, RequestStatus, OpenCharges, RejectReason} from "./Types.sol";

/// @title OpenPipeline
/// @notice Executing open requests (docs/mechanics.md section 5): the reveal against the
///         commitment, then pair and leverage, the guarded price, the fees and the size, the
///         open-interest, slippage and limit checks, the pool's reserve, and the position
///         written over its request; or the request rejected and refunded with its reason.
/// @dev An external library: `TradingEngine` calls it by delegatecall (once per transaction:
///      a batch loops here), from its keeper-only, nonReentrant entry points, so it runs in
///      the engine's storage, as the engine. It declares no storage; called at its own
///      address it reverts (Solidity's guard on a library's non-view functions).
library OpenPipeline {
    using SafeERC20 for IERC20;
    using SafeCast for uint256;
    using SafeCast for int256;
    using EngineStorage for EngineState;

    /// @dev Intermediates of an open, one per step (GMX's cache struct).
    struct OpenCache {
        PairRegistry.TradeConfig pair;
        uint256 oraclePrice;
        bool extreme;
        bool payInToken;
        uint256 discountBps;
        uint256 feeRateWad;
        uint256 marginTokens;
        uint256 marginUsd;
        uint256 notionalUsd;
        uint256 openFeeUsd;
        uint256 openFeeTokens; // collateral units, or platform token units when paid in it
        uint256 sideOiUsd;
        uint256 slippageWad;
        uint256 fill;
        uint256 qty;
        uint256 roiCapBps;
        uint256 maxProfitUsd;
        uint256 takeProfit;
        uint256 executionFeeTokens; // the request's
    }

    /// @notice Executes one open request (`executeOpen`).
    /// @return feeTokens the request's execution fee, for the engine to pay the keeper
    function executeOne(EngineState storage $, EngineContext calldata context, uint256 requestId, Order calldata order, bytes32 salt)
        external
        returns (uint256 feeTokens)
    {
        return _executeOpen($, contextInMemory(context), requestId, order, salt);
    }

    /// @notice Executes many open requests (`executeOpenBatch`; the engine checked the lengths).
    /// @return feesTokens the batch's execution fees, for the engine to pay the keeper at once
    function executeBatch(
        EngineState storage $,
        EngineContext calldata context,
        uint256[] calldata requestIds,
        Order[] calldata orders,
        bytes32[] calldata salts
    ) external returns (uint256 feesTokens) {
        EngineContext memory ctx = contextInMemory(context);
        for (uint256 i = 0; i < requestIds.length; i++) {
            feesTokens += _executeOpen($, ctx, requestIds[i], orders[i], salts[i]);
        }
    }

    /// @dev Returns the request's execution fee, for the caller to pay the keeper.
    function _executeOpen(EngineState storage $, EngineContext memory ctx, uint256 requestId, Order calldata order, bytes32 salt)
        private
        returns (uint256 feeTokens)
    {
        StoredRequest storage r = $.executableRequest(requestId, RequestKind.Open);
        feeTokens = r.executionFeeTokens;
        bytes32 revealed = keccak256(
            abi.encode(
                r.trader, order.pairId, order.isLong, order.leverage, order.takeProfit, order.stopLoss, order.acceptablePrice, salt
            )
        );
        if (revealed != r.commitment) revert Errors.CommitmentMismatch(requestId, r.commitment, revealed);
        // the caller pays the keeper (one transfer for a whole batch)
        emit ITradingEngine.ExecutionFeePaid(requestId, msg.sender, feeTokens);

        // on success the position is written over the request's slots, status Executed
        RejectReason reason = _open($, ctx, requestId, r.trader, r.amountIn - feeTokens, feeTokens, order);
        if (reason != RejectReason.None) {
            r.status = RequestStatus.Rejected;
            uint256 refund = r.amountIn - feeTokens;
            ctx.collateral.safeTransfer(r.trader, refund);
            emit ITradingEngine.OpenRejected(requestId, r.trader, reason, refund, feeTokens, order);
        }
    }

    function _open(
        EngineState storage $,
        EngineContext memory ctx,
        uint256 requestId,
        address trader,
        uint256 netTokens,
        uint256 feeTokens,
        Order calldata order
    ) private returns (RejectReason) {
        OpenCache memory c = _emptyCache();
        c.executionFeeTokens = feeTokens;
        StoredSettings storage s = $.settings;
        // 1. pair and leverage
        c.pair = ctx.pairs.tradeConfig(order.pairId);
        if (!c.pair.listed) return RejectReason.PairNotListed;
        if (c.pair.paused) return RejectReason.PairPaused;
        if (order.leverage >= s.extremeLeverage && c.pair.maxLeverage < s.extremeLeverage) {
            return RejectReason.ExtremeLeverageNotOffered;
        }
        if (order.leverage == 0 || order.leverage > c.pair.maxLeverage) return RejectReason.LeverageOutOfRange;
        if (!_countExecution($, order.pairId)) return RejectReason.TooManyExecutions;
        // 2. guarded oracle price
        RejectReason reason;
        (c.oraclePrice, reason) = ctx.oracle.guardedPrice(order.pairId, order.isLong);
        if (reason != RejectReason.None) return reason;
        // 3. fees and size
        c.extreme = order.leverage >= s.extremeLeverage;
        _sizeOpen($, ctx, c, trader, netTokens, order.leverage);
        (uint256 cap, bool tooLarge) = ctx.pairs.leverageCap(order.pairId, c.notionalUsd);
        if (tooLarge) return RejectReason.NotionalTooLarge;
        if (order.leverage > cap) return RejectReason.LeverageAboveNotionalTier;
        if (c.notionalUsd < s.minNotionalUsd || c.notionalUsd == 0) return RejectReason.NotionalTooSmall;
        // 4. open interest, slippage, acceptable price
        c.sideOiUsd = ctx.market.sideOiUsd(order.pairId, order.isLong);
        if (c.sideOiUsd + c.notionalUsd > c.pair.maxOiPerSideUsd) return RejectReason.OpenInterestCapExceeded;
        c.slippageWad = TradeMath.slippageWadUp(c.pair.spreadBps, c.sideOiUsd, c.notionalUsd, c.pair.depth1PctUsd);
        c.fill = TradeMath.fillPrice(c.oraclePrice, c.slippageWad, order.isLong);
        if (c.fill == 0) return RejectReason.OpenLossTooHigh;
        if (order.acceptablePrice != 0 && (order.isLong ? c.fill > order.acceptablePrice : c.fill < order.acceptablePrice)) {
            return RejectReason.SlippageExceeded;
        }
        // 5. quantity, profit cap, take-profit and stop-loss
        c.roiCapBps = _roiCapBps(s, order.leverage);
        (c.qty, c.maxProfitUsd) = EngineStorage.qtyAndMaxProfit(c.notionalUsd, c.fill, c.marginUsd, c.roiCapBps);
        uint256 capPrice = TradeMath.takeProfitCapPrice(order.isLong, c.fill, c.qty, c.maxProfitUsd);
        reason = _checkLimits(c, order, capPrice);
        if (reason != RejectReason.None) return reason;
        // 6. open-loss guard: |fill - oracle| x qty < 80% of margin
        uint256 openLossUsd = Math.mulDiv(_absDiff(c.fill, c.oraclePrice), c.qty, WAD, Math.Rounding.Ceil);
        if (openLossUsd * BPS >= s.openLossGuardBps * c.marginUsd) return RejectReason.OpenLossTooHigh;
        // 7. reserve capacity of the pool
        if (ctx.pool.reserveCapacityUsd() < c.maxProfitUsd) return RejectReason.ReserveExceeded;
        // 8. commit: fees, market aggregates, reserve, position
        _storeOpen($, ctx, requestId, trader, order, c);
        return RejectReason.None;
    }

    function _emptyCache() private pure returns (OpenCache memory c) {
        return c;
    }

    /// @dev Counts an execution on the pair in this block; false past the per-block limit.
    function _countExecution(EngineState storage $, uint256 pairId) private returns (bool) {
        BlockCount storage bc = $.executions[pairId];
        if (bc.blockNumber != block.number) {
            bc.blockNumber = uint64(block.number);
            bc.count = 0;
        }
        bc.count += 1;
        return bc.count <= $.settings.maxExecutionsPerPairPerBlock;
    }

    /// @dev Margin, notional and open fee (docs/mechanics.md section 5.3), in collateral or platform token.
    function _sizeOpen(
        EngineState storage $,
        EngineContext memory ctx,
        OpenCache memory c,
        address trader,
        uint256 netTokens,
        uint256 leverage
    ) private view {
        StoredSettings storage s = $.settings;
        c.discountBps = Settlement.referralDiscount(s, ctx, trader);
        if (c.extreme) {
            // no open fee in the extreme tier
            _setMargin(ctx, c, netTokens, leverage);
            return;
        }
        if ($.feeInToken[trader]) {
            _setMargin(ctx, c, netTokens, leverage);
            c.feeRateWad = TradeMath.discountedRateWad(s.openFeeBps, c.discountBps + s.tokenDiscountBps);
            c.openFeeUsd = Math.mulDiv(c.notionalUsd, c.feeRateWad, WAD, Math.Rounding.Ceil);
            uint256 tokens = Settlement.platformTokens(ctx, c.openFeeUsd);
            if (tokens != 0 && Settlement.canPull(ctx, trader, tokens)) {
                c.payInToken = true;
                c.openFeeTokens = tokens;
                return;
            }
        }
        c.feeRateWad = TradeMath.discountedRateWad(s.openFeeBps, c.discountBps);
        uint256 marginTokens = TradeMath.marginTokensDown(netTokens, leverage, c.feeRateWad);
        _setMargin(ctx, c, marginTokens, leverage);
        c.openFeeTokens = netTokens - marginTokens;
        c.openFeeUsd = Units.tokenToUsd(c.openFeeTokens, ctx.tokenToUsdScale);
    }

    function _setMargin(EngineContext memory ctx, OpenCache memory c, uint256 marginTokens, uint256 leverage) private pure {
        c.marginTokens = marginTokens;
        c.marginUsd = Units.tokenToUsd(marginTokens, ctx.tokenToUsdScale);
        c.notionalUsd = c.marginUsd * leverage;
    }

    function _roiCapBps(StoredSettings storage s, uint256 leverage) private view returns (uint256) {
        if (leverage >= s.maxRoiLeverage) return s.roiCapMaxLeverageBps;
        if (leverage >= s.extremeLeverage) return s.roiCapExtremeBps;
        return s.roiCapStandardBps;
    }

    function _checkLimits(OpenCache memory c, Order calldata order, uint256 capPrice) private pure returns (RejectReason) {
        if (order.takeProfit == 0) {
            c.takeProfit = capPrice;
        } else if (order.isLong ? order.takeProfit <= c.fill : order.takeProfit >= c.fill) {
            return RejectReason.TakeProfitWrongSide;
        } else if (order.isLong ? order.takeProfit > capPrice : order.takeProfit < capPrice) {
            return RejectReason.TakeProfitBeyondCap;
        } else {
            c.takeProfit = order.takeProfit;
        }
        if (order.stopLoss != 0 && (order.isLong ? order.stopLoss >= c.fill : order.stopLoss <= c.fill)) {
            return RejectReason.StopLossWrongSide;
        }
        return RejectReason.None;
    }

    /// @dev The open fee: 50% to the pool, 50% to the treasury. Returns the collateral the
    ///      pool is to book (none for a fee in platform token).
    function _chargeOpenFee(
        EngineState storage $,
        EngineContext memory ctx,
        uint256 positionId,
        address trader,
        OpenCache memory c
    ) private returns (uint256) {
        if (c.payInToken) {
            // The trader opted in (setFeeInToken, approval) and the keeper executes on their
            // behalf: `trader` is the request's own sender, never an arbitrary address.
            // slither-disable-next-line arbitrary-send-erc20
            ctx.platformToken.safeTransferFrom(trader, address(this), c.openFeeTokens);
            return Settlement.splitFee($, ctx, positionId, true, true, c.openFeeTokens);
        }
        return c.openFeeTokens == 0 ? 0 : Settlement.splitFee($, ctx, positionId, true, false, c.openFeeTokens);
    }

    /// @dev Writes the position over its request's slots; the margin stays in escrow in the
    ///      engine, the fee left in `_chargeOpenFee`.
    function _storeOpen(
        EngineState storage $,
        EngineContext memory ctx,
        uint256 requestId,
        address trader,
        Order calldata order,
        OpenCache memory c
    ) private {
        uint256 positionId = requestId;
        uint256 costUsd = Math.mulDiv(c.qty, c.fill, WAD);
        // the pool books its share of the fee with the reserve
        ctx.pool.increaseReserve(c.maxProfitUsd, _chargeOpenFee($, ctx, positionId, trader, c));
        (uint256 holdingIndex, int256 fundingIndex) =
            ctx.market.addPosition(order.pairId, order.isLong, c.notionalUsd, c.qty, costUsd);

        bool hasLimits = order.takeProfit != 0 || order.stopLoss != 0;
        // over the request's own slots: its head keeps trader, kind and block
        StoredPosition storage sp = $.position(positionId);
        sp.status = RequestStatus.Executed;
        sp.pairId = uint8(order.pairId);
        sp.isLong = order.isLong;
        sp.feeInToken = c.payInToken;
        sp.hasLimits = hasLimits;
        sp.leverage = order.leverage.toUint16();
        sp.marginTokens = c.marginTokens.toUint128();
        sp.entryPrice = c.fill.toUint128();
        sp.holdingIndex = holdingIndex.toUint80();
        sp.fundingIndex = fundingIndex.toInt80();
        sp.roiCapBps = c.roiCapBps.toUint32();
        sp.openedAt = uint32(block.timestamp);
        sp.closeRequestId = 0; // the last bits of the commitment
        if (hasLimits) $.limits[positionId] = StoredLimits(c.takeProfit.toUint128(), order.stopLoss.toUint128());
        _emitOpened($, ctx, positionId, trader, c);
    }

    function _emitOpened(EngineState storage $, EngineContext memory ctx, uint256 positionId, address trader, OpenCache memory c)
        private
    {
        // the position's id is its request's
        emit ITradingEngine.PositionOpened(
            positionId,
            positionId,
            trader,
            $.load(positionId, ctx.tokenToUsdScale),
            OpenCharges({
                oraclePrice: c.oraclePrice,
                slippageWad: c.slippageWad,
                executionFeeTokens: c.executionFeeTokens,
                openFeeUsd: c.openFeeUsd,
                openFeeTokens: c.openFeeTokens,
                feeDiscountBps: c.discountBps + (c.payInToken ? $.settings.tokenDiscountBps : 0)
            })
        );
    }

    function _absDiff(uint256 a, uint256 b) private pure returns (uint256) {
        return a > b ? a - b : b - a;
    }
}
