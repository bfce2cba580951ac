// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";

import {EngineBase, EngineStorage, EngineState, StoredSettings, StoredRequest, StoredPosition, StoredLimits, BlockCount} from "./EngineStorage.sol";
import {ITradingEngine} from "../interfaces/ITradingEngine.sol";
import {WAD, BPS} from "../libraries/Units.sol";
import {PairRegistry} from "./PairRegistry.sol";
import {Errors} from "../errors/Errors.sol";
import {Request, RequestKind, RequestStatus} from "./Types.sol";

/// @title EngineModule
/// @notice The trading engine's cold functions: settings, the keeper's key, the treasury,
///         pause, a trader's cancel and fee-token preference, and the request views. The
///         engine deploys it and forwards every call it does not handle itself to it by
///         delegatecall, so these run in the engine's storage, as the engine.
/// @dev Split out to keep `TradingEngine` within EIP-170's 24,576 bytes. Called directly
///      (not through the engine) it sees its own empty storage: no roles, no requests.
contract EngineModule is EngineBase {
    using SafeERC20 for IERC20;

    IERC20 private immutable _collateral;
    PairRegistry private immutable _pairs;

    constructor(IERC20 collateral_, PairRegistry pairs_) {
        _collateral = collateral_;
        _pairs = pairs_;
    }

    // ================================================================== trader

    /// @notice After the request window (10 blocks), the trader takes back an unexecuted
    ///         request: an open's whole amount is refunded.
    function cancelRequest(uint256 requestId) external nonReentrant {
        StoredRequest storage r = EngineStorage.pendingRequest(_state(), requestId);
        if (r.trader != msg.sender) revert Errors.NotOwner(msg.sender, r.trader);
        uint256 expiresAfter = r.blockNumber + _state().settings.requestExpiryBlocks;
        if (block.number <= expiresAfter) revert Errors.RequestNotExpired(requestId, expiresAfter);
        r.status = RequestStatus.Cancelled;
        uint256 refund = 0;
        if (r.kind == RequestKind.Open) {
            refund = r.amountIn;
            _collateral.safeTransfer(r.trader, refund);
        } else {
            // only this request's own mark: a newer close request stays pending (a closed
            // position's mark is already zero)
            StoredPosition storage p = EngineStorage.position(_state(), r.positionRef);
            if (p.closeRequestId == requestId) p.closeRequestId = 0;
        }
        emit RequestCancelled(requestId, r.trader, r.kind, refund);
    }

    /// @notice Pay trading fees in the platform token (5% off) when its balance and allowance
    ///         allow; otherwise they are charged in collateral without that discount.
    function setFeeInToken(bool enabled) external {
        _state().feeInToken[msg.sender] = enabled;
        emit FeeTokenPreferenceSet(msg.sender, enabled);
    }

    // ================================================================== views

    /// @notice The keeper's secp256k1 public key (64 bytes, uncompressed without prefix) that
    ///         orders are encrypted to (ECIES).
    function keeperPublicKey() external view returns (bytes memory) {
        return _state().keeperPublicKey;
    }

    function settings() external view returns (ITradingEngine.Settings memory) {
        StoredSettings storage t = _state().settings;
        return ITradingEngine.Settings({
            executionFeeUsd: t.executionFeeUsd,
            minNotionalUsd: t.minNotionalUsd,
            extremeLeverage: t.extremeLeverage,
            maxRoiLeverage: t.maxRoiLeverage,
            openFeeBps: t.openFeeBps,
            closeFeeBps: t.closeFeeBps,
            extremeMinCloseFeeBps: t.extremeMinCloseFeeBps,
            extremeProfitFeeBps: t.extremeProfitFeeBps,
            referralDiscountBps: t.referralDiscountBps,
            tokenDiscountBps: t.tokenDiscountBps,
            poolFeeShareBps: t.poolFeeShareBps,
            roiCapStandardBps: t.roiCapStandardBps,
            roiCapExtremeBps: t.roiCapExtremeBps,
            roiCapMaxLeverageBps: t.roiCapMaxLeverageBps,
            openLossGuardBps: t.openLossGuardBps,
            liquidationThresholdStandardBps: t.liquidationThresholdStandardBps,
            liquidationThresholdExtremeBps: t.liquidationThresholdExtremeBps,
            requestExpiryBlocks: t.requestExpiryBlocks,
            maxExecutionsPerPairPerBlock: t.maxExecutionsPerPairPerBlock
        });
    }

    /// @notice A request. An executed open's position has taken its amount and commitment
    ///         slots: they read as zero here, and stay in its `OpenRequested` event.
    function request(uint256 requestId) external view returns (Request memory r) {
        StoredRequest storage sr = _state().requests[requestId];
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

    /// @notice The latest close request of an open position; 0 when it has none, or once it
    ///         was executed, rejected or cancelled, or the position closed.
    function pendingClose(uint256 positionId) external view returns (uint256) {
        StoredPosition storage sp = EngineStorage.position(_state(), positionId);
        return EngineStorage.isOpen(sp) ? sp.closeRequestId : 0;
    }

    // ================================================================== admin

    function setSettings(ITradingEngine.Settings calldata s) external onlyRole(ADMIN_ROLE) {
        if (s.poolFeeShareBps > BPS) revert Errors.InvalidBps(s.poolFeeShareBps);
        uint256 discounts = s.referralDiscountBps + s.tokenDiscountBps;
        if (discounts > BPS) revert Errors.InvalidBps(discounts);
        EngineStorage.storeSettings(_state(), s);
        emit SettingsUpdated(s);
    }

    /// @notice Writes the pair's per-block execution counter (count 1 at block 0, a block that
    ///         never executes: the count restarts at the first execution), so the pair's first
    ///         execution pays no zero-to-nonzero storage write. Optional (gas only) and
    ///         idempotent, as `Market.initPair`.
    function initPair(uint256 pairId) external onlyRole(ADMIN_ROLE) {
        if (pairId >= _pairs.pairCount()) revert Errors.UnknownPair(pairId);
        BlockCount storage counter = _state().executions[pairId];
        if (counter.blockNumber == 0 && counter.count == 0) counter.count = 1;
    }

    function setKeeperPublicKey(bytes calldata publicKey) external onlyRole(ADMIN_ROLE) {
        _state().keeperPublicKey = publicKey;
        emit KeeperPublicKeySet(publicKey);
    }

    function setTreasury(address treasury_) external onlyRole(ADMIN_ROLE) {
        if (treasury_ == address(0)) revert Errors.ZeroAddress();
        _state().settings.treasury = treasury_;
        emit TreasurySet(treasury_);
    }

    function pause() external onlyRole(ADMIN_ROLE) {
        _pause();
    }

    function unpause() external onlyRole(ADMIN_ROLE) {
        _unpause();
    }
}
