r"""
# The parameter scheduler: any hyper-parameter, per group

`torch.optim.lr_scheduler` schedules the learning rate. Training recipes schedule more than that:
the one-cycle policy moves the momentum against the learning rate, some schedules raise the weight
decay or $\beta_2$ during training. The hyper-parameters all live in the same place, the optimizer's
parameter groups, so one small class can drive any of them: at every step it evaluates a
[schedule](../schedules/functional.md) at the position $p = k / K$ (step $k$ of $K$) and writes the value into
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

## The timing, step by step

With $K$ = `total_steps`, the optimizer's $k$-th step ($k = 1, 2, \dots$) uses the value
$$v_k = f\!\left(\min\left(\frac{k - 1}{K}, 1\right)\right),$$
so the first step uses $f(0)$ and step $K + 1$ is the first to use $f(1)$, the schedule's end
value. A training loop of $K$ steps therefore never reaches $f(1)$ itself; a schedule that must end
*exactly* at its final value on the last step should be given $K - 1$ (as the
[learning-rate finder](lr_finder.md) does, so that its last step tries the largest rate).

```python
scheduler = ParamScheduler(optimizer, "lr", combine_scheds([0.3, 0.7], [sched_cos(1e-4, 1e-2),
                                                                        sched_cos(1e-2, 1e-6)]), K)
for batch in batches:
    loss(batch).backward()
    optimizer.step()
    optimizer.zero_grad()
    scheduler.step()
```

## Several schedulers on one optimizer

One scheduler drives one name. The one-cycle policy drives two (`lr` and `momentum`), with two
schedulers stepped together; they never interfere, since each writes only its own key. Driving the
same key with two schedulers, or with this class and a `torch.optim.lr_scheduler` at once, makes the
last writer win on every step: use one.

A scheduler *sets* the value; it does not multiply it. Whatever was in the group before the
scheduler was built is overwritten at once, and a change made by hand between steps lasts only
until the next `step()`. To scale a schedule per group, give each group its own schedule.
"""

from collections.abc import Sequence
from typing import Any

import torch

from ..schedules.functional import Schedule


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

    Everything is checked here, when the scheduler is built: a wrong number of schedules, a
    `total_steps` below one, or a name some group lacks is an error now rather than a silently wrong
    schedule later. The values the schedules return are written as they are, so a schedule must
    stay in the hyper-parameter's valid range over the whole of $[0, 1]$ (an exponential one, for
    instance, cannot reach $0$).
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
        # The state: what to drive, with what, over how long, and how far along it is ($k$).
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
        r"""
        $p = \min(k / K, 1)$ after $k$ steps: the fraction of the schedule done, held at $1$ once it
        is over, so the hyper-parameter keeps its final value if training runs longer than planned.
        """
        return min(self.steps_done / self.total_steps, 1.0)

    def step(self) -> None:
        r"""
        Advance by one step and set the values the next optimizer step will use: $k \leftarrow k + 1$,
        then $v = f(p)$ with the new $p$. Call it once per `optimizer.step()`, after it.
        """
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
        r"""
        The values in force now, one per group: what the next optimizer step will use (the whole tuple
        when `index` is set). The [recorder](recorder.md) reads these to plot a schedule as it ran.
        """
        return [group[self.name] for group in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        r"""
        The progress, to resume a schedule from a checkpoint (the schedules are code, not state).

        Only the step count $k$ is saved: the schedules are functions, rebuilt by the training script,
        and a plain dictionary of one integer loads with `torch.load(weights_only=True)`.
        """
        return {"steps_done": self.steps_done}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        r"""
        Resume at the saved step count, and write the values for it at once, so the optimizer's
        groups hold the right values even if the optimizer's own state dict (loaded before or after
        this one) carried older ones.
        """
        self.steps_done = state["steps_done"]
        self.apply()


def replace(values: Sequence[Any], index: int, value: Any) -> tuple[Any, ...]:
    r"""A copy of the tuple `values` with element `index` replaced (groups keep tuples, as torch does)."""
    as_list = list(values)
    as_list[index] = value
    return tuple(as_list)
