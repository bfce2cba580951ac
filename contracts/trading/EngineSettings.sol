// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

import {ITradingEngine} from "../interfaces/ITradingEngine.sol";
import {BPS} from "../libraries/Units.sol";
import {Errors} from "../errors/Errors.sol";
import {EngineBase, EngineStorage, EngineState, StoredSettings, BlockCount} from "./EngineStorage.sol";

/// @title EngineSettings
/// @notice The engine's administration: its settings (with their defaults), the keeper's
///         public key, the treasury, a pair's execution counter, and the pause switch.
abstract contract EngineSettings is EngineBase {
    using EngineStorage for EngineState;
    using SafeCast for uint256;

    /// @param treasury_ receives the fees' share not for the pool
    /// @param executionFeeUsd the keeper's fee per request, 18-decimal USD
    /// @param admin holds the admin roles
    constructor(address treasury_, uint256 executionFeeUsd, address admin) {
        EngineState storage $ = EngineStorage.state();
        // the defaults (docs/mechanics.md): each fits its field
        StoredSettings storage s = $.settings;
        s.executionFeeUsd = executionFeeUsd.toUint96();
        s.minNotionalUsd = 100e18;
        s.requestExpiryBlocks = 10;
        s.maxExecutionsPerPairPerBlock = 100;
        s.maxRoiLeverage = 1000;
        s.extremeLeverage = 500;
        s.openFeeBps = 8;
        s.closeFeeBps = 8;
        s.extremeMinCloseFeeBps = 3;
        s.extremeProfitFeeBps = 1500;
        s.referralDiscountBps = 500;
        s.tokenDiscountBps = 500;
        s.poolFeeShareBps = 5000;
        s.openLossGuardBps = 8000;
        s.liquidationThresholdStandardBps = 9000;
        s.liquidationThresholdExtremeBps = 8500;
        s.roiCapStandardBps = 90_000;
        s.roiCapExtremeBps = 50_000;
        s.roiCapMaxLeverageBps = 30_000;
        s.treasury = treasury_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(ADMIN_ROLE, admin);
    }

    // ================================================================== admin

    /// @inheritdoc ITradingEngine
    function setSettings(Settings calldata s) external onlyAdmin {
        if (s.poolFeeShareBps > BPS) revert Errors.InvalidBps(s.poolFeeShareBps);
        uint256 discounts = s.referralDiscountBps + s.tokenDiscountBps;
        if (discounts > BPS) revert Errors.InvalidBps(discounts);
        EngineStorage.state().storeSettings(s);
        emit SettingsUpdated(s);
    }

    /// @inheritdoc ITradingEngine
    function initPair(uint256 pairId) external onlyAdmin {
        if (pairId >= _pairRegistry().pairCount()) revert Errors.UnknownPair(pairId);
        BlockCount storage counter = EngineStorage.state().executions[pairId];
        if (counter.blockNumber == 0 && counter.count == 0) counter.count = 1;
    }

    /// @inheritdoc ITradingEngine
    function setKeeperPublicKey(bytes calldata publicKey) external onlyAdmin {
        EngineStorage.state().keeperPublicKey = publicKey;
        emit KeeperPublicKeySet(publicKey);
    }

    /// @inheritdoc ITradingEngine
    function setTreasury(address treasury_) external onlyAdmin {
        if (treasury_ == address(0)) revert Errors.ZeroAddress();
        EngineStorage.state().settings.treasury = treasury_;
        emit TreasurySet(treasury_);
    }

    /// @inheritdoc ITradingEngine
    function pause() external onlyAdmin {
        _pause();
    }

    /// @inheritdoc ITradingEngine
    function unpause() external onlyAdmin {
        _unpause();
    }

    // ================================================================== views

    /// @inheritdoc ITradingEngine
    function settings() external view returns (Settings memory) {
        StoredSettings storage t = EngineStorage.state().settings;
        return Settings({
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

    /// @inheritdoc ITradingEngine
    function treasury() external view returns (address) {
        return EngineStorage.state().settings.treasury;
    }

    /// @inheritdoc ITradingEngine
    function keeperPublicKey() external view returns (bytes memory) {
        return EngineStorage.state().keeperPublicKey;
    }
}
