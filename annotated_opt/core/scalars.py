r"""
# Scalar state kept as torch keeps it: step counts and the like

`torch.optim` keeps a parameter's step count, and a few other per-parameter numbers (ASGD's current
step size and averaging weight, NAdam's product of momentum coefficients), as 0-d tensors rather than
Python numbers, so that a compiled or CUDA-graph-captured step can update them without leaving the
device. Their dtype is torch's *scalar* precision: `float32`, unless the default dtype is `float64`,
whatever the parameter's own dtype.

An optimizer here that has a `torch.optim` twin keeps these numbers the same way, for two reasons:

* **checkpoints**: a `torch.optim` state dict then loads here, and ours loads into torch, with no
  conversion and no drift. A number held in another form continues from a checkpoint with other
  rounding: a `float32` tensor count used directly in $\beta^t$ gives bias corrections rounded to
  `float32`, and the parameters drift by about $10^{-7}$ within a few steps;
* **compiled and captured steps**: a tensor can be updated in place on the device, so a compiled step
  does not recompile at every new value of $t$ and a CUDA graph can replay the increment.

## Step counts

Every optimizer that corrects a bias ($1-\beta^t$) or decays its learning rate with time keeps a step
count $t$ per parameter, in `state["step"]`. What torch stores, and therefore what is stored here:

| group options | `state["step"]` |
|---|---|
| default | a 0-d tensor on the CPU, of the scalar dtype: `float64` if that is the default dtype, else `float32` |
| `capturable=True` | the same, on the parameter's device |
| `fused=True` | a `float32` 0-d tensor on the parameter's device |

One optimizer departs from the table, as torch's twin does: [ASGD](../asgd.md) keeps its count, its
step size and its averaging weight on the parameter's device whatever the options.

The count is advanced in place (`step += 1`), so the tensor in the state is the one that counts.
Arithmetic with it reads it back as a Python number first (`.item()`), as torch's single-tensor
code does outside `capturable`/`differentiable` mode: $\beta^t$ is then computed in double
precision from an exact integer (a `float32` count is exact up to $2^{24} \approx 1.7 \times 10^7$
steps), which makes every bias correction equal, bit for bit, to torch's.

## Other scalar state, and loading it

Two consequences of the scalar precision for the other numbers are worth knowing:

* a value stored in `float32` is rounded to `float32` even for a `float64` parameter (ASGD's step
  size, about $10^{-8}$ relative); the twin must read it back from the tensor, not from the `float64`
  number it was computed from, or the two drift apart;
* `torch.optim.Optimizer.load_state_dict` casts every floating-point state tensor except `step` to
  its parameter's dtype. `restore_scalar_precision` puts them back after a load, so a reloaded
  optimizer continues bit for bit (see [ASGD](../asgd.md) and [NAdam](../nadam.md)).

A step count has the opposite problem after a load: a checkpoint saved by an older version (or an old
torch) may hold it as a plain number, which `restore_step_count` turns into the tensor.

## A formula chosen by the step count

Some steps change their formula with $t$: [RAdam](../radam.md) takes SGD steps until $\rho_t$ passes a
threshold, [AdEMAMix](../ademamix.md) warms up its $\alpha$ and $\beta_3$. In the readable step $t$ is
a Python number and an `if` chooses. In the [fast path](fastpath.md) the same numbers are 0-d tensors
whose values the compiler does not know when it builds the graph, and an `if` on one would cut the
graph in two at every step. `choose(condition, if_true, if_false)` is the `if` written once for
both: the plain conditional expression on numbers, `torch.where` on tensors (the choice made on the
device, in the same fused loop).

A first step that resets a tensor ([Adagrad](../adagrad.md)'s accumulator, [Adan](../adan.md)'s
gradient difference) is chosen by `fill_if(tensor, condition, value)`, with the condition a 0-d tensor
computed from the count. Where that count lives decides how: one on the CPU is read on the host (free,
and no pass over the tensor), one on the GPU, or any inside a compiled step, becomes a masked fill.
A masked fill with a mask on the CPU would be refused by a tensor on a GPU.

NAdam's product of momentum coefficients is multiplied by a number computed from the count, in place,
so it is kept where the count is (`new_scalar`): an in-place update of a tensor on the CPU cannot take
a number that lives on a GPU.
"""

from collections.abc import Iterable
from typing import Any

import torch


def scalar_dtype(fused: bool = False) -> torch.dtype:
    r"""
    torch's dtype for scalar state: `float64` only when that is the default dtype; always `float32`
    for a fused step (its kernels take a `float32` count).
    """
    if not fused and torch.get_default_dtype() == torch.float64:
        return torch.float64
    return torch.float32


def scalar(value: float, device: torch.device | None = None) -> torch.Tensor:
    r"""
    A 0-d tensor holding `value` in the scalar precision, on the CPU unless told otherwise: ASGD's
    $\mu_0 = 1$ is `scalar(1.0, param.device)`.
    """
    return torch.tensor(value, dtype=scalar_dtype(), device=device)


def new_scalar(group: dict[str, Any], param: torch.Tensor, value: float) -> torch.Tensor:
    r"""
    A 0-d tensor holding `value`, where and how torch keeps a step count for this group (the table
    above). A number updated with the count, such as NAdam's product of momentum coefficients, must
    live beside it: an in-place update of a tensor on the CPU cannot take a number from a GPU.
    """
    fused = bool(group.get("fused"))
    if group.get("capturable") or fused:
        return torch.full((), value, dtype=scalar_dtype(fused), device=param.device)
    return scalar(value)


def new_step_count(group: dict[str, Any], param: torch.Tensor) -> torch.Tensor:
    r"""A step count of $0$, where and how torch keeps it for this group (the table above)."""
    return new_scalar(group, param, 0.0)


def advance(state: dict[str, Any]) -> float:
    r"""
    $t \leftarrow t + 1$, in place, and return the new $t$ as a Python number for the scalar
    arithmetic of the step.

    In place with `add_`, not `state["step"] += 1`: the augmented assignment also stores the tensor
    back into the dictionary, the same tensor, but a compiled step must replay every store into its
    inputs after the graph has run, one returned tensor per parameter. On a model of a thousand small
    tensors those stores cost 0.8 ms of a 7 ms [fast](fastpath.md) step.
    """
    state["step"].add_(1)
    return state["step"].item()


def restore_step_count(state: dict[str, Any], group: dict[str, Any], param: torch.Tensor) -> None:
    r"""
    A count saved as a plain number becomes the tensor `new_step_count` would have made, holding the
    same value; torch converts its own old checkpoints the same way when they are loaded.
    """
    step = state.get("step")
    if step is not None and not torch.is_tensor(step):
        state["step"] = new_step_count(group, param).fill_(float(step))


def restore_scalar_precision(state: dict[Any, Any], keys: Iterable[str]) -> None:
    r"""
    After a load, put the 0-d state entries named in `keys` back to the scalar precision. (A load hook
    may leave something other than a per-parameter dict in the state; that is left alone.)
    """
    keys = tuple(keys)
    for param_state in state.values():
        if not isinstance(param_state, dict):
            continue
        for key in keys:
            if key in param_state:
                param_state[key] = param_state[key].to(scalar_dtype())


def fill_if(tensor: torch.Tensor, condition: torch.Tensor, value: float) -> torch.Tensor:
    r"""
    `tensor` filled with `value` if the 0-d `condition` holds, else unchanged: Adagrad's and Adan's
    first step, chosen by the step count. A condition on the CPU (torch's default place for the count)
    is read on the host, which costs no synchronisation and no pass over a tensor that stays as it is;
    a masked fill would also refuse it for a tensor on a GPU, since it takes its mask on the tensor's
    device. A condition on the device, or one in a compiled step, is a masked fill: the choice made in
    the same fused loop, with no `if` on a tensor's value to cut the graph in two.
    """
    if condition.is_cpu and not torch.compiler.is_compiling():
        return tensor.fill_(value) if condition else tensor
    return tensor.masked_fill_(condition, value)


def choose(condition: Any, if_true: Any, if_false: Any) -> Any:
    r"""
    `if_true` if `condition` holds, else `if_false` (see above). Both are computed whichever is chosen,
    so they should be numbers, or tensors the step has anyway; a value not chosen may be `NaN` (RAdam's
    $r_t$ below its threshold) without harm. Two plain numbers chosen on the device stay in double
    precision, as they are on the host.
    """
    if not isinstance(condition, torch.Tensor):
        return if_true if condition else if_false
    if not isinstance(if_true, torch.Tensor) and not isinstance(if_false, torch.Tensor):
        if_true = torch.tensor(if_true, dtype=torch.float64, device=condition.device)
    return torch.where(condition, if_true, if_false)
