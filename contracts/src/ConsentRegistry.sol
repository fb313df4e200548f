// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {IGranteeDirectory} from "./interfaces/IGranteeDirectory.sol";

/// @title HealthHash ConsentRegistry
/// @notice Patients' consents: (patient, grantee, scope, purpose, expiresAt). A patient grants or revokes
/// directly, or signs EIP-712 `Grant` / `Revoke` typed data that any relayer submits, alone or in batches.
/// @dev One storage word per consent. Replay protection is the consent's own version: a signed message is
/// valid only for the version it names, and every change bumps the version, so each signature is single-use
/// and an old grant cannot be replayed after a revoke.
contract ConsentRegistry is EIP712 {
    /// @notice keccak256("chart"): the whole-chart scope.
    bytes32 public constant CHART_SCOPE = keccak256("chart");
    /// @notice Highest valid purpose (0 TREATMENT, 1 TRAINING).
    uint8 public constant MAX_PURPOSE = 1;

    bytes32 public constant GRANT_TYPEHASH = keccak256(
        "Grant(address patient,address grantee,string scope,uint8 purpose,uint64 expiresAt,uint32 version,uint64 deadline)"
    );
    bytes32 public constant REVOKE_TYPEHASH = keccak256(
        "Revoke(address patient,address grantee,string scope,uint8 purpose,uint32 version,uint64 deadline)"
    );

    /// @notice A relayed grant. `scopeHash` = keccak256(scope string), which is also how EIP-712 encodes the
    /// signed `string scope`. `terms` packs the small fields into one calldata word (low bits first):
    /// purpose [0,8) | expiresAt [8,72) | version [72,104) | deadline [104,168). `r`,`vs` is the EIP-2098
    /// compact form of the patient's signature.
    /// @dev Packing saves ~3 mostly-zero calldata words per item; the compact signature saves the 1-byte `v`
    /// word that a 65-byte `bytes` would need plus its offset and length words.
    struct SignedGrant {
        address patient;
        address grantee;
        bytes32 scopeHash;
        uint256 terms;
        bytes32 r;
        bytes32 vs;
    }

    /// @notice A relayed revoke; same layout as SignedGrant, the expiresAt bits of `terms` are ignored.
    struct SignedRevoke {
        address patient;
        address grantee;
        bytes32 scopeHash;
        uint256 terms;
        bytes32 r;
        bytes32 vs;
    }

    error DeadlineExpired();
    error BadVersion();
    error BadSignature();
    error GranteeNotRegistered();
    error NotActive();
    error BadExpiry();
    error BadPurpose();

    event ConsentGranted(
        bytes32 indexed consentId,
        address indexed patient,
        address indexed grantee,
        bytes32 scopeHash,
        uint8 purpose,
        uint64 expiresAt,
        uint32 version
    );
    event ConsentRevoked(bytes32 indexed consentId, address indexed patient, address indexed grantee, uint32 version);
    event ConsentSkipped(bytes32 indexed consentId, uint32 version, bytes4 reason);

    // Consent word layout (low bits first): version [0,32) | expiresAt [32,96) | active [96].
    uint256 private constant _ACTIVE = 1 << 96;

    /// @notice The Directory that says who may receive consents.
    IGranteeDirectory public immutable directory;

    mapping(bytes32 consentId => uint256 word) private _consents;

    /// @param directory_ The Directory contract.
    constructor(IGranteeDirectory directory_) EIP712("HealthHash Consent", "1") {
        directory = directory_;
    }

    // ---------------------------------------------------------------- direct calls (patient = msg.sender)

    /// @notice Grants (or re-grants with a new expiry) a consent as msg.sender, the patient.
    /// @param grantee An active doctor or hospital account.
    /// @param scopeHash keccak256 of the scope string.
    /// @param purpose 0 TREATMENT, 1 TRAINING (<= MAX_PURPOSE).
    /// @param expiresAt Unix time the consent lapses, 0 = never.
    function grant(address grantee, bytes32 scopeHash, uint8 purpose, uint64 expiresAt) external {
        bytes4 reason = _checkGrantTerms(grantee, purpose, expiresAt);
        if (reason != 0) _revertWith(reason);
        bytes32 id = consentIdOf(msg.sender, grantee, scopeHash, purpose);
        uint32 version = uint32(_consents[id]);
        _storeGrant(id, msg.sender, grantee, scopeHash, purpose, expiresAt, version);
    }

    /// @notice Revokes an active consent as msg.sender, the patient.
    /// @param grantee The consent's grantee.
    /// @param scopeHash keccak256 of the scope string.
    /// @param purpose The consent's purpose.
    function revoke(address grantee, bytes32 scopeHash, uint8 purpose) external {
        bytes32 id = consentIdOf(msg.sender, grantee, scopeHash, purpose);
        uint256 word = _consents[id];
        if (word & _ACTIVE == 0) revert NotActive();
        _storeRevoke(id, msg.sender, grantee, uint32(word));
    }

    // ---------------------------------------------------------------- signed, one at a time (reverts)

    /// @notice Applies one signed grant; reverts with the custom error of the first failed check.
    /// @param g The signed grant.
    function grantBySig(SignedGrant calldata g) external {
        (, , bytes4 reason) = _grantSigned(g);
        if (reason != 0) _revertWith(reason);
    }

    /// @notice Applies one signed revoke; reverts with the custom error of the first failed check.
    /// @param r The signed revoke.
    function revokeBySig(SignedRevoke calldata r) external {
        (, , bytes4 reason) = _revokeSigned(r);
        if (reason != 0) _revertWith(reason);
    }

    // ---------------------------------------------------------------- signed, batched (skips bad items)

    /// @notice Applies many signed grants; a bad item is skipped with `ConsentSkipped` (reason = the
    /// selector of the error `grantBySig` would raise) and the rest still apply. Anyone may relay.
    /// @param grants The signed grants.
    function grantBatch(SignedGrant[] calldata grants) external {
        for (uint256 i; i < grants.length; ++i) {
            (bytes32 id, uint32 version, bytes4 reason) = _grantSigned(grants[i]);
            if (reason != 0) emit ConsentSkipped(id, version, reason);
        }
    }

    /// @notice Applies many signed revokes; a bad item is skipped with `ConsentSkipped`, the rest apply.
    /// @param revokes The signed revokes.
    function revokeBatch(SignedRevoke[] calldata revokes) external {
        for (uint256 i; i < revokes.length; ++i) {
            (bytes32 id, uint32 version, bytes4 reason) = _revokeSigned(revokes[i]);
            if (reason != 0) emit ConsentSkipped(id, version, reason);
        }
    }

    // ---------------------------------------------------------------- views

    /// @notice True if the chart consent, or the category / record consent (zero hashes are skipped), of
    /// `patient` for `grantee` and `purpose` is active and unexpired now.
    /// @param patient The patient.
    /// @param grantee The doctor or hospital account asking.
    /// @param recordScopeHash keccak256("record:<uuid>") or zero.
    /// @param categoryScopeHash keccak256("category:<name>") or zero.
    /// @param purpose The purpose of the access.
    /// @return Whether access is allowed now.
    function isAllowed(
        address patient,
        address grantee,
        bytes32 recordScopeHash,
        bytes32 categoryScopeHash,
        uint8 purpose
    ) external view returns (bool) {
        if (_isLive(consentIdOf(patient, grantee, CHART_SCOPE, purpose))) return true;
        if (categoryScopeHash != 0 && _isLive(consentIdOf(patient, grantee, categoryScopeHash, purpose))) return true;
        return recordScopeHash != 0 && _isLive(consentIdOf(patient, grantee, recordScopeHash, purpose));
    }

    /// @notice The stored state of a consent (an expired consent may still read active).
    /// @param consentId See `consentIdOf`.
    /// @return active Whether granted and not revoked.
    /// @return expiresAt Unix expiry, 0 = never.
    /// @return version The version the next signed Grant/Revoke must carry.
    function consentOf(bytes32 consentId) external view returns (bool active, uint64 expiresAt, uint32 version) {
        uint256 word = _consents[consentId];
        return (word & _ACTIVE != 0, uint64(word >> 32), uint32(word));
    }

    /// @notice keccak256(abi.encode(patient, grantee, scopeHash, purpose)).
    /// @param patient The patient.
    /// @param grantee The grantee.
    /// @param scopeHash keccak256 of the scope string.
    /// @param purpose The purpose.
    /// @return consentId The consent's key.
    function consentIdOf(address patient, address grantee, bytes32 scopeHash, uint8 purpose)
        public
        pure
        returns (bytes32 consentId)
    {
        // Same bytes as keccak256(abi.encode(...)), hashed in scratch memory: abi.encode would allocate (and
        // never free) 160 bytes per call, and memory cost grows quadratically over a 100-item batch.
        // Sub-word values may carry dirty high bits inside assembly, hence the masks.
        assembly ("memory-safe") {
            let m := mload(0x40)
            mstore(m, and(patient, 0xffffffffffffffffffffffffffffffffffffffff))
            mstore(add(m, 0x20), and(grantee, 0xffffffffffffffffffffffffffffffffffffffff))
            mstore(add(m, 0x40), scopeHash)
            mstore(add(m, 0x60), and(purpose, 0xff))
            consentId := keccak256(m, 0x80)
        }
    }

    /// @notice The EIP-712 domain separator in force (rebuilt if the chain id changes).
    /// @return The domain separator.
    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    // ---------------------------------------------------------------- internals

    /// @dev Check order: deadline -> version -> signature -> grantee/terms -> effects -> event. Returns the
    /// failed check's error selector, or 0 when the grant was applied.
    function _grantSigned(SignedGrant calldata g) private returns (bytes32 id, uint32 version, bytes4 reason) {
        uint256 terms = g.terms;
        uint8 purpose = uint8(terms);
        uint64 expiresAt = uint64(terms >> 8);
        version = uint32(terms >> 72);
        uint64 deadline = uint64(terms >> 104);
        id = consentIdOf(g.patient, g.grantee, g.scopeHash, purpose);

        if (block.timestamp > deadline) return (id, version, DeadlineExpired.selector);
        if (uint32(_consents[id]) != version) return (id, version, BadVersion.selector);
        bytes32 structHash = _hashWords8(
            GRANT_TYPEHASH, g.patient, g.grantee, g.scopeHash, purpose, expiresAt, version, deadline
        );
        if (!_signedBy(structHash, g.r, g.vs, g.patient)) return (id, version, BadSignature.selector);
        reason = _checkGrantTerms(g.grantee, purpose, expiresAt);
        if (reason != 0) return (id, version, reason);
        _storeGrant(id, g.patient, g.grantee, g.scopeHash, purpose, expiresAt, version);
    }

    /// @dev Check order: deadline -> version -> signature -> active -> effects -> event.
    function _revokeSigned(SignedRevoke calldata r) private returns (bytes32 id, uint32 version, bytes4 reason) {
        uint256 terms = r.terms;
        uint8 purpose = uint8(terms);
        version = uint32(terms >> 72);
        uint64 deadline = uint64(terms >> 104);
        address patient = r.patient;
        address grantee = r.grantee;
        bytes32 scopeHash = r.scopeHash;
        id = consentIdOf(patient, grantee, scopeHash, purpose);

        if (block.timestamp > deadline) return (id, version, DeadlineExpired.selector);
        uint256 word = _consents[id];
        if (uint32(word) != version) return (id, version, BadVersion.selector);
        bytes32 structHash = _hashWords7(REVOKE_TYPEHASH, patient, grantee, scopeHash, purpose, version, deadline);
        if (!_signedBy(structHash, r.r, r.vs, patient)) return (id, version, BadSignature.selector);
        if (word & _ACTIVE == 0) return (id, version, NotActive.selector);
        _storeRevoke(id, patient, grantee, version);
    }

    /// @dev keccak256(abi.encode(typehash, ...)) for the Grant struct (all members static), in scratch memory.
    /// The small integers arrive as uint256 (converted, hence clean); addresses are masked.
    function _hashWords8(
        bytes32 typehash,
        address patient,
        address grantee,
        bytes32 scopeHash,
        uint256 purpose,
        uint256 expiresAt,
        uint256 version,
        uint256 deadline
    ) private pure returns (bytes32 h) {
        assembly ("memory-safe") {
            let m := mload(0x40)
            mstore(m, typehash)
            mstore(add(m, 0x20), and(patient, 0xffffffffffffffffffffffffffffffffffffffff))
            mstore(add(m, 0x40), and(grantee, 0xffffffffffffffffffffffffffffffffffffffff))
            mstore(add(m, 0x60), scopeHash)
            mstore(add(m, 0x80), purpose)
            mstore(add(m, 0xa0), expiresAt)
            mstore(add(m, 0xc0), version)
            mstore(add(m, 0xe0), deadline)
            h := keccak256(m, 0x100)
        }
    }

    /// @dev keccak256(abi.encode(typehash, ...)) for the Revoke struct, in scratch memory.
    function _hashWords7(
        bytes32 typehash,
        address patient,
        address grantee,
        bytes32 scopeHash,
        uint256 purpose,
        uint256 version,
        uint256 deadline
    ) private pure returns (bytes32 h) {
        assembly ("memory-safe") {
            let m := mload(0x40)
            mstore(m, typehash)
            mstore(add(m, 0x20), and(patient, 0xffffffffffffffffffffffffffffffffffffffff))
            mstore(add(m, 0x40), and(grantee, 0xffffffffffffffffffffffffffffffffffffffff))
            mstore(add(m, 0x60), scopeHash)
            mstore(add(m, 0x80), purpose)
            mstore(add(m, 0xa0), version)
            mstore(add(m, 0xc0), deadline)
            h := keccak256(m, 0xe0)
        }
    }

    function _checkGrantTerms(address grantee, uint8 purpose, uint64 expiresAt) private view returns (bytes4) {
        if (!directory.isActiveGrantee(grantee)) return GranteeNotRegistered.selector;
        if (purpose > MAX_PURPOSE) return BadPurpose.selector;
        if (expiresAt != 0 && expiresAt <= block.timestamp) return BadExpiry.selector;
        return 0;
    }

    /// @dev OZ's tryRecover also rejects high-s and invalid signatures (recovered zero address).
    function _signedBy(bytes32 structHash, bytes32 r, bytes32 vs, address patient) private view returns (bool) {
        (address signer, ECDSA.RecoverError err, ) = ECDSA.tryRecover(_hashTypedDataV4(structHash), r, vs);
        return err == ECDSA.RecoverError.NoError && signer == patient;
    }

    function _storeGrant(
        bytes32 id,
        address patient,
        address grantee,
        bytes32 scopeHash,
        uint8 purpose,
        uint64 expiresAt,
        uint32 version
    ) private {
        _consents[id] = _ACTIVE | (uint256(expiresAt) << 32) | uint256(version + 1);
        emit ConsentGranted(id, patient, grantee, scopeHash, purpose, expiresAt, version);
    }

    function _storeRevoke(bytes32 id, address patient, address grantee, uint32 version) private {
        _consents[id] = uint256(version + 1);
        emit ConsentRevoked(id, patient, grantee, version);
    }

    function _isLive(bytes32 id) private view returns (bool) {
        uint256 word = _consents[id];
        uint64 expiresAt = uint64(word >> 32);
        return word & _ACTIVE != 0 && (expiresAt == 0 || expiresAt > block.timestamp);
    }

    /// @dev Reverts with a parameterless custom error given by its selector, so the one-at-a-time entry points
    /// raise exactly the error whose selector the batch paths report in `ConsentSkipped`.
    function _revertWith(bytes4 selector) private pure {
        assembly ("memory-safe") {
            mstore(0, selector)
            revert(0, 4)
        }
    }
}
