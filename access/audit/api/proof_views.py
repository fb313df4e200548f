"""GET /api/patients/me/access-log/proof: the patient's whole log as a verifier needs it (see proof.py)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from access.audit.api.proof_serializers import AccessLogProofOut
from access.audit.proof import access_log_proof
from access.identity.users import signed_in_user


class AccessLogProofView(APIView):
    @extend_schema(responses=AccessLogProofOut)
    def get(self, request: Request) -> Response:
        """My access log as an independent verifier needs it, oldest first: each entry's canonical bytes
        and the hash before it, so that entry_hash(n) = sha256(prev_hash(n) || canonical(n)) can be
        recomputed from 32 zero bytes; and the latest anchored head's Merkle proof (leaf =
        sha256(0x00 || patient || uint64 seq || head_hash), node = sha256(0x01 || left || right)) to the
        root that Anchors.auditRootOf(batch_id) returns on chain `chain_id` at `contract_address`, with
        the anchoring transaction and block. Only the patient herself: others get 403."""
        return Response(AccessLogProofOut(access_log_proof(patient=signed_in_user(request))).data)
