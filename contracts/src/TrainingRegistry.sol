// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {IHospitalDirectory} from "./interfaces/IHospitalDirectory.sol";

/// @title HealthHash TrainingRegistry
/// @notice Provenance of federated training. A hospital's admin approves a job's training plan by its content
/// hash (EIP-712 `PlanApproval`, relayed); the hospital's registered account signs each local update (EIP-712
/// `Update`), accepted only while the hospital is active and has approved exactly that plan hash for the job;
/// the operator (the relayer) publishes each global model version. Updates and model versions are write-once:
/// the same one again is a no-op, so a relayer may retry freely; a different one for a taken key is refused.
/// @dev One storage word per update and per model version: the hash of its content (`updateHash`,
/// `modelVersionHash`). The events carry the data itself for the indexer. `cidDigest` is the sha2-256 digest
/// inside the CID's multihash: the same for the CIDv0 and CIDv1 spellings of the same DAG, and enough to rebuild
/// the CID (with the store's fixed version and codec) from the chain alone; a keccak of the CID text would tie
/// the proof to one spelling and could not be turned back into an address to fetch from.
contract TrainingRegistry is EIP712, AccessControl {
    /// @notice Role allowed to publish model versions (the relayer account).
    bytes32 public constant OPERATOR_ROLE = keccak256("OPERATOR_ROLE");

    bytes32 public constant PLAN_APPROVAL_TYPEHASH =
        keccak256("PlanApproval(bytes32 hospitalId,bytes32 jobId,bytes32 planHash,uint64 nonce,uint64 deadline)");
    bytes32 public constant UPDATE_TYPEHASH = keccak256(
        "Update(bytes32 jobId,uint32 round,bytes32 hospitalId,bytes32 planHash,bytes32 weightsHash,bytes32 cidDigest,"
        "uint64 samples,bytes32 patientRoot,uint64 pinnedBlock,uint64 deadline)"
    );

    /// @notice A hospital admin's approval of a job's training plan; a later approval replaces it.
    struct PlanApproval {
        bytes32 hospitalId;
        bytes32 jobId;
        bytes32 planHash;
        uint64 nonce;
        uint64 deadline;
    }

    /// @notice One hospital's local update of one round. `patientRoot` is the Merkle root of the included
    /// patients' addresses, `pinnedBlock` the block whose consents selected them.
    struct Update {
        bytes32 jobId;
        uint32 round;
        bytes32 hospitalId;
        bytes32 planHash;
        bytes32 weightsHash;
        bytes32 cidDigest;
        uint64 samples;
        bytes32 patientRoot;
        uint64 pinnedBlock;
        uint64 deadline;
    }

    /// @notice An update with the EIP-2098 compact signature (r, vs) of the hospital's account.
    struct SignedUpdate {
        Update update;
        bytes32 r;
        bytes32 vs;
    }

    /// @notice A global model version. `updatesRoot` is the Merkle root of the ids (`updateIdOf`) of the
    /// updates it averages, built off chain like the patients' roots: the contract stores it as given.
    struct ModelVersion {
        bytes32 jobId;
        uint32 round;
        bytes32 weightsHash;
        bytes32 cidDigest;
        bytes32 metricsHash;
        bytes32 updatesRoot;
    }

    error DeadlineExpired();
    error BadNonce();
    error BadSignature();
    error NotHospitalAdmin();
    error HospitalNotActive();
    error ZeroPlanHash();
    error PlanNotApproved();
    error EmptyUpdate();
    error UpdateConflict();
    error EmptyModelVersion();
    error ModelVersionConflict();
    error ZeroAddress();

    event PlanApproved(bytes32 indexed hospitalId, bytes32 indexed jobId, bytes32 planHash, address admin);
    event UpdateSubmitted(
        bytes32 indexed jobId,
        bytes32 indexed hospitalId,
        uint32 round,
        bytes32 planHash,
        bytes32 weightsHash,
        bytes32 cidDigest,
        uint64 samples,
        bytes32 patientRoot,
        uint64 pinnedBlock
    );
    event UpdateSkipped(bytes32 indexed updateId, bytes32 updateHash, bytes4 reason);
    event ModelVersionPublished(
        bytes32 indexed jobId,
        uint32 round,
        bytes32 weightsHash,
        bytes32 cidDigest,
        bytes32 metricsHash,
        bytes32 updatesRoot
    );

    /// @notice The Directory that says which account and admin a hospital has, and whether it is active.
    IHospitalDirectory public immutable directory;

    mapping(bytes32 approvalKey => bytes32 planHash) private _approvedPlans;
    mapping(bytes32 updateId => bytes32 updateHash) private _updates;
    mapping(bytes32 modelVersionId => bytes32 modelVersionHash) private _modelVersions;
    mapping(address signer => uint64) private _nonces;

    /// @param directory_ The Directory contract.
    /// @param admin Gets DEFAULT_ADMIN_ROLE (manages operators) and OPERATOR_ROLE.
    constructor(IHospitalDirectory directory_, address admin) EIP712("HealthHash Training", "1") {
        if (address(directory_) == address(0) || admin == address(0)) revert ZeroAddress();
        directory = directory_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(OPERATOR_ROLE, admin);
    }

    // ---------------------------------------------------------------- plan approval

    /// @notice Records `a.planHash` as the plan `a.hospitalId` approves for `a.jobId`, signed by `signer`, who
    /// must be that hospital's admin. Replaces an earlier approval for the job: updates must then carry the new
    /// hash. Anyone may relay.
    /// @dev Check order: deadline -> nonce -> signature -> authority -> effects -> event. ERC-1271 signers
    /// (e.g. a hospital's multisig admin) are accepted too.
    /// @param a The signed approval.
    /// @param signer The hospital admin who signed `a`.
    /// @param signature The 65-byte ECDSA signature (or an ERC-1271 signature when `signer` is a contract).
    function approvePlanBySig(PlanApproval calldata a, address signer, bytes calldata signature) external {
        if (block.timestamp > a.deadline) revert DeadlineExpired();
        if (a.nonce != _nonces[signer]) revert BadNonce();
        bytes32 digest = _hashTypedDataV4(
            keccak256(abi.encode(PLAN_APPROVAL_TYPEHASH, a.hospitalId, a.jobId, a.planHash, a.nonce, a.deadline))
        );
        if (!SignatureChecker.isValidSignatureNowCalldata(signer, digest, signature)) revert BadSignature();
        (, address admin, bool active) = directory.hospital(a.hospitalId);
        if (signer != admin) revert NotHospitalAdmin();
        if (!active) revert HospitalNotActive();
        if (a.planHash == 0) revert ZeroPlanHash();
        unchecked {
            _nonces[signer] = a.nonce + 1;
        }
        _approvedPlans[_approvalKey(a.hospitalId, a.jobId)] = a.planHash;
        emit PlanApproved(a.hospitalId, a.jobId, a.planHash, signer);
    }

    // ---------------------------------------------------------------- updates

    /// @notice Stores one signed update; reverts with the custom error of the first failed check. The same
    /// update again is a no-op.
    /// @param u The update.
    /// @param r The signature's r.
    /// @param vs The signature's s with the parity of v in the top bit (EIP-2098).
    function submitUpdateBySig(Update calldata u, bytes32 r, bytes32 vs) external {
        (, , bytes4 reason) = _submit(u, r, vs);
        if (reason != 0) _revertWith(reason);
    }

    /// @notice Stores many signed updates; a bad item is skipped with `UpdateSkipped` (reason = the selector of
    /// the error `submitUpdateBySig` would raise) and the rest still apply. An item already stored with the same
    /// content emits nothing. Anyone may relay.
    /// @param updates The signed updates.
    function submitUpdateBatch(SignedUpdate[] calldata updates) external {
        for (uint256 i; i < updates.length; ++i) {
            SignedUpdate calldata s = updates[i];
            (bytes32 id, bytes32 updateHash, bytes4 reason) = _submit(s.update, s.r, s.vs);
            if (reason != 0) emit UpdateSkipped(id, updateHash, reason);
        }
    }

    // ---------------------------------------------------------------- model versions

    /// @notice Publishes the global model of `v.round` of `v.jobId`, once per (job, round). The same version
    /// again is a no-op; a different one for a published (job, round) reverts.
    /// @param v The model version.
    function publishModelVersion(ModelVersion calldata v) external onlyRole(OPERATOR_ROLE) {
        if (v.weightsHash == 0) revert EmptyModelVersion();
        bytes32 id = modelVersionIdOf(v.jobId, v.round);
        bytes32 versionHash = _hashModelVersion(v);
        bytes32 stored = _modelVersions[id];
        if (stored == versionHash) return;
        if (stored != 0) revert ModelVersionConflict();
        _modelVersions[id] = versionHash;
        emit ModelVersionPublished(v.jobId, v.round, v.weightsHash, v.cidDigest, v.metricsHash, v.updatesRoot);
    }

    // ---------------------------------------------------------------- views

    /// @notice The plan hash `hospitalId` approved last for `jobId`, zero when none.
    /// @param hospitalId The hospital.
    /// @param jobId The job.
    /// @return The approved plan hash.
    function approvedPlanOf(bytes32 hospitalId, bytes32 jobId) external view returns (bytes32) {
        return _approvedPlans[_approvalKey(hospitalId, jobId)];
    }

    /// @notice The stored content hash of an update (see `updateHashOf`), zero when none.
    /// @param updateId See `updateIdOf`.
    /// @return The update's content hash.
    function storedUpdateHash(bytes32 updateId) external view returns (bytes32) {
        return _updates[updateId];
    }

    /// @notice The stored content hash of a model version (see `modelVersionHashOf`), zero when none.
    /// @param modelVersionId See `modelVersionIdOf`.
    /// @return The model version's content hash.
    function storedModelVersionHash(bytes32 modelVersionId) external view returns (bytes32) {
        return _modelVersions[modelVersionId];
    }

    /// @notice The next nonce `signer` must use for `approvePlanBySig`.
    /// @param signer The admin.
    /// @return The nonce.
    function nonces(address signer) external view returns (uint64) {
        return _nonces[signer];
    }

    /// @notice keccak256(abi.encode(jobId, round, hospitalId)): an update's write-once key and its id.
    /// @param jobId The job.
    /// @param round The round.
    /// @param hospitalId The hospital.
    /// @return id The update id.
    function updateIdOf(bytes32 jobId, uint32 round, bytes32 hospitalId) public pure returns (bytes32 id) {
        assembly ("memory-safe") {
            let m := mload(0x40)
            mstore(m, jobId)
            mstore(add(m, 0x20), and(round, 0xffffffff))
            mstore(add(m, 0x40), hospitalId)
            id := keccak256(m, 0x60)
        }
    }

    /// @notice keccak256(abi.encode(jobId, round, hospitalId, planHash, weightsHash, cidDigest, samples,
    /// patientRoot, pinnedBlock)): what is stored for an update (all its members but the deadline).
    /// @param u The update.
    /// @return The update's content hash.
    function updateHashOf(Update calldata u) external pure returns (bytes32) {
        (, bytes32 updateHash) = _hashUpdate(u);
        return updateHash;
    }

    /// @notice keccak256(abi.encode(jobId, round)): a model version's write-once key.
    /// @param jobId The job.
    /// @param round The round.
    /// @return id The model version id.
    function modelVersionIdOf(bytes32 jobId, uint32 round) public pure returns (bytes32 id) {
        assembly ("memory-safe") {
            mstore(0, jobId)
            mstore(0x20, and(round, 0xffffffff))
            id := keccak256(0, 0x40)
        }
    }

    /// @notice keccak256(abi.encode(jobId, round, weightsHash, cidDigest, metricsHash, updatesRoot)): what is
    /// stored for a model version.
    /// @param v The model version.
    /// @return The model version's content hash.
    function modelVersionHashOf(ModelVersion calldata v) external pure returns (bytes32) {
        return _hashModelVersion(v);
    }

    /// @notice The EIP-712 domain separator in force (rebuilt if the chain id changes).
    /// @return The domain separator.
    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    // ---------------------------------------------------------------- internals

    /// @dev An identical re-send answers first, from the stored hash alone: it changes nothing, so it needs no
    /// deadline or signature (a relayer retrying after the deadline must not see a stored update fail). Then the
    /// fixed order: deadline -> write-once slot -> signature -> hospital/plan/terms -> effects -> event. Returns
    /// the failed check's error selector, or 0 when the update is stored (now or before).
    function _submit(Update calldata u, bytes32 r, bytes32 vs)
        private
        returns (bytes32 id, bytes32 updateHash, bytes4 reason)
    {
        bytes32 jobId = u.jobId;
        uint32 round = u.round;
        bytes32 hospitalId = u.hospitalId;
        id = updateIdOf(jobId, round, hospitalId);
        bytes32 structHash;
        (structHash, updateHash) = _hashUpdate(u);
        bytes32 stored = _updates[id];
        if (stored == updateHash) return (id, updateHash, 0);

        if (block.timestamp > u.deadline) return (id, updateHash, DeadlineExpired.selector);
        if (stored != 0) return (id, updateHash, UpdateConflict.selector);
        (address account, , bool active) = directory.hospital(hospitalId);
        if (!_signedBy(structHash, r, vs, account)) return (id, updateHash, BadSignature.selector);
        if (!active) return (id, updateHash, HospitalNotActive.selector);
        bytes32 planHash = u.planHash;
        if (_approvedPlans[_approvalKey(hospitalId, jobId)] != planHash) {
            return (id, updateHash, PlanNotApproved.selector);
        }
        if (u.samples == 0 || u.weightsHash == 0) return (id, updateHash, EmptyUpdate.selector);

        _updates[id] = updateHash;
        emit UpdateSubmitted(
            jobId, hospitalId, round, planHash, u.weightsHash, u.cidDigest, u.samples, u.patientRoot, u.pinnedBlock
        );
    }

    /// @dev (EIP-712 struct hash, content hash) in one pass over scratch memory: the struct's ten static members
    /// are copied after the typehash; the content hash covers the nine before the deadline. The small members
    /// are masked to their widths, so the hashes are of the values the ABI decoder reads.
    function _hashUpdate(Update calldata u) private pure returns (bytes32 structHash, bytes32 updateHash) {
        bytes32 typehash = UPDATE_TYPEHASH;
        assembly ("memory-safe") {
            let m := mload(0x40)
            mstore(m, typehash)
            calldatacopy(add(m, 0x20), u, 0x140)
            let u32 := 0xffffffff
            let u64 := 0xffffffffffffffff
            mstore(add(m, 0x40), and(mload(add(m, 0x40)), u32)) // round
            mstore(add(m, 0xe0), and(mload(add(m, 0xe0)), u64)) // samples
            mstore(add(m, 0x120), and(mload(add(m, 0x120)), u64)) // pinnedBlock
            mstore(add(m, 0x140), and(mload(add(m, 0x140)), u64)) // deadline
            structHash := keccak256(m, 0x160)
            updateHash := keccak256(add(m, 0x20), 0x120)
        }
    }

    /// @dev keccak256(abi.encode(...)) of the six static members of a ModelVersion, in scratch memory.
    function _hashModelVersion(ModelVersion calldata v) private pure returns (bytes32 h) {
        assembly ("memory-safe") {
            let m := mload(0x40)
            calldatacopy(m, v, 0xc0)
            mstore(add(m, 0x20), and(mload(add(m, 0x20)), 0xffffffff)) // round
            h := keccak256(m, 0xc0)
        }
    }

    function _approvalKey(bytes32 hospitalId, bytes32 jobId) private pure returns (bytes32 key) {
        assembly ("memory-safe") {
            mstore(0, hospitalId)
            mstore(0x20, jobId)
            key := keccak256(0, 0x40)
        }
    }

    /// @dev OZ's tryRecover also rejects high-s and invalid signatures (recovered zero address), so an unknown
    /// hospital (account zero) never passes.
    function _signedBy(bytes32 structHash, bytes32 r, bytes32 vs, address account) private view returns (bool) {
        (address signer, ECDSA.RecoverError err, ) = ECDSA.tryRecover(_hashTypedDataV4(structHash), r, vs);
        return err == ECDSA.RecoverError.NoError && signer == account;
    }

    /// @dev Reverts with a parameterless custom error given by its selector, so the single entry point raises
    /// exactly the error whose selector the batch reports in `UpdateSkipped`.
    function _revertWith(bytes4 selector) private pure {
        assembly ("memory-safe") {
            mstore(0, selector)
            revert(0, 4)
        }
    }
}
