// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {AggregatorV3Interface} from "../interfaces/AggregatorV3Interface.sol";

/// @title MockAggregator
/// @notice The devnet's Chainlink reference feed for one pair (8 decimals, like Chainlink's
///         USD feeds). The feeder role moves it; `updatedAt` is the block's timestamp.
contract MockAggregator is AggregatorV3Interface, AccessControl {
    bytes32 public constant FEEDER_ROLE = keccak256("FEEDER");

    uint8 public constant decimals = 8;
    string public description;

    uint80 private _roundId;
    int256 private _answer;
    uint256 private _updatedAt;

    event AnswerUpdated(int256 indexed current, uint256 indexed roundId, uint256 updatedAt);

    constructor(string memory description_, address admin) {
        description = description_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(FEEDER_ROLE, admin);
    }

    function setAnswer(int256 answer) external onlyRole(FEEDER_ROLE) {
        _roundId++;
        _answer = answer;
        _updatedAt = block.timestamp;
        emit AnswerUpdated(answer, _roundId, block.timestamp);
    }

    function latestRoundData() external view returns (uint80, int256, uint256, uint256, uint80) {
        return (_roundId, _answer, _updatedAt, _updatedAt, _roundId);
    }
}
