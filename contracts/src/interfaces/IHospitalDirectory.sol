// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

/// @title The part of the Directory that TrainingRegistry relies on.
interface IHospitalDirectory {
    /// @notice A hospital's grantee account, admin and active flag (all zero for an unknown hospital).
    /// @param hospitalId The hospital.
    /// @return account The hospital's registered account (signs its training updates).
    /// @return admin The hospital's admin (approves training plans).
    /// @return active Whether the hospital is active.
    function hospital(bytes32 hospitalId) external view returns (address account, address admin, bool active);
}
