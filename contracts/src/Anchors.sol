// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";

/// @title HealthHash Anchors
/// @notice Write-once anchors: the SHA-256 digest of each record's sealed bytes, and Merkle roots of batches of
/// access-log heads. Re-sending an anchor that is already there is a no-op, so a relayer may retry freely.
contract Anchors is AccessControl {
    /// @notice Role allowed to write anchors.
    bytes32 public constant ANCHOR_ROLE = keccak256("ANCHOR_ROLE");

    /// @notice One record anchor.
    struct RecordAnchor {
        bytes32 recordId;
        address patient;
        bytes32 digest;
    }

    error DigestMismatch();
    error ZeroDigest();
    error ZeroRoot();
    error AuditRootMismatch();

    event RecordAnchored(bytes32 indexed recordId, address indexed patient, bytes32 digest);
    event AnchorSkipped(bytes32 indexed recordId, bytes4 reason);
    event AuditRootAnchored(bytes32 indexed batchId, bytes32 root, uint32 headCount);

    mapping(bytes32 recordId => bytes32 digest) private _digests;
    mapping(bytes32 batchId => bytes32 root) private _auditRoots;

    /// @param admin Gets DEFAULT_ADMIN_ROLE (manages writers) and ANCHOR_ROLE.
    constructor(address admin) {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(ANCHOR_ROLE, admin);
    }

    /// @notice Anchors record digests, write-once per record id. The same (recordId, digest) again is a silent
    /// no-op; a different digest for an anchored id, or a zero digest, is skipped with `AnchorSkipped`.
    /// @param items The anchors.
    function anchorRecords(RecordAnchor[] calldata items) external onlyRole(ANCHOR_ROLE) {
        for (uint256 i; i < items.length; ++i) {
            RecordAnchor calldata item = items[i];
            if (item.digest == 0) {
                // Zero means "not anchored" in storage, so it can never be an anchor.
                emit AnchorSkipped(item.recordId, ZeroDigest.selector);
                continue;
            }
            bytes32 stored = _digests[item.recordId];
            if (stored == item.digest) continue; // idempotent re-send
            if (stored != 0) {
                emit AnchorSkipped(item.recordId, DigestMismatch.selector);
            } else {
                _digests[item.recordId] = item.digest;
                emit RecordAnchored(item.recordId, item.patient, item.digest);
            }
        }
    }

    /// @notice Anchors the Merkle root of a batch of access-log heads, once per batch id. The same root again
    /// is a no-op; a different root for an anchored batch reverts.
    /// @param root The Merkle root.
    /// @param headCount How many heads the root covers.
    /// @param batchId The batch's idempotency key.
    function anchorAuditRoot(bytes32 root, uint32 headCount, bytes32 batchId) external onlyRole(ANCHOR_ROLE) {
        if (root == 0) revert ZeroRoot();
        bytes32 stored = _auditRoots[batchId];
        if (stored == root) return;
        if (stored != 0) revert AuditRootMismatch();
        _auditRoots[batchId] = root;
        emit AuditRootAnchored(batchId, root, headCount);
    }

    /// @notice The anchored digest of a record, zero when none.
    /// @param recordId The record.
    /// @return The digest.
    function digestOf(bytes32 recordId) external view returns (bytes32) {
        return _digests[recordId];
    }

    /// @notice The anchored root of an audit batch, zero when none.
    /// @param batchId The batch.
    /// @return The root.
    function auditRootOf(bytes32 batchId) external view returns (bytes32) {
        return _auditRoots[batchId];
    }
}
