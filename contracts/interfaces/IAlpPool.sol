// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title IAlpPool
/// @notice The ALP liquidity pool (docs/mechanics.md section 10): LPs deposit the chain's stablecoin for
///         ALP and redeem ALP for it; traders' positions settle against it.
interface IAlpPool {
    /// @notice Emitted on every deposit, with the pool's full state after it.
    /// @param amountIn the asset received, in its token units
    /// @param amountUsd its value, at the lower of the keeper and reference prices
    /// @param feeUsd the mint fee kept in the pool (rounded down; the ALP out takes it exactly)
    /// @param assetHoldings the basket's holdings of the asset after
    /// @param navUsd the NAV after, at the deposit's prices: the basket before (each holding at
    ///        the higher of its keeper and reference prices) + `amountUsd` + the open positions'
    ///        claim it was priced with, 0 when not positive (a one-asset pool: the pool balance
    ///        after x its token scale + the claim)
    event Deposit(
        address indexed lp,
        address indexed asset,
        uint256 amountIn,
        uint256 amountUsd,
        uint256 alpOut,
        uint256 feeUsd,
        uint256 unlocksAt,
        uint256 assetHoldings,
        uint256 navUsd,
        uint256 alpSupply
    );

    /// @notice Emitted on every withdrawal, with the pool's full state after it.
    /// @param amountOut the asset paid, in its token units
    /// @param feeUsd the burn fee kept in the pool
    /// @param assetHoldings the basket's holdings of the asset after
    /// @param navUsd the redemption NAV after, at the withdrawal's prices: the basket before
    ///        (each holding at the lower of its keeper and reference prices) - `amountOut` valued
    ///        at the price it was paid at (the higher, rounded down) + the redemption claim, 0
    ///        when not positive (a one-asset pool: the pool balance after x its token scale +
    ///        the claim)
    event Withdraw(
        address indexed lp,
        address indexed asset,
        uint256 alpIn,
        uint256 amountOut,
        uint256 feeUsd,
        uint256 assetHoldings,
        uint256 navUsd,
        uint256 alpSupply
    );

    /// @notice Emitted when a position opens or closes: the reserve (sum of open positions'
    ///         maximum profit) and the pool balance after, which includes the collateral
    ///         trading booked with it (fee shares, a losing trader's margin).
    event ReserveUpdated(uint256 reserveUsd, uint256 poolBalance);

    /// @notice Emitted when the pool pays collateral out to trading (deltaTokens < 0): a
    ///         winning trader's profit, or a fee the margin could not cover.
    event PoolBalanceChanged(int256 deltaTokens, uint256 poolBalance);

    /// @notice Emitted when the admin changes a pool setting.
    event PoolSettingsUpdated(uint256 mintFeeBps, uint256 burnFeeBps, uint256 cooldownSeconds, uint256 maxReserveBps);

    /// @notice Emitted when an asset joins the basket (target 0 until `setTargets`).
    event AssetListed(address indexed asset, uint256 index, uint256 decimals, uint256 priceId);

    /// @notice Emitted when the basket's target weights change (one per asset, listing order).
    event TargetsUpdated(uint256[] targetsBps);

    /// @notice A listed asset is now valued at `priceId` (FACE_VALUE: 1 USD per token).
    event AssetPriceIdUpdated(address indexed asset, uint256 priceId);

    /// @notice Emitted when the dynamic fee's spread around the mint and burn fees changes.
    event FeeSpreadUpdated(uint256 feeSpreadBps);

    /// @notice Emitted when the admin sets the oracle the basket is priced at.
    event PriceSourceUpdated(address priceSource);

    /// @notice Emitted when the admin sets the source of open positions' NAV contribution.
    event NavSourceUpdated(address navSource);

    /// @notice Deposits `amount` collateral (token units) for ALP at the current ALP price,
    ///         less the mint fee, which stays in the pool. Starts the depositor's cooldown.
    ///         The first deposit (supply zero) locks MINIMUM_LIQUIDITY of its ALP at the dead
    ///         address.
    /// @return alpOut ALP minted (18 decimals)
    function deposit(address asset, uint256 amount, uint256 minAlpOut) external returns (uint256 alpOut);

    /// @notice Redeems `alpAmount` ALP for collateral at the redemption ALP price, less the
    ///         burn fee, which stays in the pool.
    /// @return amountOut collateral paid (token units)
    function withdraw(uint256 alpAmount, address asset, uint256 minOut) external returns (uint256 amountOut);

    /// @notice Pool balance plus the pool's claim on open positions, in 18-decimal USD: the
    ///         NAV deposits are priced at.
    function nav() external view returns (uint256);

    /// @notice NAV without the holding and funding owed to the pool (what it owes stays in):
    ///         the NAV withdrawals are priced at, never above `nav()`.
    function redeemNav() external view returns (uint256);

    /// @notice NAV per ALP in 18-decimal USD (deposits); 1 USD while the supply is zero.
    function alpPrice() external view returns (uint256);

    /// @notice Redemption NAV per ALP in 18-decimal USD (withdrawals); 1 USD while the
    ///         supply is zero.
    function redeemAlpPrice() external view returns (uint256);

    /// @notice Collateral held for LPs (token units), excluding trader margin in escrow.
    function poolBalance() external view returns (uint256);

    /// @notice Sum of open positions' maximum profit, in 18-decimal USD.
    function reserveUsd() external view returns (uint256);
}
