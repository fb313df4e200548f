"""FHIR handling for records: validate incoming R4 JSON, split bundles, shape exports and file references.

Validation uses ``fhir.resources`` 8.x ``R4B`` models (FHIR 4.3, wire-compatible with R4 for
the resources HealthHash stores; 6.4.0 is the last release with true R4 but needs pydantic 1).
Every failure is a :class:`FhirValidationError` whose ``path`` names the first bad element in
FHIR path style (``Bundle.entry[2].resource.code``) and whose message a person can act on.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.resource import Resource
from pydantic import ValidationError

__all__ = [
    "ALLOWED_FILE_TYPES",
    "BundleEntry",
    "FhirValidationError",
    "FileTypeError",
    "NotARecordError",
    "ValidatedResource",
    "bundle_entries",
    "category_of",
    "document_reference_for_file",
    "reference_to",
    "sniff_content_type",
    "split_bundle",
    "validate_resource",
]

ALLOWED_FILE_TYPES = ("application/pdf", "image/png", "image/jpeg", "application/dicom")

# Codes with a *required* binding that the R4B models accept as any string (FHIR 4.0.1 value sets).
REQUIRED_CODES: dict[str, dict[str, tuple[str, ...]]] = {
    rtype: {element: tuple(codes.split()) for element, codes in elements.items()}
    for rtype, elements in {
        "Observation": {
            "status": "registered preliminary final amended corrected cancelled entered-in-error unknown"
        },
        "DiagnosticReport": {
            "status": "registered partial preliminary final amended corrected appended cancelled "
            "entered-in-error unknown"
        },
        "MedicationStatement": {
            "status": "active completed entered-in-error intended stopped on-hold unknown not-taken"
        },
        "MedicationRequest": {
            "status": "active on-hold cancelled completed entered-in-error stopped draft unknown"
        },
        "DocumentReference": {"status": "current superseded entered-in-error"},
        "ImagingStudy": {"status": "registered available cancelled entered-in-error unknown"},
        "Consent": {"status": "draft proposed active rejected inactive entered-in-error"},
        "Patient": {"gender": "male female other unknown"},
        "AuditEvent": {"action": "C R U D E", "outcome": "0 4 8 12"},
        "Bundle": {
            "type": "document message transaction transaction-response batch batch-response history "
            "searchset collection"
        },
    }.items()
}

# Resource types that are not health records, so they have no category.
NON_RECORD_TYPES = frozenset(
    "Patient Practitioner PractitionerRole Organization Person RelatedPerson Consent AuditEvent Provenance "
    "Bundle Endpoint Location HealthcareService Device OperationOutcome Parameters Subscription "
    "CapabilityStatement".split()
)
RESOURCE_CATEGORIES = {
    **dict.fromkeys(["Condition", "AllergyIntolerance"], "condition"),
    **dict.fromkeys(
        "MedicationStatement MedicationRequest MedicationAdministration MedicationDispense Medication "
        "Immunization".split(),
        "medication",
    ),
    **dict.fromkeys(["ImagingStudy", "Media"], "imaging"),
    **dict.fromkeys(["DocumentReference", "Binary"], "document"),
}
# HL7 v2-0074 diagnostic service sections that are imaging or laboratory, plus LOINC's Radiology
# and Pathology parts.
IMAGING_REPORT_CODES = frozenset("RAD CT MR NMR NMS RUS OUS CUS VUS XRC RX US LP29684-5".split())
LAB_REPORT_CODES = frozenset("LAB HM CH MB MCB SP SR BLB BG CP IMM TX VR MYC PAT HLA LP7839-6".split())
# A DiagnosticReport sent without a category is laboratory unless its code says imaging. The code says
# so by its system when that system only names imaging things (DICOM's DCM vocabulary, RadLex and the
# RadLex Playbook), or, for LOINC, by the term's class (RAD). LOINC codes do not carry their class and
# the LOINC table is not shipped, so the imaging report terms met in practice are listed here: the
# generic imaging-report document codes, DXA (bone density), chest X-ray, chest CT and screening
# mammography. Anything else without a category stays laboratory; senders should set the category.
IMAGING_CODE_SYSTEMS = frozenset(
    {
        "http://dicom.nema.org/resources/ontology/DCM",
        "http://radlex.org",
        "http://www.radlex.org",
        "http://radlex.org/RID",
        "http://www.radlex.org/RPID",
    }
)
IMAGING_REPORT_LOINC = frozenset(
    "18748-4 18782-3 18726-0 19005-8 18747-6 18755-9 18760-9 38269-7 36643-5 24627-2 24606-6".split()
)
# LOINC codes of the FHIR vital-signs profiles (and their panel), for uncategorised Observations.
VITAL_SIGN_LOINC = frozenset(
    "85353-1 9279-1 8867-4 2708-6 59408-5 8310-5 8302-2 9843-4 29463-7 39156-5 85354-9 8480-6 8462-4 "
    "8478-0".split()
)


class FhirValidationError(ValueError):
    """A resource failed validation; ``path`` names the first bad element, ``message`` says what is wrong."""

    def __init__(self, path: str, message: str, *, more: int = 0) -> None:
        suffix = f" (and {more} more problem{'s' if more != 1 else ''})" if more else ""
        super().__init__(f"{path}: {message}{suffix}")
        self.path = path
        self.message = message
        self.more = more


class NotARecordError(FhirValidationError):
    """Valid FHIR that is not a health record (Patient, Practitioner, Consent, a searchset Bundle, ...)."""


@dataclass(frozen=True)
class ValidatedResource:
    """A resource that passed validation: its type, id and R4B model; ``data`` is the normalised JSON dict."""

    resource_type: str
    id: str | None
    model: Resource

    @cached_property
    def data(self) -> dict[str, Any]:
        # Dumping costs about twice the validation, so only callers that need the dict pay for it.
        return self.model.model_dump(mode="json")


# --------------------------------------------------------------------------- validation


def validate_resource(data: object) -> ValidatedResource:
    """Validate one FHIR resource (a Bundle counts as one); raise :class:`FhirValidationError` if bad."""
    resource_type = _resource_type_of(data, path="")
    _check_nested_resources(data, path=resource_type)  # type: ignore[arg-type]
    model_class = get_fhir_model_class(resource_type)
    try:
        model = model_class.model_validate(data)
    except ValidationError as error:
        raise error_from_pydantic(error, resource_type=resource_type, data=data) from None
    if not isinstance(model, Resource):  # a data type's name (e.g. "Quantity") is no resourceType
        raise FhirValidationError("resourceType", f"{resource_type} is not a FHIR resource")
    _check_required_codes(data, path=resource_type)  # type: ignore[arg-type]
    return ValidatedResource(resource_type=resource_type, id=model.id, model=model)


@dataclass(frozen=True)
class BundleEntry:
    """One entry of a split Bundle: its index, resource (None for a DELETE or GET) and request method."""

    index: int
    resource: ValidatedResource | None
    method: str | None


def bundle_entries(data: object) -> list[BundleEntry]:
    """Validate a transaction or collection Bundle and return every entry, in order.

    Transaction entries that only carry a request (DELETE, GET) have no resource: they come back with
    ``resource=None`` for the caller to skip and report, rather than refusing a valid Bundle.
    """
    if _resource_type_of(data, path="") != "Bundle":
        raise FhirValidationError("resourceType", "must be Bundle to split a bundle")
    bundle = validate_resource(data).model
    assert isinstance(bundle, Bundle)  # resourceType was checked above
    if bundle.type not in ("transaction", "collection"):
        raise FhirValidationError(
            "Bundle.type", f"must be transaction or collection to import, not {bundle.type!r}"
        )
    entries = []
    for index, entry in enumerate(bundle.entry or []):
        method = entry.request.method if entry.request is not None else None
        resource = entry.resource
        validated = (
            None
            if resource is None
            else ValidatedResource(resource_type=resource.get_resource_type(), id=resource.id, model=resource)
        )
        entries.append(BundleEntry(index=index, resource=validated, method=method))
    return entries


def split_bundle(data: object) -> list[ValidatedResource]:
    """Validate a transaction or collection Bundle and return its entries' resources, in order.

    Entries without a resource (a transaction's DELETE or GET) are left out; `bundle_entries` keeps them.
    """
    return [entry.resource for entry in bundle_entries(data) if entry.resource is not None]


def _resource_type_of(data: object, *, path: str) -> str:
    where = f"{path}.resourceType" if path else "resourceType"
    if not isinstance(data, Mapping):
        raise FhirValidationError(path or "(root)", "a FHIR resource must be a JSON object")
    resource_type = data.get("resourceType")
    if resource_type is None:
        raise FhirValidationError(where, "is required")
    if not isinstance(resource_type, str) or not _is_resource_type(resource_type):
        raise FhirValidationError(where, f"{str(resource_type)[:60]!r} is not a FHIR R4 resource type")
    return resource_type


def _is_resource_type(name: str) -> bool:
    if not re.fullmatch(r"[A-Z][A-Za-z]{1,60}", name):
        return False
    try:
        model_class = get_fhir_model_class(name)
    except ValueError:
        return False
    # Data types (Quantity, Coding, ...) have model classes too, but are not resources.
    return issubclass(model_class, Resource) and model_class.get_resource_type() == name


def _check_nested_resources(data: Mapping[str, Any], *, path: str) -> None:
    """Check embedded resources' resourceType up front: the library fails on unknown ones with a KeyError."""
    for field in ("entry", "contained"):
        items = data.get(field)
        if not isinstance(items, list):
            continue  # the model reports a non-list with the right path
        for index, item in enumerate(items):
            item_path = f"{path}.{field}[{index}]"
            if field == "entry":
                if not isinstance(item, Mapping) or item.get("resource") is None:
                    continue
                item, item_path = item["resource"], f"{item_path}.resource"
            _resource_type_of(item, path=item_path)
            _check_nested_resources(item, path=item_path)


def _check_required_codes(data: Mapping[str, Any], *, path: str) -> None:
    """Check codes with a *required* binding that the R4B models accept as free strings."""
    for element, allowed in REQUIRED_CODES.get(data["resourceType"], {}).items():
        value = data.get(element)
        if value is not None and value not in allowed:
            raise FhirValidationError(
                f"{path}.{element}",
                f"{str(value)[:60]!r} is not an allowed code; use one of: {', '.join(allowed)}",
            )
    for field in ("entry", "contained"):
        for index, item in enumerate(data.get(field) or []):
            if field == "entry":
                if item.get("resource") is not None:
                    _check_required_codes(item["resource"], path=f"{path}.entry[{index}].resource")
            else:
                _check_required_codes(item, path=f"{path}.contained[{index}]")


# --------------------------------------------------------------------------- categories


def category_of(resource: Mapping[str, Any]) -> str:
    """The HealthHash category of a record resource (the unit of a ``category:<name>`` consent).

    laboratory / vital-signs / imaging for Observations by their category code (uncategorised
    ones with a vital-sign LOINC code are vital-signs); DiagnosticReport is imaging when its
    category is a radiology/imaging code, or, with no lab category, when it links an
    ImagingStudy or its code is an imaging code (see IMAGING_REPORT_LOINC); laboratory when
    its category is a lab code or absent; condition, medication, document by resource type.
    Any other clinical resource falls into the catch-all ``clinical-note``. Administrative
    resources that are not health records (Patient, Consent, AuditEvent, Bundle,
    Practitioner, ...) raise NotARecordError.
    """
    resource_type = resource.get("resourceType")
    if resource_type in NON_RECORD_TYPES:
        raise NotARecordError("resourceType", f"{resource_type} is not a health record")
    if resource_type == "Observation":
        return _observation_category(resource)
    if resource_type == "DiagnosticReport":
        return _report_category(resource)
    return RESOURCE_CATEGORIES.get(str(resource_type), "clinical-note")


def _report_category(resource: Mapping[str, Any]) -> str:
    codes = _category_codes(resource)
    if codes & IMAGING_REPORT_CODES:
        return "imaging"
    if codes & LAB_REPORT_CODES:
        return "laboratory"
    if _is_imaging_report(resource):
        return "imaging"
    return "clinical-note" if codes else "laboratory"


def _is_imaging_report(resource: Mapping[str, Any]) -> bool:
    """Does the report itself say imaging: a linked ImagingStudy, or an imaging code (by system or LOINC)?"""
    if resource.get("imagingStudy"):
        return True
    code = resource.get("code")
    codings = (code.get("coding") or []) if isinstance(code, Mapping) else []
    systems = {str(c.get("system", "")).rstrip("/") for c in codings if isinstance(c, Mapping)}
    return bool(systems & IMAGING_CODE_SYSTEMS or _loinc_codes(code) & IMAGING_REPORT_LOINC)


def _observation_category(resource: Mapping[str, Any]) -> str:
    codes = _category_codes(resource)
    for code in ("vital-signs", "laboratory", "imaging"):
        if code in codes:
            return code
    if not codes and _loinc_codes(resource.get("code")) & VITAL_SIGN_LOINC:
        return "vital-signs"
    return "clinical-note"


def _category_codes(resource: Mapping[str, Any]) -> set[str]:
    return {
        str(coding.get("code"))
        for concept in resource.get("category") or []
        if isinstance(concept, Mapping)
        for coding in concept.get("coding") or []
        if isinstance(coding, Mapping) and coding.get("code")
    }


def _loinc_codes(concept: object) -> set[str]:
    if not isinstance(concept, Mapping):
        return set()
    return {
        str(coding.get("code"))
        for coding in concept.get("coding") or []
        if isinstance(coding, Mapping) and coding.get("system") == "http://loinc.org"
    }


# --------------------------------------------------------------------------- files


class FileTypeError(ValueError):
    """An uploaded file is empty, of a type HealthHash does not take, or not what it claims to be."""


_GENERIC_TYPES = {"", "application/octet-stream", "binary/octet-stream"}
_ALIASES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg", "application/x-pdf": "application/pdf"}


def sniff_content_type(data: bytes, declared: str) -> str:
    """The checked content type of an upload: PDF, PNG, JPEG or DICOM by magic bytes.

    A generic declared type (empty, application/octet-stream) yields the sniffed type; a
    specific one must agree with the bytes, else :class:`FileTypeError`.
    """
    if not data:
        raise FileTypeError("the file is empty")
    wanted = declared.split(";", 1)[0].strip().lower()
    wanted = _ALIASES.get(wanted, wanted)
    if wanted not in _GENERIC_TYPES and wanted not in ALLOWED_FILE_TYPES:
        raise FileTypeError(f"{declared!r} files are not accepted; upload PDF, PNG, JPEG or DICOM")
    detected = _detect(data)
    if detected is None:
        raise FileTypeError(
            "the file is not a PDF, PNG, JPEG or DICOM file"
            + ("" if wanted in _GENERIC_TYPES else f" (declared as {wanted})")
        )
    if wanted not in _GENERIC_TYPES and wanted != detected:
        raise FileTypeError(f"the file was declared as {wanted} but its content is {detected}")
    return detected


def _detect(data: bytes) -> str | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[128:132] == b"DICM":  # DICOM Part 10: 128-byte preamble, then the magic
        return "application/dicom"
    if b"%PDF-" in data[:1024]:  # readers accept the header anywhere in the first 1 KiB
        return "application/pdf"
    return None


def document_reference_for_file(
    *,
    patient_ref: str,
    content_type: str,
    title: str,
    size: int,
    sha256_hex: str,
    url: str | None = None,
    data: bytes | None = None,
    created: str | None = None,
) -> dict[str, Any]:
    """A validated DocumentReference (status current) describing an uploaded file.

    FHIR R4 defines ``attachment.hash`` as base64 SHA-1 of the data, so it is filled only when
    ``data`` is given (inline, base64). The SHA-256 HealthHash uses is the version-specific
    ``masterIdentifier`` (system ``urn:healthhash:sha256``), searchable and always present.
    """
    if content_type not in ALLOWED_FILE_TYPES:
        raise FileTypeError(f"{content_type!r} files are not accepted; upload PDF, PNG, JPEG or DICOM")
    if not re.fullmatch(r"[0-9a-f]{64}", sha256_hex):
        raise ValueError("sha256_hex must be 64 lower-case hex digits")
    attachment: dict[str, Any] = {"contentType": content_type, "size": size, "title": title}
    if url is not None:
        attachment["url"] = url
    if data is not None:
        if len(data) != size or hashlib.sha256(data).hexdigest() != sha256_hex:
            raise ValueError("data does not match the given size and sha256_hex")
        attachment["data"] = base64.b64encode(data).decode("ascii")
        attachment["hash"] = base64.b64encode(hashlib.sha1(data).digest()).decode("ascii")  # noqa: S324
    if created is not None:
        attachment["creation"] = created
    resource: dict[str, Any] = {
        "resourceType": "DocumentReference",
        "masterIdentifier": {"system": "urn:healthhash:sha256", "value": sha256_hex},
        "status": "current",
        "subject": reference_to(patient_ref),
        "description": title,
        "content": [{"attachment": attachment}],
    }
    if created is not None:
        resource["date"] = created
    return validate_resource(resource).data


# --------------------------------------------------------------------------- export


def reference_to(ref: str) -> dict[str, Any]:
    """A FHIR Reference for ``Type/id`` / ``urn:...`` / absolute URL, or an Ethereum address by identifier."""
    if re.fullmatch(r"0x[0-9a-fA-F]{40}", ref):
        return {"identifier": {"system": "urn:healthhash:eth-address", "value": ref}}
    return {"reference": ref}


# --------------------------------------------------------------------------- consent and audit export

_FIELD_RE = re.compile(r"_?[A-Za-z][A-Za-z0-9]*")
_PRIMITIVE_HINTS = {
    "Date value": "must be a FHIR date: YYYY, YYYY-MM or YYYY-MM-DD",
    "DateTime value": "must be a FHIR dateTime: YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm:ss+zz:zz",
    "Instant value": "must be a FHIR instant with time zone: YYYY-MM-DDThh:mm:ss(.sss)+zz:zz or Z",
    "Time value": "must be a FHIR time: hh:mm:ss",
    "Decimal value": "must be a number",
}
_TYPE_HINTS = {
    "extra_forbidden": "is not an element of this FHIR type (check spelling and case)",
    "list_type": "must be a JSON array (this element repeats)",
    "string_type": "must be a string",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "model_type": "must be a JSON object",
    "dict_type": "must be a JSON object",
    "json_invalid": "must be a JSON object",
}


def error_from_pydantic(error: ValidationError, *, resource_type: str, data: object) -> FhirValidationError:
    """Turn pydantic's errors into one FhirValidationError at the first bad element in document order."""
    problems = error.errors(include_url=False)
    first = min(problems, key=lambda problem: _document_position(data, problem["loc"]))
    path = _fhir_path(resource_type, first["loc"])
    message = _readable(first)
    if first["type"] == "value_error" and "but got multiple" in message:
        choices = re.findall(r"'(\w+)'", message)
        present = [name for name in choices if isinstance(data, Mapping) and name in data]
        prefix = re.match(r"[a-z]+", choices[0]).group(0) if choices else "value"  # type: ignore[union-attr]
        path = f"{path}.{prefix}[x]"
        message = f"only one of {prefix}[x] may be given, found {', '.join(present) or 'several'}"
    return FhirValidationError(path, message, more=len(problems) - 1)


def _fhir_path(resource_type: str, loc: Iterable[int | str]) -> str:
    path = resource_type
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif _FIELD_RE.fullmatch(part):
            path += f".{part}"
        # other parts are pydantic's validator tags, not FHIR elements
    return path


def _document_position(data: object, loc: Iterable[int | str]) -> tuple[int, ...]:
    """Where an error sits in the input, so the reported one is the first a reader meets."""
    position: list[int] = []
    node = data
    for part in loc:
        if isinstance(part, int) and isinstance(node, list) and part < len(node):
            position.append(part)
            node = node[part]
        elif isinstance(part, str) and isinstance(node, Mapping):
            keys = list(node)
            position.append(keys.index(part) if part in node else len(keys))
            node = node.get(part)
        else:
            break
    return tuple(position)


def _readable(problem: Mapping[str, Any]) -> str:
    kind = problem["type"]
    if kind == "missing" or kind.endswith(".missing"):
        return "is required"
    if kind in _TYPE_HINTS:
        return _TYPE_HINTS[kind]
    message = str(problem["msg"]).removeprefix("Value error, ")
    for hint, readable in _PRIMITIVE_HINTS.items():
        if message.startswith(hint):
            return f"{readable}, got {_shown(problem.get('input'))}"
    if kind.startswith(("date", "datetime", "time")):
        detail = (problem.get("ctx") or {}).get("error") or message
        return f"is not a valid date or time ({detail}), got {_shown(problem.get('input'))}"
    if kind.startswith(("int", "float", "decimal")):
        return f"must be a number, got {_shown(problem.get('input'))}"
    if kind == "string_pattern_mismatch":
        return f"has characters or a form not allowed here, got {_shown(problem.get('input'))}"
    return message


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
