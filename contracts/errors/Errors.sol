// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title Errors
/// @notice Every refusal of the system, as a custom error with its arguments. The Python
///         client turns each into an exception of the same name carrying these fields.
library Errors {
    // ----- common -----
    /// @notice Thrown when an amount that must be positive is zero.
    error ZeroAmount();
    /// @notice Thrown when an address that must be set is the zero address.
    error ZeroAddress();
    /// @notice Thrown when an amount is so small that its output rounds to zero.
    error AmountTooSmall(uint256 amount);
    /// @notice Thrown when an amount is too large for the pool's arithmetic.
    error AmountTooLarge(uint256 amount, uint256 max);
    /// @notice Thrown when a basis-point setting is above 100%.
    error InvalidBps(uint256 bps);
    /// @notice Thrown when a token's decimals are above 18.
    error UnsupportedDecimals(uint8 decimals);

    // ----- ALP pool -----
    /// @notice Thrown when a deposit would mint less ALP than the depositor's minimum.
    error InsufficientAlpOut(uint256 alpOut, uint256 minAlpOut);
    /// @notice Thrown when a withdrawal would pay less collateral than the holder's minimum.
    error InsufficientOutput(uint256 amountOut, uint256 minOut);
    /// @notice Thrown when a holder redeems more ALP than they hold.
    error InsufficientAlpBalance(address holder, uint256 balance, uint256 requested);
    /// @notice Thrown when ALP is moved before the holder's 48-hour cooldown has passed.
    error CooldownActive(address holder, uint256 unlocksAt);
    /// @notice Thrown when a withdrawal would leave the pool unable to cover its reserve.
    error ReserveNotCovered(uint256 poolBalanceAfterUsd, uint256 reserveUsd);
    /// @notice Thrown when ALP exists but the pool's NAV is zero or negative.
    error PoolInsolvent(int256 navUsd, uint256 alpSupply);
    /// @notice Thrown when a deposit or withdrawal names a token outside the pool's basket.
    error AssetNotInBasket(address asset);
    /// @notice Thrown when a deposit's token arrives short of the amount sent (a fee on transfer).
    error FeeOnTransferToken(address asset, uint256 amount, uint256 received);
    /// @notice Thrown when a withdrawal asks for more of an asset than the basket holds.
    error BasketHoldingsShort(address asset, uint256 holdings, uint256 amountOut);
    /// @notice Thrown when basket targets do not sum to exactly 100% (or do not match the assets).
    error InvalidTargets(uint256 sumBps);
    /// @notice Thrown when listing a basket asset past the maximum.
    error TooManyAssets(uint256 max);
    /// @notice Thrown when a token is listed in the basket twice.
    error AssetAlreadyListed(address asset);

    // ----- pairs and settings
    /// @notice Thrown when a pair id is not listed.
    error UnknownPair(uint256 pairId);
    /// @notice Thrown when a pair setting is out of range.
    error InvalidPairSettings(uint256 pairId);
    /// @notice Thrown when listing a pair beyond the registry's maximum.
    error TooManyPairs(uint256 maxPairs);
    /// @notice Thrown when a notional tier's maximum notional is zero (zero ends the tiers).
    error InvalidTier(uint256 index);
    /// @notice Thrown when a side's cost basis would exceed its open interest (a position's
    ///         cost, floor(qty x entry), never exceeds its notional).
    error CostAboveNotional(uint256 costUsd, uint256 oiUsd);

    // ----- requests
    /// @notice Thrown when the amount sent does not cover the execution fee.
    error AmountBelowExecutionFee(uint256 amountIn, uint256 executionFee);
    /// @notice Thrown when a request id does not exist.
    error UnknownRequest(uint256 requestId);
    /// @notice Thrown when a request is no longer pending (executed, rejected or cancelled).
    error RequestNotPending(uint256 requestId, uint8 status);
    /// @notice Thrown when a request is executed in its own block or after its expiry.
    error RequestNotExecutable(uint256 requestId, uint256 requestBlock, uint256 currentBlock);
    /// @notice Thrown when a request is cancelled before it has expired.
    error RequestNotExpired(uint256 requestId, uint256 expiresAfterBlock);
    /// @notice Thrown when someone other than its trader acts on a request or position.
    error NotOwner(address caller, address owner);
    /// @notice Thrown when the keeper's reveal does not match the request's commitment.
    error CommitmentMismatch(uint256 requestId, bytes32 commitment, bytes32 revealed);
    /// @notice Thrown when a position id is not an open position.
    error PositionNotOpen(uint256 positionId);
    /// @notice Thrown when a batch's arrays differ in length.
    error LengthMismatch(uint256 requestIds, uint256 orders, uint256 salts);
    /// @notice Thrown when the keeper rejects an open with a reason other than
    ///         UndecryptableOrder or MalformedOrder (the checks' reasons come from execution).
    error InvalidRejectReason(uint8 reason);
    /// @notice Thrown when a close is requested for a position that already has one pending.
    error CloseAlreadyPending(uint256 positionId, uint256 requestId);
    /// @notice Thrown when an execution names a price for a pair twice, or for a pair without a
    ///         reference feed (an unknown pair has none).
    error InvalidPriceInput(uint256 pairId);
    /// @notice Thrown when no price at all is known for a pair a computation needs.
    error PriceStale(uint256 pairId, uint256 updatedAt, uint256 maxAge);
    /// @notice Thrown when LPs would be priced while a pair's reference round is missing or
    ///         older than the maximum age.
    error ReferenceStale(uint256 pairId, uint256 updatedAt, uint256 maxAge);
    /// @notice Thrown when LPs would be priced while a pair's keeper price is past the circuit
    ///         breaker from its reference.
    error CircuitBreakerTripped(uint256 pairId, uint256 keeperPrice, uint256 referencePrice);
    /// @notice Thrown when LPs would be priced at a pair's price the triggers have not run at
    ///         (or whose settlement has aged past the maximum age): a price that has not had its
    ///         liquidations may still count bankrupt positions.
    error PriceNotSettled(uint256 pairId, uint256 updatedAt, uint256 settledUntil);

    // ----- referrals
    /// @notice Thrown when a referral code is taken, unknown, or already bound.
    error ReferralCodeTaken(bytes32 code);
    error ReferralCodeUnknown(bytes32 code);
    error ReferralAlreadyBound(address trader, bytes32 code);
    error SelfReferral(address trader);
}
