"""Shared helpers for the tests: the registry's optimizers and a small deterministic problem."""

import io

import pytest
import torch

from annotated_opt.core.registry import REGISTRY, OptimizerInfo

VERIFIED = [info for info in REGISTRY.values() if info.reference is not None]


def config_cases(infos: list[OptimizerInfo]) -> list:
    """One pytest case per (optimizer, configuration), named after both."""
    return [
        pytest.param(info, config, id=f"{info.key}-{i}")
        for info in infos
        for i, config in enumerate(info.configs)
    ]


def toy_problem(seed: int = 0, dtype: torch.dtype = torch.float64) -> tuple[torch.nn.Module, torch.Tensor, ...]:
    """A small regression model and batch, the same for every call with the same seed."""
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1)).to(dtype)
    inputs = torch.randn(16, 5, dtype=dtype)
    targets = torch.randn(16, 1, dtype=dtype)
    return model, inputs, targets


def train_steps(model: torch.nn.Module, optimizer: torch.optim.Optimizer, inputs: torch.Tensor,
                targets: torch.Tensor, steps: int, scheduler=None) -> list[float]:
    """
    `steps` training steps. Each computes the gradient, then hands `step` a closure that recomputes it,
    as a loop written for any optimizer does: the closure re-evaluates the same loss for most, and is
    the second pass of the ones that need it (SAM).
    """
    losses = []
    for _ in range(steps):
        def closure() -> torch.Tensor:
            optimizer.zero_grad()
            loss = torch.nn.functional.mse_loss(model(inputs), targets)
            loss.backward()
            return loss

        loss = closure()
        optimizer.step(closure)
        if scheduler is not None:
            scheduler.step()
        losses.append(loss.item())
    return losses


def save_and_load(state: dict) -> dict:
    """`state` after a trip through `torch.save` and `torch.load(..., weights_only=True)`, as a checkpoint."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)
