"""Loads compiled contract artifacts from contracts/build/<Name>.json; never compiles (see compiler.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

BUILD_DIR = Path(__file__).resolve().parent / "build"


class ArtifactNotFound(LookupError):
    """No build artifact for that contract name (run `manage.py compile_contracts`)."""


@dataclass(frozen=True)
class Artifact:
    """A deployable contract as the compiler produced it; bytecode strings are 0x-prefixed hex."""

    name: str
    abi: list[dict[str, Any]]
    bytecode: str
    deployed_bytecode: str
    compiler_version: str
    source_hash: str


@cache
def load_artifact(name: str) -> Artifact:
    """The artifact of contract `name` (e.g. "ConsentRegistry"); cached per process."""
    path = BUILD_DIR / f"{name}.json"
    if not path.is_file():
        raise ArtifactNotFound(f"no artifact {path}")
    data = json.loads(path.read_text())
    return Artifact(
        name=data["contractName"],
        abi=data["abi"],
        bytecode=data["bytecode"],
        deployed_bytecode=data["deployedBytecode"],
        compiler_version=data["compiler"]["version"],
        source_hash=data["sourceHash"],
    )
