// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title ReentrantCollateral
/// @notice Test helper: a collateral token (any decimals) that, once armed, calls back into a
///         configured target with configured calldata from inside its next transfer (a
///         `transfer` or `transferFrom`; mints and burns do not trigger it), the way a token
///         with transfer hooks would. It records whether the callback reverted and its revert
///         data, and never reverts itself: the transfer goes through either way.
/// @dev One shot: arming is cleared before the callback, so the callback cannot recurse.
///      `fire` makes the same kind of call at once, outside any transfer (the control: the
///      call the token re-enters with is one that succeeds on its own). The token contract is
///      the caller of both, so it can hold tokens, allowances (`fire` into its own `approve`),
///      ALP and requests of its own. Anyone may mint, arm and fire: for tests only.
contract ReentrantCollateral is ERC20 {
    uint8 private immutable _decimals;

    /// @notice What the next transfer calls back into, and with what.
    address public target;
    bytes public callData;
    bool public armed;

    /// @notice What happened at the last call (a callback or `fire`).
    bool public called;
    bool public callbackReverted;
    bytes public callbackResult; // revert data when it reverted, return data otherwise
    address public triggerFrom; // the transfer that made the callback (zero for `fire`)
    address public triggerTo;
    uint256 public triggerValue;

    event CallbackMade(address indexed target, bool reverted, bytes result, address from, address to, uint256 value);

    constructor(string memory name_, string memory symbol_, uint8 decimals_) ERC20(name_, symbol_) {
        _decimals = decimals_;
    }

    function decimals() public view override returns (uint8) {
        return _decimals;
    }

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    /// @notice The next transfer calls `target_` with `data` before moving the tokens.
    function arm(address target_, bytes calldata data) external {
        target = target_;
        callData = data;
        armed = true;
        called = false;
        callbackReverted = false;
        delete callbackResult;
    }

    function disarm() external {
        armed = false;
    }

    /// @notice Calls `target_` with `data` now, from this contract, and records the outcome
    ///         like a callback (without reverting when the call does).
    function fire(address target_, bytes calldata data) external returns (bool ok) {
        ok = _call(target_, data, address(0), address(0), 0);
    }

    function _update(address from, address to, uint256 value) internal override {
        if (armed && from != address(0) && to != address(0)) {
            armed = false;
            _call(target, callData, from, to, value);
        }
        super._update(from, to, value);
    }

    function _call(address target_, bytes memory data, address from, address to, uint256 value)
        private
        returns (bool ok)
    {
        bytes memory result;
        (ok, result) = target_.call(data);
        called = true;
        callbackReverted = !ok;
        callbackResult = result;
        triggerFrom = from;
        triggerTo = to;
        triggerValue = value;
        emit CallbackMade(target_, !ok, result, from, to, value);
    }
}
