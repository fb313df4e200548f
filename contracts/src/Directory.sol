// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";

/// @title HealthHash Directory
/// @notice Who is who: the consortium admin registers hospitals, each hospital's admin registers its doctors.
/// Every action goes through one entry point, either called directly by the actor or relayed with the
/// actor's EIP-712 signature (admins need no ether).
/// @dev `isActiveGrantee` is on ConsentRegistry's hot path (one call per consent item), so a grantee's state
/// is one packed word per address plus one word per hospital: at most two storage reads per lookup.
contract Directory is EIP712 {
    /// @notice Action opcodes of `DirectoryAction.op`.
    uint8 public constant REGISTER_HOSPITAL = 0;
    uint8 public constant DEACTIVATE_HOSPITAL = 1;
    uint8 public constant REGISTER_DOCTOR = 2;
    uint8 public constant DEACTIVATE_DOCTOR = 3;
    uint8 public constant SET_HOSPITAL_ADMIN = 4;

    bytes32 public constant DIRECTORY_ACTION_TYPEHASH = keccak256(
        "DirectoryAction(uint8 op,bytes32 hospitalId,address subject,address admin,uint64 nonce,uint64 deadline)"
    );

    /// @notice One directory action; for a direct `execute` the nonce and deadline are ignored.
    struct Action {
        uint8 op;
        bytes32 hospitalId;
        address subject;
        address admin;
        uint64 nonce;
        uint64 deadline;
    }

    /// @dev Slot 0 of a hospital packs `account` and `active`, so the grantee check reads one word. Hospitals
    /// are stored under a small internal number (1-based) so that a doctor's word can point at its hospital
    /// directly: the doctor check is then two reads instead of three (member -> id -> hospital).
    struct Hospital {
        address account;
        bool active;
        address admin;
    }

    /// @dev Per-address word: the doctor role (hospital number + active flag) and, separately, the hospital
    /// number for which this address is the hospital account (0 = none).
    struct Member {
        uint32 doctorHospital;
        bool doctorActive;
        uint32 accountOfHospital;
    }

    error DeadlineExpired();
    error BadNonce();
    error BadSignature();
    error NotAuthorized();
    error UnknownOp();
    error UnknownHospital();
    error HospitalNotActive();
    error AlreadyActive();
    error NotActive();
    error ZeroAddress();
    error AccountInUse();
    error DoctorOfOtherHospital();

    event HospitalRegistered(bytes32 indexed hospitalId, address indexed account, address indexed admin);
    event HospitalDeactivated(bytes32 indexed hospitalId);
    event HospitalAdminChanged(bytes32 indexed hospitalId, address indexed admin);
    event DoctorRegistered(address indexed doctor, bytes32 indexed hospitalId);
    event DoctorDeactivated(address indexed doctor, bytes32 indexed hospitalId);

    /// @notice The account allowed to register and deactivate hospitals.
    address public immutable consortiumAdmin;

    mapping(uint32 number => Hospital) private _hospitals;
    mapping(bytes32 hospitalId => uint32 number) private _numberOf;
    mapping(uint32 number => bytes32 hospitalId) private _hospitalIdOf;
    mapping(address account => Member) private _members;
    mapping(address signer => uint64) private _nonces;
    uint32 private _hospitalCount;

    /// @param consortiumAdmin_ The consortium admin (registers hospitals).
    constructor(address consortiumAdmin_) EIP712("HealthHash Directory", "1") {
        if (consortiumAdmin_ == address(0)) revert ZeroAddress();
        consortiumAdmin = consortiumAdmin_;
    }

    /// @notice Performs `a` with msg.sender as the actor; `a.nonce` and `a.deadline` are ignored.
    /// @param a The action.
    function execute(Action calldata a) external {
        _apply(a, msg.sender);
    }

    /// @notice Performs `a` on behalf of `signer`, who signed it as EIP-712 `DirectoryAction`.
    /// @dev Check order: deadline -> nonce -> signature -> authority -> effects -> event. ERC-1271 signers
    /// (e.g. a hospital's multisig admin) are accepted too.
    /// @param a The signed action.
    /// @param signer The actor who signed `a`.
    /// @param signature The 65-byte ECDSA signature (or an ERC-1271 signature when `signer` is a contract).
    function executeBySig(Action calldata a, address signer, bytes calldata signature) external {
        if (block.timestamp > a.deadline) revert DeadlineExpired();
        if (a.nonce != _nonces[signer]) revert BadNonce();
        bytes32 digest = _hashTypedDataV4(
            keccak256(abi.encode(DIRECTORY_ACTION_TYPEHASH, a.op, a.hospitalId, a.subject, a.admin, a.nonce, a.deadline))
        );
        if (!SignatureChecker.isValidSignatureNowCalldata(signer, digest, signature)) revert BadSignature();
        unchecked {
            _nonces[signer] = a.nonce + 1;
        }
        _apply(a, signer);
    }

    /// @notice The next nonce `signer` must use for `executeBySig`.
    /// @param signer The actor.
    /// @return The nonce.
    function nonces(address signer) external view returns (uint64) {
        return _nonces[signer];
    }

    /// @notice True for an active doctor of an active hospital, or an active hospital's account.
    /// @param who The candidate grantee.
    /// @return Whether `who` may receive consents now.
    function isActiveGrantee(address who) external view returns (bool) {
        Member memory m = _members[who];
        if (m.doctorActive && _hospitals[m.doctorHospital].active) return true;
        return m.accountOfHospital != 0 && _hospitals[m.accountOfHospital].active;
    }

    /// @notice The hospital a doctor belongs to (zero id when never registered) and whether the doctor is active.
    /// @param doctor The doctor's address.
    /// @return hospitalId The doctor's hospital.
    /// @return active The doctor's own flag (the hospital may still be deactivated; see `isActiveGrantee`).
    function doctorOf(address doctor) external view returns (bytes32 hospitalId, bool active) {
        Member memory m = _members[doctor];
        return (_hospitalIdOf[m.doctorHospital], m.doctorActive);
    }

    /// @notice A hospital's grantee account, admin and active flag.
    /// @param hospitalId The hospital.
    /// @return account The hospital's grantee identity.
    /// @return admin The hospital's admin.
    /// @return active Whether the hospital is active.
    function hospital(bytes32 hospitalId) external view returns (address account, address admin, bool active) {
        Hospital storage h = _hospitals[_numberOf[hospitalId]];
        return (h.account, h.admin, h.active);
    }

    function _apply(Action calldata a, address actor) private {
        uint8 op = a.op;
        if (op == REGISTER_HOSPITAL) _registerHospital(a.hospitalId, a.subject, a.admin, actor);
        else if (op == DEACTIVATE_HOSPITAL) _deactivateHospital(a.hospitalId, actor);
        else if (op == REGISTER_DOCTOR) _registerDoctor(a.hospitalId, a.subject, actor);
        else if (op == DEACTIVATE_DOCTOR) _deactivateDoctor(a.hospitalId, a.subject, actor);
        else if (op == SET_HOSPITAL_ADMIN) _setHospitalAdmin(a.hospitalId, a.admin, actor);
        else revert UnknownOp();
    }

    /// @dev Registers a new hospital or re-activates a deactivated one (its account and admin are replaced).
    function _registerHospital(bytes32 id, address account, address admin, address actor) private {
        if (actor != consortiumAdmin) revert NotAuthorized();
        if (account == address(0) || admin == address(0)) revert ZeroAddress();
        uint32 number = _numberOf[id];
        if (number == 0) {
            number = ++_hospitalCount;
            _numberOf[id] = number;
            _hospitalIdOf[number] = id;
        }
        Hospital storage h = _hospitals[number];
        if (h.active) revert AlreadyActive();
        uint32 accountOwner = _members[account].accountOfHospital;
        if (accountOwner != 0 && accountOwner != number) revert AccountInUse();
        // A re-registration may move the hospital to a new account: the old one stops being a grantee.
        if (h.account != address(0) && h.account != account) _members[h.account].accountOfHospital = 0;
        _members[account].accountOfHospital = number;
        h.account = account;
        h.admin = admin;
        h.active = true;
        emit HospitalRegistered(id, account, admin);
    }

    function _deactivateHospital(bytes32 id, address actor) private {
        if (actor != consortiumAdmin) revert NotAuthorized();
        Hospital storage h = _hospitals[_knownNumber(id)];
        if (!h.active) revert NotActive();
        h.active = false;
        emit HospitalDeactivated(id);
    }

    /// @dev A doctor belongs to one hospital at a time: moving needs the old hospital to deactivate them first.
    function _registerDoctor(bytes32 id, address doctor, address actor) private {
        uint32 number = _knownNumber(id);
        Hospital storage h = _hospitals[number];
        if (actor != h.admin) revert NotAuthorized();
        if (!h.active) revert HospitalNotActive();
        if (doctor == address(0)) revert ZeroAddress();
        Member storage m = _members[doctor];
        if (m.doctorActive) {
            if (m.doctorHospital != number) revert DoctorOfOtherHospital();
            revert AlreadyActive();
        }
        m.doctorHospital = number;
        m.doctorActive = true;
        emit DoctorRegistered(doctor, id);
    }

    function _deactivateDoctor(bytes32 id, address doctor, address actor) private {
        uint32 number = _knownNumber(id);
        if (actor != _hospitals[number].admin) revert NotAuthorized();
        Member storage m = _members[doctor];
        if (!m.doctorActive || m.doctorHospital != number) revert NotActive();
        m.doctorActive = false;
        emit DoctorDeactivated(doctor, id);
    }

    /// @dev The consortium admin or the hospital's current admin may hand the admin role over.
    function _setHospitalAdmin(bytes32 id, address admin, address actor) private {
        Hospital storage h = _hospitals[_knownNumber(id)];
        if (actor != consortiumAdmin && actor != h.admin) revert NotAuthorized();
        if (admin == address(0)) revert ZeroAddress();
        h.admin = admin;
        emit HospitalAdminChanged(id, admin);
    }

    function _knownNumber(bytes32 id) private view returns (uint32 number) {
        number = _numberOf[id];
        if (number == 0) revert UnknownHospital();
    }
}
