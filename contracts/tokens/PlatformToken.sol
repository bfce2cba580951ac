// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";

/// @title PlatformToken
/// @notice The exchange's own token (ASTER's role): paying trading fees in it gives a discount.
contract PlatformToken is ERC20, AccessControl {
    bytes32 public constant MINTER_ROLE = keccak256("MINTER");

    constructor(address admin) ERC20("Alpsim Platform Token", "APT") {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(MINTER_ROLE, admin);
    }

    function mint(address to, uint256 amount) external onlyRole(MINTER_ROLE) {
        _mint(to, amount);
    }
}
