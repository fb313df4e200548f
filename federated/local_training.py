"""A hospital's local training for one round (pure torch + Opacus, no Django: it runs at the data holder).

`train_locally` starts from the round's global weights, runs `epochs` passes of minibatch SGD or Adam on
BCE-with-logits over the hospital's rows and returns the new weights (a state_dict) with what the round
report needs. FedProx: with `proximal_mu` > 0 the loss gains mu/2 · ||w - w_global||²
(`federated.proximal.ProximalTerm`).

Determinism: without DP, the same seed gives the same weights (initialisation and shuffling come from
the seed, inside `torch.random.fork_rng`, so the caller's RNG is untouched). The number of torch threads
is the worker's business and is not set here.

With DP (`dp={"noise_multiplier", "max_grad_norm", "delta"}`): Opacus DP-SGD with Poisson sampling and
per-sample clipping; the result carries the round's mechanism and ε (RDP accountant). Sampling and noise
then come from OS entropy, not the seed: the seed is in the plan the coordinator knows, and noise the
coordinator could replay would be noise it could subtract. (Opacus' secure_mode would use torchcsprng,
which has no build for torch 2.13; torch's generator seeded from `secrets` is the next best.)
Under DP the proximal pull is applied as its own step after the noisy one (w -= lr · mu · (w - w_global),
decoupled like AdamW's weight decay): Opacus overwrites each parameter's gradient with the clipped,
noised per-sample gradients, which would silently drop a term added to the loss. The pull reads no data,
so it costs no privacy; for SGD it is the same update as the term in the loss.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from federated.networks import N_FEATURES, InvalidPlan, load_model
from federated.privacy import DPConfig, DPRound
from federated.proximal import ProximalTerm

OPTIMIZERS = ("sgd", "adam")


@dataclass(frozen=True)
class LocalTimings:
    """Wall time of one local round, in seconds: setup (model, data, DP wrapping), the training epochs,
    and the final evaluation of the new weights on the training rows."""

    setup_s: float
    train_s: float
    evaluate_s: float

    @property
    def total_s(self) -> float:
        return self.setup_s + self.train_s + self.evaluate_s


@dataclass(frozen=True)
class LocalResult:
    """One hospital's round: new weights and what the report needs. Losses are mean BCE on the training
    rows: `initial_loss` of the global weights, `train_loss` of the new ones (no proximal term)."""

    weights: dict[str, Tensor]
    sample_count: int
    initial_loss: float
    train_loss: float
    epoch_losses: tuple[float, ...]  # mean batch loss per epoch, as seen while training
    steps: int
    timings: LocalTimings
    dp: DPRound | None = None

    @property
    def epsilon(self) -> float | None:
        """ε spent by this round alone at the job's δ (None without DP)."""
        return None if self.dp is None else self.dp.epsilon


def round_seed(*, seed: int, hospital_id: str, round_number: int) -> int:
    """A job seed made specific to one hospital and round (63 bits), so hospitals do not shuffle alike."""
    digest = hashlib.sha256(f"{seed}/{hospital_id}/{round_number}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def train_locally(
    *,
    model_spec: Mapping[str, Any],
    global_weights: Mapping[str, Tensor],
    X: Tensor,
    y: Tensor,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    proximal_mu: float = 0.0,
    dp: Mapping[str, Any] | None = None,
    optimizer: str = "sgd",
) -> LocalResult:
    """Train the spec's model from `global_weights` on (X [n, 30] float, y [n] in {0, 1}).

    Raises InvalidPlan (with the field) for a bad spec, weights, hyper-parameter or DP setting.
    """
    started = time.perf_counter()
    _check_settings(
        X=X, y=y, epochs=epochs, batch_size=batch_size, lr=lr, optimizer=optimizer, mu=proximal_mu
    )
    dp_config = None if dp is None else DPConfig.from_json(dp)
    X, targets = X.to(torch.float32), y.to(torch.float32)  # the models' weights are float32
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = load_model(spec=model_spec, weights=global_weights)
        initial_loss = _mean_loss(model, X=X, targets=targets)
        parameters = dict(model.named_parameters())
        proximal = None
        if proximal_mu > 0:
            proximal = ProximalTerm(global_weights={n: global_weights[n] for n in parameters}, mu=proximal_mu)
        session = _session(
            model,
            X=X,
            targets=targets,
            batch_size=batch_size,
            lr=lr,
            seed=seed,
            optimizer=optimizer,
            dp=dp_config,
        )
        set_up = time.perf_counter()
        epoch_losses, steps = _run_epochs(
            session, epochs=epochs, proximal=proximal, parameters=parameters, lr=lr
        )
        epochs_done = time.perf_counter()
        train_loss = _mean_loss(model, X=X, targets=targets)
    finished = time.perf_counter()
    return LocalResult(
        weights={name: tensor.detach().clone() for name, tensor in model.state_dict().items()},
        sample_count=int(X.shape[0]),
        initial_loss=initial_loss,
        train_loss=train_loss,
        epoch_losses=tuple(epoch_losses),
        steps=steps,
        timings=LocalTimings(
            setup_s=set_up - started, train_s=epochs_done - set_up, evaluate_s=finished - epochs_done
        ),
        dp=None if dp_config is None else session.spent(steps=steps),
    )


@dataclass
class _Session:
    """What the epochs run on: the module to call (Opacus' wrapper under DP), its optimizer and loader."""

    module: nn.Module
    optimizer: torch.optim.Optimizer
    loader: DataLoader
    dp: DPConfig | None = None
    engine: Any = None  # opacus.PrivacyEngine under DP
    sample_rate: float = 0.0  # of the Poisson sampling under DP

    def spent(self, *, steps: int) -> DPRound:
        assert self.dp is not None and self.engine is not None
        return DPRound(
            noise_multiplier=self.dp.noise_multiplier,
            sample_rate=self.sample_rate,
            steps=steps,
            delta=self.dp.delta,
            epsilon=float(self.engine.get_epsilon(self.dp.delta)),
        )


def _session(
    model: nn.Module,
    *,
    X: Tensor,
    targets: Tensor,
    batch_size: int,
    lr: float,
    seed: int,
    optimizer: str,
    dp: DPConfig | None,
) -> _Session:
    optimizer_class = torch.optim.SGD if optimizer == "sgd" else torch.optim.Adam
    opt = optimizer_class(model.parameters(), lr=lr)
    if dp is None:
        generator = torch.Generator().manual_seed(seed)
        loader = DataLoader(
            TensorDataset(X, targets), batch_size=batch_size, shuffle=True, generator=generator
        )
        return _Session(module=model, optimizer=opt, loader=loader)
    # Opacus takes ~1.7 s to import; a worker that runs no DP job never pays it.
    from opacus import PrivacyEngine

    generator = torch.Generator().manual_seed(secrets.randbits(63))  # not the plan's seed: see module doc
    loader = DataLoader(TensorDataset(X, targets), batch_size=batch_size, generator=generator)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Secure RNG turned off")
        engine = PrivacyEngine(accountant="rdp")
    module, opt, loader = engine.make_private(
        module=model,
        optimizer=opt,
        data_loader=loader,
        noise_multiplier=dp.noise_multiplier,
        max_grad_norm=dp.max_grad_norm,
        poisson_sampling=True,
        noise_generator=generator,
    )
    sample_rate = float(getattr(loader, "sample_rate"))  # noqa: B009 (a DPDataLoader, typed as DataLoader)
    return _Session(
        module=module, optimizer=opt, loader=loader, dp=dp, engine=engine, sample_rate=sample_rate
    )


def _run_epochs(
    session: _Session,
    *,
    epochs: int,
    proximal: ProximalTerm | None,
    parameters: dict[str, nn.Parameter],
    lr: float,
) -> tuple[list[float], int]:
    """Mean batch loss per epoch, and the number of optimizer steps taken."""
    session.module.train()
    epoch_losses, steps = [], 0
    with warnings.catch_warnings():
        # Opacus' per-sample hooks on the first layer, whose input (the data) needs no gradient: expected.
        warnings.filterwarnings("ignore", message="Full backward hook is firing")
        for _ in range(epochs):
            batch_losses = _run_epoch(session, proximal=proximal, parameters=parameters, lr=lr)
            steps += len(batch_losses)
            finite = [loss for loss in batch_losses if not math.isnan(loss)]
            epoch_losses.append(sum(finite) / len(finite) if finite else math.nan)
    return epoch_losses, steps


def _run_epoch(
    session: _Session, *, proximal: ProximalTerm | None, parameters: dict[str, nn.Parameter], lr: float
) -> list[float]:
    """One pass over the loader, one optimizer step per batch; each batch's mean BCE (NaN if empty)."""
    loss_function = nn.BCEWithLogitsLoss()
    pull_after_step = proximal is not None and session.dp is not None
    batch_losses = []
    for features, labels in session.loader:
        session.optimizer.zero_grad(set_to_none=True)
        loss = loss_function(session.module(features), labels)
        objective = loss if proximal is None or pull_after_step else loss + proximal(parameters)
        objective.backward()
        session.optimizer.step()
        if pull_after_step:
            _proximal_step(proximal, parameters=parameters, lr=lr)
        # A Poisson batch may be empty: its mean loss is NaN and says nothing (the step still counts).
        batch_losses.append(float(loss.detach()) if len(labels) else math.nan)
    return batch_losses


def _proximal_step(proximal: ProximalTerm | None, *, parameters: dict[str, nn.Parameter], lr: float) -> None:
    assert proximal is not None
    tensors = list(parameters.values())
    gradients = torch.autograd.grad(proximal(parameters), tensors)
    with torch.no_grad():
        for tensor, gradient in zip(tensors, gradients, strict=True):
            tensor.sub_(gradient, alpha=lr)


def _mean_loss(model: nn.Module, *, X: Tensor, targets: Tensor) -> float:
    model.eval()
    with torch.no_grad():
        loss = nn.functional.binary_cross_entropy_with_logits(model(X), targets)
    model.train()
    return float(loss)


def _check_settings(
    *, X: Tensor, y: Tensor, epochs: int, batch_size: int, lr: float, optimizer: str, mu: float
) -> None:
    if X.dim() != 2 or X.shape[1] != N_FEATURES or not X.is_floating_point():
        raise InvalidPlan(f"X must be a float [n, {N_FEATURES}] tensor; got {tuple(X.shape)}.", field="X")
    if X.shape[0] == 0:
        raise InvalidPlan("There are no rows to train on.", field="X")
    if y.shape != (X.shape[0],):
        raise InvalidPlan(f"y must have shape ({X.shape[0]},); got {tuple(y.shape)}.", field="y")
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidPlan(f"{name} must be a whole number >= 1; got {value!r}.", field=name)
    if not _finite_number(lr) or lr <= 0:
        raise InvalidPlan(f"lr must be a finite number > 0; got {lr!r}.", field="lr")
    if not _finite_number(mu) or mu < 0:
        raise InvalidPlan(f"proximal_mu must be a finite number >= 0; got {mu!r}.", field="proximal_mu")
    if optimizer not in OPTIMIZERS:
        raise InvalidPlan(
            f"optimizer must be one of {', '.join(OPTIMIZERS)}; got {optimizer!r}.", field="optimizer"
        )


def _finite_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
