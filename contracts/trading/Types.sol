// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @notice Why an open request was rejected (refunded less the execution fee). Kept in this
///         order: the client maps the numbers to names.
enum RejectReason {
    None,
    PairNotListed,
    PairPaused,
    LeverageOutOfRange, // 0 or above the pair's maximum
    ExtremeLeverageNotOffered, // >= 500x on a pair whose maximum is below 500x
    LeverageAboveNotionalTier, // the notional's tier caps leverage lower
    NotionalTooLarge, // above the largest notional tier
    NotionalTooSmall, // below the minimum notional
    OpenInterestCapExceeded,
    ReserveExceeded,
    SlippageExceeded, // fill beyond the trader's acceptable price
    TakeProfitBeyondCap,
    TakeProfitWrongSide,
    StopLossWrongSide,
    OpenLossTooHigh, // |fill - oracle| * qty >= 80% of margin
    PriceStale,
    CircuitBreaker,
    TooManyExecutions, // over 100 executions of the pair in this block
    UndecryptableOrder, // the ciphertext does not decrypt with the keeper's key (rejectOpen)
    MalformedOrder // the plaintext does not parse or does not match the commitment (rejectOpen)
}

/// @notice How a position ended.
enum CloseReason {
    TraderClose,
    TakeProfit,
    StopLoss,
    Liquidation
}

enum RequestKind {
    Open,
    Close
}

enum RequestStatus {
    None,
    Pending,
    Executed,
    Rejected,
    Cancelled
}

/// @notice The hidden part of an open request, revealed by the keeper at execution.
struct Order {
    uint256 pairId;
    bool isLong;
    uint256 leverage;
    uint256 takeProfit; // 18-decimal USD price; 0 means "at the cap"
    uint256 stopLoss; // 18-decimal USD price; 0 means none
    uint256 acceptablePrice; // worst fill the trader accepts; 0 means any
}

/// @notice A keeper price for one pair (18-decimal USD per unit of the base asset).
struct PriceInput {
    uint256 pairId;
    uint256 price;
}

struct Request {
    address trader;
    RequestKind kind;
    RequestStatus status;
    uint64 blockNumber;
    uint256 amountIn; // open: collateral escrowed (token units); close: the position id
    bytes32 commitment; // open only
    uint256 executionFeeTokens; // open only: the fee fixed when it was requested
}

/// @notice An open position. USD and prices are 18-decimal; qty is 18-decimal base units.
struct Position {
    address trader;
    uint32 pairId;
    bool isLong;
    bool feeInToken;
    uint16 leverage;
    uint64 openedAt;
    uint256 marginTokens; // collateral escrowed for it, token units
    uint256 marginUsd;
    uint256 notionalUsd; // entry notional = leverage x margin
    uint256 qty;
    uint256 entryPrice;
    uint256 costUsd; // floor(qty x entry), the position's share of its side's cost basis
    uint256 takeProfit; // always set: the cap price when the trader gave 0
    uint256 stopLoss;
    uint256 maxProfitUsd; // reserved in the pool while open
    uint256 holdingIndex;
    int256 fundingIndex;
}

/// @notice What an open cost, as charged.
struct OpenCharges {
    uint256 oraclePrice;
    uint256 slippageWad;
    uint256 executionFeeTokens;
    uint256 openFeeUsd;
    uint256 openFeeTokens; // collateral, or platform token when paid in it
    uint256 feeDiscountBps;
}

/// @notice How a position was settled.
struct Settlement {
    CloseReason reason;
    uint256 oraclePrice;
    uint256 exitPrice;
    int256 pnlUsd;
    uint256 closeFeeUsd; // as charged (cut first when the margin cannot cover it)
    uint256 holdingUsd;
    int256 fundingUsd;
    uint256 payoutUsd;
    uint256 payoutTokens;
    int256 poolDeltaTokens; // > 0 the pool receives, < 0 the pool pays the trader
    bool feeInToken;
}
