"""The database side of `manage.py bench_api`, run inside the benchmark's own state (its database, store
and dev chain): the personas of the demo consortium that `serve` seeded, their API tokens, their records
and consents (granted with their passwords, mined by the serving relayer, seen by its indexer); after
the run, the access-log entries it wrote and `verify_audit` over all of them."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db.models import Count
from django.utils import timezone

from access.audit.verify import verify_audit
from access.consent import services as consent_services
from access.consent.scopes import CATEGORIES
from access.identity import services as identity_services
from access.identity.keys import unlock_managed_key
from access.models import AccessAction, AccessLogEntry, AccessOutcome, Consent, Doctor, User
from bench.api_load import Persona
from contracts import client
from contracts.models import ChainEvent, OutboxItem
from demo import people as demo_people
from ehr import records
from ehr.models import Record

Say = Callable[[str], None]
ACTIVE_WITHIN_S = 120.0


def observation(value: float) -> dict[str, Any]:
    """A laboratory Observation (haemoglobin), the smallest record a chart holds."""
    return {
        "resourceType": "Observation",
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
        "code": {"coding": [{"system": "http://loinc.org", "code": "718-7", "display": "Hemoglobin"}]},
        "valueQuantity": {
            "value": value,
            "unit": "g/dL",
            "system": "http://unitsofmeasure.org",
            "code": "g/dL",
        },
    }


@dataclass(frozen=True)
class World:
    doctors: list[Persona]
    patients: list[Persona]
    granter: Persona


def _token(user: User) -> str:
    return identity_services.create_api_token(user=user, name="bench_api")[1]


def _wait_active(consents: list[Consent], say: Say) -> None:
    ids = [c.id for c in consents]
    deadline = time.monotonic() + ACTIVE_WITHIN_S
    while time.monotonic() < deadline:
        statuses = [c.effective_status for c in Consent.objects.filter(id__in=ids)]
        if all(status == "active" for status in statuses):
            return
        time.sleep(0.5)
    raise RuntimeError(f"consents not active within {ACTIVE_WITHIN_S:g} s: {statuses}")


def build_world(*, records_per_patient: int, say: Say) -> World:
    """Records for every demo patient; each grants two doctors TREATMENT on her chart; the last patient
    is also the granter, granting each doctor one category after another during the run."""
    password = demo_people.demo_password()
    patients = [User.objects.get(username=name) for name in demo_people.PATIENTS]
    doctors = [d.user for d in Doctor.objects.select_related("user").order_by("user__username")]
    own: dict[str, list[str]] = {}
    for patient in patients:
        made = [
            records.create_record(actor=patient, patient=patient, resource=observation(12.0 + n / 10))
            for n in range(records_per_patient)
        ]
        own[demo_people.address_of(patient)] = [str(record.id) for record in made]
    consents = []
    covered: dict[int, list[str]] = {doctor.id: [] for doctor in doctors}
    for index, patient in enumerate(patients):
        for doctor in (doctors[index % len(doctors)], doctors[(index + 1) % len(doctors)]):
            consents.append(
                consent_services.grant_with_managed_key(
                    patient=patient,
                    password=password,
                    grantee=demo_people.address_of(doctor),
                    scope="chart",
                    purpose="TREATMENT",
                    expires_at=None,
                )
            )
            covered[doctor.id].append(demo_people.address_of(patient))
    say(f"setup: {Record.objects.count()} records, {len(consents)} consents waiting for the relayer")
    _wait_active(consents, say)
    doctor_personas = [
        Persona(
            kind="doctor",
            token=_token(doctor),
            address=demo_people.address_of(doctor),
            record_ids=tuple(r for p in covered[doctor.id] for r in own[p]),
            patients=tuple(covered[doctor.id]),
        )
        for doctor in doctors
        if covered[doctor.id]
    ]
    patient_personas = [
        Persona(kind="patient", token=_token(p), address=demo_people.address_of(p), record_ids=tuple(own[a]))
        for p, a in ((p, demo_people.address_of(p)) for p in patients)
    ]
    granter = patients[-1]
    return World(
        doctors=doctor_personas,
        patients=patient_personas,
        granter=Persona(
            kind="granter",
            token=_token(granter),
            address=demo_people.address_of(granter),
            record_ids=(),
            grantees=tuple(demo_people.address_of(d) for d in doctors),
            grant_scopes=tuple(f"category:{category}" for category in CATEGORIES),
            wallet_key=bytes(unlock_managed_key(user=granter, password=password).key),
        ),
    )


def opens_logged_since(moment: Any) -> int:
    """Allowed `open` entries written since `moment` (one per record opened, never two)."""
    return AccessLogEntry.objects.filter(
        created_at__gte=moment, action=AccessAction.OPEN, outcome=AccessOutcome.ALLOWED
    ).count()


def grants_since(moment: Any) -> tuple[int, int]:
    """(grants submitted since `moment`, those mined). Mined: in a block, whether still active or since
    superseded by a later grant of the same terms (the granter cycles through her doctors and scopes, so a
    long run grants the same terms again)."""
    return _submitted_and_mined(Consent.objects.filter(created_at__gte=moment))


def grants_between(start: Any, end: Any) -> tuple[int, int]:
    """(grants submitted from `start` to `end`, those mined)."""
    return _submitted_and_mined(Consent.objects.filter(created_at__gte=start, created_at__lte=end))


def _submitted_and_mined(grants: Any) -> tuple[int, int]:
    blocks = list(grants.values_list("granted_block", flat=True))
    return len(blocks), sum(1 for block in blocks if block is not None)


def grants_recorded_twice(moment: Any) -> int:
    """Grants since `moment` whose signed terms (consent key and version) have more than one row: a grant
    written twice (there should be none)."""
    rows = (
        Consent.objects.filter(created_at__gte=moment)
        .values("consent_key", "version")
        .annotate(rows=Count("id"))
        .filter(rows__gt=1)
    )
    return sum(row["rows"] - 1 for row in rows)


def grants_mined_above(block: int) -> dict[Any, int]:
    """{consent id: block} of the grants the index has mined in a block above `block`."""
    mined = Consent.objects.filter(granted_block__gt=block).values_list("id", "granted_block")
    return {grant: granted for grant, granted in mined if granted is not None}


def grants_unmined(ids: list[Any]) -> int:
    """How many of the grants `ids` are not mined (the index says)."""
    return Consent.objects.filter(id__in=ids, granted_block=None).count()


def grants_off_chain(moment: Any) -> int:
    """Grants since `moment` the index has mined whose transaction the chain does not have in that block
    (a rewound chain whose re-org the index missed): asked of the node, one receipt each."""
    mined = list(
        Consent.objects.filter(created_at__gte=moment, granted_block__isnull=False).values_list(
            "grant_tx_hash", "granted_block"
        )
    )
    receipts = client.rpc_batch([("eth_getTransactionReceipt", [tx_hash]) for tx_hash, _ in mined])
    return sum(
        1
        for (_, block), receipt in zip(mined, receipts, strict=True)
        if receipt is None or int(receipt["blockNumber"], 16) != block
    )


def index_off_chain() -> int:
    """Indexed events in a block whose hash the chain no longer has at that height (0: the index is on
    the chain's branch)."""
    chain = client.chain_id()
    events = Counter(ChainEvent.objects.filter(chain_id=chain).values_list("block_number", "block_hash"))
    head = client.latest_block()
    asked = sorted({number for number, _ in events if number <= head})
    headers = client.rpc_batch([("eth_getBlockByNumber", [hex(number), False]) for number in asked])
    on_chain = {number: header["hash"] for number, header in zip(asked, headers, strict=True) if header}
    return sum(n for (number, block_hash), n in events.items() if on_chain.get(number) != block_hash)


def outbox_unsettled() -> dict[str, int]:
    """{status: items} of the outbox items not confirmed (pending, sent, failed)."""
    rows = (
        OutboxItem.objects.exclude(status=OutboxItem.Status.CONFIRMED)
        .values("status")
        .annotate(items=Count("id"))
    )
    return {row["status"]: row["items"] for row in rows}


def now() -> Any:
    return timezone.now()


def audit() -> tuple[bool, int]:
    """verify_audit over the whole log: (no break, entries verified)."""
    report = verify_audit()
    return report.ok, report.entries
