"""
Shared pieces of the property battery: its cases, the parameters and gradients each entry takes, a
deterministic gradient source, exact comparisons.

Every optimizer is checked on the kinds of parameters and gradients it declares, the ones the float64
verification gives it: the entry's parameter set (`verification.parameter_set`: matrices only for Muon)
and, for an optimizer of sparse gradients only (SparseAdam), row-sparse gradients
(`verification.row_sparse`). A tensor the battery makes for one property takes the same route: its
shape through `shaped`, its gradients through `run`/`closure_for`.
"""

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import pytest
import torch

from annotated_opt.core.registry import PROPERTIES, REGISTRY, OptimizerInfo
from annotated_opt.core.verification import clone_parameters, parameter_set, row_sparse, takes_sparse_gradients

ALL = list(REGISTRY.values())


def entries() -> list:
    """One case per registered optimizer."""
    return [pytest.param(info, id=info.key) for info in ALL]


def cases() -> list:
    """One case per registered optimizer and configuration."""
    return [pytest.param(info, config, id=f"{info.key}-{i}") for info in ALL for i, config in enumerate(info.configs)]


def exempt(info: OptimizerInfo, prop: str) -> None:
    """Skip a property the registry entry declares does not hold, with its reason."""
    assert prop in PROPERTIES, prop
    reason = info.exemptions.get(prop)
    if reason:
        pytest.skip(f"{info.name} is exempt from {prop}: {reason}")


def matrix_view(shape: Sequence[int]) -> tuple[int, ...]:
    """The shape of a tensor seen as a matrix: its first dimension by the rest, as a conv kernel is flattened."""
    return (shape[0], math.prod(shape[1:])) if shape else (1, 1)


def shaped(info: OptimizerInfo, shape: Sequence[int]) -> tuple[int, ...]:
    """
    `shape` as the entry takes it. Its parameter set says which ranks it takes; a shape of another rank
    becomes its matrix view, for an optimizer of matrices only. For every other entry, `shape` itself.
    """
    ranks = {p.ndim for p in parameter_set(info, 0, torch.float64)}
    if len(shape) in ranks:
        return tuple(shape)
    assert ranks == {2}, f"{info.name} takes tensors of rank {sorted(ranks)} only"
    return matrix_view(shape)


def as_taken(optimizer: torch.optim.Optimizer, params: Sequence[torch.Tensor], step: int) -> None:
    """The gradients of `params` in the form the optimizer takes: row-sparse for one of sparse gradients only."""
    if takes_sparse_gradients(optimizer):
        for p in params:
            if p.grad is not None:
                p.grad = row_sparse(p.grad, step)


def noise(shape: Sequence[int], step: int, seed: int, index: int, dtype: torch.dtype) -> torch.Tensor:
    """Seeded noise for parameter `index` at `step`; complex dtypes get complex noise."""
    generator = torch.Generator().manual_seed(1_000_003 * seed + 7919 * step + index)
    if dtype.is_complex:
        return torch.randn(shape, generator=generator, dtype=torch.complex128).to(dtype)
    return torch.randn(shape, generator=generator, dtype=torch.float64).to(dtype)


def closure_for(params: Sequence[torch.Tensor], step: int, seed: int = 0,
                without_grad: Callable[[int, int], bool] = lambda index, step: False,
                gradient: Callable[[torch.Tensor, int, int], torch.Tensor] | None = None,
                optimizer: torch.optim.Optimizer | None = None) -> Callable[[], torch.Tensor]:
    r"""
    A closure that sets the gradients of step `step` at the *current* parameters,
    $g = \tfrac12\theta + \xi_t$, and returns a loss. `without_grad(index, step)` leaves a gradient
    `None`; `gradient(param, index, step)` replaces the rule. Given the `optimizer`, the gradients are
    set in the form it takes (`as_taken`); without it, exactly as the rule makes them.
    """

    def closure() -> torch.Tensor:
        for index, p in enumerate(params):
            if without_grad(index, step):
                p.grad = None
            elif gradient is not None:
                p.grad = gradient(p, index, step)
            else:
                value = p.detach()
                p.grad = 0.5 * value + noise(p.shape, step, seed, index, p.dtype).to(p.device)
        if optimizer is not None:
            as_taken(optimizer, params, step)
        return torch.zeros((), dtype=torch.float64)

    return closure


def run(optimizer: torch.optim.Optimizer, params: Sequence[torch.Tensor], steps: Iterable[int], seed: int = 0,
        scheduler: Any = None, **closure_options: Any) -> None:
    """Steps `steps` (their numbers pick the noise), each given its gradient closure."""
    for step in steps:
        optimizer.step(closure_for(params, step, seed, optimizer=optimizer, **closure_options))
        if scheduler is not None:
            scheduler.step()


def twin(params: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Independent copies with the same values and strides."""
    return clone_parameters(list(params))


def same(a: Any, b: Any) -> bool:
    """Exact structural equality: tensors by dtype, shape and every bit of their values."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.dtype == b.dtype
                and a.shape == b.shape and torch.equal(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def assert_same_params(a: Sequence[torch.Tensor], b: Sequence[torch.Tensor]) -> None:
    for index, (p, q) in enumerate(zip(a, b, strict=True)):
        assert p.dtype == q.dtype and torch.equal(p.detach(), q.detach()), f"parameter {index} differs"


def state_tensors(optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
    return [v for s in optimizer.state.values() for v in s.values() if isinstance(v, torch.Tensor)]


def assert_finite(optimizer: torch.optim.Optimizer, params: Sequence[torch.Tensor]) -> None:
    for index, p in enumerate(params):
        assert torch.isfinite(p.detach()).all(), f"parameter {index} is not finite"
    for value in state_tensors(optimizer):
        if value.is_floating_point() or value.is_complex():
            assert torch.isfinite(value).all(), "a state tensor is not finite"
