r"""
# The trajectory runner

`run_trajectory(info, objective)` places one parameter, a tensor of shape `(2,)` holding the point
$(x, y)$, at the objective's start, builds the optimizer from its registry entry
with `info.build`, and records every point it visits. The same loop serves every optimizer:

* the gradient is set by a **closure**, which is also handed to `step`. Optimizers that evaluate the
  loss more than once per step (SAM evaluates it again at a perturbed point) get the gradient where
  they ask for it; the others simply recompute the same one. This is the calling convention of the
  verification harness and of the digits task, so a step here is the step that was verified.
* the whole point is **one tensor**, as a layer's weight would be. Layer-wise methods (LARS, LAMB)
  therefore take their norms over the point, as they would over a layer.

## Optimizers that cannot run on a toy

An optimizer may refuse a two-parameter problem: one that normalises each row of a weight matrix has
nothing to normalise here. The convention is that such an optimizer raises `ValueError`,
`RuntimeError` or `NotImplementedError` when it is built or on its first step. The runner catches
exactly those, at exactly those two moments, and returns a trajectory marked `skipped` with the
message, which the gallery shows. An error on any later step is a bug and is raised.

## Leaving the picture

A step that makes the point non-finite, or carries it far outside the plotted region (more than
`escape` region-widths away), ends the run early and marks it `diverged`: nothing a plot could show
happens after that, and the tuning search does not waste time on it.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from .objectives import Objective

SKIPPABLE = (ValueError, RuntimeError, NotImplementedError)


@dataclass
class Trajectory:
    r"""
    The points visited, `points[t]` after $t$ steps (`points[0]` is the start), and the objective
    value `values[t]` at each; `steps` is the number of steps asked for. `config` are the constructor
    arguments used and `source` where they came from (`"given"`, or see `annotated_opt/tuned.py`).
    `skipped` holds the reason when the optimizer could not run; `diverged` is true when the run was
    cut short.
    """

    optimizer: str
    objective: str
    config: dict[str, Any]
    source: str
    steps: int
    points: torch.Tensor = field(default_factory=lambda: torch.zeros(0, 2, dtype=torch.float64))
    values: torch.Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.float64))
    skipped: str | None = None
    diverged: bool = False

    @property
    def tuned(self) -> bool:
        return self.source != "default"


def point_closure(objective: Objective, point: torch.Tensor) -> Callable[[], torch.Tensor]:
    r"""
    The closure a training loop would pass to `step`: it sets `point.grad` to $\nabla f$ at the
    *current* point and returns $f$ there.
    """

    def closure() -> torch.Tensor:
        value, gradient = objective.value_and_gradient(point.detach())
        point.grad = gradient
        return value

    return closure


def run_trajectory(
    info: Any,
    objective: Objective,
    config: dict[str, Any] | None = None,
    steps: int | None = None,
    escape: float = 1.0,
    after_step: Callable[[int, float], None] | None = None,
) -> Trajectory:
    r"""
    Run the optimizer of the registry entry `info` on `objective` for `steps` steps (the objective's
    own count by default) with the constructor arguments `config` (the tuned ones by default), in
    float64. `after_step(step, value)` is called after every step, for progress bars and trackers.
    """
    if config is None:
        tuned = info.tuned(objective.name)
        config, source = dict(tuned.config), tuned.source
    else:
        config, source = dict(config), "given"
    steps = objective.steps if steps is None else steps
    trajectory = Trajectory(info.key, objective.name, config, source, steps)

    point = torch.tensor(objective.start, dtype=torch.float64, requires_grad=True)
    closure = point_closure(objective, point)
    points = [objective.start]
    values = [objective.value(*objective.start)]
    (x0, x1), (y0, y1) = objective.region
    width = max(x1 - x0, y1 - y0)
    try:
        optimizer = info.build([point], **config)
    except SKIPPABLE as error:
        trajectory.skipped = f"{type(error).__name__}: {error}"
        return trajectory

    for step in range(1, steps + 1):
        # The gradient is set before the step and the closure handed to it (see the notes above).
        closure()
        try:
            optimizer.step(closure)
        except SKIPPABLE as error:
            if step > 1:
                raise
            trajectory.skipped = f"{type(error).__name__}: {error}"
            return trajectory
        x, y = point.tolist()
        if not (math.isfinite(x) and math.isfinite(y)):
            trajectory.diverged = True
            break
        points.append((x, y))
        values.append(objective.value(x, y))
        if after_step is not None:
            after_step(step, values[-1])
        if max(x0 - x, x - x1, y0 - y, y - y1) > escape * width:
            trajectory.diverged = True
            break

    trajectory.points = torch.tensor(points, dtype=torch.float64)
    trajectory.values = torch.tensor(values, dtype=torch.float64)
    return trajectory


def toy_score(objective: Objective, trajectory: Trajectory) -> float:
    r"""
    The tuning score of a trajectory, lower is better (see `annotated_opt/tuned.py`):
    $$\frac{1}{T+1}\sum_{t=0}^{T} \ell_t + \ell_T + 2\cdot[\text{the path left the region}] \qquad
      \ell_t = \frac{\log(1 + f_t - f^\star)}{\log(1 + f_0 - f^\star)}.$$
    $\ell_t$ is the remaining gap to the minimum value on a log scale, $1$ at the start and $0$ only
    at a minimum. Steps a run did not take (cut short) count as $\ell = 1$.
    """
    if trajectory.skipped is not None:
        return math.inf
    start_gap = math.log1p(objective.value(*objective.start) - objective.minimum_value)
    gaps = torch.log1p((trajectory.values - objective.minimum_value).clamp(min=0)) / start_gap
    left = trajectory.diverged or not bool(objective.contains(trajectory.points).all())
    missing = trajectory.steps + 1 - len(gaps)
    mean = (float(gaps.sum()) + missing) / (len(gaps) + missing)
    final = 1.0 if trajectory.diverged else float(gaps[-1])
    return mean + final + (2.0 if left else 0.0)
