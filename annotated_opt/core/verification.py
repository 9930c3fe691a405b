r"""
# Verification: every optimizer proves itself

"Reference implementation" is a promise, and this module keeps it. `verify_config` runs one of our
optimizers and an independent implementation side by side, on identical parameters and identical
gradients, and after **every** step compares every parameter and every state tensor the reference
keeps. The tests run it for every registered optimizer, configuration and several seeds; the site
runs it again at build time and prints the result on each optimizer's page.

The reference is `torch.optim` where torch has the optimizer, otherwise the official package of the
paper or a transcription of the official code (the [registry](registry.md) names it). Comparing the
*state* too, not only the parameters, catches errors that have not reached the parameters yet: a
second moment updated with the wrong $\beta$ moves the parameters only slightly at first, but shows
in `exp_avg_sq` at once.

## Awkward parameters, each for a reason

Real models are not one big matrix. Each tensor in the set stands for a class of bug that a
well-behaved test tensor would let through:

* a **0-d scalar** (a learned temperature): code that reshapes to `(-1, n)`, indexes `p[0]` or
  takes a norm over dimension 1 fails or silently does something else;
* **vectors, a matrix and a conv-shaped 4-d tensor** (biases, linear and convolution weights):
  layer-wise rules ([LARS](lars.md), [LAMB](lamb.md), [Nero](nero.md)) treat them differently;
* **zero-size tensors**, `(0,)` and `(2, 0, 3)`: a norm of nothing is $0$, a maximum of nothing is
  an error, and $0/0$ is NaN, so a trust ratio or a mean must be guarded;
* a **non-contiguous** matrix (a transpose, as with tied weights): `view` fails on it, and a fast
  path that treats memory as flat writes into the wrong elements;
* a parameter whose gradient is **`None` on every third step** (a branch that was not used): its
  state, including the step count behind a bias correction, must not advance on those steps;
* a **frozen** parameter that never gets a gradient: it must stay untouched and keep no state.

They are split into two parameter groups, the second with half the learning rate (and twice the
weight decay), so that an optimizer reading `self.defaults` where it should read the group's value
is caught.

## A gradient that feeds back

The gradient is $g_t = \tfrac12\theta_{t-1} + \xi_t$ with seeded noise $\xi_t$: the gradient of the
loss $\sum \tfrac14\theta^2 + \xi_t\theta$. It depends on the parameters, so a discrepancy at one step
changes every later gradient and cannot hide; the noise, of unit size, keeps the gradients from
becoming steady, so that every branch (growing and shrinking $v_t$, sign changes) is exercised. It is
set before each step and also handed to `step` as a closure, so optimizers that need one (SAM) are
checked by the same harness.

## The error and the tolerance

The error of a tensor $a$ against the reference $b$ is

$$e(a, b) = \frac{\max|a-b|}{\max|b|},$$

the largest deviation relative to the tensor's scale. Element-wise relative error,
$\max |a-b|/|b|$, is meaningless where $b$ crosses zero (a parameter passing through $0$ would
report a huge error for a difference of $10^{-17}$); an absolute error would be too strict for
large tensors and too lax for small ones, and the state tensors differ in scale by orders of
magnitude ($v_t$ is a square).

Everything runs in `float64`, and the registry's default tolerance is $10^{-10}$. The two bounds it
sits between were measured: the same formula written in another order (as [RAdam](radam.md)'s
folded step size) differs from torch by about $10^{-15}$ after 100 steps, while changing Adam's
$\epsilon$ from $10^{-8}$ to $2\times 10^{-8}$, an $\epsilon$-sized change to the algorithm,
gives $10^{-8}$. So the tolerance accepts rounding by five orders of magnitude and rejects even an
$\epsilon$ in the wrong place by two. In `float32` the rounding alone would be $10^{-7}$ or more,
and such an error would hide in it.
"""

import contextlib
import importlib
import io
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from .registry import OptimizerInfo

# The shapes of the contiguous parameters: scalar, vector, matrix, conv kernel, and two empty ones.
PARAM_SHAPES: tuple[tuple[int, ...], ...] = ((), (7,), (5, 4), (3, 2, 3, 3), (0,), (2, 0, 3))
# 100 steps: long enough for Adam's $1-\beta_1^t$ to settle and for RAdam to leave its SGD phase
# (at step 6), short enough to run for every optimizer at every build of the site.
STEPS = 100
SEEDS = (0, 1, 2)


def import_object(path: str) -> Any:
    r"""
    `"torch.optim.Adam"` -> the class `torch.optim.Adam`. References are named by a string and
    imported only when a check runs, so that the package itself does not depend on the official
    packages it is checked against (they are test dependencies).
    """
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def make_parameters(seed: int, dtype: torch.dtype) -> list[torch.Tensor]:
    r"""
    The awkward parameter set, deterministic in `seed`. The last three are: a non-contiguous
    transposed matrix, the one whose gradient is sometimes `None`, and the frozen one.
    """
    # A private generator: the values depend on `seed` only, not on whatever else has drawn random
    # numbers before.
    generator = torch.Generator().manual_seed(seed)
    tensors = [torch.randn(shape, generator=generator, dtype=dtype) for shape in PARAM_SHAPES]
    # A $6\times 3$ matrix seen transposed: shape $(3, 6)$, strides $(1, 3)$, not contiguous.
    tensors.append(torch.randn(6, 3, generator=generator, dtype=dtype).t())
    tensors.append(torch.randn(4, generator=generator, dtype=dtype))
    tensors.append(torch.randn(3, generator=generator, dtype=dtype))
    return [t.requires_grad_() for t in tensors]


def matrix_parameters(seed: int, dtype: torch.dtype) -> list[torch.Tensor]:
    r"""
    The awkward set for an optimizer of matrices only ([Muon](../muon.md)): wide, tall, one row, square,
    zero-size and transposed matrices, then the sometimes-`None` and the frozen one, as matrices too.
    """
    generator = torch.Generator().manual_seed(seed)
    shapes = ((5, 4), (4, 7), (1, 6), (0, 3), (8, 8))
    tensors = [torch.randn(shape, generator=generator, dtype=dtype) for shape in shapes]
    tensors.append(torch.randn(6, 3, generator=generator, dtype=dtype).t())
    tensors.append(torch.randn(4, 2, generator=generator, dtype=dtype))
    tensors.append(torch.randn(3, 2, generator=generator, dtype=dtype))
    return [t.requires_grad_() for t in tensors]


def parameter_set(info: OptimizerInfo, seed: int, dtype: torch.dtype) -> list[torch.Tensor]:
    r"""
    The awkward set in the kind of parameters the entry takes: its own (`OptimizerInfo.parameters`,
    matrices for [Muon](../muon.md)), or `make_parameters`. The property battery draws its parameters
    through here too, so both checks see the same kinds.
    """
    return (info.parameters or make_parameters)(seed, dtype)


def takes_sparse_gradients(optimizer: Any) -> bool:
    r"""
    Whether an optimizer (a class or an instance) takes sparse gradients only
    ([SparseAdam](../sparse_adam.md)); such an optimizer is given its gradients through `row_sparse`.
    """
    return getattr(optimizer, "sparse_gradients", False)


def row_sparse(gradient: torch.Tensor, step: int) -> torch.Tensor:
    r"""
    The gradient as `nn.Embedding(sparse=True)` gives it: only some rows present (here, a row is
    absent when its index plus the step is a multiple of 3), and the first present row split into two
    halves under the same index, as a token seen twice in a batch is (halving is exact, so the
    coalesced sum is the dense row).
    """
    if gradient.ndim == 0:
        return gradient.to_sparse()
    present = [r for r in range(gradient.shape[0]) if (r + step) % 3 != 0]
    rows = torch.tensor(present, dtype=torch.long, device=gradient.device)
    values = gradient[rows]
    if len(rows):
        rows = torch.cat([rows[:1], rows])
        values = torch.cat([values[:1] / 2, values[:1] / 2, values[1:]])
    return torch.sparse_coo_tensor(rows[None], values, gradient.shape, check_invariants=True)


def clone_parameters(params: list[torch.Tensor]) -> list[torch.Tensor]:
    r"""Independent copies with the same values *and strides* (so non-contiguity is kept)."""
    copies = []
    for p in params:
        # The copy gets the original's strides explicitly: a contiguous copy would test the
        # reference on an easier parameter than ours.
        copy = torch.empty_strided(p.shape, p.stride(), dtype=p.dtype)
        copies.append(copy.copy_(p.detach()).requires_grad_())
    return copies


def param_groups(params: list[torch.Tensor], config: Mapping[str, Any]) -> list[dict[str, Any]]:
    r"""
    Two groups; the second with half the learning rate and twice the weight decay. The first half
    of the list (the scalar, the vector, the matrix and the conv kernel) keeps the configuration's
    values; the second (the empty tensors, the transposed matrix, the sometimes-`None` one and the
    frozen one) gets its own. An option the configuration does not set is left to the defaults in
    both groups, so that the defaults are checked too.
    """
    half = len(params) // 2
    second: dict[str, Any] = {"params": params[half:]}
    if "lr" in config:
        second["lr"] = config["lr"] / 2
    if config.get("weight_decay"):
        second["weight_decay"] = 2 * config["weight_decay"]
    return [{"params": params[:half]}, second]


def gradient_noise(params: list[torch.Tensor], step: int, seed: int) -> list[torch.Tensor]:
    r"""
    The noise $\xi_t$ of step `step`, one tensor per parameter, standard normal.

    The generator is seeded afresh from `(seed, step)` at every call rather than drawn from one
    stream: ours and the reference get the same noise however many times each evaluates its closure,
    and step 37 has the same noise whichever optimizer is being checked. $1\,000\,003$ is a prime
    larger than any step count, so no two pairs `(seed, step)` share a generator seed.
    """
    generator = torch.Generator().manual_seed(1_000_003 * seed + step)
    return [torch.randn(p.shape, generator=generator, dtype=p.dtype) for p in params]


def gradient_closure(params: list[torch.Tensor], step: int, seed: int,
                     sparse: bool = False) -> Callable[[], torch.Tensor]:
    r"""
    A closure, as a training loop would pass to `step`, that sets the gradients of step `step` at the
    *current* parameters and returns the loss $\sum \tfrac14\theta^2 + \xi_t\theta$ whose gradient
    that is. Optimizers that evaluate the loss twice per step (SAM) get a gradient at the perturbed
    point; the others just recompute the same one.

    The gradient is `None` for the second-to-last parameter every third step, and always for the last
    (frozen) one. With `sparse`, it is given row-sparse (`row_sparse`), for an optimizer that takes
    only sparse gradients.
    """
    noise = gradient_noise(params, step, seed)

    def closure() -> torch.Tensor:
        # The gradient is written directly, without autograd: it is exact, costs no graph, and
        # behaves the same for every dtype and shape (zero-size included).
        loss = torch.zeros((), dtype=params[0].dtype)
        for index, (p, xi) in enumerate(zip(params, noise)):
            frozen = index == len(params) - 1
            skipped = index == len(params) - 2 and step % 3 == 0
            value = p.detach()
            # $$g_t = \tfrac12\theta_{t-1} + \xi_t$$
            # read at the *current* parameters, a new tensor each time (so an optimizer that keeps
            # a reference to `p.grad` cannot be fooled by it changing).
            p.grad = None if frozen or skipped else (0.5 * value + xi)
            if sparse and p.grad is not None:
                p.grad = row_sparse(p.grad, step)
            # $$f_t(\theta) = \textstyle\sum \tfrac14\theta^2 + \xi_t\,\theta$$
            loss = loss + (0.25 * value * value + xi * value).sum()
        return loss

    return closure


def relative_error(ours: Any, reference: Any) -> float:
    r"""
    $\max|a-b| / \max|b|$ for tensors or numbers (a `step` may be an int or a tensor).

    A shape mismatch is an error, not a large number: broadcasting would otherwise compare a
    `(3,)` state with a `(1,)` one and could report agreement.
    """
    # State kept as a list (L-BFGS's history of vectors, with `None` in unused slots): entry by entry.
    if isinstance(reference, (list, tuple)) or reference is None:
        if reference is None or ours is None:
            if ours is not reference:
                raise AssertionError(f"{ours!r} differs from the reference's {reference!r}")
            return 0.0
        if not isinstance(ours, (list, tuple)) or len(ours) != len(reference):
            raise AssertionError(f"a list of {len(reference)} entries expected, got {ours!r}")
        return max((relative_error(a, b) for a, b in zip(ours, reference)), default=0.0)
    # Both in `float64`, so the comparison itself adds no rounding of its own.
    a = torch.as_tensor(ours, dtype=torch.float64)
    b = torch.as_tensor(reference, dtype=torch.float64)
    if a.shape != b.shape:
        raise AssertionError(f"shape {tuple(a.shape)} differs from the reference's {tuple(b.shape)}")
    # Two empty tensors of the same shape agree (and `max` of nothing would raise).
    if b.numel() == 0:
        return 0.0
    scale = b.abs().max().item()
    difference = (a - b).abs().max().item()
    # A NaN on either side must fail, and `NaN > tolerance` is `False`: report it as infinite.
    if math.isnan(difference):
        return math.inf
    # A reference that is exactly zero everywhere (a momentum buffer before any gradient) has no
    # scale: the absolute difference is the error then.
    return difference / scale if scale > 0 else difference


@dataclass
class Comparison:
    r"""
    The largest errors seen over a run, and where the largest one happened. Parameters and state
    are kept apart: a state error with a zero parameter error points at a state tensor that is kept
    but not used the same way (a maximum that is updated but never read, say).
    """

    param_error: float = 0.0
    state_error: float = 0.0
    worst: str = ""
    steps: int = 0

    @property
    def error(self) -> float:
        r"""The largest error of either kind: what the tolerance is checked against."""
        return max(self.param_error, self.state_error)

    def record(self, kind: str, error: float, where: str) -> None:
        r"""Note one comparison; `where` is kept if it is the worst so far, to point at the culprit."""
        if error > self.error:
            self.worst = where
        if kind == "param":
            self.param_error = max(self.param_error, error)
        else:
            self.state_error = max(self.state_error, error)


def compare_states(ours: torch.optim.Optimizer, reference: torch.optim.Optimizer,
                   our_params: list[torch.Tensor], reference_params: list[torch.Tensor],
                   step: int, result: Comparison) -> None:
    r"""
    Every parameter, and every state entry the reference keeps, must match.

    The reference's keys are the list: an extra entry in ours (a cached value, `master_weights`'
    copy) is allowed, a missing one is an error. Torch's names (`exp_avg`, `exp_avg_sq`,
    `momentum_buffer`) are therefore part of our interface.
    """
    for index, (mine, theirs) in enumerate(zip(our_params, reference_params)):
        result.record("param", relative_error(mine.detach(), theirs.detach()), f"param {index}, step {step}")
        reference_state = reference.state.get(theirs, {})
        our_state = ours.state.get(mine, {})
        if not our_state and float(reference_state.get("step", 0)) == 0:
            # We create state lazily, at a parameter's first gradient; `torch.optim.Adagrad` creates
            # it in its constructor. A parameter neither has stepped is equal either way.
            continue
        for key, value in reference_state.items():
            # An entry the reference keeps as `None` (a buffer not created yet) has nothing to compare.
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
        # Our options that choose an equivalent form (Adam's `fold_bias_correction`) are not passed:
        # the reference runs its one form, and ours must match it in every form.
        kwargs = {k: v for k, v in config.items() if k not in reference.ours_only}
        with contextlib.redirect_stdout(io.StringIO()):
            return reference_cls(groups, **kwargs, **reference.kwargs)

    return construct


def verify_config(info: OptimizerInfo, config: Mapping[str, Any], seed: int = 0, steps: int = STEPS,
                  dtype: torch.dtype = torch.float64,
                  reference_factory: Callable[..., torch.optim.Optimizer] | None = None) -> Comparison:
    r"""
    Run ours and the reference for `steps` steps and return the largest errors seen.

    `reference_factory` replaces the registered reference, for a test that checks against a
    transcription of the official code, or that checks the check (a deliberately wrong
    reference must fail).
    """
    if info.reference is None and reference_factory is None:
        raise ValueError(f"{info.name} has no reference implementation to verify against")
    if reference_factory is None:
        reference_factory = reference_constructor(info)

    # Two independent copies of the same values and layouts: nothing is shared between the runs.
    our_params = parameter_set(info, seed, dtype)
    reference_params = clone_parameters(our_params)
    ours = info.build(param_groups(our_params, config), **config)
    reference = reference_factory(param_groups(reference_params, config), **config)

    result = Comparison()
    for step in range(1, steps + 1):
        # Each optimizer gets the gradient at its *own* parameters: the gradients stay equal only
        # as long as the parameters do, which is what makes an error grow instead of hide.
        for params, optimizer in ((our_params, ours), (reference_params, reference)):
            closure = gradient_closure(params, step, seed, sparse=takes_sparse_gradients(info.cls))
            # Set the gradients as a training loop's backward pass would, then step; the closure is
            # passed too, for the optimizers that evaluate the loss themselves.
            closure()
            optimizer.step(closure)
            if info.after_step is not None:
                info.after_step(optimizer, step)
        # After every step, not only at the end: an error that appears and is later damped away
        # (a wrong first step of a bias correction, say) is still caught.
        compare_states(ours, reference, our_params, reference_params, step, result)
        result.steps = step
    return result


@dataclass
class VerificationSummary:
    r"""
    The outcome of `verify` for one optimizer, in the form the site prints on its page: the worst
    error over every configuration and seed, and how much was checked.
    """

    reference: str
    error: float
    steps: int
    configs: int
    seeds: int
    tolerance: float

    @property
    def passed(self) -> bool:
        r"""Whether the worst error is within the reference's tolerance (see the registry)."""
        return self.error <= self.tolerance

    def sentence(self) -> str:
        r"""One sentence for the page, with a failure spelled out rather than hidden."""
        verdict = "matches" if self.passed else "DOES NOT match"
        return (f"{verdict} `{self.reference}`: max relative error {self.error:.1e} over {self.steps} "
                f"steps, {self.configs} configuration{'s' * (self.configs != 1)} x {self.seeds} "
                f"seed{'s' * (self.seeds != 1)}, float64, "
                f"every parameter and state tensor compared after every step")


def verify(info: OptimizerInfo, seeds: tuple[int, ...] = SEEDS, steps: int = STEPS) -> VerificationSummary:
    r"""
    Every registered configuration and seed of one optimizer, summarised in one sentence. The
    summary keeps only the worst error: one bad configuration is enough to fail.
    """
    if info.reference is None:
        raise ValueError(f"{info.name} has no reference implementation to verify against")
    error = max(verify_config(info, config, seed, steps).error for config in info.configs for seed in seeds)
    return VerificationSummary(info.reference.target, error, steps, len(info.configs), len(seeds),
                               info.reference.tolerance)


def verify_named(key: str, seeds: tuple[int, ...] = SEEDS) -> tuple[VerificationSummary | str, float]:
    r"""
    `verify` of the registry entry `key`, with the seconds it took; a check that could not run gives its
    error as text. The entry is named by its key, not passed, so that a pool of processes can run the
    checks side by side (an entry holds functions, which do not travel between processes): the site's
    build checks every optimizer this way.
    """
    from .registry import REGISTRY

    start = time.perf_counter()
    try:
        result: VerificationSummary | str = verify(REGISTRY[key], seeds)
    except Exception as error:  # noqa: BLE001 (the page says what went wrong, and the strict build fails)
        result = f"{type(error).__name__}: {error}"
    return result, time.perf_counter() - start
