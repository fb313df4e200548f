"""Compiles contracts/src/*.sol with Solidity Standard JSON and writes contracts/build/<Name>.json artifacts.

The pinned npm `solc` (solcjs, driven by contracts/solc_standard_json.cjs) is the default; a native `solc`
of the same version on PATH is used through py-solc-x instead. Both get the same input and bytecode.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

CONTRACTS_DIR = Path(__file__).resolve().parent
SRC_DIR = CONTRACTS_DIR / "src"
BUILD_DIR = CONTRACTS_DIR / "build"
NODE_MODULES = CONTRACTS_DIR / "node_modules"
SOLCJS_DRIVER = CONTRACTS_DIR / "solc_standard_json.cjs"

SOLC_VERSION = "0.8.37"
# Measured with bench/gas_report.py: viaIR saves ~1,100 gas per batched grant item and ~1,800 on a single
# grantBySig over the legacy pipeline; runs=10_000 is as cheap as 1_000_000 on the hot paths (runs=200 costs
# ~400 more per item) while keeping deploys smaller.
SETTINGS: dict[str, Any] = {
    "optimizer": {"enabled": True, "runs": 10_000},
    "viaIR": True,
    "evmVersion": "prague",
    "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]}},
}


class CompileError(RuntimeError):
    """The compiler reported errors (the message lists them)."""


def _project_sources() -> dict[str, str]:
    """Source unit name ("src/X.sol") -> content for every project source, sorted by name."""
    files = sorted(SRC_DIR.rglob("*.sol"))
    return {f"src/{path.relative_to(SRC_DIR).as_posix()}": path.read_text() for path in files}


def _openzeppelin_version() -> str:
    package_json = NODE_MODULES / "@openzeppelin" / "contracts" / "package.json"
    return str(json.loads(package_json.read_text())["version"])


def _expected_contract_names() -> list[str]:
    """Top-level src/*.sol files each define one deployable contract of the same name."""
    return sorted(path.stem for path in SRC_DIR.glob("*.sol"))


def source_hash() -> str:
    """sha256 over the sorted project sources, the OpenZeppelin version and the compiler settings."""
    digest = hashlib.sha256()
    for name, content in _project_sources().items():
        digest.update(name.encode() + b"\0" + content.encode() + b"\0")
    digest.update(f"openzeppelin={_openzeppelin_version()}\0solc={SOLC_VERSION}\0".encode())
    digest.update(json.dumps(SETTINGS, sort_keys=True).encode())
    return digest.hexdigest()


def standard_json_input() -> dict[str, Any]:
    """The Standard JSON input: project sources inline, OpenZeppelin resolved through the import path."""
    sources = {name: {"content": content} for name, content in _project_sources().items()}
    return {"language": "Solidity", "sources": sources, "settings": SETTINGS}


def _native_solc() -> str | None:
    """Path of a native solc of the pinned version on PATH, else None."""
    binary = shutil.which("solc")
    if binary is None:
        return None
    try:
        out = subprocess.run(  # noqa: S603 - fixed argv, no shell
            [binary, "--version"], capture_output=True, text=True, timeout=30
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return binary if re.search(rf"Version: {re.escape(SOLC_VERSION)}\+", out) else None


def _run_solcjs(input_json: dict[str, Any]) -> tuple[dict[str, Any], str]:
    node = shutil.which("node")
    if node is None:
        raise CompileError("node is not on PATH (needed for the npm solc)")
    proc = subprocess.run(  # noqa: S603 - fixed argv, no shell
        [node, str(SOLCJS_DRIVER)],
        input=json.dumps(input_json),
        capture_output=True,
        text=True,
        cwd=CONTRACTS_DIR,
        check=False,
    )
    if proc.returncode != 0:
        raise CompileError(f"solcjs failed: {proc.stderr.strip()}")
    version = subprocess.run(  # noqa: S603 - fixed argv, no shell
        [node, str(SOLCJS_DRIVER), "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    return json.loads(proc.stdout), version


def _run_native(binary: str, input_json: dict[str, Any]) -> tuple[dict[str, Any], str]:
    import solcx  # imported lazily: only this path needs it

    output = solcx.compile_standard(
        input_json, base_path=str(NODE_MODULES), allow_paths=[str(NODE_MODULES)], solc_binary=binary
    )
    return output, _native_version(binary)


def _native_version(binary: str) -> str:
    out = subprocess.run(  # noqa: S603 - fixed argv, no shell
        [binary, "--version"], capture_output=True, text=True, check=True
    ).stdout
    match = re.search(r"Version: (\S+)", out)
    return match.group(1) if match else SOLC_VERSION


def compile_contracts() -> dict[str, dict[str, Any]]:
    """Compiles every project source; returns artifact dicts keyed by deployable contract name."""
    input_json = standard_json_input()
    binary = _native_solc()
    output, version = _run_native(binary, input_json) if binary else _run_solcjs(input_json)
    errors = [e for e in output.get("errors", []) if e.get("severity") == "error"]
    if errors:
        raise CompileError("\n".join(e.get("formattedMessage", e.get("message", "")) for e in errors))
    settings = {k: v for k, v in SETTINGS.items() if k != "outputSelection"}
    hash_hex = source_hash()
    artifacts: dict[str, dict[str, Any]] = {}
    for unit, contracts in output.get("contracts", {}).items():
        if not unit.startswith("src/"):
            continue
        for name, data in contracts.items():
            bytecode = data["evm"]["bytecode"]["object"]
            if not bytecode:  # interfaces and abstract contracts are not deployable
                continue
            artifacts[name] = {
                "contractName": name,
                "abi": data["abi"],
                "bytecode": "0x" + bytecode,
                "deployedBytecode": "0x" + data["evm"]["deployedBytecode"]["object"],
                "compiler": {"version": version, "settings": settings},
                "sourceHash": hash_hex,
            }
    return dict(sorted(artifacts.items()))


def write_artifacts() -> list[Path]:
    """Compiles and writes contracts/build/<Name>.json (stable formatting: unchanged output, empty diff)."""
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    written = []
    for name, artifact in compile_contracts().items():
        path = BUILD_DIR / f"{name}.json"
        path.write_text(json.dumps(artifact, indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written


def artifacts_are_stale() -> bool:
    """True if any expected artifact is missing or was built from other sources/settings. Does not compile."""
    current = source_hash()
    for name in _expected_contract_names():
        path = BUILD_DIR / f"{name}.json"
        if not path.exists():
            return True
        try:
            if json.loads(path.read_text()).get("sourceHash") != current:
                return True
        except json.JSONDecodeError:
            return True
    return False
