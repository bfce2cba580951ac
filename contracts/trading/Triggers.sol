// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";

import {Market} from "./Market.sol";
import {BPS} from "../libraries/Units.sol";
import {TradeMath} from "../libraries/TradeMath.sol";
import {EngineState, EngineContext, EngineStorage, StoredSettings, contextInMemory} from "./EngineStorage.sol";
import {Settlement} from "./Settlement.sol";
import {Position, RejectReason, CloseReason} from "./Types.sol";

/// @title Triggers
/// @notice The keeper's triggers (docs/mechanics.md sections 7, 8 and 11): liquidation at the
///         oracle price, else take-profit, else stop-loss, each settled by `Settlement`; and
///         whether a position is liquidatable at a price (`isLiquidatable`).
/// @dev An external library: `TradingEngine` calls it by delegatecall (once per transaction:
///      the positions loop here), from its keeper-only, nonReentrant `runTriggers`, so it runs
///      in the engine's storage, as the engine. It declares no storage; called at its own
///      address, `run` reverts (Solidity's guard on a library's non-view functions) and
///      `isLiquidatable` reads the library's own, empty storage.
library Triggers {
    using EngineStorage for EngineState;

    /// @dev Within one transaction a pair's guarded price (per side) and its indexes do not
    ///      change (the prices are applied first; a second accrual in the same second adds
    ///      nothing), so a batch reads them once per run of positions on the same pair and side.
    struct TriggerCache {
        uint256 key; // 1 + 2 x pairId + isLong; 0 while empty
        uint256 price;
        RejectReason reason;
        Market.Indexes idx;
    }

    /// @notice Runs the triggers of `positionIds` (`runTriggers`; the engine applied the prices).
    /// @return closed how many positions were closed
    function run(EngineState storage $, EngineContext calldata context, uint256[] calldata positionIds)
        external
        returns (uint256 closed)
    {
        EngineContext memory ctx = contextInMemory(context);
        // zero on purpose: key 0 is an empty cache
        // slither-disable-next-line uninitialized-local
        TriggerCache memory cache;
        for (uint256 i = 0; i < positionIds.length; i++) {
            if (_trigger($, ctx, positionIds[i], cache)) closed++;
        }
    }

    /// @notice Whether the position is liquidatable at `price` now (`isLiquidatable`).
    function isLiquidatable(EngineState storage $, EngineContext memory ctx, uint256 positionId, uint256 price)
        external
        view
        returns (bool)
    {
        Position memory p = $.load(positionId, ctx.tokenToUsdScale);
        if (p.trader == address(0)) return false;
        Market.Indexes memory idx = ctx.market.indexesNow(p.pairId);
        uint256 discount = Settlement.referralDiscount($.settings, ctx, p.trader);
        return _liquidatable($, p, price, idx.holding, p.isLong ? idx.fundingLong : idx.fundingShort, discount);
    }

    function _trigger(EngineState storage $, EngineContext memory ctx, uint256 positionId, TriggerCache memory cache)
        private
        returns (bool)
    {
        Position memory p = $.load(positionId, ctx.tokenToUsdScale);
        if (p.trader == address(0)) return false;
        uint256 key = 1 + 2 * p.pairId + (p.isLong ? 1 : 0);
        if (cache.key != key) {
            cache.key = key;
            (cache.price, cache.reason) = ctx.oracle.guardedPrice(p.pairId, !p.isLong);
            cache.idx = ctx.market.indexesNow(p.pairId);
        }
        if (cache.reason != RejectReason.None) return false;
        uint256 price = cache.price;
        // read once: the liquidation check and the close use the same discount
        uint256 discount = Settlement.referralDiscount($.settings, ctx, p.trader);
        Market.Indexes memory idx = cache.idx;
        if (_liquidatable($, p, price, idx.holding, p.isLong ? idx.fundingLong : idx.fundingShort, discount)) {
            Settlement.settle($, ctx, positionId, p, price, price, CloseReason.Liquidation, discount);
            return true;
        }
        if (p.isLong ? price >= p.takeProfit : price <= p.takeProfit) {
            uint256 fill = Settlement.closeFill(ctx, p, price);
            fill = p.isLong ? Math.min(fill, p.takeProfit) : Math.max(fill, p.takeProfit);
            Settlement.settle($, ctx, positionId, p, price, fill, CloseReason.TakeProfit, discount);
            return true;
        }
        if (p.stopLoss != 0 && (p.isLong ? price <= p.stopLoss : price >= p.stopLoss)) {
            uint256 fill = Settlement.closeFill(ctx, p, price);
            Settlement.settle($, ctx, positionId, p, price, fill, CloseReason.StopLoss, discount);
            return true;
        }
        return false;
    }

    /// @dev `discountBps`: the trader's referral discount (`Settlement.referralDiscount`).
    function _liquidatable(
        EngineState storage $,
        Position memory p,
        uint256 price,
        uint256 holdingIndex,
        int256 fundingIndex,
        uint256 discountBps
    ) private view returns (bool) {
        StoredSettings storage s = $.settings;
        int256 pnl = TradeMath.pnlUsdFloor(p.isLong, p.qty, p.entryPrice, price);
        uint256 fee = Settlement.closeFeeUsd(s, p, pnl, price, discountBps);
        int256 loss = int256(fee) + Settlement.holding(p, holdingIndex) + Settlement.funding(p, fundingIndex) - pnl;
        uint256 threshold = p.leverage >= s.extremeLeverage ? s.liquidationThresholdExtremeBps : s.liquidationThresholdStandardBps;
        return loss > 0 && uint256(loss) * BPS >= threshold * p.marginUsd;
    }
}
