"""contracts/build must match contracts/src: a stale build fails here (run `manage.py compile_contracts`)."""

from __future__ import annotations

from contracts import compiler
from contracts.artifacts import load_artifact


def test_build_artifacts_match_the_sources():
    assert not compiler.artifacts_are_stale(), "contracts/build is stale: run `manage.py compile_contracts`"


def test_recompiling_reproduces_the_committed_bytecode():
    for name, fresh in compiler.compile_contracts().items():
        committed = load_artifact(name)
        assert committed.bytecode == fresh["bytecode"], name
        assert committed.abi == fresh["abi"], name
        assert committed.source_hash == compiler.source_hash()


def test_artifacts_expose_the_interface_the_app_relies_on():
    registry = {item.get("name") for item in load_artifact("ConsentRegistry").abi}
    assert {
        "grantBySig",
        "grantBatch",
        "revokeBatch",
        "isAllowed",
        "ConsentGranted",
        "ConsentSkipped",
    } <= registry
    directory = {item.get("name") for item in load_artifact("Directory").abi}
    assert {"execute", "executeBySig", "isActiveGrantee", "nonces", "DoctorRegistered"} <= directory
    anchors = {item.get("name") for item in load_artifact("Anchors").abi}
    assert {"anchorRecordRoot", "anchorAuditRoot", "recordRootOf", "auditRootOf", "ANCHOR_ROLE"} <= anchors
    training = {item.get("name") for item in load_artifact("TrainingRegistry").abi}
    assert {
        "approvePlanBySig",
        "submitUpdateBySig",
        "submitUpdateBatch",
        "publishModelVersion",
        "approvedPlanOf",
        "UpdateSubmitted",
        "UpdateSkipped",
        "ModelVersionPublished",
        "OPERATOR_ROLE",
    } <= training
