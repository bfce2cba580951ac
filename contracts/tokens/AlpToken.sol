// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Errors} from "../errors/Errors.sol";

/// @title AlpToken
/// @notice The ALP pool's LP share (18 decimals). Minted and burned only by its owner, the
///         pool. A holder's ALP is locked until `unlocksAt(holder)` (the pool's cooldown after
///         their last deposit): neither transferred nor redeemed before then, so the cooldown
///         cannot be skipped by moving ALP to a fresh address.
contract AlpToken is ERC20, Ownable {
    /// @notice Timestamp from which a holder's ALP may move again.
    mapping(address holder => uint256 timestamp) public unlocksAt;

    constructor(address initialOwner) ERC20("Alpsim Liquidity Provider", "ALP") Ownable(initialOwner) {}

    /// @notice Mints `amount` to `to` and locks all of `to`'s ALP until `unlockTimestamp`.
    function mint(address to, uint256 amount, uint256 unlockTimestamp) external onlyOwner {
        unlocksAt[to] = unlockTimestamp;
        _mint(to, amount);
    }

    /// @notice Burns `amount` of `from`'s ALP (the pool has checked the holder's request).
    function burn(address from, uint256 amount) external onlyOwner {
        _burn(from, amount);
    }

    /// @dev Locked ALP moves neither by transfer nor by burn.
    function _update(address from, address to, uint256 value) internal override {
        if (from != address(0) && block.timestamp < unlocksAt[from]) {
            revert Errors.CooldownActive(from, unlocksAt[from]);
        }
        super._update(from, to, value);
    }
}
