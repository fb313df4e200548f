"""Fast ABI coding for the project contracts, straight from the artifacts' ABIs: decoding of logs and
revert data, encoding of call data.

web3's `process_log` and `encode_abi` are slow (they validate and format every field); this works on raw
JSON-RPC values (hex strings) with eth_abi directly, from selector/topic maps built once per process.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import keccak, to_checksum_address

from contracts.artifacts import load_artifact

PROJECT_CONTRACTS = ("Directory", "ConsentRegistry", "Anchors", "TrainingRegistry")
_ERROR_STRING = "0x08c379a0"  # Error(string)
_PANIC = "0x4e487b71"  # Panic(uint256)
_DYNAMIC_BASES = ("string", "bytes")


def canonical_type(param: dict[str, Any]) -> str:
    """The ABI type as it appears in a signature: tuples spelled out as (t1,t2)."""
    kind = param["type"]
    if kind.startswith("tuple"):
        inner = ",".join(canonical_type(c) for c in param["components"])
        return f"({inner}){kind[len('tuple') :]}"
    return kind


def _signature(entry: dict[str, Any]) -> str:
    return f"{entry['name']}({','.join(canonical_type(p) for p in entry.get('inputs', []))})"


def _is_hashed_when_indexed(type_str: str) -> bool:
    # Indexed dynamic values (and arrays/tuples) are stored as their keccak hash, not decodable.
    return type_str in _DYNAMIC_BASES or type_str.endswith("]") or type_str.startswith("(")


@lru_cache(maxsize=50_000)
def _checksum(address: str) -> str:
    return to_checksum_address(address)


def to_json_value(type_str: str, value: Any) -> Any:
    """An ABI value as JSON: bytes as 0x-hex, addresses checksummed, tuples/arrays as lists."""
    if type_str.endswith("]"):
        inner = type_str[: type_str.rindex("[")]
        return [to_json_value(inner, v) for v in value]
    if type_str.startswith("("):
        inner_types = _split_tuple(type_str)
        return [to_json_value(t, v) for t, v in zip(inner_types, value, strict=True)]
    if type_str == "address":
        return _checksum(value)
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return value


def _split_tuple(type_str: str) -> list[str]:
    body, depth, parts, current = type_str[1:-1], 0, [], ""
    for char in body:
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
            continue
        depth += (char == "(") - (char == ")")
        current += char
    return [*parts, current] if current else parts


@dataclass(frozen=True)
class EventSpec:
    contract: str
    name: str
    indexed: tuple[tuple[str, str], ...]  # (arg name, type) in topic order
    data_names: tuple[str, ...]
    data_types: tuple[str, ...]


@dataclass(frozen=True)
class DecodedLog:
    contract: str
    address: str
    event: str
    args: dict[str, Any]
    block_number: int
    block_hash: str
    tx_hash: str
    log_index: int


def _event_specs(contract_name: str) -> dict[str, EventSpec]:
    specs = {}
    for entry in load_artifact(contract_name).abi:
        if entry.get("type") != "event" or entry.get("anonymous"):
            continue
        inputs = entry.get("inputs", [])
        topic0 = "0x" + keccak(text=_signature(entry)).hex()
        specs[topic0] = EventSpec(
            contract=contract_name,
            name=entry["name"],
            indexed=tuple((p["name"], canonical_type(p)) for p in inputs if p.get("indexed")),
            data_names=tuple(p["name"] for p in inputs if not p.get("indexed")),
            data_types=tuple(canonical_type(p) for p in inputs if not p.get("indexed")),
        )
    return specs


@lru_cache(maxsize=1)
def _all_event_specs() -> dict[str, dict[str, EventSpec]]:
    return {name: _event_specs(name) for name in PROJECT_CONTRACTS}


def decode_log(log: dict[str, Any], contract_name: str) -> DecodedLog | None:
    """Decode one raw log (JSON-RPC shape, hex strings) of `contract_name`; None for unknown events."""
    topics = log["topics"]
    if not topics:
        return None
    spec = _all_event_specs()[contract_name].get(topics[0].lower())
    if spec is None:
        return None
    args: dict[str, Any] = {}
    for (name, type_str), topic in zip(spec.indexed, topics[1:], strict=True):
        if _is_hashed_when_indexed(type_str):
            args[name] = topic
        else:
            (value,) = abi_decode([type_str], bytes.fromhex(topic[2:]))
            args[name] = to_json_value(type_str, value)
    if spec.data_types:
        values = abi_decode(list(spec.data_types), bytes.fromhex(log["data"][2:]))
        for name, type_str, value in zip(spec.data_names, spec.data_types, values, strict=True):
            args[name] = to_json_value(type_str, value)
    return DecodedLog(
        contract=contract_name,
        address=_checksum(log["address"]),
        event=spec.name,
        args=args,
        block_number=int(log["blockNumber"], 16),
        block_hash=log["blockHash"],
        tx_hash=log["transactionHash"],
        log_index=int(log["logIndex"], 16),
    )


@lru_cache(maxsize=1)
def error_names() -> dict[str, str]:
    """Custom error selector (0x + 8 hex) -> error name, over all project contracts (OZ's included)."""
    names: dict[str, str] = {}
    for contract_name in PROJECT_CONTRACTS:
        for entry in load_artifact(contract_name).abi:
            if entry.get("type") == "error":
                names["0x" + keccak(text=_signature(entry)).hex()[:8]] = entry["name"]
    return names


def error_name(selector: str) -> str:
    """The custom error's name for a 4-byte selector (hex), or the selector itself when unknown."""
    selector = selector.lower()
    return error_names().get(selector, selector)


def decode_revert(data: str | None) -> tuple[str, str]:
    """(error_code, detail) for revert data: a custom error's name, Error(string) or Panic(code)."""
    if not data or len(data) < 10:
        return "reverted", "the transaction reverted without a reason"
    selector = data[:10].lower()
    payload = bytes.fromhex(data[10:])
    if selector == _ERROR_STRING:
        (message,) = abi_decode(["string"], payload)
        return "reverted", message
    if selector == _PANIC:
        (code,) = abi_decode(["uint256"], payload)
        return "panic", f"Panic(0x{code:02x})"
    name = error_name(selector)
    return name, f"reverted with {name}"


@lru_cache(maxsize=64)
def _function(contract_name: str, function_name: str) -> tuple[bytes, tuple[str, ...]]:
    for entry in load_artifact(contract_name).abi:
        if entry.get("type") == "function" and entry["name"] == function_name:
            types = tuple(canonical_type(p) for p in entry.get("inputs", []))
            return keccak(text=_signature(entry))[:4], types
    raise LookupError(f"{contract_name} has no function {function_name}")


def encode_call(contract_name: str, function_name: str, args: list[Any]) -> str:
    """0x-hex call data of `contract_name.function_name(*args)` (tuples as Python tuples/lists)."""
    selector, types = _function(contract_name, function_name)
    return "0x" + (selector + abi_encode(list(types), args)).hex()
