"""Model weights as bytes: what a hospital stores as its update and the coordinator as a model version.

safetensors (Hugging Face's format: a JSON header of names, dtypes and shapes, then raw little-endian
tensors) rather than `torch.save`, which is a pickle: loading a pickle from another party runs its code,
and an update comes from another party. The bytes of a state dict are deterministic (the header is
written with sorted names), so the SHA-256 of the bytes names the weights.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from torch import Tensor

# A model of the demo task is a few KB; a generous cap keeps a hostile upload from exhausting memory.
MAX_WEIGHTS_BYTES = 64 * 1024 * 1024


class BadWeights(ValueError):
    """The bytes are not a safetensors file of tensors (or are too large)."""


def dump(weights: Mapping[str, Tensor]) -> bytes:
    return st_save({name: tensor.detach().contiguous() for name, tensor in weights.items()})


def load(data: bytes) -> dict[str, Tensor]:
    if len(data) > MAX_WEIGHTS_BYTES:
        raise BadWeights(f"weights of {len(data)} bytes exceed {MAX_WEIGHTS_BYTES}")
    try:
        return dict(st_load(data))
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise BadWeights(f"not a safetensors file: {exc}") from exc


def sha256_hex(data: bytes) -> str:
    """ "0x" + SHA-256 of the bytes: the `weightsHash` of an update or a model version."""
    return "0x" + hashlib.sha256(data).hexdigest()
