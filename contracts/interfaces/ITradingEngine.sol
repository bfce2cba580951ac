// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

import {AlpPool} from "../pool/AlpPool.sol";
import {PriceOracle} from "../oracle/PriceOracle.sol";
import {ReferralRegistry} from "../referral/ReferralRegistry.sol";
import {PairRegistry} from "../trading/PairRegistry.sol";
import {Market} from "../trading/Market.sol";
import {
    Order,
    PriceInput,
    Request,
    RequestKind,
    Position,
    OpenCharges,
    Settlement,
    RejectReason
} from "../trading/Types.sol";

/// @title ITradingEngine
/// @notice The trading engine as a client sees it, at one address (docs/mechanics.md sections 4
///         to 11): hidden two-step opens, closes, keeper triggers and liquidation, fees and their
///         split. Every event the engine emits is declared here, also those its libraries emit
///         in its frame. Roles (`hasRole`, `grantRole`, ...) and `paused()` are OpenZeppelin's
///         AccessControl and Pausable; the roles are `ADMIN_ROLE` and `KEEPER_ROLE`.
interface ITradingEngine {
    /// @notice The engine's settings (`settings()`, `setSettings`). USD amounts are 18-decimal,
    ///         rates in basis points, leverages whole multiples.
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

    // ================================================================== events

    /// @notice An open request: its collateral is escrowed; only the amount and the ciphertext
    ///         are public.
    event OpenRequested(
        uint256 indexed requestId, address indexed trader, uint256 amountIn, bytes32 commitment, bytes encryptedOrder
    );
    /// @notice An open executed: the position (its id is its request's) and what it cost.
    event PositionOpened(
        uint256 indexed positionId, uint256 indexed requestId, address indexed trader, Position position, OpenCharges charges
    );
    /// @notice An open rejected: `refundTokens` back to the trader, the execution fee to the
    ///         keeper; `order` is zero when no order was revealed (`rejectOpen`).
    event OpenRejected(
        uint256 indexed requestId,
        address indexed trader,
        RejectReason reason,
        uint256 refundTokens,
        uint256 executionFeeTokens,
        Order order
    );
    /// @notice A close request.
    event CloseRequested(uint256 indexed requestId, uint256 indexed positionId, address indexed trader);
    /// @notice A close request not executed (the position stays open).
    event CloseRejected(uint256 indexed requestId, uint256 indexed positionId, RejectReason reason);
    /// @notice A position settled: by its trader, a take-profit, a stop-loss or a liquidation.
    event PositionClosed(uint256 indexed positionId, address indexed trader, Position position, Settlement settlement);
    /// @notice A trading fee split between the pool and the treasury.
    event FeeSplit(
        uint256 indexed positionId,
        bool isOpen,
        bool inPlatformToken,
        uint256 totalAmount,
        uint256 poolAmount,
        uint256 treasuryAmount
    );
    /// @notice The keeper was paid a request's execution fee.
    event ExecutionFeePaid(uint256 indexed requestId, address indexed keeper, uint256 amountTokens);
    /// @notice A request taken back by its trader after its window (`cancelRequest`).
    event RequestCancelled(uint256 indexed requestId, address indexed trader, RequestKind kind, uint256 refundTokens);
    /// @notice A trader's choice of paying fees in the platform token.
    event FeeTokenPreferenceSet(address indexed trader, bool enabled);
    /// @notice New settings.
    event SettingsUpdated(Settings settings);
    /// @notice The keeper's new public key.
    event KeeperPublicKeySet(bytes publicKey);
    /// @notice The new treasury.
    event TreasurySet(address treasury);

    // ================================================================== trader

    /// @notice Step one of an open: escrows `amountIn` collateral against a commitment to a
    ///         hidden order. Only the amount and the ciphertext are public. The execution fee
    ///         is fixed now, at `executionFeeTokens()`: the request is charged that, whatever
    ///         the fee when it executes.
    /// @param commitment keccak256(abi.encode(trader, pairId, isLong, leverage, takeProfit,
    ///        stopLoss, acceptablePrice, salt))
    /// @param encryptedOrder the order and salt, ECIES-encrypted to `keeperPublicKey`
    /// @param amountIn collateral to escrow (token units): the margin, the open fee and the
    ///        execution fee
    /// @return requestId the request's id (and, once executed, its position's)
    function requestOpen(bytes32 commitment, bytes calldata encryptedOrder, uint256 amountIn)
        external
        returns (uint256 requestId);

    /// @notice Asks the keeper to close a position at the price of its execution.
    /// @param positionId one of the caller's open positions
    /// @return requestId the close request's id
    function requestClose(uint256 positionId) external returns (uint256 requestId);

    /// @notice After the request window (10 blocks), the trader takes back an unexecuted
    ///         request: an open's whole amount is refunded.
    /// @param requestId one of the caller's pending requests
    function cancelRequest(uint256 requestId) external;

    /// @notice Pay trading fees in the platform token (5% off) when its balance and allowance
    ///         allow; otherwise they are charged in collateral without that discount.
    /// @param enabled the caller's choice
    function setFeeInToken(bool enabled) external;

    // ================================================================== keeper

    /// @notice Step two of an open: reveals the order, records the prices and opens the
    ///         position, or rejects and refunds (less the execution fee) with the reason.
    /// @param requestId a pending open request inside its window
    /// @param order the revealed order
    /// @param salt the commitment's salt
    /// @param prices keeper prices to record first (one per pair at most)
    function executeOpen(uint256 requestId, Order calldata order, bytes32 salt, PriceInput[] calldata prices)
        external;

    /// @notice Many opens in one transaction, one price update for all of them. The whole
    ///         batch reverts when any request cannot be executed (unknown, outside its window,
    ///         or a reveal that does not match); a failed check only rejects that request.
    ///         The execution fees of the batch reach the keeper in one transfer.
    /// @param requestIds pending open requests inside their windows
    /// @param orders the revealed orders, by request
    /// @param salts the commitments' salts, by request
    /// @param prices keeper prices to record first (one per pair at most)
    function executeOpenBatch(
        uint256[] calldata requestIds,
        Order[] calldata orders,
        bytes32[] calldata salts,
        PriceInput[] calldata prices
    ) external;

    /// @notice Rejects an open request whose order the keeper cannot use (docs/mechanics.md
    ///         section 5.7): a ciphertext that does not decrypt with its key
    ///         (`UndecryptableOrder`), or a plaintext that does not parse or does not match the
    ///         commitment (`MalformedOrder`). As a failed check: `amountIn` less the execution
    ///         fee refunded, the fee to the keeper, `OpenRejected` with the order's fields zero.
    ///         The keeper is trusted with this judgement, as it is with executing at all; the
    ///         request window applies as for an execution.
    /// @param requestId a pending open request inside its window
    /// @param reason `UndecryptableOrder` or `MalformedOrder`
    function rejectOpen(uint256 requestId, RejectReason reason) external;

    /// @notice Executes a close request at the guarded oracle price moved by slippage.
    /// @param requestId a pending close request inside its window
    /// @param prices keeper prices to record first (one per pair at most)
    function executeClose(uint256 requestId, PriceInput[] calldata prices) external;

    /// @notice Many close requests in one transaction, one price update for all of them; the
    ///         batch reverts when any request cannot be executed.
    /// @param requestIds pending close requests inside their windows
    /// @param prices keeper prices to record first (one per pair at most)
    function executeCloseBatch(uint256[] calldata requestIds, PriceInput[] calldata prices) external;

    /// @notice Records prices and runs the triggers of the given positions: liquidation (at the
    ///         oracle price), else take-profit, else stop-loss. Positions with nothing to do are
    ///         skipped. The prices are settled (docs/mechanics.md section 8): the keeper passes
    ///         every open position of the priced pairs.
    /// @param positionIds the positions to check (closed ones are skipped)
    /// @param prices keeper prices to record and settle first (one per pair at most)
    /// @return closed how many positions were closed
    function runTriggers(uint256[] calldata positionIds, PriceInput[] calldata prices)
        external
        returns (uint256 closed);

    /// @notice Records keeper prices and brings the pairs' indexes to now, with no trade and no
    ///         triggers: a changed price is not settled until `runTriggers` runs at it.
    /// @param prices keeper prices (one per pair at most)
    function updatePrices(PriceInput[] calldata prices) external;

    // ================================================================== admin

    /// @notice Replaces the settings (the treasury is apart: `setTreasury`). Admin only.
    /// @param s the new settings; each must fit its stored width
    function setSettings(Settings calldata s) external;

    /// @notice Writes the pair's per-block execution counter (count 1 at block 0, a block that
    ///         never executes: the count restarts at the first execution), so the pair's first
    ///         execution pays no zero-to-nonzero storage write. Optional (gas only) and
    ///         idempotent, as `Market.initPair`. Admin only.
    /// @param pairId a listed pair
    function initPair(uint256 pairId) external;

    /// @notice Publishes the keeper's public key that orders are encrypted to. Admin only.
    /// @param publicKey secp256k1, 64 bytes, uncompressed without prefix
    function setKeeperPublicKey(bytes calldata publicKey) external;

    /// @notice Sets where the fees' share not for the pool goes. Admin only.
    /// @param treasury_ the new treasury (not zero)
    function setTreasury(address treasury_) external;

    /// @notice Stops new open requests (`requestOpen`); everything else runs. Admin only.
    function pause() external;

    /// @notice Lets open requests in again. Admin only.
    function unpause() external;

    // ================================================================== views

    /// @notice The collateral: the chain's stablecoin, valued at 1 USD.
    /// @return the collateral token
    function collateral() external view returns (IERC20);

    /// @notice The factor that turns collateral amounts into 18-decimal USD.
    /// @return 10 ** (18 - the collateral's decimals)
    function tokenToUsdScale() external view returns (uint256);

    /// @notice The ALP pool positions trade against.
    /// @return the pool
    function pool() external view returns (AlpPool);

    /// @notice The pairs and their trading configuration.
    /// @return the pair registry
    function pairs() external view returns (PairRegistry);

    /// @notice The prices: the keeper's, guarded by the reference feeds.
    /// @return the oracle
    function oracle() external view returns (PriceOracle);

    /// @notice The open interest and the holding and funding indexes of every pair.
    /// @return the market
    function market() external view returns (Market);

    /// @notice Who has a referral (a fee discount).
    /// @return the referral registry
    function referrals() external view returns (ReferralRegistry);

    /// @notice The token fees may be paid in, at a discount (zero address: none).
    /// @return the platform token
    function platformToken() external view returns (IERC20);

    /// @notice The id the next request will get.
    /// @return the next request id (ids start at 1)
    function nextRequestId() external view returns (uint256);

    /// @notice Whether `trader` chose to pay fees in the platform token (`setFeeInToken`).
    /// @param trader the trader
    /// @return the trader's choice
    function feeInToken(address trader) external view returns (bool);

    /// @notice The execution fee a request made now is charged, in collateral units.
    /// @return the fee, rounded up from its USD setting
    function executionFeeTokens() external view returns (uint256);

    /// @notice The settings.
    /// @return the settings, as stored
    function settings() external view returns (Settings memory);

    /// @notice Where the fees' share not for the pool goes.
    /// @return the treasury
    function treasury() external view returns (address);

    /// @notice The keeper's secp256k1 public key (64 bytes, uncompressed without prefix) that
    ///         orders are encrypted to (ECIES).
    /// @return the key
    function keeperPublicKey() external view returns (bytes memory);

    /// @notice A request. An executed open's position has taken its amount and commitment
    ///         slots: they read as zero here, and stay in its `OpenRequested` event.
    /// @param requestId the request
    /// @return r the request (all zero when unknown)
    function request(uint256 requestId) external view returns (Request memory r);

    /// @notice The latest close request of an open position; 0 when it has none, or once it
    ///         was executed, rejected or cancelled, or the position closed.
    /// @param positionId the position
    /// @return the close request's id, or 0
    function pendingClose(uint256 positionId) external view returns (uint256);

    /// @notice An open position (a closed one reads as trader zero).
    /// @param positionId the position
    /// @return the position
    function position(uint256 positionId) external view returns (Position memory);

    /// @notice Many positions in one call.
    /// @param positionIds the positions
    /// @return out the positions, in order (closed ones read as trader zero)
    function positionsOf(uint256[] calldata positionIds) external view returns (Position[] memory out);

    /// @notice Whether the position is liquidatable at `price` now (docs/mechanics.md section 11).
    /// @param positionId the position (a closed one is not)
    /// @param price the pair's price, 18-decimal USD
    /// @return whether a liquidation would close it
    function isLiquidatable(uint256 positionId, uint256 price) external view returns (bool);
}
