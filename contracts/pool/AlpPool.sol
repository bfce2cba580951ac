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
import {AlpToken} from "../tokens/AlpToken.sol";
import {Errors} from "../errors/Errors.sol";
import {Units, WAD, BPS} from "../libraries/Units.sol";

/// @title AlpPool
/// @notice The ALP liquidity pool (docs/mechanics.md section 10). Holds the LPs' collateral, mints and burns
///         ALP at NAV, and keeps the reserve that guarantees every open position's capped
///         profit can be paid.
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

    // the four settings share one slot
    uint16 public mintFeeBps = 25;
    uint16 public burnFeeBps = 25;
    uint64 public cooldownSeconds = 48 hours;
    /// @notice Reserve may use at most this share of the pool balance (80%).
    uint16 public maxReserveBps = 8_000;

    /// @notice Open positions' contribution to NAV; zero address until trading is wired in.
    INavSource public navSource;

    constructor(IERC20 collateral_, AlpToken alp_, address admin) {
        if (address(collateral_) == address(0) || address(alp_) == address(0) || admin == address(0)) {
            revert Errors.ZeroAddress();
        }
        uint8 decimals = IERC20Metadata(address(collateral_)).decimals();
        if (decimals > 18) revert Errors.UnsupportedDecimals(decimals);
        collateral = collateral_;
        alp = alp_;
        tokenToUsdScale = Units.scaleFor(decimals);
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(ADMIN_ROLE, admin);
    }

    // ------------------------------------------------------------------ LP actions

    /// @inheritdoc IAlpPool
    function deposit(uint256 amount, uint256 minAlpOut)
        external
        nonReentrant
        whenNotPaused
        returns (uint256 alpOut)
    {
        if (amount == 0) revert Errors.ZeroAmount();
        uint256 maxAmount = type(uint256).max / (tokenToUsdScale * BPS);
        if (amount > maxAmount) revert Errors.AmountTooLarge(amount, maxAmount);
        (int256 claimUsd,) = _settledClaimsUsd();
        uint256 amountUsd = Units.tokenToUsd(amount, tokenToUsdScale);
        uint256 supply = alp.totalSupply();

        // 1. ALP out at NAV per ALP (1 USD while the supply is zero), less the mint fee; the
        //    first deposit leaves MINIMUM_LIQUIDITY of it locked at the dead address
        uint256 netUsdTimesBps = amountUsd * (BPS - mintFeeBps);
        uint256 locked = 0;
        if (supply == 0) {
            alpOut = netUsdTimesBps / BPS;
            locked = MINIMUM_LIQUIDITY;
            alpOut = alpOut > locked ? alpOut - locked : 0;
        } else {
            uint256 navUsd = _solventNavUsd(claimUsd, supply);
            alpOut = Math.mulDiv(netUsdTimesBps, supply, navUsd * BPS);
        }
        if (alpOut == 0) revert Errors.AmountTooSmall(amount);
        if (alpOut < minAlpOut) revert Errors.InsufficientAlpOut(alpOut, minAlpOut);

        // 2. take the collateral (the fee stays in the pool with the rest)
        collateral.safeTransferFrom(msg.sender, address(this), amount);
        poolBalance += amount;

        // 3. mint, locking the holder's ALP for the cooldown
        uint256 unlocksAt = block.timestamp + cooldownSeconds;
        if (locked != 0) alp.mint(DEAD_ADDRESS, locked, type(uint256).max);
        alp.mint(msg.sender, alpOut, unlocksAt);

        emit Deposit(
            msg.sender,
            amount,
            alpOut,
            amountUsd * mintFeeBps / BPS,
            unlocksAt,
            poolBalance,
            _navFloorZero(claimUsd),
            supply + locked + alpOut
        );
    }

    /// @inheritdoc IAlpPool
    function withdraw(uint256 alpAmount, uint256 minOut)
        external
        nonReentrant
        whenNotPaused
        returns (uint256 amountOut)
    {
        if (alpAmount == 0) revert Errors.ZeroAmount();
        uint256 held = alp.balanceOf(msg.sender);
        if (held < alpAmount) revert Errors.InsufficientAlpBalance(msg.sender, held, alpAmount);
        uint256 unlocksAt = alp.unlocksAt(msg.sender);
        if (block.timestamp < unlocksAt) revert Errors.CooldownActive(msg.sender, unlocksAt);
        (, int256 claimUsd) = _settledClaimsUsd();

        // 1. collateral out at the redemption NAV per ALP (fees counted up to each pair's last
        //    price), less the burn fee (rounded down)
        uint256 supply = alp.totalSupply();
        uint256 navUsd = _solventNavUsd(claimUsd, supply);
        uint256 outUsd = Math.mulDiv(alpAmount * (BPS - burnFeeBps), navUsd, supply * BPS);
        amountOut = Units.usdToTokenDown(outUsd, tokenToUsdScale);
        if (amountOut == 0) revert Errors.AmountTooSmall(alpAmount);
        if (amountOut < minOut) revert Errors.InsufficientOutput(amountOut, minOut);

        // 2. the pool must still cover its reserve afterwards; 3. book, burn, then pay
        poolBalance = _balanceAfterWithdrawal(amountOut);
        alp.burn(msg.sender, alpAmount);
        collateral.safeTransfer(msg.sender, amountOut);

        emit Withdraw(
            msg.sender,
            alpAmount,
            amountOut,
            Math.mulDiv(alpAmount * burnFeeBps, navUsd, supply * BPS),
            poolBalance,
            _navFloorZero(claimUsd),
            supply - alpAmount
        );
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
        return _navFloorZero(claimUsd);
    }

    /// @inheritdoc IAlpPool
    function redeemNav() public view returns (uint256) {
        (, int256 redeemClaimUsd) = _claimsUsd();
        return _navFloorZero(redeemClaimUsd);
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

    /// @dev NAV = pool balance + the pool's claim on open positions (docs/mechanics.md section 10).
    function _navUsd(int256 claimUsd) internal view returns (int256) {
        return int256(Units.tokenToUsd(poolBalance, tokenToUsdScale)) + claimUsd;
    }

    /// @dev NAV, 0 when the claim exceeds the balance. A deposit or withdrawal moves no
    ///      position, so its event reports NAV with the claim it priced at.
    function _navFloorZero(int256 claimUsd) internal view returns (uint256) {
        int256 navUsd = _navUsd(claimUsd);
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

    function _solventNavUsd(int256 claimUsd, uint256 supply) internal view returns (uint256) {
        int256 navUsd = _navUsd(claimUsd);
        if (navUsd <= 0) revert Errors.PoolInsolvent(navUsd, supply);
        return uint256(navUsd);
    }
}
