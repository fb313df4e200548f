"""`manage.py gas_report`: gas of every contract path, measured with real receipts on a throwaway anvil."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from bench.gas_report import print_gas_report


class Command(BaseCommand):
    help = "Start a throwaway anvil, deploy, measure the gas of every contract path and print it."

    def handle(self, *args: Any, **options: Any) -> None:
        print_gas_report(say=self.stdout.write)
