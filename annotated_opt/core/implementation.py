r"""
# Implementation flags: `foreach`, `fused`, `capturable`, `differentiable`

`torch.optim` optimizers take four flags that choose *how* a step is computed rather than *what* it
computes. Real training code passes them all the time, so every class here with a `torch.optim` twin
accepts exactly the flags its twin accepts, with the same defaults, stores them in each parameter
group as torch does (so state dicts are interchangeable), and refuses the same combinations with the
same errors. What each one does here:

* `foreach`: torch runs one kernel over the group's list of tensors (`None` lets torch choose: the
  for-loop on the CPU). Here: the [fast path](fastpath.md), the readable step compiled over the
  group's tensors.
* `fused`: torch runs one fused kernel per group (`None`: off). Here: the fast path too; only
  floating-point parameters are accepted, as by torch.
* `capturable`: torch keeps the step count on the parameter's device, so that a CUDA graph can capture
  the step. Here the same: the count lives on the parameter's device, the corrections are computed
  from the count tensor as torch computes them, and a parameter on a device torch cannot capture (the
  CPU) is refused when it steps, with torch's `AssertionError`, unless the group is also `fused`:
  torch's fused kernels take the flag wherever they run.
* `differentiable`: torch runs the step with autograd on, so that a loss after the step can be
  differentiated through it. Here the same, with torch's arithmetic for that mode: where torch's step
  keeps a tensor that its backward pass needs instead of changing it in place (the denominators of
  Adagrad, RMSprop, NAdam, RAdam and Adadelta, the maxima of AMSGrad and Adamax, see `maximum_into`
  below), so does the step here, and SGD's first momentum buffer is
  detached from the gradient, as torch's is; a learning rate that requires grad stays a tensor that
  autograd follows (see `learning_rate` in [options](options.md)), where torch's step lets it (SGD,
  Adam, AdamW, RAdam). A differentiable group takes the readable step even with
  `foreach=True`, since the fast path runs without autograd (torch refuses `fused` with it, and most
  of its `foreach` steps fail on it).

**`foreach` and `fused` change how a step runs, not what it computes.** They are accepted and stored,
never ignored: they select the fast path, whose results are the readable step's (within the rounding
of a compiled loop, which its tests bound). torch's own `fused=True` kernels round differently from
torch's for-loop (by a few units in the last place); here `fused=True` gives the readable step,
compiled.
"""

from typing import Any

import torch
from torch.optim.optimizer import _get_capturable_supported_devices, _get_fused_kernels_supported_devices

FLAGS = ("foreach", "fused", "capturable", "differentiable")


def check_flags(defaults: dict[str, Any]) -> None:
    r"""
    The combinations torch refuses at construction, with torch's exception types and messages; and a
    `differentiable` that is not a bool, which torch refuses at the first step (it hands the flag to
    `torch.set_grad_enabled`) with the `TypeError` raised here.
    """
    differentiable = defaults.get("differentiable", False)
    if not isinstance(differentiable, bool):
        raise TypeError(f"Invalid differentiable: {differentiable!r} (must be True or False)")
    if defaults.get("fused"):
        if defaults.get("differentiable"):
            raise RuntimeError("`fused` does not support `differentiable`")
        if defaults.get("foreach"):
            raise RuntimeError("`fused` and `foreach` cannot be `True` together.")


def maximum_into(state: torch.Tensor, other: torch.Tensor, differentiable: bool) -> torch.Tensor:
    r"""
    $s \leftarrow \max(s, x)$, element by element, written into the state tensor `state` and returned.
    Written straight into it (`out=`) as torch writes it; in a differentiable step autograd must keep
    the inputs of the maximum for the backward pass, so the maximum of a copy is copied in, as
    torch's differentiable AMSGrad and Adamax do.
    """
    if differentiable:
        return state.copy_(torch.maximum(state.clone(), other))
    return torch.maximum(state, other, out=state)


def _has_fused_kernels(param: torch.Tensor) -> bool:
    r"""
    Whether torch has fused kernels for the device of `param`: the two common answers from the tensor's
    flags, without making a `torch.device` (this runs for every parameter at every fused step: 0.26 ms
    on a thousand tensors for `param.device.type`, 0.04 ms for the flags), any other device against
    torch's list, which a backend registered at run time can extend.
    """
    return param.is_cpu or param.is_cuda or param.device.type in _get_fused_kernels_supported_devices()


def checks_params(group: dict[str, Any]) -> bool:
    r"""Whether `check_param` has anything to check for the parameters of `group`."""
    return bool(group.get("fused") or group.get("capturable"))


def check_param(group: dict[str, Any], param: torch.Tensor) -> None:
    r"""
    What torch checks for one parameter when it steps: a fused step needs a floating-point parameter
    on a device with fused kernels, and a capturable step a parameter on a device that can be
    captured. (The base class says when it asks.)
    """
    if group.get("fused") and not (param.is_floating_point() and _has_fused_kernels(param)):
        fused_devices = _get_fused_kernels_supported_devices()
        raise RuntimeError(
            "`fused=True` requires all the params to be floating point Tensors of "
            f"supported devices: {fused_devices} but {param.dtype} and {param.device.type}"
        )
    # torch's fused kernels take `capturable` on any device they run on: only the other steps check it.
    if group.get("capturable") and not group.get("fused") and not torch.compiler.is_compiling():
        devices = _get_capturable_supported_devices()
        if param.device.type not in devices:
            raise AssertionError(
                f"If capturable=True, params and state_steps must be on supported devices: {devices}."
            )
