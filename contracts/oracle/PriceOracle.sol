// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {AggregatorV3Interface} from "../interfaces/AggregatorV3Interface.sol";
import {IFundingAccrual} from "../interfaces/IFundingAccrual.sol";
import {RejectReason} from "../trading/Types.sol";
import {Errors} from "../errors/Errors.sol";
import {BPS} from "../libraries/Units.sol";

/// @title PriceOracle
/// @notice Keeper prices guarded by Chainlink reference feeds (docs/mechanics.md section 8): a price older
///         than 60 s is stale; a keeper/reference gap over 1% trips the circuit breaker; a gap
///         over 0.1% executes at the worse of the two for the trader. A price is *settled*
///         while the triggers have run at it with the guard passing: only then does the
///         lighter side of a pair receive funding, and only then may LPs deposit or withdraw.
contract PriceOracle is AccessControl {
    using SafeCast for uint256;
    bytes32 public constant ADMIN_ROLE = keccak256("ADMIN");
    /// @notice The trading engine: records the keeper's prices with each execution.
    bytes32 public constant UPDATER_ROLE = keccak256("UPDATER");
    /// @notice The keeper: sets the platform token's price.
    bytes32 public constant KEEPER_ROLE = keccak256("KEEPER");


    /// @dev One slot, written by every `setPrice`.
    struct KeeperPrice {
        uint128 price; // 18-decimal USD
        uint64 updatedAt;
        // Until when this price counts as settled: the triggers ran at it with the guard
        // passing, and neither it nor the reference round then current has aged past the
        // maximum age. 0: not settled (see `setPrice`).
        uint64 settledUntil;
    }

    /// @dev A pair's feed with its decimals, read once when the feed is set (Chainlink's are
    ///      fixed), so a price read makes one call to the feed, not two.
    struct Feed {
        AggregatorV3Interface feed;
        uint8 decimals;
    }

    mapping(uint256 pairId => Feed) private _feeds;
    // written through a storage pointer (`_record`), which the analyzer does not follow
    // slither-disable-next-line uninitialized-state
    mapping(uint256 pairId => KeeperPrice) public keeperPrice;
    uint256 public platformTokenPriceUsd;

    // the three guard settings share one slot
    uint64 public maxPriceAgeSeconds = 60;
    uint32 public circuitBreakerBps = 100;
    uint32 public worsePriceBps = 10;

    /// @notice Brought to now before any setting that changes accrual (guard settings, a
    ///         reference feed); zero until wired (`setFundingAccrual`).
    IFundingAccrual public fundingAccrual;

    /// @param settledUntil until when the price counts as settled (0: not settled)
    event PriceUpdated(uint256 indexed pairId, uint256 price, uint256 timestamp, uint256 settledUntil);
    event ReferenceFeedSet(uint256 indexed pairId, address feed);
    event PlatformTokenPriceUpdated(uint256 price);
    event GuardSettingsUpdated(uint256 maxPriceAgeSeconds, uint256 circuitBreakerBps, uint256 worsePriceBps);
    event FundingAccrualSet(address fundingAccrual);

    constructor(address admin) {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(ADMIN_ROLE, admin);
    }

    /// @notice The market whose funding reads this oracle's settled windows: accrued before
    ///         any setting here changes them, so a setting never applies backwards in time.
    function setFundingAccrual(IFundingAccrual fundingAccrual_) external onlyRole(ADMIN_ROLE) {
        fundingAccrual = fundingAccrual_;
        emit FundingAccrualSet(address(fundingAccrual_));
    }

    function setReferenceFeed(uint256 pairId, AggregatorV3Interface feed) external onlyRole(ADMIN_ROLE) {
        _accrueFirst();
        uint8 decimals = address(feed) == address(0) ? 0 : feed.decimals();
        if (decimals > 18) revert Errors.UnsupportedDecimals(decimals);
        _feeds[pairId] = Feed(feed, decimals);
        emit ReferenceFeedSet(pairId, address(feed));
    }

    function setGuardSettings(uint256 maxAgeSeconds, uint256 breakerBps, uint256 worseBps)
        external
        onlyRole(ADMIN_ROLE)
    {
        // the funding accrued so far was earned under the old settings
        _accrueFirst();
        maxPriceAgeSeconds = maxAgeSeconds.toUint64();
        circuitBreakerBps = breakerBps.toUint32();
        worsePriceBps = worseBps.toUint32();
        emit GuardSettingsUpdated(maxAgeSeconds, breakerBps, worseBps);
    }

    /// @notice Records the keeper's price for a pair, stamped now, without triggers: a new
    ///         price is not settled; the same price again keeps its settlement (the triggers
    ///         ran at it, and its window does not move). A pair takes prices once it has a
    ///         reference feed (a guarded execution reads the feed next, so the check is free
    ///         there).
    function setPrice(uint256 pairId, uint256 price) external onlyRole(UPDATER_ROLE) {
        KeeperPrice storage kp = _checkedPrice(pairId, price);
        _record(kp, pairId, price, kp.price == price ? kp.settledUntil : 0);
    }

    /// @notice Records the keeper's price for a pair at which the caller runs the pair's
    ///         triggers in the same transaction (`runTriggers`): the price is settled while the
    ///         guard passes now, until the reference round then current ages past the maximum
    ///         age (the keeper price, newer, ages later).
    function setSettledPrice(uint256 pairId, uint256 price) external onlyRole(UPDATER_ROLE) {
        KeeperPrice storage kp = _checkedPrice(pairId, price);
        (uint256 ref, uint256 refAt) = referencePrice(pairId);
        uint256 maxAge = maxPriceAgeSeconds;
        // usable now, as the triggers about to run will find it
        _record(kp, pairId, price, _usable(price, ref, refAt, maxAge) ? refAt + maxAge : 0);
    }

    function _checkedPrice(uint256 pairId, uint256 price) private view returns (KeeperPrice storage) {
        if (price == 0 || price > type(uint128).max || address(_feeds[pairId].feed) == address(0)) {
            revert Errors.InvalidPriceInput(pairId);
        }
        return keeperPrice[pairId];
    }

    function _record(KeeperPrice storage kp, uint256 pairId, uint256 price, uint256 settledUntil) private {
        kp.price = uint128(price);
        kp.updatedAt = uint64(block.timestamp);
        kp.settledUntil = uint64(settledUntil);
        emit PriceUpdated(pairId, price, block.timestamp, settledUntil);
    }

    /// @notice The first price id that is not a pair: ids from here to 255 price basket assets
    ///         that trade nowhere in the engine (BNB, the stablecoins). Pair-backed basket assets
    ///         (BTC, ETH) read their pair's id.
    uint256 public constant FIRST_ASSET_PRICE_ID = 128;

    /// @notice Records the keeper's prices of asset-only ids (>= FIRST_ASSET_PRICE_ID), stamped
    ///         now. Pair prices keep going through the engine, which accrues and settles them.
    function setAssetPrices(uint256[] calldata ids, uint256[] calldata prices) external onlyRole(KEEPER_ROLE) {
        if (ids.length != prices.length) revert Errors.InvalidPriceInput(ids.length);
        for (uint256 i = 0; i < ids.length; ++i) {
            uint256 id = ids[i];
            if (id < FIRST_ASSET_PRICE_ID || id > type(uint8).max) revert Errors.InvalidPriceInput(id);
            _record(_checkedPrice(id, prices[i]), id, prices[i], 0);
        }
    }

    /// @notice A basket asset's price for LPs (docs/mechanics.md section 10): keeper price and
    ///         reference both fresh and within the circuit breaker; `low` is the lower of the two
    ///         (what comes into the pool is valued at it), `high` the higher (what goes out).
    function assetPriceBounds(uint256 priceId) external view returns (uint256 low, uint256 high) {
        KeeperPrice memory kp = keeperPrice[priceId];
        uint256 maxAge = maxPriceAgeSeconds;
        // a zero price means "never set": exact on purpose
        // slither-disable-next-line incorrect-equality
        if (kp.price == 0 || block.timestamp > uint256(kp.updatedAt) + maxAge) {
            revert Errors.PriceStale(priceId, kp.updatedAt, maxAge);
        }
        (uint256 ref, uint256 refAt) = referencePrice(priceId);
        if (ref == 0 || block.timestamp > refAt + maxAge) revert Errors.ReferenceStale(priceId, refAt, maxAge);
        if (_gap(kp.price, ref) * BPS > circuitBreakerBps * ref) {
            revert Errors.CircuitBreakerTripped(priceId, kp.price, ref);
        }
        return kp.price < ref ? (uint256(kp.price), ref) : (ref, uint256(kp.price));
    }

    function setPlatformTokenPrice(uint256 price) external onlyRole(KEEPER_ROLE) {
        platformTokenPriceUsd = price;
        emit PlatformTokenPriceUpdated(price);
    }

    /// @notice The pair's reference feed (Chainlink `AggregatorV3Interface`); zero when none.
    function referenceFeed(uint256 pairId) external view returns (AggregatorV3Interface) {
        return _feeds[pairId].feed;
    }

    /// @notice The reference feed's price in 18-decimal USD and its age.
    function referencePrice(uint256 pairId) public view returns (uint256 price, uint256 updatedAt) {
        Feed memory f = _feeds[pairId];
        AggregatorV3Interface feed = f.feed;
        if (address(feed) == address(0)) return (0, 0);
        (uint80 roundId, int256 answer, uint256 startedAt, uint256 at, uint80 answeredInRound) =
            feed.latestRoundData();
        // no round yet, a non-positive answer or a stale round: no reference price
        if (answer <= 0 || startedAt == 0 || answeredInRound < roundId) return (0, at);
        return (uint256(answer) * 10 ** (18 - f.decimals), at);
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
        uint256 gapTimesBps = _gap(keeper, ref) * BPS;
        if (gapTimesBps > circuitBreakerBps * ref) return (0, RejectReason.CircuitBreaker);
        if (gapTimesBps > worsePriceBps * ref) {
            bool keeperWorse = traderBuys ? keeper > ref : keeper < ref;
            return (keeperWorse ? keeper : ref, RejectReason.None);
        }
        return (keeper, RejectReason.None);
    }

    /// @notice Until when the pair's price is settled (see `setPrice`): the lighter side of the
    ///         pair receives funding only up to it. 0: not settled.
    function settledUntil(uint256 pairId) external view returns (uint256) {
        return keeperPrice[pairId].settledUntil;
    }

    /// @notice The last keeper price (the mark for NAV), whatever its age; 0 when never set.
    function markPrice(uint256 pairId) external view returns (uint256) {
        return keeperPrice[pairId].price;
    }

    /// @notice The last keeper price (the mark for NAV) when LPs may be priced at it: fresh and
    ///         settled (the triggers ran at it with the guard passing, and the reference round
    ///         they saw is still within the maximum age). Reverts `PriceStale`, else, when not
    ///         settled, with what the guard finds now: `ReferenceStale`, `CircuitBreakerTripped`,
    ///         or `PriceNotSettled` (the triggers have not run at this price).
    /// @dev The settled window stands for its length, as it does for funding: the success path
    ///      reads no feed (docs/mechanics.md section 8 bounds what a window can miss).
    function settledMarkPrice(uint256 pairId) external view returns (uint256) {
        KeeperPrice memory kp = keeperPrice[pairId];
        uint256 maxAge = maxPriceAgeSeconds;
        // a zero price means "never set": exact on purpose
        // slither-disable-next-line incorrect-equality
        if (kp.price == 0 || block.timestamp > uint256(kp.updatedAt) + maxAge) {
            revert Errors.PriceStale(pairId, kp.updatedAt, maxAge);
        }
        if (block.timestamp > kp.settledUntil) {
            (uint256 ref, uint256 refAt) = referencePrice(pairId);
            if (ref == 0 || block.timestamp > refAt + maxAge) revert Errors.ReferenceStale(pairId, refAt, maxAge);
            if (_gap(kp.price, ref) * BPS > circuitBreakerBps * ref) {
                revert Errors.CircuitBreakerTripped(pairId, kp.price, ref);
            }
            revert Errors.PriceNotSettled(pairId, kp.updatedAt, kp.settledUntil);
        }
        return kp.price;
    }

    /// @dev The guard's staleness and breaker rules for a keeper price set now.
    function _usable(uint256 price, uint256 ref, uint256 refAt, uint256 maxAge) private view returns (bool) {
        return ref != 0 && block.timestamp <= refAt + maxAge && _gap(price, ref) * BPS <= circuitBreakerBps * ref;
    }

    function _gap(uint256 a, uint256 b) private pure returns (uint256) {
        return a > b ? a - b : b - a;
    }

    function _accrueFirst() private {
        IFundingAccrual accrual = fundingAccrual;
        if (address(accrual) != address(0)) accrual.accrueAll();
    }
}
