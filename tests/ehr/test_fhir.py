"""Specification of ehr.fhir: R4 validation with FHIR paths, bundles, file references, categories, exports."""

from __future__ import annotations

import base64
import copy
import hashlib
from typing import Any

import pytest

from ehr.fhir import (
    FhirValidationError,
    FileTypeError,
    NotARecordError,
    bundle_entries,
    category_of,
    document_reference_for_file,
    sniff_content_type,
    split_bundle,
    validate_resource,
)
from ehr.fhir_export import chart_bundle, consent_resource

# Small hand-written resources after the official R4 examples (patient-example, observation-example-f001
# glucose, observation-example-heart-rate, condition-example, medicationstatementexample1,
# diagnosticreport-example-ghp / imaging, documentreference-example).
PATIENT: dict[str, Any] = {
    "resourceType": "Patient",
    "id": "example",
    "identifier": [{"use": "usual", "system": "urn:oid:1.2.36.146.595.217.0.1", "value": "12345"}],
    "active": True,
    "name": [{"use": "official", "family": "Chalmers", "given": ["Peter", "James"]}],
    "telecom": [{"system": "phone", "value": "(03) 5555 6473", "use": "work", "rank": 1}],
    "gender": "male",
    "birthDate": "1974-12-25",
    "_birthDate": {
        "extension": [
            {
                "url": "http://hl7.org/fhir/StructureDefinition/patient-birthTime",
                "valueDateTime": "1974-12-25T14:35:45-05:00",
            }
        ]
    },
    "address": [{"use": "home", "line": ["534 Erewhon St"], "city": "PleasantVille", "postalCode": "3999"}],
}
LAB_OBSERVATION: dict[str, Any] = {
    "resourceType": "Observation",
    "id": "f001",
    "status": "final",
    "category": [
        {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                    "code": "laboratory",
                }
            ]
        }
    ],
    "code": {
        "coding": [
            {"system": "http://loinc.org", "code": "15074-8", "display": "Glucose [Moles/volume] in Blood"}
        ]
    },
    "subject": {"reference": "Patient/example"},
    "effectivePeriod": {"start": "2013-04-02T09:30:10+01:00"},
    "issued": "2013-04-03T15:30:10+01:00",
    "valueQuantity": {
        "value": 6.3,
        "unit": "mmol/l",
        "system": "http://unitsofmeasure.org",
        "code": "mmol/L",
    },
    "interpretation": [
        {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "code": "H"}
            ]
        }
    ],
    "referenceRange": [{"low": {"value": 3.1, "unit": "mmol/l"}, "high": {"value": 6.2, "unit": "mmol/l"}}],
}
HEART_RATE: dict[str, Any] = {
    "resourceType": "Observation",
    "id": "heart-rate",
    "meta": {"profile": ["http://hl7.org/fhir/StructureDefinition/vitalsigns"]},
    "status": "final",
    "category": [
        {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                    "code": "vital-signs",
                    "display": "Vital Signs",
                }
            ],
            "text": "Vital Signs",
        }
    ],
    "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}]},
    "subject": {"reference": "Patient/example"},
    "effectiveDateTime": "1999-07-02",
    "valueQuantity": {
        "value": 44,
        "unit": "beats/minute",
        "system": "http://unitsofmeasure.org",
        "code": "/min",
    },
}
CONDITION: dict[str, Any] = {
    "resourceType": "Condition",
    "id": "example",
    "clinicalStatus": {
        "coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]
    },
    "verificationStatus": {
        "coding": [
            {"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "confirmed"}
        ]
    },
    "category": [
        {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-category",
                    "code": "encounter-diagnosis",
                }
            ]
        }
    ],
    "severity": {"coding": [{"system": "http://snomed.info/sct", "code": "24484000", "display": "Severe"}]},
    "code": {"coding": [{"system": "http://snomed.info/sct", "code": "39065001", "display": "Burn of ear"}]},
    "subject": {"reference": "Patient/example"},
    "onsetDateTime": "2012-05-24",
}
MEDICATION_STATEMENT: dict[str, Any] = {
    "resourceType": "MedicationStatement",
    "id": "example001",
    "status": "active",
    "medicationCodeableConcept": {
        "coding": [{"system": "http://snomed.info/sct", "code": "27658006", "display": "Amoxicillin"}]
    },
    "subject": {"reference": "Patient/example"},
    "effectiveDateTime": "2015-01-23",
    "dateAsserted": "2015-02-22",
    "dosage": [
        {
            "sequence": 1,
            "text": "one capsule three times daily",
            "timing": {"repeat": {"frequency": 3, "period": 1, "periodUnit": "d"}},
            "route": {
                "coding": [{"system": "http://snomed.info/sct", "code": "260548002", "display": "Oral"}]
            },
        }
    ],
}
LAB_REPORT: dict[str, Any] = {
    "resourceType": "DiagnosticReport",
    "id": "ghp",
    "status": "final",
    "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "CH"}]}],
    "code": {
        "coding": [{"system": "http://loinc.org", "code": "24323-8", "display": "Comprehensive metabolic"}]
    },
    "subject": {"reference": "Patient/example"},
    "effectiveDateTime": "2015-08-16T06:40:17Z",
    "issued": "2015-08-17T06:40:17Z",
    "result": [{"reference": "Observation/f001"}],
}
IMAGING_REPORT: dict[str, Any] = {
    "resourceType": "DiagnosticReport",
    "id": "ultrasound",
    "status": "final",
    "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "RAD"}]}],
    "code": {
        "coding": [
            {"system": "http://snomed.info/sct", "code": "45036003", "display": "Abdominal ultrasound"}
        ]
    },
    "subject": {"reference": "Patient/example"},
    "conclusion": "Unremarkable study",
}
DOCUMENT_REFERENCE: dict[str, Any] = {
    "resourceType": "DocumentReference",
    "id": "example",
    "status": "current",
    "docStatus": "preliminary",
    "type": {"coding": [{"system": "http://loinc.org", "code": "34108-1", "display": "Outpatient Note"}]},
    "subject": {"reference": "Patient/example"},
    "date": "2005-12-24T09:43:41+11:00",
    "content": [
        {
            "attachment": {
                "contentType": "application/hl7-v3+xml",
                "language": "en-US",
                "url": "http://example.org/xds/mhd/Binary/07a6483f-732b-461e-86b6-edb665c45510",
                "size": 3654,
                "hash": "2jmj7l5rSw0yVb/vlWAYkK/YBwk=",
            }
        }
    ],
}
OFFICIAL_STYLE_EXAMPLES = [
    PATIENT,
    LAB_OBSERVATION,
    HEART_RATE,
    CONDITION,
    MEDICATION_STATEMENT,
    LAB_REPORT,
    IMAGING_REPORT,
    DOCUMENT_REFERENCE,
]


def _with(resource: dict[str, Any], **changes: Any) -> dict[str, Any]:
    changed = copy.deepcopy(resource)
    changed.update(changes)
    return changed


def _without(resource: dict[str, Any], element: str) -> dict[str, Any]:
    changed = copy.deepcopy(resource)
    del changed[element]
    return changed


def _bundle(kind: str, *resources: dict[str, Any]) -> dict[str, Any]:
    entries = [
        {"resource": copy.deepcopy(r), "request": {"method": "POST", "url": r["resourceType"]}}
        for r in resources
    ]
    return {"resourceType": "Bundle", "type": kind, "entry": entries}


def _path_of(data: object) -> str:
    with pytest.raises(FhirValidationError) as caught:
        validate_resource(data)
    return caught.value.path


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize("resource", OFFICIAL_STYLE_EXAMPLES, ids=lambda r: f"{r['resourceType']}-{r['id']}")
def test_spec_style_examples_validate(resource: dict[str, Any]) -> None:
    validated = validate_resource(resource)
    assert validated.resource_type == resource["resourceType"]
    assert validated.id == resource["id"]
    assert validated.data["resourceType"] == resource["resourceType"]


def test_normalised_data_keeps_primitive_extensions() -> None:
    assert validate_resource(PATIENT).data["_birthDate"] == PATIENT["_birthDate"]


def test_wrong_type_names_the_nested_element() -> None:
    bad = _with(LAB_OBSERVATION, valueQuantity={"value": "six point three"})
    with pytest.raises(FhirValidationError) as caught:
        validate_resource(bad)
    assert caught.value.path == "Observation.valueQuantity.value"
    assert "must be a number" in caught.value.message


def test_missing_required_status_is_reported_at_status() -> None:
    with pytest.raises(FhirValidationError) as caught:
        validate_resource(_without(MEDICATION_STATEMENT, "status"))
    assert caught.value.path == "MedicationStatement.status"
    assert caught.value.message == "is required"


def test_status_outside_its_required_value_set_is_rejected() -> None:
    assert _path_of(_with(LAB_OBSERVATION, status="done")) == "Observation.status"


def test_unknown_element_is_named() -> None:
    with pytest.raises(FhirValidationError) as caught:
        validate_resource(_with(CONDITION, diagnosisNote="itchy"))
    assert caught.value.path == "Condition.diagnosisNote"
    assert "not an element" in caught.value.message


def test_unknown_element_deep_inside_a_list_has_its_index() -> None:
    bad = copy.deepcopy(LAB_OBSERVATION)
    bad["referenceRange"][0]["low"]["units"] = "mmol/l"
    assert _path_of(bad) == "Observation.referenceRange[0].low.units"


@pytest.mark.parametrize("date", ["1974-13-01", "1974-02-30", "25/12/1974", "yesterday"])
def test_bad_date_is_reported_with_a_readable_message(date: str) -> None:
    with pytest.raises(FhirValidationError) as caught:
        validate_resource(_with(PATIENT, birthDate=date))
    assert caught.value.path == "Patient.birthDate"
    assert "date" in caught.value.message
    assert date in caught.value.message


def test_instant_without_time_zone_is_rejected() -> None:
    assert _path_of(_with(LAB_OBSERVATION, issued="2013-04-03T15:30:10")) == "Observation.issued"


def test_repeating_element_given_as_object_must_be_an_array() -> None:
    with pytest.raises(FhirValidationError) as caught:
        validate_resource(_with(HEART_RATE, category=HEART_RATE["category"][0]))
    assert caught.value.path == "Observation.category"
    assert "array" in caught.value.message


def test_two_choices_of_value_x_are_rejected() -> None:
    with pytest.raises(FhirValidationError) as caught:
        validate_resource(_with(HEART_RATE, valueString="44"))
    assert caught.value.path == "Observation.value[x]"
    assert "valueQuantity" in caught.value.message and "valueString" in caught.value.message


def test_first_bad_element_in_document_order_is_reported_and_others_counted() -> None:
    bad = _with(PATIENT, gender=7, birthDate="never")
    with pytest.raises(FhirValidationError) as caught:
        validate_resource(bad)
    assert caught.value.path == "Patient.gender"
    assert caught.value.more == 1
    assert "1 more problem" in str(caught.value)


@pytest.mark.parametrize("resource_type", ["Nope", "Quantity", "observation", 42])
def test_unknown_resource_type_is_an_error_at_resource_type(resource_type: object) -> None:
    assert _path_of({"resourceType": resource_type, "id": "x"}) == "resourceType"


def test_missing_resource_type_is_an_error_at_resource_type() -> None:
    assert _path_of(_without(PATIENT, "resourceType")) == "resourceType"


@pytest.mark.parametrize("data", [[PATIENT], "Patient", None, 3])
def test_non_object_input_is_rejected(data: object) -> None:
    with pytest.raises(FhirValidationError, match="JSON object"):
        validate_resource(data)


# --------------------------------------------------------------------------- bundles


def test_transaction_bundle_splits_into_validated_entries_in_order() -> None:
    resources = split_bundle(_bundle("transaction", PATIENT, LAB_OBSERVATION, CONDITION))
    assert [(r.resource_type, r.id) for r in resources] == [
        ("Patient", "example"),
        ("Observation", "f001"),
        ("Condition", "example"),
    ]
    assert resources[1].data["valueQuantity"]["value"] == 6.3


def test_collection_bundle_splits() -> None:
    assert len(split_bundle(_bundle("collection", HEART_RATE, MEDICATION_STATEMENT))) == 2


def test_bad_entry_is_named_with_its_index() -> None:
    bundle = _bundle("transaction", PATIENT, CONDITION, LAB_OBSERVATION)
    del bundle["entry"][2]["resource"]["code"]
    with pytest.raises(FhirValidationError) as caught:
        split_bundle(bundle)
    assert caught.value.path == "Bundle.entry[2].resource.code"


def test_entry_with_unknown_resource_type_is_named() -> None:
    bundle = _bundle("collection", PATIENT, PATIENT)
    bundle["entry"][1]["resource"]["resourceType"] = "Patinet"
    assert _path_of(bundle) == "Bundle.entry[1].resource.resourceType"


def test_entry_status_outside_its_value_set_is_named() -> None:
    bundle = _bundle("collection", PATIENT, _with(LAB_OBSERVATION, status="finished"))
    assert _path_of(bundle) == "Bundle.entry[1].resource.status"


@pytest.mark.parametrize("kind", ["searchset", "batch", "document", "history"])
def test_other_bundle_types_are_refused_at_bundle_type(kind: str) -> None:
    with pytest.raises(FhirValidationError) as caught:
        split_bundle(_bundle(kind, PATIENT))
    assert caught.value.path == "Bundle.type"
    assert kind in caught.value.message


def test_splitting_something_that_is_not_a_bundle_is_refused() -> None:
    with pytest.raises(FhirValidationError) as caught:
        split_bundle(PATIENT)
    assert caught.value.path == "resourceType"


# --------------------------------------------------------------------------- files

PDF = b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(13)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(20)
DICOM = bytes(128) + b"DICM" + b"\x02\x00\x00\x00UL\x04\x00"


@pytest.mark.parametrize(
    ("data", "declared", "expected"),
    [
        (PDF, "application/pdf", "application/pdf"),
        (PNG, "image/png", "image/png"),
        (JPEG, "image/jpeg", "image/jpeg"),
        (JPEG, "image/jpg", "image/jpeg"),
        (DICOM, "application/dicom", "application/dicom"),
        (PDF, "application/pdf; charset=binary", "application/pdf"),
        (PNG, "application/octet-stream", "image/png"),
        (DICOM, "", "application/dicom"),
    ],
)
def test_sniffing_confirms_or_fills_in_the_type(data: bytes, declared: str, expected: str) -> None:
    assert sniff_content_type(data, declared) == expected


def test_declared_type_that_does_not_match_the_bytes_is_refused() -> None:
    with pytest.raises(FileTypeError, match="declared as image/png but its content is application/pdf"):
        sniff_content_type(PDF, "image/png")


def test_empty_file_is_refused() -> None:
    with pytest.raises(FileTypeError, match="empty"):
        sniff_content_type(b"", "application/pdf")


def test_unrecognised_bytes_and_unsupported_types_are_refused() -> None:
    with pytest.raises(FileTypeError, match="not a PDF, PNG, JPEG or DICOM"):
        sniff_content_type(b"GIF89a" + bytes(200), "application/octet-stream")
    with pytest.raises(FileTypeError, match="not accepted"):
        sniff_content_type(b"GIF89a", "image/gif")


def test_dicom_magic_must_be_at_offset_128() -> None:
    with pytest.raises(FileTypeError):
        sniff_content_type(b"DICM" + bytes(200), "application/dicom")


def test_document_reference_describes_an_uploaded_file() -> None:
    sha256_hex = hashlib.sha256(PNG).hexdigest()
    resource = document_reference_for_file(
        patient_ref="Patient/example",
        content_type="image/png",
        title="rash.png",
        size=len(PNG),
        sha256_hex=sha256_hex,
        url="https://healthhash.example/api/records/r1/content",
    )
    assert resource["status"] == "current"
    assert resource["subject"] == {"reference": "Patient/example"}
    assert resource["masterIdentifier"] == {"system": "urn:healthhash:sha256", "value": sha256_hex}
    attachment = resource["content"][0]["attachment"]
    assert attachment["contentType"] == "image/png"
    assert attachment["size"] == len(PNG)
    assert "hash" not in attachment  # R4 hash is SHA-1 of data, which is not given here
    assert category_of(resource) == "document"


def test_document_reference_with_inline_data_carries_the_r4_sha1_hash() -> None:
    resource = document_reference_for_file(
        patient_ref="Patient/example",
        content_type="application/pdf",
        title="discharge.pdf",
        size=len(PDF),
        sha256_hex=hashlib.sha256(PDF).hexdigest(),
        data=PDF,
    )
    attachment = resource["content"][0]["attachment"]
    assert base64.b64decode(attachment["data"]) == PDF
    assert attachment["hash"] == base64.b64encode(hashlib.sha1(PDF).digest()).decode()


def test_document_reference_refuses_data_that_does_not_match_its_hash() -> None:
    with pytest.raises(ValueError, match="does not match"):
        document_reference_for_file(
            patient_ref="Patient/example",
            content_type="application/pdf",
            title="x.pdf",
            size=len(PDF),
            sha256_hex="0" * 64,
            data=PDF,
        )


# --------------------------------------------------------------------------- categories


@pytest.mark.parametrize(
    ("resource", "category"),
    [
        (LAB_OBSERVATION, "laboratory"),
        (HEART_RATE, "vital-signs"),
        (_without(HEART_RATE, "category"), "vital-signs"),
        (CONDITION, "condition"),
        (MEDICATION_STATEMENT, "medication"),
        ({"resourceType": "MedicationRequest"}, "medication"),
        ({"resourceType": "ImagingStudy"}, "imaging"),
        (IMAGING_REPORT, "imaging"),
        (LAB_REPORT, "laboratory"),
        (DOCUMENT_REFERENCE, "document"),
        ({"resourceType": "Procedure"}, "clinical-note"),
        (_with(LAB_OBSERVATION, category=[{"coding": [{"code": "social-history"}]}]), "clinical-note"),
    ],
)
def test_category_of_maps_resources_to_consent_categories(resource: dict[str, Any], category: str) -> None:
    assert category_of(resource) == category


def test_administrative_resources_have_no_category() -> None:
    with pytest.raises(FhirValidationError, match="not a health record"):
        category_of(PATIENT)


# --------------------------------------------------------------------------- exports


def test_chart_bundle_is_a_collection_with_stable_uuid_urls_and_internal_references() -> None:
    bundle = chart_bundle([PATIENT, LAB_OBSERVATION], bundle_id="chart-1")
    again = chart_bundle([PATIENT, LAB_OBSERVATION], bundle_id="chart-1")
    assert bundle["type"] == "collection" and bundle["id"] == "chart-1"
    urls = [entry["fullUrl"] for entry in bundle["entry"]]
    assert all(url.startswith("urn:uuid:") for url in urls)
    assert urls == [entry["fullUrl"] for entry in again["entry"]]
    assert bundle["entry"][1]["resource"]["subject"]["reference"] == urls[0]
    assert LAB_OBSERVATION["subject"]["reference"] == "Patient/example"  # the input is not changed
    assert [r.id for r in split_bundle(bundle)] == ["example", "f001"]


def test_consent_export_is_a_valid_r4_consent() -> None:
    consent = consent_resource(
        patient_ref="Patient/example",
        grantee_ref="0x" + "ab" * 20,
        scope="record:123e4567-e89b-12d3-a456-426614174000",
        purpose="TRAINING",
        status="revoked",
        period_end="2030-01-01T00:00:00Z",
        consent_id="0x" + "cd" * 32,
    )
    assert consent["status"] == "inactive"
    assert consent["id"] == "cd" * 32
    assert consent["identifier"][0]["value"] == "0x" + "cd" * 32
    assert consent["scope"]["coding"][0]["code"] == "research"
    provision = consent["provision"]
    assert provision["period"] == {"end": "2030-01-01T00:00:00Z"}
    assert provision["purpose"][0]["code"] == "HRESCH"
    assert provision["actor"][0]["reference"]["identifier"]["value"] == "0x" + "ab" * 20
    assert provision["data"][0]["reference"]["identifier"]["value"] == "123e4567-e89b-12d3-a456-426614174000"
    assert validate_resource(consent).resource_type == "Consent"


def test_consent_export_refuses_unknown_status_and_purpose() -> None:
    arguments: dict[str, Any] = dict(
        patient_ref="Patient/p", grantee_ref="Practitioner/d", scope="chart", period_end=None, consent_id="c1"
    )
    with pytest.raises(FhirValidationError) as caught:
        consent_resource(purpose="TREATMENT", status="maybe", **arguments)
    assert caught.value.path == "Consent.status"
    with pytest.raises(FhirValidationError):
        consent_resource(purpose="MARKETING", status="active", **arguments)


# --------------------------------------------------------------------------- hardening (issue 13)


def test_transaction_entries_without_a_resource_are_kept_apart_not_refused() -> None:
    bundle = _bundle("transaction", PATIENT, LAB_OBSERVATION, CONDITION)
    bundle["entry"].append({"request": {"method": "DELETE", "url": "Observation/old"}})
    bundle["entry"].append({"request": {"method": "GET", "url": "Patient/example"}})
    entries = bundle_entries(bundle)
    assert [(e.index, e.method, e.resource is None) for e in entries[3:]] == [
        (3, "DELETE", True),
        (4, "GET", True),
    ]
    assert [r.resource_type for r in split_bundle(bundle)] == ["Patient", "Observation", "Condition"]


def test_patient_is_refused_as_not_a_record_rather_than_as_bad_fhir() -> None:
    with pytest.raises(NotARecordError):
        category_of(PATIENT)


DXA_REPORT: dict[str, Any] = {
    "resourceType": "DiagnosticReport",
    "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "38269-7", "display": "DXA Bone density"}]},
    "conclusion": "Osteopenia of the femoral neck",
}


@pytest.mark.parametrize(
    ("report", "category"),
    [
        (DXA_REPORT, "imaging"),
        (
            _with(DXA_REPORT, code={"coding": [{"system": "http://radlex.org", "code": "RID10312"}]}),
            "imaging",
        ),
        (
            _with(
                DXA_REPORT,
                code={"coding": [{"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "BDUS"}]},
            ),
            "imaging",
        ),
        (
            _with(DXA_REPORT, code={"text": "bone scan"}, imagingStudy=[{"reference": "ImagingStudy/1"}]),
            "imaging",
        ),
        (_without(LAB_REPORT, "category"), "laboratory"),
        (_with(DXA_REPORT, category=LAB_REPORT["category"]), "laboratory"),  # an explicit category wins
    ],
)
def test_uncategorised_report_takes_its_category_from_an_imaging_code(
    report: dict[str, Any], category: str
) -> None:
    validate_resource(report)
    assert category_of(report) == category
