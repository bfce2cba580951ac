// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Metadata} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Metadata.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Proxy} from "@openzeppelin/contracts/proxy/Proxy.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";

import {AlpPool} from "../pool/AlpPool.sol";
import {PriceOracle} from "../oracle/PriceOracle.sol";
import {ReferralRegistry} from "../referral/ReferralRegistry.sol";
import {PairRegistry} from "./PairRegistry.sol";
import {Market} from "./Market.sol";
import {EngineBase, EngineStorage, EngineState, StoredSettings, StoredRequest, StoredPosition, StoredLimits, BlockCount} from "./EngineStorage.sol";
import {ITradingEngine} from "../interfaces/ITradingEngine.sol";
import {WAD, BPS} from "../libraries/Units.sol";
import {EngineModule} from "./EngineModule.sol";
import {TradeMath} from "../libraries/TradeMath.sol";
import {Units} from "../libraries/Units.sol";
import {Errors} from "../errors/Errors.sol";
import {
    Order,
    PriceInput,
    Request,
    RequestKind,
    RequestStatus,
    Position,
    OpenCharges,
    Settlement,
    RejectReason,
    CloseReason
} from "./Types.sol";

/// @title TradingEngine
/// @notice One-click leveraged positions against the ALP pool (docs/mechanics.md sections 4 to 11): hidden
///         two-step opens, closes, keeper triggers and liquidation, fees and their split.
/// @dev Trader margin is escrowed here, apart from the pool. Every token flow of a settlement
///      adds up to the margin: trader + treasury + pool = margin, to the unit.
// Proxy's fallback is payable, but it only forwards to the module, which has no payable
// function, receive or fallback: a call with value reverts (tests/test_engine_module.py).
// slither-disable-next-line locked-ether
contract TradingEngine is EngineBase, Proxy {
    using SafeERC20 for IERC20;
    using SafeCast for uint256;
    using SafeCast for int256;

    IERC20 public immutable collateral;
    uint256 public immutable tokenToUsdScale;
    AlpPool public immutable pool;
    PairRegistry public immutable pairs;
    PriceOracle public immutable oracle;
    Market public immutable market;
    ReferralRegistry public immutable referrals;
    IERC20 public immutable platformToken;
    /// @notice Runs the cold functions (settings, keys, pause, cancel, request views) in this
    ///         contract's storage: see `fallback`.
    EngineModule public immutable module;

    event OpenRequested(
        uint256 indexed requestId, address indexed trader, uint256 amountIn, bytes32 commitment, bytes encryptedOrder
    );
    event PositionOpened(
        uint256 indexed positionId, uint256 indexed requestId, address indexed trader, Position position, OpenCharges charges
    );
    event OpenRejected(
        uint256 indexed requestId,
        address indexed trader,
        RejectReason reason,
        uint256 refundTokens,
        uint256 executionFeeTokens,
        Order order
    );
    event CloseRequested(uint256 indexed requestId, uint256 indexed positionId, address indexed trader);
    event CloseRejected(uint256 indexed requestId, uint256 indexed positionId, RejectReason reason);
    event PositionClosed(uint256 indexed positionId, address indexed trader, Position position, Settlement settlement);
    event FeeSplit(
        uint256 indexed positionId,
        bool isOpen,
        bool inPlatformToken,
        uint256 totalAmount,
        uint256 poolAmount,
        uint256 treasuryAmount
    );
    event ExecutionFeePaid(uint256 indexed requestId, address indexed keeper, uint256 amountTokens);

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
    ) {
        collateral = collateral_;
        tokenToUsdScale = Units.scaleFor(IERC20Metadata(address(collateral_)).decimals());
        pool = pool_;
        pairs = pairs_;
        oracle = oracle_;
        market = market_;
        referrals = referrals_;
        platformToken = platformToken_;
        _state().nextRequestId = 1;
        _state().settings.treasury = treasury_;
        module = new EngineModule(collateral_, pairs_);
        EngineStorage.storeSettings(_state(), ITradingEngine.Settings({
            executionFeeUsd: executionFeeUsd,
            minNotionalUsd: 100e18,
            extremeLeverage: 500,
            maxRoiLeverage: 1000,
            openFeeBps: 8,
            closeFeeBps: 8,
            extremeMinCloseFeeBps: 3,
            extremeProfitFeeBps: 1500,
            referralDiscountBps: 500,
            tokenDiscountBps: 500,
            poolFeeShareBps: 5000,
            roiCapStandardBps: 90_000,
            roiCapExtremeBps: 50_000,
            roiCapMaxLeverageBps: 30_000,
            openLossGuardBps: 8000,
            liquidationThresholdStandardBps: 9000,
            liquidationThresholdExtremeBps: 8500,
            requestExpiryBlocks: 10,
            maxExecutionsPerPairPerBlock: 100
        }));
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(ADMIN_ROLE, admin);
    }

    /// @dev Every function not defined here is `EngineModule`'s: OpenZeppelin's `Proxy`
    ///      fallback runs it by delegatecall in this contract's storage (the engine's ABI is both
    ///      contracts' ABIs). The module has no payable function, no receive and no fallback,
    ///      so a call that sends ether reverts there.
    function _implementation() internal view override returns (address) {
        return address(module);
    }

    // ================================================================== trader

    /// @notice Step one of an open: escrows `amountIn` collateral against a commitment to a
    ///         hidden order. Only the amount and the ciphertext are public. The execution fee
    ///         is fixed now, at `executionFeeTokens()`: the request is charged that, whatever
    ///         the fee when it executes.
    /// @param commitment keccak256(abi.encode(trader, pairId, isLong, leverage, takeProfit,
    ///        stopLoss, acceptablePrice, salt))
    /// @param encryptedOrder the order and salt, ECIES-encrypted to `keeperPublicKey`
    function requestOpen(bytes32 commitment, bytes calldata encryptedOrder, uint256 amountIn)
        external
        nonReentrant
        whenNotPaused
        returns (uint256 requestId)
    {
        uint256 feeTokens = executionFeeTokens();
        if (amountIn <= feeTokens) revert Errors.AmountBelowExecutionFee(amountIn, feeTokens);
        if (amountIn > type(uint128).max) revert Errors.AmountTooLarge(amountIn, type(uint128).max);
        collateral.safeTransferFrom(msg.sender, address(this), amountIn);
        requestId = _state().nextRequestId++;
        _state().requests[requestId] = StoredRequest({
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

    /// @notice Asks the keeper to close a position at the price of its execution.
    function requestClose(uint256 positionId) external nonReentrant returns (uint256 requestId) {
        StoredPosition storage p = _openPosition(positionId);
        if (p.trader != msg.sender) revert Errors.NotOwner(msg.sender, p.trader);
        uint256 pending = p.closeRequestId;
        if (pending != 0 && block.number <= _state().requests[pending].blockNumber + _state().settings.requestExpiryBlocks) {
            revert Errors.CloseAlreadyPending(positionId, pending);
        }
        requestId = _state().nextRequestId++;
        // one slot, the head: the position id rides in it
        StoredRequest storage r = _state().requests[requestId];
        r.trader = msg.sender;
        r.kind = RequestKind.Close;
        r.status = RequestStatus.Pending;
        r.blockNumber = block.number.toUint32();
        r.positionRef = positionId.toUint48();
        p.closeRequestId = requestId.toUint32();
        emit CloseRequested(requestId, positionId, msg.sender);
    }

    // ================================================================== keeper

    /// @notice Step two of an open: reveals the order, records the prices and opens the
    ///         position, or rejects and refunds (less the execution fee) with the reason.
    function executeOpen(uint256 requestId, Order calldata order, bytes32 salt, PriceInput[] calldata prices)
        external
        nonReentrant
        onlyRole(KEEPER_ROLE)
    {
        _applyPrices(prices, false);
        collateral.safeTransfer(msg.sender, _executeOpen(requestId, order, salt));
    }

    /// @notice Many opens in one transaction, one price update for all of them. The whole
    ///         batch reverts when any request cannot be executed (unknown, outside its window,
    ///         or a reveal that does not match); a failed check only rejects that request.
    /// @dev The execution fees of the batch reach the keeper in one transfer.
    function executeOpenBatch(
        uint256[] calldata requestIds,
        Order[] calldata orders,
        bytes32[] calldata salts,
        PriceInput[] calldata prices
    ) external nonReentrant onlyRole(KEEPER_ROLE) {
        uint256 n = requestIds.length;
        if (orders.length != n || salts.length != n) revert Errors.LengthMismatch(n, orders.length, salts.length);
        _applyPrices(prices, false);
        uint256 feesTokens = 0;
        for (uint256 i = 0; i < n; i++) {
            feesTokens += _executeOpen(requestIds[i], orders[i], salts[i]);
        }
        collateral.safeTransfer(msg.sender, feesTokens);
    }

    /// @dev Returns the request's execution fee, for the caller to pay the keeper.
    function _executeOpen(uint256 requestId, Order calldata order, bytes32 salt) private returns (uint256 feeTokens) {
        StoredRequest storage r = _executableRequest(requestId, RequestKind.Open);
        feeTokens = r.executionFeeTokens;
        bytes32 revealed = keccak256(
            abi.encode(
                r.trader, order.pairId, order.isLong, order.leverage, order.takeProfit, order.stopLoss, order.acceptablePrice, salt
            )
        );
        if (revealed != r.commitment) revert Errors.CommitmentMismatch(requestId, r.commitment, revealed);
        // the caller pays the keeper (one transfer for a whole batch)
        emit ExecutionFeePaid(requestId, msg.sender, feeTokens);

        // on success the position is written over the request's slots, status Executed
        RejectReason reason = _open(requestId, r.trader, r.amountIn - feeTokens, feeTokens, order);
        if (reason != RejectReason.None) {
            r.status = RequestStatus.Rejected;
            uint256 refund = r.amountIn - feeTokens;
            collateral.safeTransfer(r.trader, refund);
            emit OpenRejected(requestId, r.trader, reason, refund, feeTokens, order);
        }
    }

    /// @notice Rejects an open request whose order the keeper cannot use (docs/mechanics.md
    ///         section 5.7): a ciphertext that does not decrypt with its key
    ///         (`UndecryptableOrder`), or a plaintext that does not parse or does not match the
    ///         commitment (`MalformedOrder`). As a failed check: `amountIn` less the execution
    ///         fee refunded, the fee to the keeper, `OpenRejected` with the order's fields zero.
    /// @dev The keeper is trusted with this judgement, as it is with executing at all; the
    ///      request window applies as for an execution.
    function rejectOpen(uint256 requestId, RejectReason reason) external nonReentrant onlyRole(KEEPER_ROLE) {
        if (reason != RejectReason.UndecryptableOrder && reason != RejectReason.MalformedOrder) {
            revert Errors.InvalidRejectReason(uint8(reason));
        }
        StoredRequest storage r = _executableRequest(requestId, RequestKind.Open);
        r.status = RequestStatus.Rejected;
        uint256 feeTokens = r.executionFeeTokens;
        uint256 refund = r.amountIn - feeTokens;
        address trader = r.trader;
        emit ExecutionFeePaid(requestId, msg.sender, feeTokens);
        // zero on purpose: no order was revealed
        // slither-disable-next-line uninitialized-local
        Order memory none;
        emit OpenRejected(requestId, trader, reason, refund, feeTokens, none);
        collateral.safeTransfer(trader, refund);
        collateral.safeTransfer(msg.sender, feeTokens);
    }

    /// @notice Executes a close request at the guarded oracle price moved by slippage.
    function executeClose(uint256 requestId, PriceInput[] calldata prices) external nonReentrant onlyRole(KEEPER_ROLE) {
        _applyPrices(prices, false);
        _executeClose(requestId);
    }

    /// @notice Many close requests in one transaction, one price update for all of them; the
    ///         batch reverts when any request cannot be executed.
    function executeCloseBatch(uint256[] calldata requestIds, PriceInput[] calldata prices)
        external
        nonReentrant
        onlyRole(KEEPER_ROLE)
    {
        _applyPrices(prices, false);
        for (uint256 i = 0; i < requestIds.length; i++) {
            _executeClose(requestIds[i]);
        }
    }

    /// @dev The calls before the position leaves storage go to the system's own oracle and
    ///      market (role-gated, no callbacks), and every entry point here is nonReentrant.
    // slither-disable-next-line reentrancy-no-eth
    function _executeClose(uint256 requestId) private {
        StoredRequest storage r = _executableRequest(requestId, RequestKind.Close);
        uint256 positionId = r.positionRef;
        // a trigger or liquidation may have closed it since the request
        StoredPosition storage sp = _openPosition(positionId);
        Position memory p = _load(positionId);
        (uint256 price, RejectReason reason) = _guardedPrice(p.pairId, !p.isLong);
        if (reason != RejectReason.None) {
            sp.closeRequestId = 0;
            r.status = RequestStatus.Rejected;
            emit CloseRejected(requestId, positionId, reason);
            return;
        }
        r.status = RequestStatus.Executed;
        uint256 exitPrice = _closeFill(p, price);
        exitPrice = p.isLong ? Math.min(exitPrice, p.takeProfit) : Math.max(exitPrice, p.takeProfit);
        _settle(positionId, p, price, exitPrice, CloseReason.TraderClose);
    }

    /// @notice Records prices and runs the triggers of the given positions: liquidation (at the
    ///         oracle price), else take-profit, else stop-loss. Positions with nothing to do are
    ///         skipped. Returns how many were closed. The prices are settled (docs/mechanics.md
    ///         section 8): the keeper passes every open position of the priced pairs.
    function runTriggers(uint256[] calldata positionIds, PriceInput[] calldata prices)
        external
        nonReentrant
        onlyRole(KEEPER_ROLE)
        returns (uint256 closed)
    {
        _applyPrices(prices, true);
        // zero on purpose: key 0 is an empty cache
        // slither-disable-next-line uninitialized-local
        TriggerCache memory cache;
        for (uint256 i = 0; i < positionIds.length; i++) {
            if (_trigger(positionIds[i], cache)) closed++;
        }
    }

    /// @notice Records keeper prices and brings the pairs' indexes to now, with no trade and no
    ///         triggers: a changed price is not settled until `runTriggers` runs at it.
    function updatePrices(PriceInput[] calldata prices) external nonReentrant onlyRole(KEEPER_ROLE) {
        _applyPrices(prices, false);
    }

    // ================================================================== views

    function executionFeeTokens() public view returns (uint256) {
        return Units.usdToTokenUp(_state().settings.executionFeeUsd, tokenToUsdScale);
    }

    /// @notice An open position (a closed one reads as trader zero).
    function position(uint256 positionId) external view returns (Position memory) {
        return _load(positionId);
    }

    /// @notice Many positions in one call.
    function positionsOf(uint256[] calldata positionIds) external view returns (Position[] memory out) {
        out = new Position[](positionIds.length);
        for (uint256 i = 0; i < positionIds.length; i++) {
            out[i] = _load(positionIds[i]);
        }
    }

    /// @notice Whether the position is liquidatable at `price` now (docs/mechanics.md section 11).
    function isLiquidatable(uint256 positionId, uint256 price) external view returns (bool) {
        Position memory p = _load(positionId);
        if (p.trader == address(0)) return false;
        Market.Indexes memory idx = market.indexesNow(p.pairId);
        return _liquidatable(p, price, idx.holding, p.isLong ? idx.fundingLong : idx.fundingShort);
    }

    // ================================================================== open pipeline

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

    function _open(uint256 requestId, address trader, uint256 netTokens, uint256 feeTokens, Order calldata order)
        private
        returns (RejectReason)
    {
        OpenCache memory c = _emptyCache();
        c.executionFeeTokens = feeTokens;
        StoredSettings storage s = _state().settings;
        // 1. pair and leverage
        c.pair = pairs.tradeConfig(order.pairId);
        if (!c.pair.listed) return RejectReason.PairNotListed;
        if (c.pair.paused) return RejectReason.PairPaused;
        if (order.leverage >= s.extremeLeverage && c.pair.maxLeverage < s.extremeLeverage) {
            return RejectReason.ExtremeLeverageNotOffered;
        }
        if (order.leverage == 0 || order.leverage > c.pair.maxLeverage) return RejectReason.LeverageOutOfRange;
        if (!_countExecution(order.pairId)) return RejectReason.TooManyExecutions;
        // 2. guarded oracle price
        RejectReason reason;
        (c.oraclePrice, reason) = _guardedPrice(order.pairId, order.isLong);
        if (reason != RejectReason.None) return reason;
        // 3. fees and size
        c.extreme = order.leverage >= s.extremeLeverage;
        _sizeOpen(c, s, trader, netTokens, order.leverage);
        (uint256 cap, bool tooLarge) = pairs.leverageCap(order.pairId, c.notionalUsd);
        if (tooLarge) return RejectReason.NotionalTooLarge;
        if (order.leverage > cap) return RejectReason.LeverageAboveNotionalTier;
        if (c.notionalUsd < s.minNotionalUsd || c.notionalUsd == 0) return RejectReason.NotionalTooSmall;
        // 4. open interest, slippage, acceptable price
        c.sideOiUsd = market.sideOiUsd(order.pairId, order.isLong);
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
        if (pool.reserveCapacityUsd() < c.maxProfitUsd) return RejectReason.ReserveExceeded;
        // 8. commit: fees, market aggregates, reserve, position
        _storeOpen(requestId, trader, order, c, netTokens);
        return RejectReason.None;
    }

    function _emptyCache() private pure returns (OpenCache memory c) {
        return c;
    }

    /// @dev Margin, notional and open fee (docs/mechanics.md section 5.3), in collateral or platform token.
    function _sizeOpen(OpenCache memory c, StoredSettings storage s, address trader, uint256 netTokens, uint256 leverage)
        private
        view
    {
        c.discountBps = referrals.hasReferral(trader) ? s.referralDiscountBps : 0;
        if (c.extreme) {
            // no open fee in the extreme tier
            _setMargin(c, netTokens, leverage);
            return;
        }
        if (_state().feeInToken[trader]) {
            _setMargin(c, netTokens, leverage);
            c.feeRateWad = TradeMath.discountedRateWad(s.openFeeBps, c.discountBps + s.tokenDiscountBps);
            c.openFeeUsd = Math.mulDiv(c.notionalUsd, c.feeRateWad, WAD, Math.Rounding.Ceil);
            uint256 tokens = _platformTokens(c.openFeeUsd);
            if (tokens != 0 && _canPull(trader, tokens)) {
                c.payInToken = true;
                c.openFeeTokens = tokens;
                return;
            }
        }
        c.feeRateWad = TradeMath.discountedRateWad(s.openFeeBps, c.discountBps);
        uint256 marginTokens = TradeMath.marginTokensDown(netTokens, leverage, c.feeRateWad);
        _setMargin(c, marginTokens, leverage);
        c.openFeeTokens = netTokens - marginTokens;
        c.openFeeUsd = Units.tokenToUsd(c.openFeeTokens, tokenToUsdScale);
    }

    function _setMargin(OpenCache memory c, uint256 marginTokens, uint256 leverage) private view {
        c.marginTokens = marginTokens;
        c.marginUsd = Units.tokenToUsd(marginTokens, tokenToUsdScale);
        c.notionalUsd = c.marginUsd * leverage;
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
    function _chargeOpenFee(uint256 positionId, address trader, OpenCache memory c) private returns (uint256) {
        if (c.payInToken) {
            // The trader opted in (setFeeInToken, approval) and the keeper executes on their
            // behalf: `trader` is the request's own sender, never an arbitrary address.
            // slither-disable-next-line arbitrary-send-erc20
            platformToken.safeTransferFrom(trader, address(this), c.openFeeTokens);
            return _splitFee(positionId, true, true, c.openFeeTokens);
        }
        return c.openFeeTokens == 0 ? 0 : _splitFee(positionId, true, false, c.openFeeTokens);
    }

    function _storeOpen(uint256 requestId, address trader, Order calldata order, OpenCache memory c, uint256 netTokens)
        private
    {
        uint256 positionId = requestId;
        uint256 costUsd = Math.mulDiv(c.qty, c.fill, WAD);
        // the pool books its share of the fee with the reserve
        pool.increaseReserve(c.maxProfitUsd, _chargeOpenFee(positionId, trader, c));
        (uint256 holdingIndex, int256 fundingIndex) =
            market.addPosition(order.pairId, order.isLong, c.notionalUsd, c.qty, costUsd);

        bool hasLimits = order.takeProfit != 0 || order.stopLoss != 0;
        // over the request's own slots: its head keeps trader, kind and block
        StoredPosition storage sp = EngineStorage.position(_state(), positionId);
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
        if (hasLimits) _state().limits[positionId] = StoredLimits(c.takeProfit.toUint128(), order.stopLoss.toUint128());
        netTokens; // the margin stays in escrow here; the fee left above
        emit PositionOpened(
            positionId,
            requestId,
            trader,
            _load(positionId),
            OpenCharges({
                oraclePrice: c.oraclePrice,
                slippageWad: c.slippageWad,
                executionFeeTokens: c.executionFeeTokens,
                openFeeUsd: c.openFeeUsd,
                openFeeTokens: c.openFeeTokens,
                feeDiscountBps: c.discountBps + (c.payInToken ? _state().settings.tokenDiscountBps : 0)
            })
        );
    }

    // ================================================================== close pipeline

    /// @dev Within one transaction a pair's guarded price (per side) and its indexes do not
    ///      change (the prices are applied first; a second accrual in the same second adds
    ///      nothing), so a batch reads them once per run of positions on the same pair and side.
    struct TriggerCache {
        uint256 key; // 1 + 2 x pairId + isLong; 0 while empty
        uint256 price;
        RejectReason reason;
        Market.Indexes idx;
    }

    function _trigger(uint256 positionId, TriggerCache memory cache) private returns (bool) {
        Position memory p = _load(positionId);
        if (p.trader == address(0)) return false;
        uint256 key = 1 + 2 * p.pairId + (p.isLong ? 1 : 0);
        if (cache.key != key) {
            cache.key = key;
            (cache.price, cache.reason) = _guardedPrice(p.pairId, !p.isLong);
            cache.idx = market.indexesNow(p.pairId);
        }
        (uint256 price, RejectReason reason) = (cache.price, cache.reason);
        if (reason != RejectReason.None) return false;
        Market.Indexes memory idx = cache.idx;
        if (_liquidatable(p, price, idx.holding, p.isLong ? idx.fundingLong : idx.fundingShort)) {
            _settle(positionId, p, price, price, CloseReason.Liquidation);
            return true;
        }
        bool tpHit = p.isLong ? price >= p.takeProfit : price <= p.takeProfit;
        if (tpHit) {
            uint256 fill = _closeFill(p, price);
            _settle(positionId, p, price, p.isLong ? Math.min(fill, p.takeProfit) : Math.max(fill, p.takeProfit), CloseReason.TakeProfit);
            return true;
        }
        bool slHit = p.stopLoss != 0 && (p.isLong ? price <= p.stopLoss : price >= p.stopLoss);
        if (slHit) {
            _settle(positionId, p, price, _closeFill(p, price), CloseReason.StopLoss);
            return true;
        }
        return false;
    }

    /// @dev Closing fill: the side's open interest (this position included) sets the slippage.
    function _closeFill(Position memory p, uint256 price) private view returns (uint256) {
        PairRegistry.TradeConfig memory pair = pairs.tradeConfig(p.pairId);
        uint256 sideOi = market.sideOiUsd(p.pairId, p.isLong);
        uint256 slip = TradeMath.slippageWadUp(pair.spreadBps, sideOi - p.notionalUsd, p.notionalUsd, pair.depth1PctUsd);
        return TradeMath.fillPrice(price, slip, !p.isLong);
    }

    function _liquidatable(Position memory p, uint256 price, uint256 holdingIndex, int256 fundingIndex)
        private
        view
        returns (bool)
    {
        StoredSettings storage s = _state().settings;
        int256 pnl = TradeMath.pnlUsdFloor(p.isLong, p.qty, p.entryPrice, price);
        uint256 fee = _closeFeeUsd(s, p, pnl, price, _referralDiscount(s, p.trader));
        int256 loss = int256(fee) + _holding(p, holdingIndex) + _funding(p, fundingIndex) - pnl;
        uint256 threshold = p.leverage >= s.extremeLeverage ? s.liquidationThresholdExtremeBps : s.liquidationThresholdStandardBps;
        return loss > 0 && uint256(loss) * BPS >= threshold * p.marginUsd;
    }

    /// @dev Settles a position at `exitPrice`: the waterfall of docs/mechanics.md sections 6 and 11.
    function _settle(uint256 positionId, Position memory p, uint256 oraclePrice, uint256 exitPrice, CloseReason reason)
        private
    {
        StoredSettings storage s = _state().settings;
        Settlement memory st = _emptySettlement();
        // effects first: the position (held in memory) leaves storage before any call
        _removePosition(positionId);
        st.reason = reason;
        st.oraclePrice = oraclePrice;
        st.exitPrice = exitPrice;
        // 1. indexes to now, out of the side's aggregates
        (uint256 holdingIndex, int256 fundingIndex) = market.removePosition(
            p.pairId, p.isLong, p.notionalUsd, p.qty, p.costUsd, p.holdingIndex, p.fundingIndex
        );
        st.holdingUsd = uint256(_holding(p, holdingIndex));
        st.fundingUsd = _funding(p, fundingIndex);
        st.pnlUsd = TradeMath.pnlUsdFloor(p.isLong, p.qty, p.entryPrice, exitPrice);
        // 2. close fee: in platform token when preferred and payable (never on liquidation)
        uint256 discount = _referralDiscount(s, p.trader);
        uint256 feeTokens = 0;
        if (reason != CloseReason.Liquidation && _state().feeInToken[p.trader]) {
            uint256 feeUsd = _closeFeeUsd(s, p, st.pnlUsd, exitPrice, discount + s.tokenDiscountBps);
            feeTokens = _platformTokens(feeUsd);
            if (feeTokens != 0 && _canPull(p.trader, feeTokens)) {
                st.feeInToken = true;
                st.closeFeeUsd = feeUsd;
            }
        }
        // 3. the waterfall: margin + pnl - holding - funding, then the fee, cut first
        int256 available = int256(p.marginUsd) + st.pnlUsd - int256(st.holdingUsd) - st.fundingUsd;
        if (!st.feeInToken) {
            uint256 fee = _closeFeeUsd(s, p, st.pnlUsd, exitPrice, discount);
            st.closeFeeUsd = available <= 0 ? 0 : Math.min(fee, uint256(available));
            available -= int256(st.closeFeeUsd);
        }
        // a payout never passes margin + the reserved maximum profit: a funding receipt beyond
        // it stays in the pool, so the reserve always covers the largest payout
        st.payoutUsd = reason == CloseReason.Liquidation || available <= 0
            ? 0
            : Math.min(uint256(available), p.marginUsd + p.maxProfitUsd);
        st.payoutTokens = Units.usdToTokenDown(st.payoutUsd, tokenToUsdScale);
        // 4. token flows: trader + treasury + pool = margin
        uint256 treasuryTokens = 0;
        if (st.feeInToken) {
            // The position's own trader, who opted in to paying fees in the platform token.
            // slither-disable-next-line arbitrary-send-erc20
            platformToken.safeTransferFrom(p.trader, address(this), feeTokens);
            _splitFee(positionId, false, true, feeTokens);
        } else if (st.closeFeeUsd != 0) {
            uint256 collateralFee = Units.usdToTokenUp(st.closeFeeUsd, tokenToUsdScale);
            treasuryTokens = collateralFee * (BPS - s.poolFeeShareBps) / BPS;
            emit FeeSplit(positionId, false, false, collateralFee, collateralFee - treasuryTokens, treasuryTokens);
        }
        st.poolDeltaTokens = int256(p.marginTokens) - int256(st.payoutTokens) - int256(treasuryTokens);
        pool.decreaseReserve(p.maxProfitUsd, _payOut(p, st, treasuryTokens));
        emit PositionClosed(positionId, p.trader, p, st);
    }

    /// @dev Closed: the position's two slots are zeroed (margin zero). The head stays: it is
    ///      the request's record.
    function _removePosition(uint256 positionId) private {
        StoredRequest storage r = _state().requests[positionId];
        if (EngineStorage.position(_state(), positionId).hasLimits) delete _state().limits[positionId];
        // slot 1 whole (margin and entry price, over the request's amount and fee), one write
        assembly ("memory-safe") {
            sstore(add(r.slot, 1), 0)
        }
        r.commitment = 0; // and the close request mark
    }

    function _emptySettlement() private pure returns (Settlement memory st) {
        return st;
    }

    /// @dev Moves a settlement's collateral; returns what it sent the pool, for the pool to
    ///      book with the reserve's release.
    function _payOut(Position memory p, Settlement memory st, uint256 treasuryTokens) private returns (uint256 poolTokensIn) {
        if (st.poolDeltaTokens >= 0) {
            if (st.payoutTokens != 0) collateral.safeTransfer(p.trader, st.payoutTokens);
            if (treasuryTokens != 0) collateral.safeTransfer(_state().settings.treasury, treasuryTokens);
            poolTokensIn = uint256(st.poolDeltaTokens);
            if (poolTokensIn != 0) collateral.safeTransfer(address(pool), poolTokensIn);
            return poolTokensIn;
        }
        // the pool pays: the escrowed margin covers the treasury first, then the trader
        uint256 fromEscrowToTreasury = Math.min(treasuryTokens, p.marginTokens);
        uint256 fromEscrowToTrader = p.marginTokens - fromEscrowToTreasury;
        if (fromEscrowToTreasury != 0) collateral.safeTransfer(_state().settings.treasury, fromEscrowToTreasury);
        if (treasuryTokens > fromEscrowToTreasury) pool.payTokens(_state().settings.treasury, treasuryTokens - fromEscrowToTreasury);
        if (fromEscrowToTrader != 0) collateral.safeTransfer(p.trader, fromEscrowToTrader);
        pool.payTokens(p.trader, st.payoutTokens - fromEscrowToTrader);
    }

    // ================================================================== helpers

    function _closeFeeUsd(StoredSettings storage s, Position memory p, int256 pnl, uint256 exitPrice, uint256 discountBps)
        private
        view
        returns (uint256)
    {
        uint256 closeNotional = Math.mulDiv(p.qty, exitPrice, WAD);
        bool extreme = p.leverage >= s.extremeLeverage;
        uint256 notionalRate = TradeMath.discountedRateWad(extreme ? s.extremeMinCloseFeeBps : s.closeFeeBps, discountBps);
        uint256 profitRate = TradeMath.discountedRateWad(s.extremeProfitFeeBps, discountBps);
        return TradeMath.closeFeeUsdUp(extreme, pnl, closeNotional, notionalRate, profitRate);
    }

    function _holding(Position memory p, uint256 holdingIndex) private pure returns (int256) {
        return TradeMath.indexChargeUsdUp(p.notionalUsd, int256(holdingIndex) - int256(p.holdingIndex));
    }

    function _funding(Position memory p, int256 fundingIndex) private pure returns (int256) {
        return TradeMath.indexChargeUsdUp(p.notionalUsd, fundingIndex - p.fundingIndex);
    }

    function _referralDiscount(StoredSettings storage s, address trader) private view returns (uint256) {
        return referrals.hasReferral(trader) ? s.referralDiscountBps : 0;
    }

    function _roiCapBps(StoredSettings storage s, uint256 leverage) private view returns (uint256) {
        if (leverage >= s.maxRoiLeverage) return s.roiCapMaxLeverageBps;
        if (leverage >= s.extremeLeverage) return s.roiCapExtremeBps;
        return s.roiCapStandardBps;
    }

    /// @dev Platform-token amount for a USD fee at the token's oracle price (rounded up);
    ///      zero when the token has no price.
    function _platformTokens(uint256 feeUsd) private view returns (uint256) {
        uint256 price = oracle.platformTokenPriceUsd();
        if (price == 0 || address(platformToken) == address(0)) return 0;
        return Math.mulDiv(feeUsd, WAD, price, Math.Rounding.Ceil);
    }

    function _canPull(address trader, uint256 amount) private view returns (bool) {
        return platformToken.balanceOf(trader) >= amount && platformToken.allowance(trader, address(this)) >= amount;
    }

    /// @dev Sends a fee held here: the pool's share to the pool, the rest to the treasury.
    ///      Returns the collateral the pool is to book (zero for a platform-token fee: those
    ///      are held by the pool contract for ALP holders, outside NAV).
    function _splitFee(uint256 positionId, bool isOpen, bool inToken, uint256 amount)
        private
        returns (uint256 poolTokensIn)
    {
        uint256 treasuryAmount = amount * (BPS - _state().settings.poolFeeShareBps) / BPS;
        uint256 poolAmount = amount - treasuryAmount;
        IERC20 token = inToken ? platformToken : collateral;
        if (poolAmount != 0) token.safeTransfer(address(pool), poolAmount);
        if (treasuryAmount != 0) token.safeTransfer(_state().settings.treasury, treasuryAmount);
        emit FeeSplit(positionId, isOpen, inToken, amount, poolAmount, treasuryAmount);
        return inToken ? 0 : poolAmount;
    }

    /// @dev `triggersRun`: the caller runs the triggers at these prices (they are settled).
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

    function _guardedPrice(uint256 pairId, bool traderBuys) private view returns (uint256, RejectReason) {
        return oracle.guardedPrice(pairId, traderBuys);
    }

    function _countExecution(uint256 pairId) private returns (bool) {
        BlockCount storage bc = _state().executions[pairId];
        if (bc.blockNumber != block.number) {
            bc.blockNumber = uint64(block.number);
            bc.count = 0;
        }
        bc.count += 1;
        return bc.count <= _state().settings.maxExecutionsPerPairPerBlock;
    }

    function _executableRequest(uint256 requestId, RequestKind kind) private view returns (StoredRequest storage r) {
        r = EngineStorage.pendingRequest(_state(), requestId);
        if (r.kind != kind) revert Errors.UnknownRequest(requestId);
        if (block.number <= r.blockNumber || block.number > r.blockNumber + _state().settings.requestExpiryBlocks) {
            revert Errors.RequestNotExecutable(requestId, r.blockNumber, block.number);
        }
    }

    function _openPosition(uint256 positionId) private view returns (StoredPosition storage sp) {
        sp = EngineStorage.position(_state(), positionId);
        if (!EngineStorage.isOpen(sp)) revert Errors.PositionNotOpen(positionId);
    }

    function _load(uint256 positionId) private view returns (Position memory) {
        return EngineStorage.load(_state(), positionId, tokenToUsdScale);
    }

    function _absDiff(uint256 a, uint256 b) private pure returns (uint256) {
        return a > b ? a - b : b - a;
    }
}
