"""`manage.py seed_demo`: the demo consortium (admin, three hospitals, doctors, patients), on chain."""

from __future__ import annotations

from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand

from contracts import client
from demo import people as demo_data


class Command(BaseCommand):
    help = "Create the demo consortium and register it on the chain; prints the demo logins."

    def handle(self, *args: Any, **options: Any) -> None:
        password = demo_data.demo_password()
        admin = demo_data.consortium_admin(password)
        call_command("deploy_contracts", consortium_admin=admin.eth_address)
        world = demo_data.create_people(password)
        demo_data.register_on_chain(world)
        self.stdout.write(f"chain {client.chain_id()} at {client.rpc_url()}")
        self.stdout.write(f"Demo logins (password for all: {password}):")
        self.stdout.write(f"  consortium admin: {admin.username}")
        for hospital in world.hospitals:
            doctors = ", ".join(d.user.username for d in world.doctors if d.hospital_id == hospital.id)
            self.stdout.write(f"  {hospital.name}: admin {hospital.admin.username}; doctors {doctors}")
        self.stdout.write(f"  patients: {', '.join(p.username for p in world.patients)}")
