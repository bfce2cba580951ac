// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

import {Errors} from "../errors/Errors.sol";
import {RequestKind, RequestStatus} from "./Types.sol";

/// @title EngineStorage
/// @notice The trading engine's state, roles and events, shared by `TradingEngine` and
///         `EngineModule`: the module runs by delegatecall in the engine's storage, so both
///         must see one layout. Neither declares storage of its own (immutables are code).
abstract contract EngineStorage is AccessControl, Pausable, ReentrancyGuardTransient {
    using SafeCast for uint256;

    bytes32 public constant ADMIN_ROLE = keccak256("ADMIN");
    bytes32 public constant KEEPER_ROLE = keccak256("KEEPER");

    uint256 internal constant WAD = 1e18;
    uint256 internal constant BPS = 10_000;

    struct Settings {
        uint256 executionFeeUsd;
        uint256 minNotionalUsd;
        uint256 extremeLeverage; // the extreme tier starts here (500x)
        uint256 maxRoiLeverage; // the smallest ROI cap applies from here (1000x)
        uint256 openFeeBps; // standard tier
        uint256 closeFeeBps; // standard tier
        uint256 extremeMinCloseFeeBps; // extreme tier: minimum, of close notional
        uint256 extremeProfitFeeBps; // extreme tier: share of profit
        uint256 referralDiscountBps;
        uint256 tokenDiscountBps;
        uint256 poolFeeShareBps;
        uint256 roiCapStandardBps;
        uint256 roiCapExtremeBps;
        uint256 roiCapMaxLeverageBps;
        uint256 openLossGuardBps;
        uint256 liquidationThresholdStandardBps;
        uint256 liquidationThresholdExtremeBps;
        uint256 requestExpiryBlocks;
        uint256 maxExecutionsPerPairPerBlock;
    }

    /// @dev The settings and the treasury in storage: three slots. An open or a close reads
    ///      all three; a liquidation reads the last two: every fee rate, the extreme tier and
    ///      the liquidation thresholds share one slot. USD amounts fit 96 bits, the request
    ///      expiry 32, the ROI caps 24 (they pass 65,535 bps), the rest 16 (`_storeSettings`
    ///      refuses wider values). Slot 0 is full, so the extreme tier starts slot 1.
    struct StoredSettings {
        // slot 0: requests and sizing
        uint96 executionFeeUsd;
        uint96 minNotionalUsd;
        uint32 requestExpiryBlocks;
        uint16 maxExecutionsPerPairPerBlock;
        uint16 maxRoiLeverage;
        // slot 1: tiers, rates and thresholds
        uint16 extremeLeverage;
        uint16 openFeeBps;
        uint16 closeFeeBps;
        uint16 extremeMinCloseFeeBps;
        uint16 extremeProfitFeeBps;
        uint16 referralDiscountBps;
        uint16 tokenDiscountBps;
        uint16 poolFeeShareBps;
        uint16 openLossGuardBps;
        uint16 liquidationThresholdStandardBps;
        uint16 liquidationThresholdExtremeBps;
        uint24 roiCapStandardBps;
        uint24 roiCapExtremeBps;
        uint24 roiCapMaxLeverageBps;
        // slot 2
        address treasury; // fees' share not for the pool (`treasury()`, `setTreasury`)
    }

    /// @dev A request in storage: an open takes three slots, a close one (the head). The
    ///      execution fee is fixed in the request (slot 1, beside the amount): an admin's later
    ///      change applies to later requests only. An
    ///      executed open's position takes the same three slots (see `StoredPosition`), so the
    ///      position's id is its request's and writing it changes slots the trader's request
    ///      already paid for, instead of creating three (about 60,000 gas). The head (trader,
    ///      kind, status, block) is shared and keeps the request's record for good.
    struct StoredRequest {
        address trader;
        RequestKind kind;
        RequestStatus status;
        uint32 blockNumber;
        uint48 positionRef; // close: the position id; executed open: its position's pairId to leverage
        uint128 amountIn; // open: collateral escrowed (token units)
        uint128 executionFeeTokens; // open: the execution fee, fixed when the request is made
        bytes32 commitment; // open
    }

    /// @dev A position in its open request's slots, a fourth only when the trader set a
    ///      take-profit or stop-loss. Everything else derives, exactly as at open: margin USD
    ///      from the tokens, notional = leverage x margin, qty = notional / entry, the
    ///      maximum profit from the ROI cap, the take-profit at the cap when none was given.
    ///      Open while its margin is not zero: settlement zeroes slots 1 and 2.
    struct StoredPosition {
        address trader;
        RequestKind kind; // Open
        RequestStatus status; // Executed
        uint32 blockNumber; // of the request
        uint8 pairId; // prices exist for pairs 0 to 255 only
        bool isLong;
        bool feeInToken;
        bool hasLimits; // the limits slot is written
        uint16 leverage;
        uint128 marginTokens;
        uint128 entryPrice;
        uint80 holdingIndex;
        int80 fundingIndex;
        uint32 roiCapBps;
        uint32 openedAt;
        uint32 closeRequestId; // the latest close request (see `pendingClose`)
    }

    struct StoredLimits {
        uint128 takeProfit; // 0: at the cap
        uint128 stopLoss; // 0: none
    }

    struct BlockCount {
        uint64 blockNumber;
        uint64 count;
    }

    /// @dev The keeper's ECIES public key (see `EngineModule.keeperPublicKey`).
    bytes internal _keeperPublicKey;

    /// @dev Read through `treasury()` for the treasury.
    StoredSettings internal _settings;

    uint256 public nextRequestId = 1;
    /// @dev Requests and, in the same slots, the positions of executed opens (positionId =
    ///      requestId); read a position through `_position`.
    mapping(uint256 requestId => StoredRequest) internal _requests;
    mapping(uint256 positionId => StoredLimits) internal _limits;
    // written by EngineModule.setFeeInToken, in this storage (delegatecall)
    // slither-disable-next-line uninitialized-state
    mapping(address trader => bool) public feeInToken;
    mapping(uint256 pairId => BlockCount) internal _executions;

    event RequestCancelled(uint256 indexed requestId, address indexed trader, RequestKind kind, uint256 refundTokens);
    event FeeTokenPreferenceSet(address indexed trader, bool enabled);
    event SettingsUpdated(Settings settings);
    event KeeperPublicKeySet(bytes publicKey);
    event TreasurySet(address treasury);

    /// @notice Where the fees' share not for the pool goes.
    function treasury() public view returns (address) {
        return _settings.treasury;
    }

    /// @dev Stores `s` packed, the treasury unchanged; a value wider than its field reverts
    ///      (SafeCast).
    function _storeSettings(Settings memory s) internal {
        _settings = StoredSettings({
            executionFeeUsd: s.executionFeeUsd.toUint96(),
            minNotionalUsd: s.minNotionalUsd.toUint96(),
            requestExpiryBlocks: s.requestExpiryBlocks.toUint32(),
            maxExecutionsPerPairPerBlock: s.maxExecutionsPerPairPerBlock.toUint16(),
            maxRoiLeverage: s.maxRoiLeverage.toUint16(),
            extremeLeverage: s.extremeLeverage.toUint16(),
            openFeeBps: s.openFeeBps.toUint16(),
            closeFeeBps: s.closeFeeBps.toUint16(),
            extremeMinCloseFeeBps: s.extremeMinCloseFeeBps.toUint16(),
            extremeProfitFeeBps: s.extremeProfitFeeBps.toUint16(),
            referralDiscountBps: s.referralDiscountBps.toUint16(),
            tokenDiscountBps: s.tokenDiscountBps.toUint16(),
            poolFeeShareBps: s.poolFeeShareBps.toUint16(),
            openLossGuardBps: s.openLossGuardBps.toUint16(),
            liquidationThresholdStandardBps: s.liquidationThresholdStandardBps.toUint16(),
            liquidationThresholdExtremeBps: s.liquidationThresholdExtremeBps.toUint16(),
            roiCapStandardBps: s.roiCapStandardBps.toUint24(),
            roiCapExtremeBps: s.roiCapExtremeBps.toUint24(),
            roiCapMaxLeverageBps: s.roiCapMaxLeverageBps.toUint24(),
            treasury: _settings.treasury
        });
    }

    function _pendingRequest(uint256 requestId) internal view returns (StoredRequest storage r) {
        r = _requests[requestId];
        if (r.status == RequestStatus.None) revert Errors.UnknownRequest(requestId);
        if (r.status != RequestStatus.Pending) revert Errors.RequestNotPending(requestId, uint8(r.status));
    }

    /// @dev The position in request `positionId`'s slots (meaningful once that open executed).
    function _position(uint256 positionId) internal view returns (StoredPosition storage sp) {
        StoredRequest storage r = _requests[positionId];
        assembly ("memory-safe") {
            sp.slot := r.slot
        }
    }

    function _isOpen(StoredPosition storage sp) internal view returns (bool) {
        return sp.kind == RequestKind.Open && sp.status == RequestStatus.Executed && sp.marginTokens != 0;
    }
}
