// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {Errors} from "../errors/Errors.sol";

/// @title PairRegistry
/// @notice The tradable pairs and their settings (docs/mechanics.md section 3), and the notional tiers that
///         cap leverage on large positions.
contract PairRegistry is AccessControl {
    using SafeCast for uint256;

    bytes32 public constant ADMIN_ROLE = keccak256("ADMIN");
    /// @notice The market keeps its pairs with open interest in a 128-bit word.
    uint256 public constant MAX_PAIRS = 128;

    struct PairConfig {
        string name; // "BTC/USD"
        bool listed;
        bool paused;
        bool tiered; // notional tiers apply (BTC and ETH)
        uint16 maxLeverage;
        uint16 spreadBps;
        uint256 depth1PctUsd; // notional that moves the fill by 1%
        uint256 maxOiPerSideUsd;
    }

    /// @notice What an execution reads of a pair: `PairConfig` without the name.
    struct TradeConfig {
        bool listed;
        bool paused;
        uint16 maxLeverage;
        uint16 spreadBps;
        uint256 depth1PctUsd;
        uint256 maxOiPerSideUsd;
    }

    /// @dev A pair in storage: one slot, its name apart, so an execution reads one cold slot
    ///      and no string. USD amounts fit 96 bits (79 billion USD at 18 decimals).
    struct StoredPair {
        bool listed;
        bool paused;
        bool tiered;
        uint16 maxLeverage;
        uint16 spreadBps;
        uint96 depth1PctUsd;
        uint96 maxOiPerSideUsd;
    }

    /// @notice Up to `maxNotionalUsd`, leverage is capped at `maxLeverage` (0: the pair's own).
    struct NotionalTier {
        uint256 maxNotionalUsd;
        uint256 maxLeverage;
    }

    /// @dev A tier in storage: one slot, so a capped open reads one slot per tier it passes.
    ///      Wider values revert `SafeCastOverflowedUintDowncast`.
    struct StoredTier {
        uint128 maxNotionalUsd;
        uint128 maxLeverage;
    }

    event PairListed(uint256 indexed pairId, PairConfig config);
    event PairUpdated(uint256 indexed pairId, PairConfig config);
    event TiersUpdated(NotionalTier[] tiers);

    /// @notice How many pairs are listed; their ids are 0 to pairCount - 1.
    uint256 public pairCount;
    /// @dev Mappings, not arrays: an execution reads a pair's slot and no length (an id never
    ///      listed reads as zero, not listed).
    mapping(uint256 pairId => StoredPair) private _pairs;
    mapping(uint256 pairId => string) private _names;
    /// @dev The tiers in ascending order, ended by the first zero `maxNotionalUsd` (`setTiers`
    ///      refuses a zero one and clears those past the last), so a capped open reads only the
    ///      tiers it passes, and no length.
    mapping(uint256 index => StoredTier) private _tiers;
    uint256 private _tierCount;

    constructor(address admin) {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(ADMIN_ROLE, admin);
        _tiers[0] = StoredTier(1_000_000e18, 0);
        _tiers[1] = StoredTier(5_000_000e18, 250);
        _tiers[2] = StoredTier(20_000_000e18, 100);
        _tierCount = 3;
    }

    function listPair(PairConfig calldata config) external onlyRole(ADMIN_ROLE) returns (uint256 pairId) {
        pairId = pairCount;
        if (pairId == MAX_PAIRS) revert Errors.TooManyPairs(MAX_PAIRS);
        pairCount = pairId + 1;
        _store(pairId, config, true);
        emit PairListed(pairId, pair(pairId));
    }

    function updatePair(uint256 pairId, PairConfig calldata config) external onlyRole(ADMIN_ROLE) {
        if (pairId >= pairCount) revert Errors.UnknownPair(pairId);
        _store(pairId, config, config.listed);
        emit PairUpdated(pairId, config);
    }

    function setPaused(uint256 pairId, bool paused) external onlyRole(ADMIN_ROLE) {
        if (pairId >= pairCount) revert Errors.UnknownPair(pairId);
        _pairs[pairId].paused = paused;
        emit PairUpdated(pairId, pair(pairId));
    }

    function setTiers(NotionalTier[] calldata tiers) external onlyRole(ADMIN_ROLE) {
        uint256 oldCount = _tierCount;
        for (uint256 i = 0; i < tiers.length; i++) {
            if (tiers[i].maxNotionalUsd == 0) revert Errors.InvalidTier(i);
            _tiers[i] = StoredTier(tiers[i].maxNotionalUsd.toUint128(), tiers[i].maxLeverage.toUint128());
        }
        for (uint256 i = tiers.length; i < oldCount; i++) {
            delete _tiers[i];
        }
        _tierCount = tiers.length;
        emit TiersUpdated(tiers);
    }

    /// @notice A pair's settings; an id never listed reads as not listed.
    function pair(uint256 pairId) public view returns (PairConfig memory config) {
        if (pairId >= pairCount) return config;
        StoredPair storage p = _pairs[pairId];
        config = PairConfig({
            name: _names[pairId],
            listed: p.listed,
            paused: p.paused,
            tiered: p.tiered,
            maxLeverage: p.maxLeverage,
            spreadBps: p.spreadBps,
            depth1PctUsd: p.depth1PctUsd,
            maxOiPerSideUsd: p.maxOiPerSideUsd
        });
    }

    /// @notice What an execution needs of a pair (one storage read); an id never listed
    ///         reads as not listed.
    function tradeConfig(uint256 pairId) external view returns (TradeConfig memory) {
        StoredPair storage p = _pairs[pairId];
        return TradeConfig(p.listed, p.paused, p.maxLeverage, p.spreadBps, p.depth1PctUsd, p.maxOiPerSideUsd);
    }

    function tiers() external view returns (NotionalTier[] memory out) {
        out = new NotionalTier[](_tierCount);
        for (uint256 i = 0; i < out.length; i++) {
            out[i] = NotionalTier(_tiers[i].maxNotionalUsd, _tiers[i].maxLeverage);
        }
    }

    /// @notice The highest leverage allowed for `notionalUsd` on the pair, and whether the
    ///         notional is above every tier (then it is not allowed at all).
    function leverageCap(uint256 pairId, uint256 notionalUsd) external view returns (uint256 cap, bool tooLarge) {
        StoredPair storage p = _pairs[pairId];
        cap = p.maxLeverage;
        if (!p.tiered) return (cap, false);
        for (uint256 i = 0; ; i++) {
            StoredTier memory tier = _tiers[i];
            // past the last tier: the notional is above them all (zero is the end, exactly)
            // slither-disable-next-line incorrect-equality
            if (tier.maxNotionalUsd == 0) return (cap, true);
            if (notionalUsd <= tier.maxNotionalUsd) {
                uint256 tierCap = tier.maxLeverage;
                return (tierCap == 0 || tierCap > cap ? cap : tierCap, false);
            }
        }
    }

    function _store(uint256 pairId, PairConfig calldata c, bool listed) private {
        if (
            c.maxLeverage == 0 || c.depth1PctUsd == 0 || c.spreadBps >= 10_000 || c.depth1PctUsd > type(uint96).max
                || c.maxOiPerSideUsd > type(uint96).max
        ) revert Errors.InvalidPairSettings(pairId);
        _pairs[pairId] = StoredPair({
            listed: listed,
            paused: c.paused,
            tiered: c.tiered,
            maxLeverage: c.maxLeverage,
            spreadBps: c.spreadBps,
            depth1PctUsd: uint96(c.depth1PctUsd),
            maxOiPerSideUsd: uint96(c.maxOiPerSideUsd)
        });
        _names[pairId] = c.name;
    }
}
