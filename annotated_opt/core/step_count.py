r"""
# Step counts

Every optimizer that corrects a bias ($1-\beta^t$) or decays its learning rate with time keeps a step
count $t$ per parameter, in `state["step"]`. It is kept exactly as `torch.optim` keeps it, for two
reasons:

* **checkpoints**: a `torch.optim` state dict then loads here, and ours loads into torch, with no
  conversion and no drift. A count held in another form continues from a checkpoint with other
  rounding: a `float32` tensor count used directly in $\beta^t$ gives bias corrections rounded to
  `float32`, and the parameters drift by about $10^{-7}$ within a few steps;
* **compiled and captured steps**: a tensor can be updated in place on the device, so a compiled step
  does not recompile at every new value of $t$ and a CUDA graph can replay the increment.

What torch stores, and therefore what is stored here:

| group options | `state["step"]` |
|---|---|
| default | a 0-d tensor on the CPU, of torch's *scalar* dtype: `float64` if that is the default dtype, else `float32` |
| `capturable=True` | the same, on the parameter's device |
| `fused=True` | a `float32` 0-d tensor on the parameter's device |

The count is advanced in place (`step += 1`), so the tensor in the state is the one that counts.
Arithmetic with it reads it back as a Python number first (`.item()`), as torch's single-tensor
code does outside `capturable`/`differentiable` mode: $\beta^t$ is then computed in double
precision from an exact integer (a `float32` count is exact up to $2^{24} \approx 1.7 \times 10^7$
steps), which makes every bias correction equal, bit for bit, to torch's.
"""

from typing import Any

import torch
from torch.optim.optimizer import _get_scalar_dtype


def new_step_count(group: dict[str, Any], param: torch.Tensor) -> torch.Tensor:
    r"""A step count of $0$, where and how torch keeps it for this group (the table above)."""
    fused = group.get("fused") or False
    if group.get("capturable") or fused:
        return torch.zeros((), dtype=_get_scalar_dtype(is_fused=fused), device=param.device)
    return torch.tensor(0.0, dtype=_get_scalar_dtype())


def advance(state: dict[str, Any]) -> float:
    r"""
    $t \leftarrow t + 1$, in place, and return the new $t$ as a Python number for the scalar
    arithmetic of the step.
    """
    state["step"] += 1
    return state["step"].item()


def restore_step_count(state: dict[str, Any], group: dict[str, Any], param: torch.Tensor) -> None:
    r"""
    A count saved as a plain number (by an older version of this library, or by an old torch) becomes
    the tensor `new_step_count` would have made, holding the same value; torch converts its own old
    checkpoints the same way when they are loaded.
    """
    step = state.get("step")
    if step is not None and not torch.is_tensor(step):
        state["step"] = new_step_count(group, param).fill_(float(step))
