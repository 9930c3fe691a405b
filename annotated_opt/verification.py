r"""
# Verification: every optimizer proves itself

"Reference implementation" is a promise, and this module keeps it. `verify_config` runs one of our
optimizers and an independent implementation side by side, on identical parameters and identical
gradients, and after **every** step compares every parameter and every state tensor the reference
keeps. The tests run it for every registered optimizer, configuration and several seeds; the site
runs it again at build time and prints the result on each optimizer's page.

The parameters are chosen to be awkward: a 0-d scalar, vectors, a matrix, a conv-shaped 4-d tensor,
zero-size tensors, a non-contiguous (transposed) matrix, a parameter whose gradient is `None` on
every third step, and a frozen one that never gets a gradient. They are split into two parameter
groups, the second with half the learning rate (and twice the weight decay), so per-group options are
exercised too.

The gradient is $g_t = \tfrac12\theta_{t-1} + \xi_t$ with seeded noise $\xi_t$: it depends on the
parameters, so a discrepancy at one step changes every later gradient and cannot hide. It is set
before each step and also handed to `step` as a closure, so optimizers that need one (SAM) are
checked by the same harness.

The error of a tensor $a$ against the reference $b$ is $\max|a-b| / \max|b|$, the largest deviation
relative to the tensor's scale (element-wise relative error is meaningless where $b$ crosses zero).
"""

import contextlib
import importlib
import io
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from .registry import OptimizerInfo

PARAM_SHAPES: tuple[tuple[int, ...], ...] = ((), (7,), (5, 4), (3, 2, 3, 3), (0,), (2, 0, 3))
STEPS = 100
SEEDS = (0, 1, 2)


def import_object(path: str) -> Any:
    """`"torch.optim.Adam"` -> the class `torch.optim.Adam`."""
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def make_parameters(seed: int, dtype: torch.dtype) -> list[torch.Tensor]:
    r"""
    The awkward parameter set, deterministic in `seed`. The last three are: a non-contiguous
    transposed matrix, the one whose gradient is sometimes `None`, and the frozen one.
    """
    generator = torch.Generator().manual_seed(seed)
    tensors = [torch.randn(shape, generator=generator, dtype=dtype) for shape in PARAM_SHAPES]
    tensors.append(torch.randn(6, 3, generator=generator, dtype=dtype).t())
    tensors.append(torch.randn(4, generator=generator, dtype=dtype))
    tensors.append(torch.randn(3, generator=generator, dtype=dtype))
    return [t.requires_grad_() for t in tensors]


def clone_parameters(params: list[torch.Tensor]) -> list[torch.Tensor]:
    r"""Independent copies with the same values *and strides* (so non-contiguity is kept)."""
    copies = []
    for p in params:
        copy = torch.empty_strided(p.shape, p.stride(), dtype=p.dtype)
        copies.append(copy.copy_(p.detach()).requires_grad_())
    return copies


def param_groups(params: list[torch.Tensor], config: Mapping[str, Any]) -> list[dict[str, Any]]:
    r"""Two groups; the second with half the learning rate and twice the weight decay."""
    half = len(params) // 2
    second: dict[str, Any] = {"params": params[half:]}
    if "lr" in config:
        second["lr"] = config["lr"] / 2
    if config.get("weight_decay"):
        second["weight_decay"] = 2 * config["weight_decay"]
    return [{"params": params[:half]}, second]


def gradient_noise(params: list[torch.Tensor], step: int, seed: int) -> list[torch.Tensor]:
    r"""The noise $\xi_t$ of step `step`, one tensor per parameter."""
    generator = torch.Generator().manual_seed(1_000_003 * seed + step)
    return [torch.randn(p.shape, generator=generator, dtype=p.dtype) for p in params]


def gradient_closure(params: list[torch.Tensor], step: int, seed: int) -> Callable[[], torch.Tensor]:
    r"""
    A closure, as a training loop would pass to `step`, that sets the gradients of step `step` at the
    *current* parameters and returns the loss $\sum \tfrac14\theta^2 + \xi_t\theta$ whose gradient
    that is. Optimizers that evaluate the loss twice per step (SAM) get a gradient at the perturbed
    point; the others just recompute the same one.

    The gradient is `None` for the second-to-last parameter every third step, and always for the last
    (frozen) one.
    """
    noise = gradient_noise(params, step, seed)

    def closure() -> torch.Tensor:
        loss = torch.zeros((), dtype=params[0].dtype)
        for index, (p, xi) in enumerate(zip(params, noise)):
            frozen = index == len(params) - 1
            skipped = index == len(params) - 2 and step % 3 == 0
            value = p.detach()
            p.grad = None if frozen or skipped else (0.5 * value + xi)
            loss = loss + (0.25 * value * value + xi * value).sum()
        return loss

    return closure


def relative_error(ours: Any, reference: Any) -> float:
    r"""$\max|a-b| / \max|b|$ for tensors or numbers (a `step` may be an int or a tensor)."""
    a = torch.as_tensor(ours, dtype=torch.float64)
    b = torch.as_tensor(reference, dtype=torch.float64)
    if a.shape != b.shape:
        raise AssertionError(f"shape {tuple(a.shape)} differs from the reference's {tuple(b.shape)}")
    if b.numel() == 0:
        return 0.0
    scale = b.abs().max().item()
    difference = (a - b).abs().max().item()
    if math.isnan(difference):
        return math.inf
    return difference / scale if scale > 0 else difference


@dataclass
class Comparison:
    r"""The largest errors seen over a run, and where the largest one happened."""

    param_error: float = 0.0
    state_error: float = 0.0
    worst: str = ""
    steps: int = 0

    @property
    def error(self) -> float:
        return max(self.param_error, self.state_error)

    def record(self, kind: str, error: float, where: str) -> None:
        if error > self.error:
            self.worst = where
        if kind == "param":
            self.param_error = max(self.param_error, error)
        else:
            self.state_error = max(self.state_error, error)


def compare_states(ours: torch.optim.Optimizer, reference: torch.optim.Optimizer,
                   our_params: list[torch.Tensor], reference_params: list[torch.Tensor],
                   step: int, result: Comparison) -> None:
    r"""Every parameter, and every state entry the reference keeps, must match."""
    for index, (mine, theirs) in enumerate(zip(our_params, reference_params)):
        result.record("param", relative_error(mine.detach(), theirs.detach()), f"param {index}, step {step}")
        reference_state = reference.state.get(theirs, {})
        our_state = ours.state.get(mine, {})
        if not our_state and float(reference_state.get("step", 0)) == 0:
            # We create state lazily, at a parameter's first gradient; `torch.optim.Adagrad` creates
            # it in its constructor. A parameter neither has stepped is equal either way.
            continue
        for key, value in reference_state.items():
            if value is None:
                continue
            if key not in our_state:
                raise AssertionError(f"state {key!r} of param {index} is missing at step {step}")
            error = relative_error(our_state[key], value)
            result.record("state", error, f"state {key!r} of param {index}, step {step}")


def reference_constructor(info: OptimizerInfo) -> Callable[..., torch.optim.Optimizer]:
    r"""
    A function `(groups, **config)` that builds the registered reference for a configuration. Whatever
    the reference prints while it is built (`adabelief_pytorch` announces its settings) is discarded.
    """
    reference = info.reference
    reference_cls = import_object(reference.target)

    def construct(groups: list[dict[str, Any]], **config: Any) -> torch.optim.Optimizer:
        kwargs = {k: v for k, v in config.items() if k not in reference.ours_only}
        with contextlib.redirect_stdout(io.StringIO()):
            return reference_cls(groups, **kwargs, **reference.kwargs)

    return construct


def verify_config(info: OptimizerInfo, config: Mapping[str, Any], seed: int = 0, steps: int = STEPS,
                  dtype: torch.dtype = torch.float64,
                  reference_factory: Callable[..., torch.optim.Optimizer] | None = None) -> Comparison:
    r"""Run ours and the reference for `steps` steps and return the largest errors seen."""
    if info.reference is None and reference_factory is None:
        raise ValueError(f"{info.name} has no reference implementation to verify against")
    if reference_factory is None:
        reference_factory = reference_constructor(info)

    our_params = make_parameters(seed, dtype)
    reference_params = clone_parameters(our_params)
    ours = info.build(param_groups(our_params, config), **config)
    reference = reference_factory(param_groups(reference_params, config), **config)

    result = Comparison()
    for step in range(1, steps + 1):
        for params, optimizer in ((our_params, ours), (reference_params, reference)):
            closure = gradient_closure(params, step, seed)
            closure()
            optimizer.step(closure)
        compare_states(ours, reference, our_params, reference_params, step, result)
        result.steps = step
    return result


@dataclass
class VerificationSummary:
    reference: str
    error: float
    steps: int
    configs: int
    seeds: int
    tolerance: float

    @property
    def passed(self) -> bool:
        return self.error <= self.tolerance

    def sentence(self) -> str:
        verdict = "matches" if self.passed else "DOES NOT match"
        return (f"{verdict} `{self.reference}`: max relative error {self.error:.1e} over {self.steps} "
                f"steps, {self.configs} configuration{'s' * (self.configs != 1)} x {self.seeds} "
                f"seed{'s' * (self.seeds != 1)}, float64, "
                f"every parameter and state tensor compared after every step")


def verify(info: OptimizerInfo, seeds: tuple[int, ...] = SEEDS, steps: int = STEPS) -> VerificationSummary:
    r"""Every registered configuration and seed of one optimizer, summarised in one sentence."""
    if info.reference is None:
        raise ValueError(f"{info.name} has no reference implementation to verify against")
    error = max(verify_config(info, config, seed, steps).error for config in info.configs for seed in seeds)
    return VerificationSummary(info.reference.target, error, steps, len(info.configs), len(seeds),
                               info.reference.tolerance)
