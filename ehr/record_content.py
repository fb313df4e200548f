"""What goes inside a record's seal: validated FHIR JSON, or a file together with the DocumentReference
that carries it; and the input errors (invalid FHIR, empty, oversized or unsupported files) with their
HTTP codes.

A file record seals one envelope, ``MAGIC | len(doc) (4 bytes) | DocumentReference JSON | file bytes``,
so the file's title, size and hash stay as secret as the file, and one CID, key and anchor cover both.
"""

from __future__ import annotations

import hashlib
import json
import struct
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from rest_framework import status

from access.consent.scopes import CATEGORIES
from ehr import fhir
from ehr.models import FHIR_JSON
from healthhash.errors import DomainError

_FILE_MAGIC = b"HHDOC1\n"


class InvalidFhir(DomainError):
    code = "invalid_fhir"


class NotARecord(DomainError):
    """Valid FHIR that HealthHash does not keep as a record: a policy refusal, not a FHIR defect."""

    code = "not_a_record"
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY


# What a record can be, for the message that refuses anything else.
RECORD_KINDS = (
    "a clinical FHIR resource (Observation, DiagnosticReport, Condition, AllergyIntolerance, "
    "MedicationStatement, MedicationRequest, Immunization, Procedure, ImagingStudy, DocumentReference, ...), "
    "a FHIR document Bundle, or a PDF, PNG, JPEG or DICOM file"
)


class TooLarge(DomainError):
    code = "too_large"
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE


class EmptyFile(DomainError):
    code = "empty_file"


class UnsupportedContentType(DomainError):
    code = "unsupported_media_type"
    status_code = status.HTTP_415_UNSUPPORTED_MEDIA_TYPE


class BadCategory(DomainError):
    code = "bad_category"


@dataclass(frozen=True)
class PreparedRecord:
    """A record ready to seal: its id, what the database may know about it, and the plaintext."""

    record_id: uuid.UUID
    category: str
    resource_type: str
    content_type: str
    plaintext: bytes


def check_size(size: int, *, what: str = "the record") -> None:
    limit = settings.RECORD_MAX_BYTES
    if size > limit:
        raise TooLarge(f"{what} is {size} bytes; the limit is {limit} bytes")


def check_category(category: str, *, field: str = "category") -> str:
    if category not in CATEGORIES:
        raise BadCategory(
            f"unknown category {category!r}; expected one of {', '.join(CATEGORIES)}", field=field
        )
    return category


def invalid_fhir(error: fhir.FhirValidationError) -> InvalidFhir | NotARecord:
    """The API error for a FHIR defect: `field` is the FHIR path of the first bad element.

    Valid FHIR that is not a health record is not a defect: it is refused as `not_a_record` (422).
    """
    if isinstance(error, fhir.NotARecordError):
        return NotARecord(f"{error.message}; a record is {RECORD_KINDS}", field=error.path)
    return InvalidFhir(f"invalid FHIR at {error.path}: {error.message}", field=error.path)


def prepare_fhir(resource: Any, *, validated: bool = False) -> PreparedRecord:
    """Validate one FHIR resource (unless the caller already did) and shape it as a record.

    The resource keeps its own id; one without an id gets the record id, so exports can refer to it.
    """
    try:
        if not validated:
            fhir.validate_resource(resource)
        category = _category(resource)
    except fhir.FhirValidationError as exc:
        raise invalid_fhir(exc) from None
    record_id = uuid.uuid4()
    if not resource.get("id"):
        resource = {**resource, "id": str(record_id)}
    plaintext = json.dumps(resource, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    check_size(len(plaintext), what="the FHIR resource")
    return PreparedRecord(record_id, category, resource["resourceType"], FHIR_JSON, plaintext)


def _category(resource: dict[str, Any]) -> str:
    # A FHIR document (a composed, signed whole: discharge letter, report) is one record; bundles of
    # independent resources are split by the import instead.
    if resource["resourceType"] == "Bundle":
        if resource.get("type") == "document":
            return "clinical-note"
        raise fhir.NotARecordError(
            "Bundle.type", "only a document Bundle is one record; import other bundles at /api/records/import"
        )
    return fhir.category_of(resource)


def prepare_file(
    data: bytes, *, declared_type: str, title: str, category: str, patient_address: str
) -> PreparedRecord:
    """Check an upload (size, type by magic bytes) and wrap it with its DocumentReference."""
    if not data:
        raise EmptyFile("the file is empty", field="file")
    check_size(len(data), what="the file")
    check_category(category)
    try:
        content_type = fhir.sniff_content_type(data, declared_type)
    except fhir.FileTypeError as exc:
        raise UnsupportedContentType(str(exc), field="file") from None
    record_id = uuid.uuid4()
    document = fhir.document_reference_for_file(
        patient_ref=patient_address,
        content_type=content_type,
        title=title or "document",
        size=len(data),
        sha256_hex=hashlib.sha256(data).hexdigest(),
        url=f"/api/records/{record_id}/content",
        created=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    document["id"] = str(record_id)
    doc_bytes = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    plaintext = b"".join((_FILE_MAGIC, struct.pack(">I", len(doc_bytes)), doc_bytes, data))
    return PreparedRecord(record_id, category, "DocumentReference", content_type, plaintext)


@dataclass(frozen=True)
class RecordContent:
    """A decrypted record: the FHIR resource (a DocumentReference for a file) and the file's bytes."""

    resource: dict[str, Any]
    file_bytes: bytes | None


def unpack(plaintext: bytes, *, content_type: str) -> RecordContent:
    if content_type == FHIR_JSON:
        return RecordContent(json.loads(plaintext), None)
    if not plaintext.startswith(_FILE_MAGIC):
        raise ValueError("sealed file envelope has an unknown format")
    start = len(_FILE_MAGIC) + 4
    (doc_len,) = struct.unpack(">I", plaintext[len(_FILE_MAGIC) : start])
    document = json.loads(plaintext[start : start + doc_len])
    return RecordContent(document, plaintext[start + doc_len :])
