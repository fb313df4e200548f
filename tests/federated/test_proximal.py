"""FedProx's proximal term at the worker: mu/2 · ||w - w_global||², with gradient mu · (w - w_global)."""

from __future__ import annotations

import pytest
import torch

from federated.proximal import ProximalTerm


def test_proximal_term_and_its_gradient_match_hand_computed_values() -> None:
    model = torch.nn.Linear(2, 1)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, 2.0]]))
        model.bias.copy_(torch.tensor([3.0]))
    anchor = {"weight": torch.tensor([[0.0, 0.0]]), "bias": torch.tensor([1.0])}
    term = ProximalTerm(global_weights=anchor, mu=0.5)(model.named_parameters())
    assert term.item() == pytest.approx(0.25 * (1 + 4 + 4))  # mu/2 · (1² + 2² + (3-1)²)
    term.backward()
    assert model.weight.grad is not None and model.bias.grad is not None
    assert model.weight.grad.tolist() == [[0.5, 1.0]]  # mu · (w - w_global)
    assert model.bias.grad.tolist() == [1.0]


def test_proximal_term_is_zero_at_the_global_weights_and_with_mu_zero() -> None:
    model = torch.nn.Linear(3, 2)
    at_global = ProximalTerm(global_weights=model.state_dict(), mu=1.0)
    assert at_global(model.named_parameters()).item() == 0.0
    elsewhere = {name: tensor + 5 for name, tensor in model.state_dict().items()}
    assert ProximalTerm(global_weights=elsewhere, mu=0.0)(dict(model.named_parameters())).item() == 0.0


@pytest.mark.parametrize("mu", [-0.1, float("nan"), float("inf"), True])
def test_proximal_term_refuses_a_bad_mu(mu: float) -> None:
    with pytest.raises(ValueError, match="mu"):
        ProximalTerm(global_weights={}, mu=mu)
