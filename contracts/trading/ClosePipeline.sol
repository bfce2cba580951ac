// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";

import {ITradingEngine} from "../interfaces/ITradingEngine.sol";
import {EngineState, EngineContext, EngineStorage, StoredRequest, StoredPosition, contextInMemory} from "./EngineStorage.sol";
import {Settlement} from "./Settlement.sol";
import {Position, RequestKind, RequestStatus, RejectReason, CloseReason} from "./Types.sol";

/// @title ClosePipeline
/// @notice Executing a trader's close requests (docs/mechanics.md section 6): at the guarded
///         oracle price moved by slippage, never past the take-profit, settled by `Settlement`;
///         or the request rejected with the price's reason, the position left open.
/// @dev An external library: `TradingEngine` calls it by delegatecall (once per transaction:
///      a batch loops here), from its keeper-only, nonReentrant entry points, so it runs in
///      the engine's storage, as the engine. It declares no storage; called at its own
///      address it reverts (Solidity's guard on a library's non-view functions).
library ClosePipeline {
    using EngineStorage for EngineState;

    /// @notice Executes one close request (`executeClose`).
    function executeOne(EngineState storage $, EngineContext calldata context, uint256 requestId) external {
        _executeClose($, contextInMemory(context), requestId);
    }

    /// @notice Executes many close requests (`executeCloseBatch`).
    function executeBatch(EngineState storage $, EngineContext calldata context, uint256[] calldata requestIds) external {
        EngineContext memory ctx = contextInMemory(context);
        for (uint256 i = 0; i < requestIds.length; i++) {
            _executeClose($, ctx, requestIds[i]);
        }
    }

    /// @dev The calls before the position leaves storage go to the system's own oracle and
    ///      market (role-gated, no callbacks), and every entry point of the engine is nonReentrant.
    // slither-disable-next-line reentrancy-no-eth
    function _executeClose(EngineState storage $, EngineContext memory ctx, uint256 requestId) private {
        StoredRequest storage r = $.executableRequest(requestId, RequestKind.Close);
        uint256 positionId = r.positionRef;
        // a trigger or liquidation may have closed it since the request
        StoredPosition storage sp = $.openPosition(positionId);
        Position memory p = $.load(positionId, ctx.tokenToUsdScale);
        (uint256 price, RejectReason reason) = ctx.oracle.guardedPrice(p.pairId, !p.isLong);
        if (reason != RejectReason.None) {
            sp.closeRequestId = 0;
            r.status = RequestStatus.Rejected;
            emit ITradingEngine.CloseRejected(requestId, positionId, reason);
            return;
        }
        r.status = RequestStatus.Executed;
        uint256 exitPrice = Settlement.closeFill(ctx, p, price);
        exitPrice = p.isLong ? Math.min(exitPrice, p.takeProfit) : Math.max(exitPrice, p.takeProfit);
        uint256 discount = Settlement.referralDiscount($.settings, ctx, p.trader);
        Settlement.settle($, ctx, positionId, p, price, exitPrice, CloseReason.TraderClose, discount);
    }
}
