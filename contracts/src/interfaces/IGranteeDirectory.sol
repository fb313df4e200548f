// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

/// @title The part of the Directory that ConsentRegistry relies on.
interface IGranteeDirectory {
    /// @notice True for an active doctor of an active hospital, or an active hospital's account.
    /// @param who The candidate grantee.
    /// @return Whether `who` may receive consents now.
    function isActiveGrantee(address who) external view returns (bool);
}
