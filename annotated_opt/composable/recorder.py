r"""
# The recorder: what the hyper-parameters and the loss were at every step

Schedules are easy to get subtly wrong (off by one step, a phase in the wrong order, a group that
never changed). The cure is to look: record, at every step, the values the optimizer actually
used and the loss they produced, then plot the two. The [LR finder](lr_finder.md) is built on it.

The recorder reads the values from the optimizer's parameter groups, so it works with any
`torch.optim.Optimizer`. Call `record(loss)` right after `optimizer.step()` and before any scheduler
moves the values on: what it records is then exactly what the step used.
"""

from collections.abc import Sequence
from typing import Any

import torch


class Recorder:
    r"""
    * `optimizer`: the optimizer to watch.
    * `names`: the hyper-parameters to record (`"lr"` by default; add `"momentum"`, `"betas"` ...).

    After $n$ calls, `values[name]` holds $n$ lists (one value per group) and `losses` $n$ numbers.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, names: Sequence[str] = ("lr",)) -> None:
        self.optimizer = optimizer
        self.names = tuple(names)
        self.values: dict[str, list[list[Any]]] = {name: [] for name in self.names}
        self.losses: list[float] = []

    def record(self, loss: float | torch.Tensor) -> None:
        r"""Record one step: each named hyper-parameter of every group, and the loss as a float."""
        for name in self.names:
            self.values[name].append([group[name] for group in self.optimizer.param_groups])
        self.losses.append(float(loss))

    def __len__(self) -> int:
        return len(self.losses)

    def hyper(self, name: str, group: int = -1) -> list[Any]:
        r"""The recorded values of `name` for one group (the last group by default, as the course did)."""
        return [per_group[group] for per_group in self.values[name]]

    @property
    def lrs(self) -> list[float]:
        r"""The learning rate of the last group at each recorded step."""
        return self.hyper("lr")
