r"""
# Non-finite gradients: raise, skip, or ignore

One `inf` or `NaN` in one gradient is enough to ruin a run for good. An adaptive optimizer folds the
gradient into its state: after $v_t = \beta_2 v_{t-1} + (1-\beta_2)\,g_t^2$ with one $g_t = \infty$,
$v$ is infinite in that coordinate for the rest of training, and $m_t / \sqrt{v_t}$ is
$\infty/\infty = \mathrm{NaN}$. A `NaN` spreads the same way. The weights are then wrong, the moments
are wrong, and a checkpoint taken afterwards is wrong too. `torch.optim` does not look: it applies the
step and the damage shows a few steps later as a loss of `nan`, far from its cause.

Every optimizer here looks at the gradients before it changes anything, and does what the parameter
group's option `nonfinite` says:

* `"raise"` (the default): raise `NonFiniteGradientError`, naming the parameter and counting the bad
  values. Nothing has been changed: neither a weight nor a moment nor a step count. Fix the cause, or
  catch the error and carry on with the next batch.
* `"skip"`: skip the whole step, in every group, as if `step` had not been called, count it in the
  optimizer's `skipped_steps` (saved in its state dict) and report it with a `RuntimeWarning`. This is
  what mixed-precision training does with a loss scaler (`torch.amp.GradScaler` skips a step whose
  unscaled gradients overflow), available without one.
* `"ignore"`: do not check, exactly like `torch.optim`. The check costs one pass over the gradients
  and one synchronisation per step; choose this when that matters more than protection.

The decision is for the whole step, not per group: a skipped step leaves every group untouched, so the
groups never drift out of step with each other. When groups disagree, `"raise"` wins over `"skip"`, and
groups set to `"ignore"` are not checked at all.

A finite gradient can still overflow in the state (a `float16` $g^2$ above 65504); that is a question
of precision, answered by [master weights](precision.md), not of bad input.

## Where bad gradients come from

Knowing the usual causes helps to choose the policy:

* **A loss that is already `inf` or `NaN`**: $\log 0$ in a hand-written cross-entropy, a division
  by a norm that is zero, $\sqrt{x}$ at $x = 0$ (finite value, infinite derivative). These are bugs,
  and they come back every time the same input does: `"raise"` finds them at once.
* **Overflow in half precision**: a `float16` activation or gradient above 65504 becomes `inf`.
  Rare, transient, and the reason loss scalers skip steps: `"skip"` is the right answer.
* **Divergence**: a learning rate too high for the current curvature makes the weights, then the
  loss, then the gradients grow until they overflow. Skipping does not help (the next step is as
  bad); lower the learning rate, or clip the gradients.

## Which policy to use

| situation | policy |
|---|---|
| developing a model, or any run where a bad gradient is a bug | `"raise"` |
| float16 training without `GradScaler`, or data with rare corrupt samples | `"skip"` |
| a benchmark of step time, or a loss scaler that already checks | `"ignore"` |

With `"skip"`, watch `skipped_steps`: a handful over a long run is the expected overflow; a steady
stream is divergence, and skipping only hides it.

## How the base class uses this module

[The base class](base.md) calls `GradientCheck` before any parameter is touched: its template step
once, for all the groups; an optimizer that overrides `step` through `params_with_grads`, at every
call, where the memory below keeps the check to once per set of gradients. This module provides
the pieces: the policy names and their check, the `BadGradient` record, the cheap screen
`find_bad_gradients`, the memory that avoids checking the same gradients twice, and the error message.
"""

import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.distributed.tensor import DTensor

# The three values of the group option `nonfinite`, the default first.
POLICIES = ("raise", "skip", "ignore")


class NonFiniteGradientError(RuntimeError):
    r"""
    A gradient held `inf` or `NaN`; the optimizer changed nothing.

    A subclass of `RuntimeError`, so code that already catches a failed step as `RuntimeError` keeps
    working. After catching it, the optimizer is exactly as before the call: calling `zero_grad` and
    going on with the next batch is safe.
    """


def check_policy(value: Any) -> None:
    r"""The option must be one of the three policies; a typo must not silently mean "raise"."""
    if value not in POLICIES:
        raise ValueError(f"Invalid nonfinite: {value!r} (must be one of {', '.join(map(repr, POLICIES))})")


@dataclass(frozen=True)
class BadGradient:
    r"""
    Where a non-finite gradient was found, and what it holds: the indices of its group and of the
    parameter in that group, its name when the group was built from `named_parameters()`, and how
    many of its `numel` values are `NaN` and how many $\pm\infty$. The counts tell the causes apart:
    every value `NaN` usually means a `NaN` loss, a few `inf` an overflow.
    """

    group: int
    index: int
    name: str | None
    nan: int
    inf: int
    numel: int

    def describe(self) -> str:
        r"""`parameter 3 of group 0 ('fc.weight'): 2 NaN and 0 inf among 4096 values`."""
        where = f"parameter {self.index} of group {self.group}"
        if self.name is not None:
            where += f" ({self.name!r})"
        return f"{where}: {self.nan} NaN and {self.inf} inf among {self.numel} values"


def checked_gradients(param_groups: Sequence[dict[str, Any]]) -> list[tuple[int, int, torch.Tensor]]:
    r"""
    Every gradient the step will read, with where it lives: `(group index, parameter index, gradient)`.
    Groups set to `"ignore"` are left out. A sparse gradient is checked through the values it stores.
    Under FSDP a gradient is a `DTensor`: each process checks its own shard, and the verdicts are
    combined afterwards ([distributed](distributed.md)), with one collective instead of one per tensor.
    """
    return [
        (group_index, param_index, _as_checked(grad))
        for group_index, group in enumerate(param_groups) if _is_checked(group)
        for param_index, grad in enumerate([p.grad for p in group["params"]]) if grad is not None
    ]


def screened_gradients(param_groups: Sequence[dict[str, Any]]) -> list[torch.Tensor]:
    r"""
    The gradients of `checked_gradients`, without where they live: what the screen reads at every
    step (half the time of the located list on a thousand tensors; a plain gradient is taken as it is).
    """
    return [
        grad if type(grad) is torch.Tensor and not grad.is_sparse else _as_checked(grad)
        for group in param_groups if _is_checked(group)
        for grad in [p.grad for p in group["params"]] if grad is not None
    ]


def _is_checked(group: dict[str, Any]) -> bool:
    return group.get("nonfinite", "raise") != "ignore"


def _as_checked(grad: torch.Tensor) -> torch.Tensor:
    r"""The values of `grad` that this process checks: its shard of a `DTensor`, the stored values of a sparse one."""
    if isinstance(grad, DTensor):
        grad = grad.to_local()
    return grad._values() if grad.is_sparse else grad


HALF_DTYPES = (torch.float16, torch.bfloat16)

# Gradients of at most this many elements are screened together (see below). Each reduction costs
# about as much to launch as summing a few thousand numbers, and copying a tensor together with others
# moves its bytes three times instead of once: the two costs meet near 5,000 elements on a CPU.
SMALL_GRADIENT = 4096


def _total(tensor: torch.Tensor) -> torch.Tensor:
    r"""The sum of `tensor`, in `float32` for half precision (whose range no sum of its values can exceed)."""
    return tensor.sum(dtype=torch.float32) if tensor.dtype in HALF_DTYPES else tensor.sum()


def _end_to_end(tensors: list[torch.Tensor]) -> torch.Tensor:
    r"""
    Tensors of one device laid end to end in one vector, in their widest dtype. Vectors are joined as
    they are (a thousand of them: 0.4 ms); other shapes are flattened first, which costs about as much
    again.
    """
    if [tensor.dim() for tensor in tensors].count(1) == len(tensors):
        return torch.cat(tensors)
    return torch._utils._flatten_dense_tensors(tensors)


def finite_verdict(grads: Sequence[torch.Tensor]) -> torch.Tensor:
    r"""
    ### The verdict

    One boolean for the whole step, as a 0-d tensor on the first gradient's device: `True` when every
    gradient is finite (`grads` must not be empty). This is the only place the verdict is formed; the
    eager check reads it once on the host, a compiled step keeps it on the device.

    It must be cheap, since it runs at every step. The screen is a sum: IEEE arithmetic carries any
    $\pm\infty$ or `NaN` into the sum ($\infty + x = \infty$, $\infty - \infty = \mathrm{NaN}$,
    $\mathrm{NaN} + x = \mathrm{NaN}$), so a finite total proves every gradient finite.

    $$s_k = \sum_i g^{(k)}_i \text{ finite for every tensor } k \implies \text{no } g^{(k)}_i
      \text{ is } \pm\infty \text{ or NaN}$$

    A large gradient gets a sum of its own, one pass over its memory (fused into one pass with the
    others by the compiler). On a model of many small tensors the launch of each sum would cost more
    than the adding: the small gradients of each device are laid end to end in one buffer and summed
    once (a thousand vectors of a thousand numbers, one thread: 0.6 ms to copy and sum them, against
    1.6 ms for a sum each). Gradients of several dtypes join in the widest of them (`float16` beside
    `float32` becomes `float32`, exactly), so one buffer serves a mixed-precision model.

    The converse does not hold (a sum can overflow to $\infty$ on finite values): a `False` verdict is a
    suspicion, which the eager check confirms by counting.
    """
    # Each loop over the gradients below is one comprehension: on a thousand tensors a loop written
    # out with a dictionary cost half as much as the arithmetic.
    sums = [_total(grad) for grad in grads if grad.numel() > SMALL_GRADIENT]
    small = [grad for grad in grads if grad.numel() <= SMALL_GRADIENT] if sums else list(grads)
    if small:
        sums += [_total(_end_to_end(alike)) for alike in _by_device(small)]
    if len(sums) == 1:
        return torch.isfinite(sums[0])
    try:
        total = torch.stack(sums)
    except RuntimeError:
        # Gradients on several devices (a model split across them): the sums meet on the first one's.
        total = torch.stack([s.to(grads[0].device) for s in sums])
    return torch.isfinite(total).all()


def _by_device(tensors: list[torch.Tensor]) -> list[list[torch.Tensor]]:
    r"""
    `tensors` in lists of one device each, in the order each device first appears. A CPU tensor is
    told by its flag: `tensor.device` builds a new object at every call.
    """
    keys = [tensor.is_cpu or tensor.device for tensor in tensors]
    if keys.count(keys[0]) == len(keys):
        return [tensors]
    alike: dict[Any, list[torch.Tensor]] = {}
    for key, tensor in zip(keys, tensors):
        alike.setdefault(key, []).append(tensor)
    return list(alike.values())


def find_bad_gradients(param_groups: Sequence[dict[str, Any]]) -> list[BadGradient]:
    r"""
    ### The check

    The verdict over every checked gradient, read on the host: the one synchronisation of a clean step.
    Only when it fails are the bad values counted, parameter by parameter; a sum that overflowed on huge
    but finite values is then found to be a false alarm.
    """
    screened = screened_gradients(param_groups)
    if not screened or bool(finite_verdict(screened)):
        return []

    # The screen failed: find the culprits, and count their NaN and inf for the message.
    bad = []
    for group_index, param_index, grad in checked_gradients(param_groups):
        nan = int(torch.isnan(grad).sum())
        inf = int(torch.isinf(grad).sum())
        if nan or inf:
            names = param_groups[group_index].get("param_names")
            name = names[param_index] if names is not None else None
            bad.append(BadGradient(group_index, param_index, name, nan, inf, grad.numel()))
    return bad


class GradientCheck:
    r"""
    ### Checking each set of gradients once

    `params_with_grads` is called once per group, and optimizers with two passes (SAM) call it again
    after their closure has computed new gradients. The check is remembered for the gradients it saw:
    each gradient tensor (held by a weak reference, so a freed gradient cannot be mistaken for a new one
    at the same address) and its version counter, which every in-place change increments. New
    gradients, or changed ones, are checked again. The memory is wiped at the start of every step.
    """

    def __init__(self) -> None:
        # `seen` is `None` until a check has been made (and again after `forget`); otherwise one entry
        # per parameter, in order: `None` for a parameter without a gradient, else a weak reference
        # to the gradient tensor and its version. `verdict` is the answer for those gradients.
        self.seen: list[tuple[weakref.ref, int] | None] | None = None
        self.verdict: list[BadGradient] = []

    def forget(self) -> None:
        r"""Drop the memory, so the next call checks again (the base class calls this as a step starts)."""
        self.seen = None

    @staticmethod
    def signature(param_groups: Sequence[dict[str, Any]]) -> list[tuple[torch.Tensor | None, int]]:
        r"""
        For every parameter, its gradient and the gradient's version counter ($-1$ for none).
        `tensor._version` grows by one with every in-place change (`add_`, `mul_`, an optimizer of
        another library writing into `.grad`), so an unchanged pair means unchanged values.
        """
        return [
            (p.grad, p.grad._version if p.grad is not None else -1)
            for group in param_groups
            for p in group["params"]
        ]

    def __call__(
        self, param_groups: Sequence[dict[str, Any]], remember: bool = True
    ) -> tuple[list[BadGradient], bool]:
        r"""
        The bad gradients, and whether this was a fresh check (new gradients) or a remembered one.
        A caller that will not ask again in this step passes `remember=False`: the check is then
        made, and nothing is recorded (a thousand weak references cost a third of a millisecond).
        """
        if not remember:
            self.seen = None
            self.verdict = find_bad_gradients(param_groups)
            return self.verdict, True
        # The same gradients as last time, unchanged: the same answer, without a pass over them.
        # "The same" is identity, not equality: the weak reference must still point at the very
        # tensor now in `.grad`, at the same version.
        current = self.signature(param_groups)
        if self.seen is not None and len(self.seen) == len(current) and all(
            (seen is None and grad is None) or (seen is not None and seen[0]() is grad and seen[1] == version)
            for seen, (grad, version) in zip(self.seen, current)
        ):
            return self.verdict, False
        # Otherwise check, and remember what was checked.
        self.verdict = find_bad_gradients(param_groups)
        self.seen = [None if grad is None else (weakref.ref(grad), version) for grad, version in current]
        return self.verdict, True


def error_message(optimizer_name: str, bad: Sequence[BadGradient]) -> str:
    r"""
    Name up to three offending parameters, say nothing was changed, and say what the options are.

    The message is meant to be acted on without reading this page: where the bad values are, that
    the optimizer's state is intact, and the two settings that change the behaviour.
    """
    shown = "; ".join(b.describe() for b in bad[:3])
    more = f" (and {len(bad) - 3} more)" if len(bad) > 3 else ""
    return (
        f"{optimizer_name} got a non-finite gradient in {shown}{more}. Nothing was updated. "
        "Set nonfinite='skip' in the parameter groups to skip such steps, or 'ignore' to apply them "
        "as torch.optim does."
    )
