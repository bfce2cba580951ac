// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Metadata} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Metadata.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";

import {ITradingEngine} from "../interfaces/ITradingEngine.sol";
import {AlpPool} from "../pool/AlpPool.sol";
import {PriceOracle} from "../oracle/PriceOracle.sol";
import {ReferralRegistry} from "../referral/ReferralRegistry.sol";
import {PairRegistry} from "./PairRegistry.sol";
import {Market} from "./Market.sol";
import {Units} from "../libraries/Units.sol";
import {Errors} from "../errors/Errors.sol";
import {EngineStorage, EngineState, EngineContext} from "./EngineStorage.sol";
import {RequestBook} from "./RequestBook.sol";
import {EngineSettings} from "./EngineSettings.sol";
import {OpenPipeline} from "./OpenPipeline.sol";
import {ClosePipeline} from "./ClosePipeline.sol";
import {Triggers} from "./Triggers.sol";
import {Order, PriceInput, Position} from "./Types.sol";

/// @title TradingEngine
/// @notice One-click leveraged positions against the ALP pool (docs/mechanics.md sections 4 to
///         11), at one address: hidden two-step opens, closes, keeper triggers and
///         liquidation, fees and their split. It holds the state (`EngineStorage`) and the
///         traders' escrowed margin; requests and settings are its own code (`RequestBook`,
///         `EngineSettings`); executing opens, closes and triggers is done by the external
///         libraries `OpenPipeline`, `ClosePipeline` and `Triggers`, each called once per
///         transaction by delegatecall from the keeper-only, nonReentrant entry points here.
/// @dev Every token flow of a settlement adds up to the margin: trader + treasury + pool =
///      margin, to the unit. The engine takes no ether: no function is payable and there is no
///      receive or fallback.
contract TradingEngine is ITradingEngine, RequestBook, EngineSettings {
    using SafeERC20 for IERC20;
    using EngineStorage for EngineState;

    /// @inheritdoc ITradingEngine
    IERC20 public immutable collateral;
    /// @inheritdoc ITradingEngine
    uint256 public immutable tokenToUsdScale;
    /// @inheritdoc ITradingEngine
    AlpPool public immutable pool;
    /// @inheritdoc ITradingEngine
    PairRegistry public immutable pairs;
    /// @inheritdoc ITradingEngine
    PriceOracle public immutable oracle;
    /// @inheritdoc ITradingEngine
    Market public immutable market;
    /// @inheritdoc ITradingEngine
    ReferralRegistry public immutable referrals;
    /// @inheritdoc ITradingEngine
    IERC20 public immutable platformToken;

    constructor(
        IERC20 collateral_,
        AlpPool pool_,
        PairRegistry pairs_,
        PriceOracle oracle_,
        Market market_,
        ReferralRegistry referrals_,
        IERC20 platformToken_,
        address treasury_,
        uint256 executionFeeUsd,
        address admin
    ) EngineSettings(treasury_, executionFeeUsd, admin) {
        collateral = collateral_;
        tokenToUsdScale = Units.scaleFor(IERC20Metadata(address(collateral_)).decimals());
        pool = pool_;
        pairs = pairs_;
        oracle = oracle_;
        market = market_;
        referrals = referrals_;
        platformToken = platformToken_;
    }

    // ================================================================== keeper

    /// @inheritdoc ITradingEngine
    function executeOpen(uint256 requestId, Order calldata order, bytes32 salt, PriceInput[] calldata prices)
        external
        nonReentrant
        onlyKeeper
    {
        _applyPrices(prices, false);
        EngineContext memory ctx = _context();
        uint256 feeTokens = OpenPipeline.executeOne(EngineStorage.state(), ctx, requestId, order, salt);
        ctx.collateral.safeTransfer(msg.sender, feeTokens);
    }

    /// @inheritdoc ITradingEngine
    function executeOpenBatch(
        uint256[] calldata requestIds,
        Order[] calldata orders,
        bytes32[] calldata salts,
        PriceInput[] calldata prices
    ) external nonReentrant onlyKeeper {
        uint256 n = requestIds.length;
        if (orders.length != n || salts.length != n) revert Errors.LengthMismatch(n, orders.length, salts.length);
        _applyPrices(prices, false);
        EngineContext memory ctx = _context();
        uint256 feesTokens = OpenPipeline.executeBatch(EngineStorage.state(), ctx, requestIds, orders, salts);
        ctx.collateral.safeTransfer(msg.sender, feesTokens);
    }

    /// @inheritdoc ITradingEngine
    function executeClose(uint256 requestId, PriceInput[] calldata prices) external nonReentrant onlyKeeper {
        _applyPrices(prices, false);
        ClosePipeline.executeOne(EngineStorage.state(), _context(), requestId);
    }

    /// @inheritdoc ITradingEngine
    function executeCloseBatch(uint256[] calldata requestIds, PriceInput[] calldata prices)
        external
        nonReentrant
        onlyKeeper
    {
        _applyPrices(prices, false);
        ClosePipeline.executeBatch(EngineStorage.state(), _context(), requestIds);
    }

    /// @inheritdoc ITradingEngine
    function runTriggers(uint256[] calldata positionIds, PriceInput[] calldata prices)
        external
        nonReentrant
        onlyKeeper
        returns (uint256 closed)
    {
        _applyPrices(prices, true);
        return Triggers.run(EngineStorage.state(), _context(), positionIds);
    }

    /// @inheritdoc ITradingEngine
    function updatePrices(PriceInput[] calldata prices) external nonReentrant onlyKeeper {
        _applyPrices(prices, false);
    }

    // ================================================================== views

    /// @inheritdoc ITradingEngine
    function position(uint256 positionId) external view returns (Position memory) {
        return EngineStorage.state().load(positionId, tokenToUsdScale);
    }

    /// @inheritdoc ITradingEngine
    function positionsOf(uint256[] calldata positionIds) external view returns (Position[] memory out) {
        EngineState storage $ = EngineStorage.state();
        out = new Position[](positionIds.length);
        for (uint256 i = 0; i < positionIds.length; i++) {
            out[i] = $.load(positionIds[i], tokenToUsdScale);
        }
    }

    /// @inheritdoc ITradingEngine
    function isLiquidatable(uint256 positionId, uint256 price) external view returns (bool) {
        return Triggers.isLiquidatable(EngineStorage.state(), _context(), positionId, price);
    }

    // ================================================================== internal

    /// @dev Records the keeper's prices, each pair's indexes brought to now first.
    ///      `triggersRun`: the caller runs the triggers at these prices (they are settled).
    function _applyPrices(PriceInput[] calldata prices, bool triggersRun) private {
        uint256 named = 0; // bit i: pair i already has a price in this call
        for (uint256 i = 0; i < prices.length; i++) {
            uint256 pairId = prices[i].pairId;
            // the oracle refuses a pair without a reference feed (it reads the feed anyway)
            if (pairId > 255 || named & (1 << pairId) != 0) revert Errors.InvalidPriceInput(pairId);
            named |= 1 << pairId;
            // accrue first: the lighter side's funding runs on the previous price's settlement
            market.accrue(pairId).updatedAt; // the new indexes are emitted by the market
            if (triggersRun) oracle.setSettledPrice(pairId, prices[i].price);
            else oracle.setPrice(pairId, prices[i].price);
        }
    }

    /// @dev The immutables, for the libraries. Field by field into the return value: a struct
    ///      literal would be a second allocation.
    function _context() private view returns (EngineContext memory ctx) {
        ctx.collateral = collateral;
        ctx.tokenToUsdScale = tokenToUsdScale;
        ctx.pool = pool;
        ctx.pairs = pairs;
        ctx.oracle = oracle;
        ctx.market = market;
        ctx.referrals = referrals;
        ctx.platformToken = platformToken;
    }

    function _collateralToken() internal view override returns (IERC20) {
        return collateral;
    }

    function _usdScale() internal view override returns (uint256) {
        return tokenToUsdScale;
    }

    function _pairRegistry() internal view override returns (PairRegistry) {
        return pairs;
    }
}
