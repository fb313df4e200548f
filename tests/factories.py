"""factory_boy factories for the project's rows; every test builds data through these.

Call `XFactory.create(...)` (typed: it returns the model) rather than `XFactory(...)` (typed as the factory).

Factory users have the password `PASSWORD` and a wallet address (no managed key: tests that need
one call `access.identity.keys.create_managed_key`, which does the real sealing).
"""

from __future__ import annotations

import factory
from eth_account import Account

from access.identity.services import hospital_id_for
from access.models import Doctor, Hospital, KeyKind, Role, User

PASSWORD = "correct horse battery staple"


def new_address() -> str:
    return Account.create().address


class UserFactory(factory.django.DjangoModelFactory[User]):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.org")
    role = Role.PATIENT
    eth_address = factory.LazyFunction(new_address)
    key_kind = KeyKind.WALLET
    password = factory.django.Password(PASSWORD)


class PatientFactory(UserFactory):
    username = factory.Sequence(lambda n: f"patient{n}")


class HospitalAdminFactory(UserFactory):
    username = factory.Sequence(lambda n: f"hadmin{n}")
    role = Role.HOSPITAL_ADMIN


class ConsortiumAdminFactory(UserFactory):
    username = factory.Sequence(lambda n: f"cadmin{n}")
    role = Role.CONSORTIUM_ADMIN


class HospitalFactory(factory.django.DjangoModelFactory[Hospital]):
    """An active hospital (as if its Directory registration had been indexed)."""

    class Meta:
        model = Hospital
        skip_postgeneration_save = True

    slug = factory.Sequence(lambda n: f"hospital-{n}")
    name = factory.LazyAttribute(lambda h: h.slug.replace("-", " ").title())
    hospital_id = factory.LazyAttribute(lambda h: hospital_id_for(h.slug))
    account_address = factory.LazyFunction(new_address)
    admin = factory.SubFactory(HospitalAdminFactory)
    active = True
    registered_block = 1

    @factory.post_generation
    def link_admin(hospital: Hospital, create: bool, extracted: object, **kwargs: object) -> None:
        if create and hospital.admin.hospital_id is None:
            hospital.admin.hospital = hospital
            hospital.admin.save(update_fields=["hospital"])


class DoctorFactory(factory.django.DjangoModelFactory[Doctor]):
    """An active doctor of an active hospital."""

    class Meta:
        model = Doctor

    hospital = factory.SubFactory(HospitalFactory)
    user = factory.SubFactory(
        UserFactory,
        username=factory.Sequence(lambda n: f"doctor{n}"),
        role=Role.DOCTOR,
        hospital=factory.SelfAttribute("..hospital"),
    )
    active = True
    registered_block = 1
