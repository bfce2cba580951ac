// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Errors} from "../errors/Errors.sol";

/// @title ReferralRegistry
/// @notice Referral codes: a referrer registers a code, a trader binds one once and from then
///         on gets the referral discount on trading fees.
contract ReferralRegistry {
    mapping(bytes32 code => address referrer) public referrerOfCode;
    mapping(address trader => bytes32 code) public codeOf;

    event CodeRegistered(bytes32 indexed code, address indexed referrer);
    event ReferralBound(address indexed trader, bytes32 indexed code, address indexed referrer);

    function registerCode(bytes32 code) external {
        if (code == bytes32(0) || referrerOfCode[code] != address(0)) revert Errors.ReferralCodeTaken(code);
        referrerOfCode[code] = msg.sender;
        emit CodeRegistered(code, msg.sender);
    }

    function bindReferral(bytes32 code) external {
        address referrer = referrerOfCode[code];
        if (referrer == address(0)) revert Errors.ReferralCodeUnknown(code);
        if (referrer == msg.sender) revert Errors.SelfReferral(msg.sender);
        if (codeOf[msg.sender] != bytes32(0)) revert Errors.ReferralAlreadyBound(msg.sender, codeOf[msg.sender]);
        codeOf[msg.sender] = code;
        emit ReferralBound(msg.sender, code, referrer);
    }

    function hasReferral(address trader) external view returns (bool) {
        return codeOf[trader] != bytes32(0);
    }
}
