// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {Errors} from "../errors/Errors.sol";

/// @title PairRegistry
/// @notice The tradable pairs and their settings (SPEC section 3), and the notional tiers that
///         cap leverage on large positions.
contract PairRegistry is AccessControl {
    bytes32 public constant ADMIN_ROLE = keccak256("ADMIN");

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

    /// @notice Up to `maxNotionalUsd`, leverage is capped at `maxLeverage` (0: the pair's own).
    struct NotionalTier {
        uint256 maxNotionalUsd;
        uint256 maxLeverage;
    }

    event PairListed(uint256 indexed pairId, PairConfig config);
    event PairUpdated(uint256 indexed pairId, PairConfig config);
    event TiersUpdated(NotionalTier[] tiers);

    PairConfig[] private _pairs;
    NotionalTier[] private _tiers;

    constructor(address admin) {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(ADMIN_ROLE, admin);
        _tiers.push(NotionalTier(1_000_000e18, 0));
        _tiers.push(NotionalTier(5_000_000e18, 250));
        _tiers.push(NotionalTier(20_000_000e18, 100));
    }

    function listPair(PairConfig calldata config) external onlyRole(ADMIN_ROLE) returns (uint256 pairId) {
        pairId = _pairs.length;
        _pairs.push(config);
        _pairs[pairId].listed = true;
        _validate(pairId);
        emit PairListed(pairId, _pairs[pairId]);
    }

    function updatePair(uint256 pairId, PairConfig calldata config) external onlyRole(ADMIN_ROLE) {
        if (pairId >= _pairs.length) revert Errors.UnknownPair(pairId);
        _pairs[pairId] = config;
        _validate(pairId);
        emit PairUpdated(pairId, config);
    }

    function setPaused(uint256 pairId, bool paused) external onlyRole(ADMIN_ROLE) {
        if (pairId >= _pairs.length) revert Errors.UnknownPair(pairId);
        _pairs[pairId].paused = paused;
        emit PairUpdated(pairId, _pairs[pairId]);
    }

    function setTiers(NotionalTier[] calldata tiers) external onlyRole(ADMIN_ROLE) {
        delete _tiers;
        for (uint256 i = 0; i < tiers.length; i++) {
            _tiers.push(tiers[i]);
        }
        emit TiersUpdated(tiers);
    }

    function pairCount() external view returns (uint256) {
        return _pairs.length;
    }

    /// @notice A pair's settings; an id never listed reads as not listed.
    function pair(uint256 pairId) external view returns (PairConfig memory config) {
        if (pairId < _pairs.length) config = _pairs[pairId];
    }

    function tiers() external view returns (NotionalTier[] memory) {
        return _tiers;
    }

    /// @notice The highest leverage allowed for `notionalUsd` on the pair, and whether the
    ///         notional is above every tier (then it is not allowed at all).
    function leverageCap(uint256 pairId, uint256 notionalUsd) external view returns (uint256 cap, bool tooLarge) {
        PairConfig storage p = _pairs[pairId];
        cap = p.maxLeverage;
        if (!p.tiered) return (cap, false);
        uint256 n = _tiers.length;
        for (uint256 i = 0; i < n; i++) {
            if (notionalUsd <= _tiers[i].maxNotionalUsd) {
                uint256 tierCap = _tiers[i].maxLeverage;
                return (tierCap == 0 || tierCap > cap ? cap : tierCap, false);
            }
        }
        return (cap, true);
    }

    function _validate(uint256 pairId) private view {
        PairConfig storage p = _pairs[pairId];
        if (p.maxLeverage == 0 || p.depth1PctUsd == 0 || p.spreadBps >= 10_000) {
            revert Errors.InvalidPairSettings(pairId);
        }
    }
}
