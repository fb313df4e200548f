"""`manage.py import_fhir PATH [--patient username]`: import FHIR JSON files (Bundles or single resources)
into a patient's chart through the same bulk path as POST /api/records/import."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from access.models import Role, User
from ehr import records
from healthhash.errors import DomainError


def _patient_from(bundle: dict[str, Any]) -> User | None:
    """Without --patient: the bundle's Patient resource naming a user by username or address identifier."""
    for entry in bundle.get("entry") or []:
        resource = entry.get("resource") or {}
        if resource.get("resourceType") != "Patient":
            continue
        for identifier in resource.get("identifier") or []:
            system, value = identifier.get("system"), identifier.get("value")
            if system == "urn:healthhash:username":
                return User.objects.filter(username=value, role=Role.PATIENT).first()
            if system == "urn:healthhash:eth-address":
                return User.objects.filter(eth_address__iexact=value, role=Role.PATIENT).first()
    return None


class Command(BaseCommand):
    help = "Import FHIR JSON files (a file or a folder of *.json) as records, one per resource."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("path", help="a .json file or a folder of them")
        parser.add_argument("--patient", help="username of the patient whose chart receives the records")

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["path"])
        files = sorted(path.glob("*.json")) if path.is_dir() else [path]
        if not files or not all(f.is_file() for f in files):
            raise CommandError(f"no FHIR JSON files at {path}")
        fixed = None
        if options["patient"]:
            fixed = User.objects.filter(username=options["patient"], role=Role.PATIENT).first()
            if fixed is None:
                raise CommandError(f"no patient with username {options['patient']!r}")
        total = 0
        for file in files:
            data = json.loads(file.read_text("utf-8"))
            if data.get("resourceType") != "Bundle":
                data = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": data}]}
            patient = fixed or _patient_from(data)
            if patient is None:
                raise CommandError(
                    f"{file}: say --patient, or name the user in the Patient resource's identifier"
                )
            try:
                report = records.import_bundle(actor=patient, patient=patient, bundle=data)
            except DomainError as exc:
                raise CommandError(
                    f"{file}: {exc.detail}" + (f" (at {exc.field})" if exc.field else "")
                ) from exc
            total += len(report.records)
            self.stdout.write(f"{file.name}: {len(report.records)} records, {len(report.skipped)} skipped")
        self.stdout.write(self.style.SUCCESS(f"imported {total} records"))
