// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {Multicall} from "@openzeppelin/contracts/utils/Multicall.sol";

/// @title HealthHash Anchors
/// @notice Write-once Merkle roots: one per batch of records (the leaves commit to each record's id, patient and
/// the SHA-256 of its sealed bytes) and one per batch of access-log heads. The trees are built off chain (their
/// encoding is documented in ehr/anchoring.py and access/audit/anchoring.py); a record proves its inclusion
/// against `recordRootOf(batchId)`. Re-sending a root that is already there is a no-op, so a relayer may retry
/// freely; several roots fit in one transaction through `multicall`.
contract Anchors is AccessControl, Multicall {
    /// @notice Role allowed to write anchors.
    bytes32 public constant ANCHOR_ROLE = keccak256("ANCHOR_ROLE");

    error ZeroRoot();
    error RecordRootMismatch();
    error AuditRootMismatch();

    event RecordRootAnchored(bytes32 indexed batchId, bytes32 root, uint32 recordCount);
    event AuditRootAnchored(bytes32 indexed batchId, bytes32 root, uint32 headCount);

    mapping(bytes32 batchId => bytes32 root) private _recordRoots;
    mapping(bytes32 batchId => bytes32 root) private _auditRoots;

    /// @param admin Gets DEFAULT_ADMIN_ROLE (manages writers) and ANCHOR_ROLE.
    constructor(address admin) {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(ANCHOR_ROLE, admin);
    }

    /// @notice Anchors the Merkle root of a batch of records, once per batch id. The same root again is a
    /// no-op; a different root for an anchored batch reverts.
    /// @param root The Merkle root.
    /// @param recordCount How many records the root covers.
    /// @param batchId The batch's idempotency key.
    function anchorRecordRoot(bytes32 root, uint32 recordCount, bytes32 batchId) external onlyRole(ANCHOR_ROLE) {
        if (root == 0) revert ZeroRoot();
        bytes32 stored = _recordRoots[batchId];
        if (stored == root) return;
        if (stored != 0) revert RecordRootMismatch();
        _recordRoots[batchId] = root;
        emit RecordRootAnchored(batchId, root, recordCount);
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

    /// @notice The anchored root of a record batch, zero when none.
    /// @param batchId The batch.
    /// @return The root.
    function recordRootOf(bytes32 batchId) external view returns (bytes32) {
        return _recordRoots[batchId];
    }

    /// @notice The anchored root of an audit batch, zero when none.
    /// @param batchId The batch.
    /// @return The root.
    function auditRootOf(bytes32 batchId) external view returns (bytes32) {
        return _auditRoots[batchId];
    }
}
