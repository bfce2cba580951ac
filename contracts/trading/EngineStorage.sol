// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

import {ITradingEngine} from "../interfaces/ITradingEngine.sol";
import {AlpPool} from "../pool/AlpPool.sol";
import {PriceOracle} from "../oracle/PriceOracle.sol";
import {ReferralRegistry} from "../referral/ReferralRegistry.sol";
import {PairRegistry} from "./PairRegistry.sol";
import {Market} from "./Market.sol";
import {TradeMath} from "../libraries/TradeMath.sol";
import {Units, WAD, BPS} from "../libraries/Units.sol";
import {Errors} from "../errors/Errors.sol";
import {RequestKind, RequestStatus, Position} from "./Types.sol";

/// @dev The settings and the treasury in storage: three slots. An open or a close reads
///      all three; a liquidation reads the last two: every fee rate, the extreme tier and
///      the liquidation thresholds share one slot. USD amounts fit 96 bits, the request
///      expiry 32, the ROI caps 24 (they pass 65,535 bps), the rest 16 (`storeSettings`
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
///      change applies to later requests only. An executed open's position takes the same
///      three slots (see `StoredPosition`), so the position's id is its request's and writing
///      it changes slots the trader's request already paid for, instead of creating three
///      (about 60,000 gas). The head (trader, kind, status, block) is shared and keeps the
///      request's record for good.
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

/// @dev The trading engine's whole state (OpenZeppelin's roles and pause flag aside, in their
///      own contracts' slots), at one ERC-7201 namespace: the engine and the libraries it
///      calls by delegatecall reach it through `EngineStorage.state()`, and nothing else in
///      the engine declares storage (its addresses are immutables, in its code).
/// @custom:storage-location erc7201:alpsim.storage.TradingEngine
struct EngineState {
    StoredSettings settings;
    uint256 nextRequestId;
    /// @dev Requests and, in the same slots, the positions of executed opens (positionId =
    ///      requestId); read a position through `position`.
    mapping(uint256 requestId => StoredRequest) requests;
    mapping(uint256 positionId => StoredLimits) limits;
    mapping(address trader => bool) feeInToken;
    mapping(uint256 pairId => BlockCount) executions;
    /// @dev The keeper's ECIES public key (`keeperPublicKey()`).
    bytes keeperPublicKey;
}

/// @title EngineStorage
/// @notice Where the trading engine's state is, and the small reads every part of the engine
///         shares (a request that must be pending or executable, a position as stored or
///         as a whole). Internal: compiled into each part that uses it. Parts take the state
///         as an `EngineState storage $` parameter; only the entry contract calls `state()`.
library EngineStorage {
    using SafeCast for uint256;

    /// @dev keccak256(abi.encode(uint256(keccak256("alpsim.storage.TradingEngine")) - 1)) & ~bytes32(uint256(0xff))
    bytes32 private constant STATE_SLOT = 0xee2da838dabde3318e49b3e396ddcc7c2bb77899e2be853b5a185503ada4c400;

    function state() internal pure returns (EngineState storage $) {
        assembly ("memory-safe") {
            $.slot := STATE_SLOT
        }
    }

    /// @dev Stores `s` packed, the treasury unchanged; a value wider than its field reverts
    ///      with SafeCast's error. Field by field: less code than a struct assignment.
    function storeSettings(EngineState storage $, ITradingEngine.Settings calldata s) internal {
        StoredSettings storage st = $.settings;
        st.executionFeeUsd = s.executionFeeUsd.toUint96();
        st.minNotionalUsd = s.minNotionalUsd.toUint96();
        st.requestExpiryBlocks = s.requestExpiryBlocks.toUint32();
        st.maxExecutionsPerPairPerBlock = s.maxExecutionsPerPairPerBlock.toUint16();
        st.maxRoiLeverage = s.maxRoiLeverage.toUint16();
        st.extremeLeverage = s.extremeLeverage.toUint16();
        st.openFeeBps = s.openFeeBps.toUint16();
        st.closeFeeBps = s.closeFeeBps.toUint16();
        st.extremeMinCloseFeeBps = s.extremeMinCloseFeeBps.toUint16();
        st.extremeProfitFeeBps = s.extremeProfitFeeBps.toUint16();
        st.referralDiscountBps = s.referralDiscountBps.toUint16();
        st.tokenDiscountBps = s.tokenDiscountBps.toUint16();
        st.poolFeeShareBps = s.poolFeeShareBps.toUint16();
        st.openLossGuardBps = s.openLossGuardBps.toUint16();
        st.liquidationThresholdStandardBps = s.liquidationThresholdStandardBps.toUint16();
        st.liquidationThresholdExtremeBps = s.liquidationThresholdExtremeBps.toUint16();
        st.roiCapStandardBps = s.roiCapStandardBps.toUint24();
        st.roiCapExtremeBps = s.roiCapExtremeBps.toUint24();
        st.roiCapMaxLeverageBps = s.roiCapMaxLeverageBps.toUint24();
    }

    function pendingRequest(EngineState storage $, uint256 requestId) internal view returns (StoredRequest storage r) {
        r = $.requests[requestId];
        if (r.status == RequestStatus.None) revert Errors.UnknownRequest(requestId);
        if (r.status != RequestStatus.Pending) revert Errors.RequestNotPending(requestId, uint8(r.status));
    }

    /// @dev A pending request of `kind` inside its window (after its block, within the expiry).
    function executableRequest(EngineState storage $, uint256 requestId, RequestKind kind)
        internal
        view
        returns (StoredRequest storage r)
    {
        r = pendingRequest($, requestId);
        if (r.kind != kind) revert Errors.UnknownRequest(requestId);
        if (block.number <= r.blockNumber || block.number > r.blockNumber + $.settings.requestExpiryBlocks) {
            revert Errors.RequestNotExecutable(requestId, r.blockNumber, block.number);
        }
    }

    /// @dev The position in request `positionId`'s slots (meaningful once that open executed).
    function position(EngineState storage $, uint256 positionId) internal view returns (StoredPosition storage sp) {
        StoredRequest storage r = $.requests[positionId];
        assembly ("memory-safe") {
            sp.slot := r.slot
        }
    }

    function openPosition(EngineState storage $, uint256 positionId) internal view returns (StoredPosition storage sp) {
        sp = position($, positionId);
        if (!isOpen(sp)) revert Errors.PositionNotOpen(positionId);
    }

    function isOpen(StoredPosition storage sp) internal view returns (bool) {
        return sp.kind == RequestKind.Open && sp.status == RequestStatus.Executed && sp.marginTokens != 0;
    }

    /// @dev The whole position, derived from storage exactly as at open; all zero (trader
    ///      zero) when it is not open.
    function load(EngineState storage $, uint256 positionId, uint256 tokenToUsdScale)
        internal
        view
        returns (Position memory p)
    {
        StoredPosition storage sp = position($, positionId);
        if (!isOpen(sp)) return p;
        p.trader = sp.trader;
        p.pairId = sp.pairId;
        p.isLong = sp.isLong;
        p.feeInToken = sp.feeInToken;
        p.leverage = sp.leverage;
        p.openedAt = sp.openedAt;
        p.marginTokens = sp.marginTokens;
        p.marginUsd = Units.tokenToUsd(sp.marginTokens, tokenToUsdScale);
        p.notionalUsd = p.marginUsd * sp.leverage;
        p.entryPrice = sp.entryPrice;
        (p.qty, p.maxProfitUsd) = qtyAndMaxProfit(p.notionalUsd, p.entryPrice, p.marginUsd, sp.roiCapBps);
        p.costUsd = Math.mulDiv(p.qty, p.entryPrice, WAD);
        p.holdingIndex = sp.holdingIndex;
        p.fundingIndex = sp.fundingIndex;
        if (sp.hasLimits) {
            StoredLimits storage lim = $.limits[positionId];
            p.takeProfit = lim.takeProfit;
            p.stopLoss = lim.stopLoss;
        }
        if (p.takeProfit == 0) p.takeProfit = TradeMath.takeProfitCapPrice(p.isLong, p.entryPrice, p.qty, p.maxProfitUsd);
    }

    /// @dev qty = notional / fill and the reserved maximum profit = ROI cap x margin: computed
    ///      at open and recomputed from storage, so one formula for both.
    function qtyAndMaxProfit(uint256 notionalUsd, uint256 fill, uint256 marginUsd, uint256 roiCapBps)
        internal
        pure
        returns (uint256 qty, uint256 maxProfitUsd)
    {
        return (Math.mulDiv(notionalUsd, WAD, fill), marginUsd * roiCapBps / BPS);
    }
}

/// @dev The engine's immutables (code, not storage), handed to its libraries in one memory
///      struct: the contracts it works with and the collateral's USD scale.
struct EngineContext {
    IERC20 collateral;
    uint256 tokenToUsdScale;
    AlpPool pool;
    PairRegistry pairs;
    PriceOracle oracle;
    Market market;
    ReferralRegistry referrals;
    IERC20 platformToken; // zero: fees are paid in collateral only
}

/// @dev The context a library received (calldata) in its own memory, word for word. The ABI
///      decoder would check each address for dirty upper bits, about 700 gas a call; the
///      only caller that can run a library's non-view function is the engine, which encodes
///      them clean.
function contextInMemory(EngineContext calldata context) pure returns (EngineContext memory ctx) {
    assembly ("memory-safe") {
        calldatacopy(ctx, context, 0x100)
    }
}

/// @title EngineBase
/// @notice What every part of the trading engine stands on: its interface, OpenZeppelin's
///         roles, pause flag and reentrancy guard, the two roles, and the immutables the
///         entry contract holds (`TradingEngine` gives them).
abstract contract EngineBase is ITradingEngine, AccessControl, Pausable, ReentrancyGuardTransient {
    bytes32 public constant ADMIN_ROLE = keccak256("ADMIN");
    bytes32 public constant KEEPER_ROLE = keccak256("KEEPER");

    /// @dev `onlyRole(ADMIN_ROLE)`, one copy of the check for every admin function.
    modifier onlyAdmin() {
        _checkAdmin();
        _;
    }

    /// @dev `onlyRole(KEEPER_ROLE)`, one copy of the check for every keeper function.
    modifier onlyKeeper() {
        _checkKeeper();
        _;
    }

    function _checkAdmin() private view {
        _checkRole(ADMIN_ROLE);
    }

    function _checkKeeper() private view {
        _checkRole(KEEPER_ROLE);
    }

    /// @dev `collateral()`, an immutable of the entry contract.
    function _collateralToken() internal view virtual returns (IERC20);

    /// @dev `tokenToUsdScale()`, an immutable of the entry contract.
    function _usdScale() internal view virtual returns (uint256);

    /// @dev `pairs()`, an immutable of the entry contract.
    function _pairRegistry() internal view virtual returns (PairRegistry);
}
