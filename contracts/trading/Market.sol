// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

import {INavSource} from "../interfaces/INavSource.sol";
import {IFundingAccrual} from "../interfaces/IFundingAccrual.sol";
import {PairRegistry} from "./PairRegistry.sol";
import {PriceOracle} from "../oracle/PriceOracle.sol";
import {TradeMath} from "../libraries/TradeMath.sol";
import {WAD} from "../libraries/Units.sol";
import {Errors} from "../errors/Errors.sol";

/// @title Market
/// @notice Per-pair, per-side aggregates of open positions and the cumulative holding and
///         funding indexes (docs/mechanics.md section 9). From them it gives the pool's claim on open
///         positions (docs/mechanics.md section 10) at the same cost for one position or ten thousand.
contract Market is INavSource, IFundingAccrual, AccessControl {
    using SafeCast for uint256;
    using SafeCast for int256;
    bytes32 public constant ADMIN_ROLE = keccak256("ADMIN");
    /// @notice The trading engine: adds and removes positions.
    bytes32 public constant ENGINE_ROLE = keccak256("ENGINE");

    uint256 private constant HOUR = 3600;

    /// @dev Invariants, per pair and side: oiUsd = sum(notional), qty = sum(qty),
    ///      costUsd = sum(floor(qty x entry)), holdingWeight = sum(notional x holdingIndex at
    ///      open), fundingWeight = sum(notional x fundingIndex at open), over open positions.
    struct Side {
        uint256 oiUsd;
        uint256 qty;
        uint256 costUsd;
        uint256 holdingWeight;
        int256 fundingWeight;
    }

    /// @dev A side in storage: three slots. Open interest and qty fit 128 bits; the holding
    ///      weight (notional x index) 192 and the funding weight 256. The cost basis is kept as
    ///      its gap below open interest, which fits 64 bits: each position's cost is
    ///      floor(qty x entry) with qty = floor(notional / entry), so it falls short of its
    ///      notional by less than entry / 1e18 + 1 (60,001 units for BTC at 60,000 USD). A
    ///      value wider than its field reverts (SafeCast); nothing wraps. Each field is stored
    ///      shifted off zero (see `_enc`), so a slot once written never returns to zero: the
    ///      first position on a side costs what the thousandth does (no zero-to-nonzero write,
    ///      no clearing refund). `initPair` writes the shifted zeros when a pair is listed.
    struct StoredSide {
        uint128 oiUsd;
        uint128 qty;
        uint192 holdingWeight;
        uint64 costGapUsd; // oiUsd - costUsd
        int256 fundingWeight;
    }

    /// @dev The indexes in storage: one slot, so an accrual is one write. The funding indexes
    ///      are stored shifted off zero (`_encInt`, written by `initPair`), so the slot is never
    ///      zero once the pair is listed. 72 bits hold a cumulative charge of 4,722 times the
    ///      notional: over 50,000 years of holding and 2,700 years of fully one-sided funding at
    ///      the default rates. Past that, accruing reverts (SafeCast); nothing wraps.
    struct StoredIndexes {
        uint72 holding;
        uint40 updatedAt;
        int72 fundingLong;
        int72 fundingShort;
    }

    struct Indexes {
        uint256 holding; // cumulative holding fee per unit of notional (WAD)
        int256 fundingLong; // cumulative funding owed per unit of long notional (WAD)
        int256 fundingShort;
        uint256 updatedAt;
    }

    PairRegistry public immutable pairs;
    PriceOracle public immutable oracle;

    /// @notice 0.001% of notional per hour, as a WAD fraction.
    uint64 public holdingRatePerHourWad = 1e13;
    /// @notice 0.01% per hour at full imbalance, as a WAD fraction.
    uint64 public fundingRatePerHourWad = 1e14;
    /// @dev Bit `pairId` is set while the pair has open interest on either side, so NAV reads
    ///      only the pairs it prices (ids stay below 128: `PairRegistry.MAX_PAIRS`). It shares
    ///      the rates' slot, which an accrual reads anyway: a pair's first open or last close
    ///      writes a warm, non-zero slot.
    uint128 private _pairsWithOi;

    mapping(uint256 pairId => StoredIndexes) private _indexes;
    mapping(uint256 pairId => StoredSide) private _longs;
    mapping(uint256 pairId => StoredSide) private _shorts;

    event IndexesUpdated(uint256 indexed pairId, uint256 holdingIndex, int256 fundingLong, int256 fundingShort, uint256 timestamp);
    event RatesUpdated(uint256 holdingRatePerHourWad, uint256 fundingRatePerHourWad);
    event PairInitialized(uint256 indexed pairId);

    constructor(PairRegistry pairs_, PriceOracle oracle_, address admin) {
        pairs = pairs_;
        oracle = oracle_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(ADMIN_ROLE, admin);
    }

    /// @notice New holding and funding rates, from now on: every pair with open interest
    ///         accrues at the old rates first.
    function setRates(uint256 holdingPerHourWad, uint256 fundingPerHourWad) external onlyRole(ADMIN_ROLE) {
        _accrueAll();
        holdingRatePerHourWad = holdingPerHourWad.toUint64();
        fundingRatePerHourWad = fundingPerHourWad.toUint64();
        emit RatesUpdated(holdingPerHourWad, fundingPerHourWad);
    }

    /// @notice Writes the pair's empty sides and funding indexes in their stored form, so its first trades pay no
    ///      zero-to-nonzero storage writes. Optional (gas only) and idempotent.
    function initPair(uint256 pairId) external onlyRole(ADMIN_ROLE) {
        if (pairId >= pairs.pairCount()) revert Errors.UnknownPair(pairId);
        _save(_longs[pairId], _load(_longs[pairId]));
        _save(_shorts[pairId], _load(_shorts[pairId]));
        StoredIndexes storage stored = _indexes[pairId];
        stored.fundingLong = _encInt(_decInt(stored.fundingLong)).toInt72();
        stored.fundingShort = _encInt(_decInt(stored.fundingShort)).toInt72();
        emit PairInitialized(pairId);
    }

    // ------------------------------------------------------------------ engine

    /// @notice Brings the pair's indexes to now (before any change of open interest).
    function accrue(uint256 pairId) external onlyRole(ENGINE_ROLE) returns (Indexes memory) {
        return _accrue(pairId);
    }

    /// @inheritdoc IFundingAccrual
    /// @dev The oracle calls it before a guard setting or a reference feed changes, so a
    ///      setting never applies backwards in time.
    function accrueAll() external {
        if (msg.sender != address(oracle)) _checkRole(ENGINE_ROLE);
        _accrueAll();
    }

    function _accrueAll() private {
        uint256 withOi = _pairsWithOi;
        for (uint256 pairId = 0; withOi >> pairId != 0; pairId++) {
            if ((withOi >> pairId) & 1 != 0) _accrue(pairId);
        }
    }

    function _accrue(uint256 pairId) private returns (Indexes memory idx) {
        idx = indexesNow(pairId);
        // same second: nothing accrued, nothing to write (timestamps compare exactly on purpose)
        // slither-disable-next-line incorrect-equality
        if (_indexes[pairId].updatedAt == idx.updatedAt) return idx;
        _indexes[pairId] = StoredIndexes({
            holding: idx.holding.toUint72(),
            updatedAt: idx.updatedAt.toUint40(),
            fundingLong: _encInt(idx.fundingLong).toInt72(),
            fundingShort: _encInt(idx.fundingShort).toInt72()
        });
        emit IndexesUpdated(pairId, idx.holding, idx.fundingLong, idx.fundingShort, idx.updatedAt);
    }

    /// @notice Adds a position to its side; returns the indexes it opens at.
    function addPosition(uint256 pairId, bool isLong, uint256 notionalUsd, uint256 qty, uint256 costUsd)
        external
        onlyRole(ENGINE_ROLE)
        returns (uint256 holdingIndex, int256 fundingIndex)
    {
        Indexes memory idx = _accrue(pairId);
        holdingIndex = idx.holding;
        fundingIndex = isLong ? idx.fundingLong : idx.fundingShort;
        StoredSide storage stored = isLong ? _longs[pairId] : _shorts[pairId];
        Side memory side = _load(stored);
        // the pair's first open interest: an exact test of two sums, on purpose
        // slither-disable-next-line incorrect-equality
        if (side.oiUsd == 0 && _otherSideOiUsd(pairId, isLong) == 0) _pairsWithOi |= uint128(1) << pairId;
        side.oiUsd += notionalUsd;
        side.qty += qty;
        side.costUsd += costUsd;
        side.holdingWeight += notionalUsd * holdingIndex;
        side.fundingWeight += int256(notionalUsd) * fundingIndex;
        _save(stored, side);
    }

    /// @notice Removes a position from its side; returns the indexes it closes at.
    function removePosition(
        uint256 pairId,
        bool isLong,
        uint256 notionalUsd,
        uint256 qty,
        uint256 costUsd,
        uint256 holdingIndexAtOpen,
        int256 fundingIndexAtOpen
    ) external onlyRole(ENGINE_ROLE) returns (uint256 holdingIndex, int256 fundingIndex) {
        Indexes memory idx = _accrue(pairId);
        StoredSide storage stored = isLong ? _longs[pairId] : _shorts[pairId];
        Side memory side = _load(stored);
        side.oiUsd -= notionalUsd;
        side.qty -= qty;
        side.costUsd -= costUsd;
        side.holdingWeight -= notionalUsd * holdingIndexAtOpen;
        side.fundingWeight -= int256(notionalUsd) * fundingIndexAtOpen;
        _save(stored, side);
        // the pair's last open interest gone: an exact test of two sums, on purpose
        // slither-disable-next-line incorrect-equality
        if (side.oiUsd == 0 && _otherSideOiUsd(pairId, isLong) == 0) _pairsWithOi &= ~(uint128(1) << pairId);
        return (idx.holding, isLong ? idx.fundingLong : idx.fundingShort);
    }

    // ------------------------------------------------------------------ views

    /// @notice The pair's indexes as they would be if accrued now.
    function indexesNow(uint256 pairId) public view returns (Indexes memory) {
        return _accrued(pairId, _storedIndexes(pairId));
    }

    /// @notice The pair's indexes as of its last accrual.
    function storedIndexes(uint256 pairId) external view returns (Indexes memory) {
        return _storedIndexes(pairId);
    }

    function _storedIndexes(uint256 pairId) private view returns (Indexes memory) {
        StoredIndexes memory stored = _indexes[pairId];
        return Indexes(stored.holding, _decInt(stored.fundingLong), _decInt(stored.fundingShort), stored.updatedAt);
    }

    /// @dev `idx` (the stored indexes) brought to now, in place.
    function _accrued(uint256 pairId, Indexes memory idx) private view returns (Indexes memory) {
        // a pair never accrued starts now; no elapsed time accrues nothing (exact on purpose)
        // slither-disable-next-line incorrect-equality
        uint256 elapsed = idx.updatedAt == 0 ? 0 : block.timestamp - idx.updatedAt;
        idx.updatedAt = block.timestamp;
        // slither-disable-next-line incorrect-equality
        if (elapsed == 0) return idx;
        idx.holding += holdingRatePerHourWad * elapsed / HOUR;
        uint256 longOi = _dec(_longs[pairId].oiUsd);
        uint256 shortOi = _dec(_shorts[pairId].oiUsd);
        // balanced open interest pays no funding: an exact comparison of two sums
        // slither-disable-next-line incorrect-equality
        if (longOi == shortOi) return idx;
        // rate = fundingRate x (long - short) / max(long, short); the heavier side pays it,
        // the lighter side receives it, the pool keeps the difference
        uint256 heavier = Math.max(longOi, shortOi);
        uint256 imbalance = heavier - Math.min(longOi, shortOi);
        int256 step = int256(Math.mulDiv(fundingRatePerHourWad * elapsed, imbalance, HOUR * heavier));
        // the lighter side receives only for the time the pair's price was settled
        // (docs/mechanics.md section 9): usable for liquidation, with the triggers run at it.
        // Otherwise the heavier side may be past paying, and the pool must not pay out what it
        // cannot collect.
        uint256 settledElapsed = _settledElapsed(pairId, block.timestamp - elapsed);
        // settled throughout (the usual case) or not at all needs no second division (exact
        // comparisons on purpose)
        int256 receipt = 0;
        // slither-disable-next-line incorrect-equality
        if (settledElapsed == elapsed) {
            receipt = step;
        } else if (settledElapsed != 0) {
            receipt = int256(Math.mulDiv(fundingRatePerHourWad * settledElapsed, imbalance, HOUR * heavier));
        }
        if (longOi > shortOi) {
            idx.fundingLong += step;
            idx.fundingShort -= receipt;
        } else {
            idx.fundingShort += step;
            idx.fundingLong -= receipt;
        }
        return idx;
    }

    /// @dev The seconds from `since` to now during which the pair's price was settled. Every
    ///      price the engine applies is preceded by an accrual, so between the last accrual and
    ///      now the pair has had one keeper price at most: its settled window is all.
    function _settledElapsed(uint256 pairId, uint256 since) private view returns (uint256) {
        uint256 settledUntil = oracle.settledUntil(pairId); // 0: not settled
        if (settledUntil <= since) return 0;
        return Math.min(block.timestamp, settledUntil) - since;
    }

    function side(uint256 pairId, bool isLong) external view returns (Side memory) {
        return _load(isLong ? _longs[pairId] : _shorts[pairId]);
    }

    function sideOiUsd(uint256 pairId, bool isLong) external view returns (uint256) {
        return _dec(isLong ? _longs[pairId].oiUsd : _shorts[pairId].oiUsd);
    }

    /// @inheritdoc INavSource
    /// @dev Per side at the last keeper price: holding owed + funding owed - unrealized pnl,
    ///      where pnl = qty x price - cost for longs and cost - qty x price for shorts.
    function poolClaimUsd() external view returns (int256 claimUsd) {
        (claimUsd,) = _poolClaimsUsd(false);
    }

    /// @inheritdoc INavSource
    function poolClaimsUsd() external view returns (int256 claimUsd, int256 redeemClaimUsd) {
        return _poolClaimsUsd(false);
    }

    /// @inheritdoc INavSource
    function settledPoolClaimsUsd() external view returns (int256 claimUsd, int256 redeemClaimUsd) {
        return _poolClaimsUsd(true);
    }

    /// @inheritdoc INavSource
    function requireSettledPrices() external view {
        _poolClaimsUsd(true);
    }

    /// @dev One pass over the pairs with open interest; with `settled`, a price LPs may not be
    ///      priced at reverts (`PriceOracle.settledMarkPrice`). Both claims count what the
    ///      sides owe the pool; `redeemClaimUsd` leaves out what a side came to owe since the
    ///      pair's last accrual (its last price), which no trigger has yet checked against the
    ///      margins (docs/mechanics.md section 10).
    function _poolClaimsUsd(bool settled) private view returns (int256 claimUsd, int256 redeemClaimUsd) {
        uint256 withOi = _pairsWithOi;
        for (uint256 pairId = 0; withOi >> pairId != 0; pairId++) {
            if ((withOi >> pairId) & 1 == 0) continue;
            // NAV marks at the last keeper price; whether LPs may use it is checked where it matters
            uint256 price;
            if (settled) price = oracle.settledMarkPrice(pairId);
            else price = oracle.markPrice(pairId);
            Indexes memory last = _storedIndexes(pairId);
            Indexes memory idx = _accrued(pairId, Indexes(last.holding, last.fundingLong, last.fundingShort, last.updatedAt));
            (int256 claim, int256 redeemClaim) = _sideClaims(_longs[pairId], true, price, last, idx);
            claimUsd += claim;
            redeemClaimUsd += redeemClaim;
            (claim, redeemClaim) = _sideClaims(_shorts[pairId], false, price, last, idx);
            claimUsd += claim;
            redeemClaimUsd += redeemClaim;
        }
    }

    /// @dev A side's contribution to the two claims: fees now (deposits), or fees now less what
    ///      the side came to owe the pool since the last accrual, when it came to owe more
    ///      (withdrawals); less its traders' unrealized pnl in both.
    function _sideClaims(StoredSide storage s, bool isLong, uint256 price, Indexes memory last, Indexes memory idx)
        private
        view
        returns (int256 claimUsd, int256 redeemClaimUsd)
    {
        uint256 oiUsd = _dec(s.oiUsd);
        // an empty side adds nothing: an exact test of a sum, on purpose
        // slither-disable-next-line incorrect-equality
        if (oiUsd == 0) return (0, 0);
        int256 fundingIndex = isLong ? idx.fundingLong : idx.fundingShort;
        claimUsd = _sideFees(s, oiUsd, idx.holding, fundingIndex) - _sidePnl(s, oiUsd, isLong, price);
        // what the side came to owe since the last accrual, from the indexes' steps since
        int256 fundingStep = fundingIndex - (isLong ? last.fundingLong : last.fundingShort);
        int256 sinceUsd;
        // unchecked: open interest fits 128 bits and the indexes 72 (Side and StoredIndexes),
        // so each product fits 201 bits; the holding index never falls (idx >= last)
        unchecked {
            sinceUsd = int256(oiUsd * (idx.holding - last.holding) / WAD)
                + _floorDiv(int256(oiUsd) * fundingStep, int256(WAD));
        }
        redeemClaimUsd = sinceUsd > 0 ? claimUsd - sinceUsd : claimUsd;
    }

    /// @dev A side's unrealized pnl at `price`: qty x price - cost for longs, the reverse for shorts.
    function _sidePnl(StoredSide storage s, uint256 oiUsd, bool isLong, uint256 price) private view returns (int256) {
        int256 value = int256(Math.mulDiv(_dec(s.qty), price, WAD));
        int256 cost = int256(oiUsd - _dec(s.costGapUsd));
        return isLong ? value - cost : cost - value;
    }

    /// @dev What a side owes the pool in holding and funding at the given indexes (negative:
    ///      the pool owes), rounded down.
    function _sideFees(StoredSide storage s, uint256 oiUsd, uint256 holdingIndex, int256 fundingIndex)
        private
        view
        returns (int256)
    {
        int256 holding = int256((oiUsd * holdingIndex - _dec(s.holdingWeight)) / WAD);
        int256 funding = _floorDiv(int256(oiUsd) * fundingIndex - _decInt(s.fundingWeight), int256(WAD));
        return holding + funding;
    }

    function _otherSideOiUsd(uint256 pairId, bool isLong) private view returns (uint256) {
        return _dec(isLong ? _shorts[pairId].oiUsd : _longs[pairId].oiUsd);
    }

    function _load(StoredSide storage s) private view returns (Side memory out) {
        out.oiUsd = _dec(s.oiUsd);
        out.qty = _dec(s.qty);
        out.costUsd = out.oiUsd - _dec(s.costGapUsd);
        out.holdingWeight = _dec(s.holdingWeight);
        out.fundingWeight = _decInt(s.fundingWeight);
    }

    function _save(StoredSide storage s, Side memory side) private {
        if (side.costUsd > side.oiUsd) revert Errors.CostAboveNotional(side.costUsd, side.oiUsd);
        s.oiUsd = _enc(side.oiUsd).toUint128();
        s.qty = _enc(side.qty).toUint128();
        s.holdingWeight = _enc(side.holdingWeight).toUint192();
        s.costGapUsd = _enc(side.oiUsd - side.costUsd).toUint64();
        s.fundingWeight = _encInt(side.fundingWeight);
    }

    /// @dev The stored form of an unsigned sum: value + 1 (0 is left for "never written").
    function _enc(uint256 value) private pure returns (uint256) {
        return value + 1;
    }

    function _dec(uint256 stored) private pure returns (uint256) {
        return stored == 0 ? 0 : stored - 1;
    }

    /// @dev The stored form of a signed sum: value + 1 when >= 0, value itself when negative,
    ///      so no value is stored as 0.
    function _encInt(int256 value) private pure returns (int256) {
        return value >= 0 ? value + 1 : value;
    }

    function _decInt(int256 stored) private pure returns (int256) {
        return stored > 0 ? stored - 1 : stored;
    }

    /// @dev a / b rounded toward negative infinity for b > 0 (Solidity's `/` rounds toward zero).
    ///      Unchecked: every caller passes |a| below 2^202 (a notional of 128 bits times an
    ///      index of 72, less a weight of the same size) and b = WAD.
    function _floorDiv(int256 a, int256 b) private pure returns (int256) {
        unchecked {
            return a >= 0 ? a / b : -((-a + b - 1) / b);
        }
    }
}
