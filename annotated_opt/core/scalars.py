r"""
# Scalar state kept as torch keeps it

`torch.optim` keeps a parameter's step count, and a few other per-parameter numbers (ASGD's current
step size and averaging weight), as 0-d tensors rather than Python numbers, so that a compiled or
CUDA-graph-captured step can update them without leaving the device. Their dtype is torch's *scalar*
precision: `float32`, unless the default dtype is `float64`, whatever the parameter's own dtype.

An optimizer here that has a `torch.optim` twin keeps these numbers the same way, so that a
checkpoint moves between the two in both directions and continues step for step. Two consequences
worth knowing:

* a value stored in `float32` is rounded to `float32` even for a `float64` parameter (ASGD's step
  size, about $10^{-8}$ relative); the twin must read it back from the tensor, not from the `float64`
  number it was computed from, or the two drift apart;
* `torch.optim.Optimizer.load_state_dict` casts every floating-point state tensor except `step` to
  its parameter's dtype. `restore_scalar_precision` puts them back after a load, so a reloaded
  optimizer continues bit for bit (see [ASGD](../asgd.md)).
"""

from collections.abc import Iterable
from typing import Any

import torch


def scalar_dtype() -> torch.dtype:
    r"""torch's dtype for scalar state: `float64` only when that is the default dtype."""
    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32


def scalar(value: float) -> torch.Tensor:
    r"""A 0-d tensor holding `value` in the scalar precision: $t_0 = 0$ is `scalar(0.0)`."""
    return torch.tensor(value, dtype=scalar_dtype())


def restore_scalar_precision(state: dict[Any, dict[str, Any]], keys: Iterable[str]) -> None:
    r"""After a load, put the 0-d state entries named in `keys` back to the scalar precision."""
    for param_state in state.values():
        for key in keys:
            if key in param_state:
                param_state[key] = param_state[key].to(scalar_dtype())
