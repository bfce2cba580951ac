// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {AggregatorV3Interface} from "../interfaces/AggregatorV3Interface.sol";
import {RejectReason} from "../trading/Types.sol";
import {Errors} from "../errors/Errors.sol";

/// @title PriceOracle
/// @notice Keeper prices guarded by Chainlink reference feeds (docs/mechanics.md section 8): a price older
///         than 60 s is stale; a keeper/reference gap over 1% trips the circuit breaker; a gap
///         over 0.1% executes at the worse of the two for the trader.
contract PriceOracle is AccessControl {
    using SafeCast for uint256;
    bytes32 public constant ADMIN_ROLE = keccak256("ADMIN");
    /// @notice The trading engine: records the keeper's prices with each execution.
    bytes32 public constant UPDATER_ROLE = keccak256("UPDATER");
    /// @notice The keeper: sets the platform token's price.
    bytes32 public constant KEEPER_ROLE = keccak256("KEEPER");

    uint256 private constant BPS = 10_000;

    struct KeeperPrice {
        uint192 price; // 18-decimal USD
        uint64 updatedAt;
    }

    mapping(uint256 pairId => AggregatorV3Interface) public referenceFeed;
    mapping(uint256 pairId => KeeperPrice) public keeperPrice;
    uint256 public platformTokenPriceUsd;

    // the three guard settings share one slot
    uint64 public maxPriceAgeSeconds = 60;
    uint32 public circuitBreakerBps = 100;
    uint32 public worsePriceBps = 10;

    event PriceUpdated(uint256 indexed pairId, uint256 price, uint256 timestamp);
    event ReferenceFeedSet(uint256 indexed pairId, address feed);
    event PlatformTokenPriceUpdated(uint256 price);
    event GuardSettingsUpdated(uint256 maxPriceAgeSeconds, uint256 circuitBreakerBps, uint256 worsePriceBps);

    constructor(address admin) {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(ADMIN_ROLE, admin);
    }

    function setReferenceFeed(uint256 pairId, AggregatorV3Interface feed) external onlyRole(ADMIN_ROLE) {
        referenceFeed[pairId] = feed;
        emit ReferenceFeedSet(pairId, address(feed));
    }

    function setGuardSettings(uint256 maxAgeSeconds, uint256 breakerBps, uint256 worseBps)
        external
        onlyRole(ADMIN_ROLE)
    {
        maxPriceAgeSeconds = maxAgeSeconds.toUint64();
        circuitBreakerBps = breakerBps.toUint32();
        worsePriceBps = worseBps.toUint32();
        emit GuardSettingsUpdated(maxAgeSeconds, breakerBps, worseBps);
    }

    /// @notice Records the keeper's price for a pair, stamped now. A pair takes prices once it
    ///         has a reference feed (a guarded execution reads the feed next, so the check is
    ///         free there).
    function setPrice(uint256 pairId, uint256 price) external onlyRole(UPDATER_ROLE) {
        if (price == 0 || price > type(uint192).max || address(referenceFeed[pairId]) == address(0)) {
            revert Errors.InvalidPriceInput(pairId);
        }
        keeperPrice[pairId] = KeeperPrice(uint192(price), uint64(block.timestamp));
        emit PriceUpdated(pairId, price, block.timestamp);
    }

    function setPlatformTokenPrice(uint256 price) external onlyRole(KEEPER_ROLE) {
        platformTokenPriceUsd = price;
        emit PlatformTokenPriceUpdated(price);
    }

    /// @notice The reference feed's price in 18-decimal USD and its age.
    function referencePrice(uint256 pairId) public view returns (uint256 price, uint256 updatedAt) {
        AggregatorV3Interface feed = referenceFeed[pairId];
        if (address(feed) == address(0)) return (0, 0);
        (uint80 roundId, int256 answer, uint256 startedAt, uint256 at, uint80 answeredInRound) =
            feed.latestRoundData();
        // no round yet, a non-positive answer or a stale round: no reference price
        if (answer <= 0 || startedAt == 0 || answeredInRound < roundId) return (0, at);
        return (uint256(answer) * 10 ** (18 - feed.decimals()), at);
    }

    /// @notice The price a trade executes at, after the staleness, circuit-breaker and
    ///         worse-price rules; `reason` is not None when the trade must be rejected.
    /// @param traderBuys true when the trader buys (opens a long, closes a short)
    function guardedPrice(uint256 pairId, bool traderBuys) external view returns (uint256, RejectReason) {
        KeeperPrice memory kp = keeperPrice[pairId];
        (uint256 ref, uint256 refAt) = referencePrice(pairId);
        uint256 maxAge = maxPriceAgeSeconds;
        // a zero price means "never set": exact on purpose
        // slither-disable-next-line incorrect-equality
        if (kp.price == 0 || ref == 0 || block.timestamp > kp.updatedAt + maxAge || block.timestamp > refAt + maxAge) {
            return (0, RejectReason.PriceStale);
        }
        uint256 keeper = kp.price;
        uint256 gapTimesBps = (keeper > ref ? keeper - ref : ref - keeper) * BPS;
        if (gapTimesBps > circuitBreakerBps * ref) return (0, RejectReason.CircuitBreaker);
        if (gapTimesBps > worsePriceBps * ref) {
            bool keeperWorse = traderBuys ? keeper > ref : keeper < ref;
            return (keeperWorse ? keeper : ref, RejectReason.None);
        }
        return (keeper, RejectReason.None);
    }

    /// @notice Until when the pair's last keeper price is fresh (its time plus the maximum age);
    ///         0 when the pair was never priced.
    function freshUntil(uint256 pairId) external view returns (uint256) {
        KeeperPrice memory kp = keeperPrice[pairId];
        // a zero price means "never set": exact on purpose
        // slither-disable-next-line incorrect-equality
        if (kp.price == 0) return 0;
        return uint256(kp.updatedAt) + maxPriceAgeSeconds;
    }

    /// @notice The last keeper price (the mark for NAV), whatever its age; 0 when never set.
    function markPrice(uint256 pairId) external view returns (uint256) {
        return keeperPrice[pairId].price;
    }

    /// @notice The last keeper price (the mark for NAV), reverting when older than the maximum
    ///         age.
    function freshMarkPrice(uint256 pairId) external view returns (uint256) {
        KeeperPrice memory kp = keeperPrice[pairId];
        // a zero price means "never set": exact on purpose
        // slither-disable-next-line incorrect-equality
        if (kp.price == 0 || block.timestamp > uint256(kp.updatedAt) + maxPriceAgeSeconds) {
            revert Errors.PriceStale(pairId, kp.updatedAt, maxPriceAgeSeconds);
        }
        return kp.price;
    }
}
