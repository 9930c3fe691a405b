r"""
# The parameter scheduler: any hyper-parameter, per group

`torch.optim.lr_scheduler` schedules the learning rate. Training recipes schedule more than that:
the one-cycle policy moves the momentum against the learning rate, some schedules raise the weight
decay or $\beta_2$ during training. The hyper-parameters all live in the same place, the optimizer's
parameter groups, so one small class can drive any of them: at every step it evaluates a
[schedule](schedules.md) at the position $p = k / K$ (step $k$ of $K$) and writes the value into
`group[name]`.

* One schedule applies to every group; a list gives each group its own (a smaller learning rate for
  the pretrained body than for the new head, say).
* Tuple-valued hyper-parameters are driven one element at a time: `index=0` schedules $\beta_1$ in
  torch's `betas`, leaving $\beta_2$ alone.
* It works with any `torch.optim.Optimizer`: ours, torch's own, and the
  [composable](optimizer.md) one (whose `momentum` is $\beta_1$).

The timing follows `torch.optim.lr_scheduler`: building the scheduler sets the value for $p = 0$,
used by the first step, and `step()` is called after each `optimizer.step()` to set the value for
the next one. Past the last step the position stays at $1$.
"""

from collections.abc import Sequence
from typing import Any

import torch

from .schedules import Schedule


class ParamScheduler:
    r"""
    ## Driving one hyper-parameter

    * `optimizer`: any `torch.optim.Optimizer`.
    * `name`: the key in the parameter groups (`"lr"`, `"momentum"`, `"betas"`, `"weight_decay"` ...).
      A group without it is an error: scheduling a hyper-parameter the optimizer does not read would
      otherwise do nothing, silently.
    * `schedules`: one schedule for all groups, or one per group.
    * `total_steps`: the number of steps $K$ the schedules span.
    * `index`: the element to set when the hyper-parameter is a tuple, such as `betas`.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, name: str, schedules: Schedule | Sequence[Schedule],
                 total_steps: int, index: int | None = None) -> None:
        groups = optimizer.param_groups
        # One schedule serves every group; a list must give exactly one per group.
        if callable(schedules):
            schedules = [schedules] * len(groups)
        if len(schedules) != len(groups):
            raise ValueError(f"Invalid schedules: {len(schedules)} given for {len(groups)} parameter groups")
        if total_steps < 1:
            raise ValueError(f"Invalid total_steps: {total_steps} (must be >= 1)")
        # Every group must already have the hyper-parameter: writing a key the optimizer never reads
        # would schedule nothing, silently.
        for number, group in enumerate(groups):
            if name not in group:
                raise ValueError(f"Invalid name: {name!r} is not a hyper-parameter of group {number} "
                                 f"(it has {', '.join(k for k in group if k != 'params')})")
        self.optimizer = optimizer
        self.name = name
        self.schedules = list(schedules)
        self.total_steps = total_steps
        self.index = index
        self.steps_done = 0
        # The first optimizer step uses the values at $p = 0$, as with `torch.optim.lr_scheduler`.
        self.apply()

    @property
    def position(self) -> float:
        r"""$p = \min(k / K, 1)$ after $k$ steps."""
        return min(self.steps_done / self.total_steps, 1.0)

    def step(self) -> None:
        r"""Advance by one step and set the values the next optimizer step will use."""
        self.steps_done += 1
        self.apply()

    def apply(self) -> None:
        r"""Write every group's schedule, evaluated at the current position, into the group."""
        for group, schedule in zip(self.optimizer.param_groups, self.schedules):
            # $$v = f(p)$$ for this group's schedule $f$.
            value = schedule(self.position)
            # A tuple such as `betas` gets a new tuple with one element changed; the group keeps a tuple,
            # as torch's optimizers expect.
            group[self.name] = value if self.index is None else replace(group[self.name], self.index, value)

    def values(self) -> list[Any]:
        r"""The values in force now, one per group."""
        return [group[self.name] for group in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        r"""The progress, to resume a schedule from a checkpoint (the schedules are code, not state)."""
        return {"steps_done": self.steps_done}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.steps_done = state["steps_done"]
        self.apply()


def replace(values: Sequence[Any], index: int, value: Any) -> tuple[Any, ...]:
    r"""A copy of the tuple `values` with element `index` replaced (groups keep tuples, as torch does)."""
    as_list = list(values)
    as_list[index] = value
    return tuple(as_list)
