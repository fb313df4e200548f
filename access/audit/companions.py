"""Checks that `verify_audit` runs beside the access log's own: apps above access register what they
anchor on chain too (ehr: record Merkle roots), since access may not import them.

A check returns (ok, lines): lines say what was checked and, when not ok, what broke.
"""

from __future__ import annotations

from collections.abc import Callable

CompanionCheck = Callable[[], tuple[bool, list[str]]]
_checks: dict[str, CompanionCheck] = {}


def register_companion_check(name: str, check: CompanionCheck) -> None:
    """Called from an AppConfig.ready(); registering the same name again replaces the check."""
    _checks[name] = check


def run_companion_checks() -> list[tuple[str, bool, list[str]]]:
    """(name, ok, lines) of every registered check, in registration order."""
    return [(name, *check()) for name, check in _checks.items()]
