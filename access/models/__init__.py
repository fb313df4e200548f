"""The access app's models: identities (identity.py) and consent (consent.py, the lead's)."""

from __future__ import annotations

from access.models.audit import (  # noqa: F401 - re-exported
    AccessAction,
    AccessLogEntry,
    AccessOutcome,
    AccessPurpose,
    AuditAnchorBatch,
    AuditAnchorLeaf,
    AuditBatchStatus,
    AuditChainHead,
    LegalBasis,
    LegalBasisKind,
)
from access.models.audit_lost import AuditLostBatch  # noqa: F401 - re-exported
from access.models.breakglass import BreakGlass, ReviewStatus  # noqa: F401 - re-exported
from access.models.consent import *  # noqa: F403
from access.models.identity import (  # noqa: F401 - re-exported
    ApiToken,
    Doctor,
    Hospital,
    KeyKind,
    ManagedKey,
    Role,
    SiweNonce,
    User,
)
from access.models.requests import AccessRequest, RequestStatus  # noqa: F401 - re-exported
