// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

import {ITradingEngine} from "../interfaces/ITradingEngine.sol";
import {Units} from "../libraries/Units.sol";
import {Errors} from "../errors/Errors.sol";
import {EngineBase, EngineStorage, EngineState, StoredRequest, StoredPosition} from "./EngineStorage.sol";
import {Order, Request, RequestKind, RequestStatus, RejectReason} from "./Types.sol";

/// @title RequestBook
/// @notice The engine's requests and their escrow: a trader's open and close requests, the
///         cancel after the window, the keeper's refusal of an unusable order, the trader's
///         fee-token preference, and the request views. Executing a request is the
///         pipelines' job (`OpenPipeline`, `ClosePipeline`).
abstract contract RequestBook is EngineBase {
    using SafeERC20 for IERC20;
    using SafeCast for uint256;
    using EngineStorage for EngineState;

    constructor() {
        EngineStorage.state().nextRequestId = 1;
    }

    // ================================================================== trader

    /// @inheritdoc ITradingEngine
    function requestOpen(bytes32 commitment, bytes calldata encryptedOrder, uint256 amountIn)
        external
        nonReentrant
        whenNotPaused
        returns (uint256 requestId)
    {
        EngineState storage $ = EngineStorage.state();
        uint256 feeTokens = executionFeeTokens();
        if (amountIn <= feeTokens) revert Errors.AmountBelowExecutionFee(amountIn, feeTokens);
        if (amountIn > type(uint128).max) revert Errors.AmountTooLarge(amountIn, type(uint128).max);
        _collateralToken().safeTransferFrom(msg.sender, address(this), amountIn);
        requestId = $.nextRequestId++;
        $.requests[requestId] = StoredRequest({
            trader: msg.sender,
            kind: RequestKind.Open,
            status: RequestStatus.Pending,
            blockNumber: block.number.toUint32(),
            positionRef: 0,
            amountIn: uint128(amountIn),
            executionFeeTokens: uint128(feeTokens),
            commitment: commitment
        });
        emit OpenRequested(requestId, msg.sender, amountIn, commitment, encryptedOrder);
    }

    /// @inheritdoc ITradingEngine
    function requestClose(uint256 positionId) external nonReentrant returns (uint256 requestId) {
        EngineState storage $ = EngineStorage.state();
        StoredPosition storage p = $.openPosition(positionId);
        if (p.trader != msg.sender) revert Errors.NotOwner(msg.sender, p.trader);
        uint256 pending = p.closeRequestId;
        if (pending != 0 && block.number <= $.requests[pending].blockNumber + $.settings.requestExpiryBlocks) {
            revert Errors.CloseAlreadyPending(positionId, pending);
        }
        requestId = $.nextRequestId++;
        // one slot, the head: the position id rides in it
        StoredRequest storage r = $.requests[requestId];
        r.trader = msg.sender;
        r.kind = RequestKind.Close;
        r.status = RequestStatus.Pending;
        r.blockNumber = block.number.toUint32();
        r.positionRef = positionId.toUint48();
        p.closeRequestId = requestId.toUint32();
        emit CloseRequested(requestId, positionId, msg.sender);
    }

    /// @inheritdoc ITradingEngine
    function cancelRequest(uint256 requestId) external nonReentrant {
        EngineState storage $ = EngineStorage.state();
        StoredRequest storage r = $.pendingRequest(requestId);
        if (r.trader != msg.sender) revert Errors.NotOwner(msg.sender, r.trader);
        uint256 expiresAfter = r.blockNumber + $.settings.requestExpiryBlocks;
        if (block.number <= expiresAfter) revert Errors.RequestNotExpired(requestId, expiresAfter);
        r.status = RequestStatus.Cancelled;
        uint256 refund = 0;
        if (r.kind == RequestKind.Open) {
            refund = r.amountIn;
            _collateralToken().safeTransfer(r.trader, refund);
        } else {
            // only this request's own mark: a newer close request stays pending (a closed
            // position's mark is already zero)
            StoredPosition storage p = $.position(r.positionRef);
            if (p.closeRequestId == requestId) p.closeRequestId = 0;
        }
        emit RequestCancelled(requestId, r.trader, r.kind, refund);
    }

    /// @inheritdoc ITradingEngine
    function setFeeInToken(bool enabled) external {
        EngineStorage.state().feeInToken[msg.sender] = enabled;
        emit FeeTokenPreferenceSet(msg.sender, enabled);
    }

    // ================================================================== keeper

    /// @inheritdoc ITradingEngine
    function rejectOpen(uint256 requestId, RejectReason reason) external nonReentrant onlyKeeper {
        if (reason != RejectReason.UndecryptableOrder && reason != RejectReason.MalformedOrder) {
            revert Errors.InvalidRejectReason(uint8(reason));
        }
        StoredRequest storage r = EngineStorage.state().executableRequest(requestId, RequestKind.Open);
        r.status = RequestStatus.Rejected;
        uint256 feeTokens = r.executionFeeTokens;
        uint256 refund = r.amountIn - feeTokens;
        address trader = r.trader;
        emit ExecutionFeePaid(requestId, msg.sender, feeTokens);
        // zero on purpose: no order was revealed
        // slither-disable-next-line uninitialized-local
        Order memory none;
        emit OpenRejected(requestId, trader, reason, refund, feeTokens, none);
        IERC20 token = _collateralToken();
        token.safeTransfer(trader, refund);
        token.safeTransfer(msg.sender, feeTokens);
    }

    // ================================================================== views

    /// @inheritdoc ITradingEngine
    function nextRequestId() external view returns (uint256) {
        return EngineStorage.state().nextRequestId;
    }

    /// @inheritdoc ITradingEngine
    function feeInToken(address trader) external view returns (bool) {
        return EngineStorage.state().feeInToken[trader];
    }

    /// @inheritdoc ITradingEngine
    function executionFeeTokens() public view returns (uint256) {
        return Units.usdToTokenUp(EngineStorage.state().settings.executionFeeUsd, _usdScale());
    }

    /// @inheritdoc ITradingEngine
    function request(uint256 requestId) external view returns (Request memory r) {
        StoredRequest storage sr = EngineStorage.state().requests[requestId];
        r.trader = sr.trader;
        r.kind = sr.kind;
        r.status = sr.status;
        r.blockNumber = sr.blockNumber;
        if (sr.kind == RequestKind.Close) {
            r.amountIn = sr.positionRef;
        } else if (sr.status != RequestStatus.Executed) {
            r.amountIn = sr.amountIn;
            r.executionFeeTokens = sr.executionFeeTokens;
            r.commitment = sr.commitment;
        }
    }

    /// @inheritdoc ITradingEngine
    function pendingClose(uint256 positionId) external view returns (uint256) {
        StoredPosition storage sp = EngineStorage.state().position(positionId);
        return EngineStorage.isOpen(sp) ? sp.closeRequestId : 0;
    }
}
