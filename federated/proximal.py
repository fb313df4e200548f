"""FedProx's proximal term, for the hospital worker's local loss (pure torch, no Django: it runs at the
data holder, next to `federated.dataset`).

The coordinator's `FedProx.configure_round` sends `{"proximal_mu": mu}`; the worker builds one
`ProximalTerm` per round from the global weights it received and adds it to every batch's loss:
mu/2 · ||w - w_global||², whose gradient mu · (w - w_global) pulls a skewed hospital back toward the model.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import torch
from torch import Tensor


class ProximalTerm:
    """mu/2 · ||w - w_global||², differentiable in w, over the parameters it is called with.

    Call it with the model's `named_parameters()` (buffers are not trained, so nothing pulls on them).
    """

    def __init__(self, *, global_weights: Mapping[str, Tensor], mu: float) -> None:
        if isinstance(mu, bool) or not isinstance(mu, int | float) or not (math.isfinite(mu) and mu >= 0):
            raise ValueError(f"mu must be a finite number >= 0; got {mu!r}")
        self.mu = float(mu)
        self._anchor = {name: tensor.detach() for name, tensor in global_weights.items()}
        self._anchor_vector: Tensor | None = None

    def __call__(self, named_parameters: Iterable[tuple[str, Tensor]] | Mapping[str, Tensor]) -> Tensor:
        items = list(named_parameters.items() if isinstance(named_parameters, Mapping) else named_parameters)
        local = torch.cat([tensor.reshape(-1) for _, tensor in items])
        if self._anchor_vector is None:  # the same parameters every step: flatten the anchor once
            anchor = torch.cat([self._anchor[name].reshape(-1) for name, _ in items])
            self._anchor_vector = anchor.to(local.dtype)
        return self.mu / 2 * (local - self._anchor_vector).square().sum()
