// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Metadata} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Metadata.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";

import {IAlpPool} from "../interfaces/IAlpPool.sol";
import {INavSource} from "../interfaces/INavSource.sol";
import {IAssetPrices} from "../interfaces/IAssetPrices.sol";
import {AlpToken} from "../tokens/AlpToken.sol";
import {Errors} from "../errors/Errors.sol";
import {Units, WAD, BPS} from "../libraries/Units.sol";

/// @title AlpPool
/// @notice The ALP liquidity pool (docs/mechanics.md section 10). Holds the LPs'
///         basket (the payout stablecoin first, then any listed assets), mints and burns ALP at
///         NAV for any basket asset with a fee that depends on the asset's distance from its
///         target weight, and keeps the reserve that guarantees every open position's capped
///         profit can be paid in the payout stablecoin.
/// @dev Rounding is always in the pool's favour: ALP out and collateral out round down.
///      ALP out and collateral out are computed from the exact NAV / supply fraction, not from
///      the rounded `alpPrice()`, so one floor is taken per operation.
contract AlpPool is IAlpPool, AccessControl, Pausable, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;
    using SafeCast for uint256;

    bytes32 public constant ADMIN_ROLE = keccak256("ADMIN");
    /// @notice The trading engine: moves the reserve as positions open and close.
    bytes32 public constant TRADING_ROLE = keccak256("TRADING");

    IERC20 public immutable collateral;
    AlpToken public immutable alp;
    /// @notice Multiplier from collateral token units to 18-decimal USD.
    uint256 public immutable tokenToUsdScale;

    /// @notice ALP (base units) the first deposit locks at `DEAD_ADDRESS` forever, so the
    ///         supply never returns to dust and its price cannot be inflated against the next
    ///         depositor (Uniswap v2's MINIMUM_LIQUIDITY).
    uint256 public constant MINIMUM_LIQUIDITY = 1_000;
    address public constant DEAD_ADDRESS = 0x000000000000000000000000000000000000dEaD;

    /// @inheritdoc IAlpPool
    uint256 public poolBalance;
    /// @inheritdoc IAlpPool
    uint256 public reserveUsd;

    // the five settings share one slot
    /// @notice The deposit fee when the deposit leaves its asset's distance from target unchanged.
    uint16 public mintFeeBps = 25;
    /// @notice The withdrawal fee when the withdrawal leaves its asset's distance from target unchanged.
    uint16 public burnFeeBps = 25;
    uint64 public cooldownSeconds = 48 hours;
    /// @notice Reserve may use at most this share of the pool balance (80%).
    uint16 public maxReserveBps = 8_000;
    /// @notice The USD of an action that moves its asset toward the target pays the base fee
    ///         less this, the USD that moves it away the base plus this (docs/mechanics.md section 10
    ///         section 6); never below 0 or above 100% in all.
    uint16 public feeSpreadBps = 5;

    /// @notice Open positions' contribution to NAV; zero address until trading is wired in.
    INavSource public navSource;

    /// @notice A basket asset's `priceId` that values it at exactly 1 USD per token (the payout
    ///         stablecoin as the engine values it; a one-asset pool needs no oracle).
    uint16 public constant FACE_VALUE = type(uint16).max;
    uint256 public constant MAX_BASKET_ASSETS = 8;

    /// @dev One slot per asset.
    struct Asset {
        address token;
        uint8 decimals;
        uint16 targetBps;
        uint16 priceId;
    }

    /// @dev Listing order; index 0 is the payout stablecoin (`collateral`), whose holdings are
    ///      `poolBalance`.
    Asset[] private _assets;
    mapping(address token => uint256) private _indexPlusOne;
    /// @dev Holdings of the assets after the first, booked (never read from balanceOf).
    mapping(address token => uint256) private _holdings;
    /// @notice The oracle basket assets with a price id are valued at.
    IAssetPrices public priceSource;

    constructor(IERC20 collateral_, AlpToken alp_, address admin) {
        if (address(collateral_) == address(0) || address(alp_) == address(0) || admin == address(0)) {
            revert Errors.ZeroAddress();
        }
        uint8 decimals = IERC20Metadata(address(collateral_)).decimals();
        if (decimals > 18) revert Errors.UnsupportedDecimals(decimals);
        collateral = collateral_;
        alp = alp_;
        tokenToUsdScale = Units.scaleFor(decimals);
        _assets.push(Asset(address(collateral_), decimals, uint16(BPS), FACE_VALUE));
        _indexPlusOne[address(collateral_)] = 1;
        emit AssetListed(address(collateral_), 0, decimals, FACE_VALUE);
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(ADMIN_ROLE, admin);
    }

    // ------------------------------------------------------------------ LP actions

    /// @dev A deposit's figures, in memory (the stack holds too few).
    struct DepositQuote {
        uint256 amountUsd;
        uint256 netUsdTimesBps;
        uint256 basketUsd;
        int256 claimUsd;
        uint256 supply;
        uint256 locked;
    }

    /// @inheritdoc IAlpPool
    function deposit(address asset, uint256 amount, uint256 minAlpOut)
        external
        nonReentrant
        whenNotPaused
        returns (uint256 alpOut)
    {
        DepositQuote memory q;
        (q, alpOut) = _quoteDeposit(asset, amount);
        if (alpOut < minAlpOut) revert Errors.InsufficientAlpOut(alpOut, minAlpOut);

        // take the asset (the fee stays in the basket with the rest); a token that arrives
        // short is refused (the payout token is trusted as the engine trusts it)
        uint256 holdingsAfter = _takeIn(asset, amount);

        // mint, locking the holder's ALP for the cooldown
        uint256 unlocksAt = block.timestamp + cooldownSeconds;
        if (q.locked != 0) alp.mint(DEAD_ADDRESS, q.locked, type(uint256).max);
        alp.mint(msg.sender, alpOut, unlocksAt);

        emit Deposit(
            msg.sender,
            asset,
            amount,
            q.amountUsd,
            alpOut,
            (q.amountUsd * BPS - q.netUsdTimesBps) / BPS,
            unlocksAt,
            holdingsAfter,
            _navFloorZero(q.claimUsd, q.basketUsd + q.amountUsd),
            q.supply + q.locked + alpOut
        );
    }

    /// @dev ALP out of a deposit at NAV per ALP (1 USD while the supply is zero), less the
    ///      dynamic mint fee (kept exact, times BPS); the first deposit locks MINIMUM_LIQUIDITY.
    ///      The basket at the higher prices, the asset in at the lower (GMX v1's getMaxPrice /
    ///      getMinPrice): both in the pool's favour.
    function _quoteDeposit(address asset, uint256 amount) private view returns (DepositQuote memory q, uint256 alpOut) {
        if (amount == 0) revert Errors.ZeroAmount();
        uint256 index = _indexOf(asset);
        Asset memory a = _assets[index];
        uint256 scale = Units.scaleFor(a.decimals);
        uint256 maxAmount = type(uint256).max / (scale * BPS);
        if (amount > maxAmount) revert Errors.AmountTooLarge(amount, maxAmount);
        (q.claimUsd,) = _settledClaimsUsd();
        uint256 assetUsd;
        uint256 priceIn;
        (q.basketUsd, assetUsd, priceIn) = _basketUsd(index, true);
        // and at its price: the fee arithmetic multiplies its USD by up to BPS
        maxAmount = Math.mulDiv(type(uint256).max / BPS, WAD, scale * priceIn);
        if (amount > maxAmount) revert Errors.AmountTooLarge(amount, maxAmount);
        q.amountUsd = _valueUsd(amount, scale, priceIn);
        q.supply = alp.totalSupply();
        q.netUsdTimesBps = _netTimesBps(q.amountUsd, assetUsd, q.basketUsd, a.targetBps, true, mintFeeBps);
        if (q.supply == 0) {
            alpOut = q.netUsdTimesBps / BPS;
            q.locked = MINIMUM_LIQUIDITY;
            alpOut = alpOut > q.locked ? alpOut - q.locked : 0;
        } else {
            uint256 navUsd = _solventNavUsd(q.claimUsd, q.basketUsd, q.supply);
            alpOut = Math.mulDiv(q.netUsdTimesBps, q.supply, navUsd * BPS);
        }
        if (alpOut == 0) revert Errors.AmountTooSmall(amount);
    }

    /// @dev A withdrawal's figures, in memory.
    struct WithdrawQuote {
        uint256 index;
        uint256 basketUsd;
        int256 claimUsd;
        uint256 supply;
        uint256 feeUsd;
        uint256 paidUsd;
    }

    /// @inheritdoc IAlpPool
    function withdraw(uint256 alpAmount, address asset, uint256 minOut)
        external
        nonReentrant
        whenNotPaused
        returns (uint256 amountOut)
    {
        WithdrawQuote memory q;
        (q, amountOut) = _quoteWithdraw(msg.sender, alpAmount, asset);
        if (amountOut < minOut) revert Errors.InsufficientOutput(amountOut, minOut);

        // the basket must still hold what it owes in the asset; then book, burn, pay
        uint256 holdingsAfter;
        if (q.index == 0) {
            holdingsAfter = poolBalance = _balanceAfterWithdrawal(amountOut);
        } else {
            uint256 holding = _holdings[asset];
            if (amountOut > holding) revert Errors.BasketHoldingsShort(asset, holding, amountOut);
            holdingsAfter = _holdings[asset] = holding - amountOut;
        }
        alp.burn(msg.sender, alpAmount);
        IERC20(asset).safeTransfer(msg.sender, amountOut);

        emit Withdraw(
            msg.sender,
            asset,
            alpAmount,
            amountOut,
            q.feeUsd,
            holdingsAfter,
            _navAfterPayingUsd(q.claimUsd, q.basketUsd, q.paidUsd),
            q.supply - alpAmount
        );
    }

    /// @dev The asset out of a withdrawal at the redemption NAV per ALP, less the dynamic burn
    ///      fee: the basket at the lower prices, the asset out at the higher.
    function _quoteWithdraw(address holder, uint256 alpAmount, address asset)
        private
        view
        returns (WithdrawQuote memory q, uint256 amountOut)
    {
        if (alpAmount == 0) revert Errors.ZeroAmount();
        q.index = _indexOf(asset);
        uint256 held = alp.balanceOf(holder);
        if (held < alpAmount) revert Errors.InsufficientAlpBalance(holder, held, alpAmount);
        uint256 unlocksAt = alp.unlocksAt(holder);
        if (block.timestamp < unlocksAt) revert Errors.CooldownActive(holder, unlocksAt);
        (, q.claimUsd) = _settledClaimsUsd();
        uint256 assetUsd;
        uint256 priceOut;
        (q.basketUsd, assetUsd, priceOut) = _basketUsd(q.index, false);
        q.supply = alp.totalSupply();
        uint256 navUsd = _solventNavUsd(q.claimUsd, q.basketUsd, q.supply);
        Asset memory a = _assets[q.index];
        uint256 outUsd;
        (outUsd, q.feeUsd) = _withdrawUsd(alpAmount, navUsd, q.supply, assetUsd, q.basketUsd, a.targetBps);
        uint256 scale = Units.scaleFor(a.decimals);
        amountOut = _tokensForUsd(outUsd, scale, priceOut);
        if (amountOut == 0) revert Errors.AmountTooSmall(alpAmount);
        q.paidUsd = _valueUsd(amountOut, scale, priceOut);
    }

    /// @dev The pool balance after paying `amountOut`, reverting unless it still covers the
    ///      reserve (reserve <= 80% of the balance).
    function _balanceAfterWithdrawal(uint256 amountOut) private view returns (uint256 balanceAfter) {
        uint256 balance = poolBalance;
        balanceAfter = balance > amountOut ? balance - amountOut : 0;
        uint256 balanceAfterUsd = Units.tokenToUsd(balanceAfter, tokenToUsdScale);
        if (amountOut > balance || balanceAfterUsd * maxReserveBps < reserveUsd * BPS) {
            revert Errors.ReserveNotCovered(balanceAfterUsd, reserveUsd);
        }
    }

    // ------------------------------------------------------------------ views

    /// @inheritdoc IAlpPool
    function nav() public view returns (uint256) {
        int256 claimUsd = address(navSource) == address(0) ? int256(0) : navSource.poolClaimUsd();
        return _navFloorZero(claimUsd, _markBasketUsd());
    }

    /// @inheritdoc IAlpPool
    function redeemNav() public view returns (uint256) {
        (, int256 redeemClaimUsd) = _claimsUsd();
        return _navFloorZero(redeemClaimUsd, _markBasketUsd());
    }

    /// @notice The basket in listing order: tokens, decimals, target weights (bp), price ids
    ///         and holdings (token units).
    function basket()
        external
        view
        returns (
            address[] memory tokens,
            uint256[] memory decimals,
            uint256[] memory targetsBps,
            uint256[] memory priceIds,
            uint256[] memory holdings
        )
    {
        uint256 n = _assets.length;
        tokens = new address[](n);
        decimals = new uint256[](n);
        targetsBps = new uint256[](n);
        priceIds = new uint256[](n);
        holdings = new uint256[](n);
        for (uint256 j = 0; j < n; ++j) {
            Asset memory x = _assets[j];
            (tokens[j], decimals[j], targetsBps[j], priceIds[j]) = (x.token, x.decimals, x.targetBps, x.priceId);
            holdings[j] = _holdingOf(j, x.token);
        }
    }

    /// @notice The basket's holdings of `asset` (token units).
    function holdingsOf(address asset) external view returns (uint256) {
        return _holdingOf(_indexOf(asset), asset);
    }

    /// @inheritdoc IAlpPool
    function alpPrice() external view returns (uint256) {
        return _perAlp(nav());
    }

    /// @inheritdoc IAlpPool
    function redeemAlpPrice() external view returns (uint256) {
        return _perAlp(redeemNav());
    }

    function _perAlp(uint256 navUsd) private view returns (uint256) {
        uint256 supply = alp.totalSupply();
        if (supply == 0) return WAD;
        return Math.mulDiv(navUsd, WAD, supply);
    }

    /// @notice Reserve the pool can still take on: 80% of its balance less the reserve.
    function reserveCapacityUsd() external view returns (uint256) {
        uint256 maxReserve = Units.tokenToUsd(poolBalance, tokenToUsdScale) * maxReserveBps / BPS;
        return maxReserve > reserveUsd ? maxReserve - reserveUsd : 0;
    }

    // ------------------------------------------------------------------ trading hooks

    // One call per open and per close: the reserve moves and the collateral the engine has
    // just transferred in is booked together, with one event.

    /// @notice A position opened: adds its maximum profit to the reserve, and books `tokensIn`
    ///         collateral the trading engine has just transferred in (the pool's share of the
    ///         open fee).
    function increaseReserve(uint256 amountUsd, uint256 tokensIn) external onlyRole(TRADING_ROLE) {
        reserveUsd += amountUsd;
        if (tokensIn != 0) poolBalance += tokensIn;
        emit ReserveUpdated(reserveUsd, poolBalance);
    }

    /// @notice A position closed: releases its maximum profit from the reserve, and books
    ///         `tokensIn` collateral the trading engine has just transferred in (a losing
    ///         trader's margin, the pool's share of the close fee).
    function decreaseReserve(uint256 amountUsd, uint256 tokensIn) external onlyRole(TRADING_ROLE) {
        reserveUsd -= amountUsd;
        if (tokensIn != 0) poolBalance += tokensIn;
        emit ReserveUpdated(reserveUsd, poolBalance);
    }

    /// @notice Pays `amount` collateral out of the pool (a winning trader's profit).
    function payTokens(address to, uint256 amount) external onlyRole(TRADING_ROLE) {
        poolBalance -= amount;
        collateral.safeTransfer(to, amount);
        emit PoolBalanceChanged(-int256(amount), poolBalance);
    }

    // ------------------------------------------------------------------ admin

    function setSettings(uint256 mintFeeBps_, uint256 burnFeeBps_, uint256 cooldownSeconds_, uint256 maxReserveBps_)
        external
        onlyRole(ADMIN_ROLE)
    {
        if (mintFeeBps_ >= BPS) revert Errors.InvalidBps(mintFeeBps_);
        if (burnFeeBps_ >= BPS) revert Errors.InvalidBps(burnFeeBps_);
        if (maxReserveBps_ > BPS) revert Errors.InvalidBps(maxReserveBps_);
        mintFeeBps = uint16(mintFeeBps_);
        burnFeeBps = uint16(burnFeeBps_);
        cooldownSeconds = cooldownSeconds_.toUint64();
        maxReserveBps = uint16(maxReserveBps_);
        emit PoolSettingsUpdated(mintFeeBps_, burnFeeBps_, cooldownSeconds_, maxReserveBps_);
    }

    /// @notice Sets the dynamic fee's spread around the mint and burn fees.
    function setFeeSpread(uint256 feeSpreadBps_) external onlyRole(ADMIN_ROLE) {
        if (feeSpreadBps_ >= BPS) revert Errors.InvalidBps(feeSpreadBps_);
        feeSpreadBps = uint16(feeSpreadBps_);
        emit FeeSpreadUpdated(feeSpreadBps_);
    }

    /// @notice Adds `token` to the basket with a target of 0 (`setTargets` next), valued at
    ///         `priceId` of the price source (FACE_VALUE: 1 USD per token).
    function listAsset(address token, uint256 priceId) external onlyRole(ADMIN_ROLE) {
        if (token == address(0)) revert Errors.ZeroAddress();
        if (_indexPlusOne[token] != 0) revert Errors.AssetAlreadyListed(token);
        uint256 n = _assets.length;
        if (n >= MAX_BASKET_ASSETS) revert Errors.TooManyAssets(MAX_BASKET_ASSETS);
        _checkPriceId(priceId);
        uint8 decimals = IERC20Metadata(token).decimals();
        if (decimals > 18) revert Errors.UnsupportedDecimals(decimals);
        _assets.push(Asset(token, decimals, 0, uint16(priceId)));
        _indexPlusOne[token] = n + 1;
        emit AssetListed(token, n, decimals, priceId);
    }

    /// @notice Values listed `asset` at `priceId` of the price source from now on (FACE_VALUE:
    ///         1 USD per token), e.g. the payout stablecoin at its own feed, so a depeg is a price.
    function setPriceId(address asset, uint256 priceId) external onlyRole(ADMIN_ROLE) {
        uint256 index = _indexOf(asset);
        _checkPriceId(priceId);
        _assets[index].priceId = uint16(priceId);
        emit AssetPriceIdUpdated(asset, priceId);
    }

    /// @dev A price id the pool can read: FACE_VALUE, or an oracle id (0-255) once a price source is set.
    function _checkPriceId(uint256 priceId) private view {
        if (priceId == FACE_VALUE) return;
        if (priceId > type(uint8).max) revert Errors.InvalidPriceInput(priceId);
        if (address(priceSource) == address(0)) revert Errors.ZeroAddress();
    }

    /// @notice Sets every asset's target weight, in listing order; they sum to exactly 100%.
    function setTargets(uint256[] calldata targetsBps) external onlyRole(ADMIN_ROLE) {
        uint256 sum = 0;
        for (uint256 j = 0; j < targetsBps.length; ++j) {
            unchecked {
                uint256 next = sum + targetsBps[j];
                // a sum past uint256 is refused as the largest sum, not with a Panic
                if (next < sum) revert Errors.InvalidTargets(type(uint256).max);
                sum = next;
            }
        }
        if (targetsBps.length != _assets.length || sum != BPS) revert Errors.InvalidTargets(sum);
        for (uint256 j = 0; j < targetsBps.length; ++j) {
            _assets[j].targetBps = uint16(targetsBps[j]);
        }
        emit TargetsUpdated(targetsBps);
    }

    function setPriceSource(IAssetPrices priceSource_) external onlyRole(ADMIN_ROLE) {
        priceSource = priceSource_;
        emit PriceSourceUpdated(address(priceSource_));
    }

    function setNavSource(INavSource navSource_) external onlyRole(ADMIN_ROLE) {
        navSource = navSource_;
        emit NavSourceUpdated(address(navSource_));
    }

    function pause() external onlyRole(ADMIN_ROLE) {
        _pause();
    }

    function unpause() external onlyRole(ADMIN_ROLE) {
        _unpause();
    }

    // ------------------------------------------------------------------ internal

    /// @dev NAV = the basket's value + the pool's claim on open positions (docs/mechanics.md section 10).
    function _navUsd(int256 claimUsd, uint256 basketUsd) internal pure returns (int256) {
        return int256(basketUsd) + claimUsd;
    }

    /// @dev NAV, 0 when the claim exceeds the basket. A deposit or withdrawal moves no
    ///      position, so its event reports NAV with the claim and prices it priced at; a
    ///      deposit's `basketUsd` includes what it brought in.
    function _navFloorZero(int256 claimUsd, uint256 basketUsd) internal pure returns (uint256) {
        int256 navUsd = _navUsd(claimUsd, basketUsd);
        return navUsd > 0 ? uint256(navUsd) : 0;
    }

    /// @dev A withdrawal's NAV after: the basket before less what it paid (valued at the price
    ///      paid at), plus the claim; 0 when that is not positive. Signed: the asset out is valued
    ///      at the higher price, the basket's holdings of it at the lower.
    function _navAfterPayingUsd(int256 claimUsd, uint256 basketUsd, uint256 paidUsd) internal pure returns (uint256) {
        int256 navUsd = _navUsd(claimUsd, basketUsd) - int256(paidUsd);
        return navUsd > 0 ? uint256(navUsd) : 0;
    }

    /// @dev The open positions' claims (deposits', withdrawals') at the last prices.
    function _claimsUsd() internal view returns (int256 claimUsd, int256 redeemClaimUsd) {
        if (address(navSource) == address(0)) return (0, 0);
        return navSource.poolClaimsUsd();
    }

    /// @dev The open positions' claims (deposits', withdrawals'), in the same pass as the
    ///      check that every pair with open interest has a settled price.
    function _settledClaimsUsd() internal view returns (int256 claimUsd, int256 redeemClaimUsd) {
        if (address(navSource) == address(0)) return (0, 0);
        return navSource.settledPoolClaimsUsd();
    }

    function _solventNavUsd(int256 claimUsd, uint256 basketUsd, uint256 supply) internal pure returns (uint256) {
        int256 navUsd = _navUsd(claimUsd, basketUsd);
        if (navUsd <= 0) revert Errors.PoolInsolvent(navUsd, supply);
        return uint256(navUsd);
    }

    // ------------------------------------------------------------------ basket

    function _indexOf(address asset) private view returns (uint256) {
        if (asset == address(collateral)) return 0;
        uint256 indexPlusOne = _indexPlusOne[asset];
        if (indexPlusOne == 0) revert Errors.AssetNotInBasket(asset);
        return indexPlusOne - 1;
    }

    function _holdingOf(uint256 index, address token) private view returns (uint256) {
        return index == 0 ? poolBalance : _holdings[token];
    }

    /// @dev The basket's value for a deposit (every holding at its higher price) or a withdrawal
    ///      (at its lower), the value of asset `index`'s holdings among it, and the price the
    ///      action's own amount is valued at (the lower in, the higher out). Holdings of zero
    ///      read no price.
    function _basketUsd(uint256 index, bool isDeposit)
        private
        view
        returns (uint256 basketUsd, uint256 assetUsd, uint256 actionPrice)
    {
        uint256 n = _assets.length;
        for (uint256 j = 0; j < n; ++j) {
            Asset memory x = _assets[j];
            uint256 held = _holdingOf(j, x.token);
            if (held == 0 && j != index) continue;
            (uint256 low, uint256 high) = _priceBounds(x.priceId);
            uint256 valueUsd = _valueUsd(held, Units.scaleFor(x.decimals), isDeposit ? high : low);
            basketUsd += valueUsd;
            if (j == index) (assetUsd, actionPrice) = (valueUsd, isDeposit ? low : high);
        }
    }

    /// @dev The basket at the last keeper prices, unguarded (views only).
    function _markBasketUsd() private view returns (uint256 basketUsd) {
        uint256 n = _assets.length;
        for (uint256 j = 0; j < n; ++j) {
            Asset memory x = _assets[j];
            uint256 held = _holdingOf(j, x.token);
            if (held == 0) continue;
            uint256 price = x.priceId == FACE_VALUE ? WAD : priceSource.markPrice(x.priceId);
            basketUsd += _valueUsd(held, Units.scaleFor(x.decimals), price);
        }
    }

    function _priceBounds(uint16 priceId) private view returns (uint256 low, uint256 high) {
        if (priceId == FACE_VALUE) return (WAD, WAD);
        return priceSource.assetPriceBounds(priceId);
    }

    /// @dev Token units at an 18-decimal price -> USD, rounded down (exact at face value).
    function _valueUsd(uint256 amount, uint256 scale, uint256 price) private pure returns (uint256) {
        return price == WAD ? amount * scale : Math.mulDiv(amount * scale, price, WAD);
    }

    /// @dev USD -> token units at an 18-decimal price, rounded down (payouts).
    function _tokensForUsd(uint256 usd, uint256 scale, uint256 price) private pure returns (uint256) {
        return price == WAD ? usd / scale : Math.mulDiv(usd, WAD, price * scale);
    }

    /// @dev The spread in force: none for a one-asset basket's asset (its weight cannot move),
    ///      and never past 0 or 100% around `baseBps`.
    function _spreadBps(uint256 targetBps, uint256 baseBps) private view returns (uint256 spread) {
        if (targetBps == BPS) return 0;
        spread = feeSpreadBps;
        if (spread > baseBps) spread = baseBps;
        if (spread > BPS - baseBps) spread = BPS - baseBps;
    }

    /// @dev The USD of an action of `actionUsd` that moves its asset toward its target, rounded
    ///      down: with e = value x BPS - target x basket, a deposit moves e up by
    ///      (BPS - target) per USD, a withdrawal down (docs/mechanics.md section 10).
    function _towardUsd(uint256 assetUsd, uint256 basketUsd, uint256 targetBps, uint256 actionUsd, bool isDeposit)
        private
        pure
        returns (uint256)
    {
        uint256 valueTimesBps = assetUsd * BPS;
        uint256 targetTimesBps = targetBps * basketUsd;
        if (isDeposit ? valueTimesBps >= targetTimesBps : valueTimesBps <= targetTimesBps) return 0;
        uint256 distanceUsd =
            (isDeposit ? targetTimesBps - valueTimesBps : valueTimesBps - targetTimesBps) / (BPS - targetBps);
        return actionUsd < distanceUsd ? actionUsd : distanceUsd;
    }

    /// @dev A deposit's USD after the dynamic fee, times BPS (exact):
    ///      a x (BPS - base - spread) + 2 x spread x toward.
    function _netTimesBps(
        uint256 amountUsd,
        uint256 assetUsd,
        uint256 basketUsd,
        uint256 targetBps,
        bool isDeposit,
        uint256 baseBps
    ) private view returns (uint256) {
        uint256 spread = _spreadBps(targetBps, baseBps);
        uint256 toward = spread == 0 ? 0 : _towardUsd(assetUsd, basketUsd, targetBps, amountUsd, isDeposit);
        return amountUsd * (BPS - baseBps - spread) + 2 * spread * toward;
    }

    /// @dev A withdrawal's USD out and fee, each one floor of the exact fraction: the gross
    ///      alp x NAV / supply less the dynamic burn fee (its toward part judged on the gross,
    ///      rounded down: the pool's way).
    function _withdrawUsd(
        uint256 alpAmount,
        uint256 navUsd,
        uint256 supply,
        uint256 assetUsd,
        uint256 basketUsd,
        uint256 targetBps
    ) private view returns (uint256 outUsd, uint256 feeUsd) {
        uint256 baseBps = burnFeeBps;
        uint256 spread = _spreadBps(targetBps, baseBps);
        uint256 toward = spread == 0
            ? 0
            : _towardUsd(assetUsd, basketUsd, targetBps, Math.mulDiv(alpAmount, navUsd, supply), false);
        if (toward == 0) {
            outUsd = Math.mulDiv(alpAmount * (BPS - baseBps - spread), navUsd, supply * BPS);
            feeUsd = Math.mulDiv(alpAmount * (baseBps + spread), navUsd, supply * BPS);
        } else {
            // alp x nav stays far inside 256 bits (1e30 ALP x 1e36 USD x 1e4)
            uint256 rebate = 2 * spread * toward * supply;
            outUsd = (alpAmount * (BPS - baseBps - spread) * navUsd + rebate) / (supply * BPS);
            feeUsd = (alpAmount * (baseBps + spread) * navUsd - rebate) / (supply * BPS);
        }
    }

    /// @dev Takes `amount` of `asset` from the sender and books it; returns the holdings after.
    function _takeIn(address asset, uint256 amount) private returns (uint256) {
        if (asset == address(collateral)) {
            collateral.safeTransferFrom(msg.sender, address(this), amount);
            return poolBalance += amount;
        }
        IERC20 token = IERC20(asset);
        uint256 before = token.balanceOf(address(this));
        token.safeTransferFrom(msg.sender, address(this), amount);
        uint256 received = token.balanceOf(address(this)) - before;
        if (received != amount) revert Errors.FeeOnTransferToken(asset, amount, received);
        return _holdings[asset] += amount;
    }
}
