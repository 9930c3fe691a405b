r"""
# The trajectory runner

A trajectory is the list of points an optimizer visits on a [toy objective](objectives.md),
$\theta_0, \theta_1, \dots, \theta_T$, from the objective's fixed start $\theta_0$. Drawn over the
contours, it shows at a glance what a table of final losses hides: whether the optimizer zigzags
across a valley, overshoots, stalls on a plateau, or leaves a saddle at once.

`run_trajectory(info, objective)` places one parameter, a tensor of shape `(2,)` holding the point
$(x, y)$, at the objective's start, builds the optimizer from its [registry](registry.md) entry
with `info.build`, and records every point it visits. The same loop serves every optimizer:

* the gradient is set by a **closure**, which is also handed to `step`. Optimizers that evaluate the
  loss more than once per step ([SAM](sam.md) evaluates it again at a perturbed point) get the
  gradient where they ask for it; the others simply recompute the same one. This is the calling
  convention of the verification harness and of the [digits](digits.md) task, so a step here is the
  step that was verified.
* the whole point is **one tensor**, as a layer's weight would be. Layer-wise methods
  ([LARS](lars.md), [LAMB](lamb.md)) therefore take their norms over the point, as they would over a
  layer.
* everything runs in **float64**, the precision in which every optimizer was verified, so that what
  a path shows is the algorithm and not the rounding.

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

## The score

`toy_score` turns a trajectory into one number for the tuning search ([tuned](tuned.md) explains
the choice); it lives here, next to the trajectory it reads, so that the search and the tests use the
same lines.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from .objectives import Objective

# The exceptions by which an optimizer says "not on this problem" (see the notes above).
SKIPPABLE = (ValueError, RuntimeError, NotImplementedError)


@dataclass
class Trajectory:
    r"""
    The points visited, `points[t]` after $t$ steps (`points[0]` is the start), and the objective
    value `values[t]` at each; `steps` is the number of steps asked for. `config` are the constructor
    arguments used and `source` where they came from (`"given"`, or see [tuned](tuned.md)).
    `skipped` holds the reason when the optimizer could not run; `diverged` is true when the run was
    cut short.

    A run cut short has fewer than `steps + 1` points: the last one kept is the last finite point
    inside the escape margin, so a plot can still show where the run was heading. A skipped run has
    no points at all.
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
        r"""Whether the configuration was chosen for this objective (searched, set by hand, or given)."""
        return self.source != "default"


def point_closure(objective: Objective, point: torch.Tensor) -> Callable[[], torch.Tensor]:
    r"""
    The closure a training loop would pass to `step`: it sets `point.grad` to $\nabla f$ at the
    *current* point and returns $f$ there.

    The gradient is *assigned*, not accumulated as `backward` would: each call leaves exactly
    $\nabla f(\theta)$ in `point.grad`, however many times an optimizer calls it within one step.
    """

    def closure() -> torch.Tensor:
        # $$f(\theta),\ \nabla f(\theta)$$ from the hand-written formulas, at the point as it is now
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

    * `config`: pass it to try a setting of your own, e.g. `{"lr": 0.05, "betas": (0.9, 0.99)}`; it
      replaces the tuned configuration entirely (merge with `info.tuned(name).config` yourself to
      change one value).
    * `escape`: how far outside the region, in region-widths, a point may go before the run is cut
      short. The default, one width, leaves room for an overshoot that comes back; a smaller value
      makes runs that fly away end sooner.
    """
    # The configuration: the tuned one for this objective, or the one given.
    if config is None:
        tuned = info.tuned(objective.name)
        config, source = dict(tuned.config), tuned.source
    else:
        config, source = dict(config), "given"
    steps = objective.steps if steps is None else steps
    trajectory = Trajectory(info.key, objective.name, config, source, steps)

    # $\theta_0$, the start, as a leaf tensor the optimizer will update in place.
    point = torch.tensor(objective.start, dtype=torch.float64, requires_grad=True)
    closure = point_closure(objective, point)
    points = [objective.start]
    values = [objective.value(*objective.start)]
    # The escape test compares against the larger side of the region,
    # $$W = \max(x_{\max} - x_{\min},\ y_{\max} - y_{\min}).$$
    (x0, x1), (y0, y1) = objective.region
    width = max(x1 - x0, y1 - y0)
    # A refusal when the optimizer is built: skipped, with its message.
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
            # Only the first step may refuse the problem; a failure later is a real error.
            if step > 1:
                raise
            trajectory.skipped = f"{type(error).__name__}: {error}"
            return trajectory
        x, y = point.tolist()
        # A non-finite point cannot be drawn or scored: stop, and keep the points before it.
        if not (math.isfinite(x) and math.isfinite(y)):
            trajectory.diverged = True
            break
        points.append((x, y))
        values.append(objective.value(x, y))
        if after_step is not None:
            after_step(step, values[-1])
        # How far the point is outside the region, along the worst axis (negative inside):
        # $$\max(x_{\min} - x,\ x - x_{\max},\ y_{\min} - y,\ y - y_{\max}) > \text{escape}\cdot W$$
        # ends the run. The point itself is kept, so the plot shows the path heading out.
        if max(x0 - x, x - x1, y0 - y, y - y1) > escape * width:
            trajectory.diverged = True
            break

    trajectory.points = torch.tensor(points, dtype=torch.float64)
    trajectory.values = torch.tensor(values, dtype=torch.float64)
    return trajectory


def toy_score(objective: Objective, trajectory: Trajectory) -> float:
    r"""
    ### Scoring a trajectory

    The tuning score of a trajectory, lower is better (see [tuned](tuned.md)):
    $$\frac{1}{T+1}\sum_{t=0}^{T} \ell_t + \ell_T + 2\cdot[\text{the path left the region}] \qquad
      \ell_t = \frac{\log(1 + f_t - f^\star)}{\log(1 + f_0 - f^\star)}.$$
    $\ell_t$ is the remaining gap to the minimum value on a log scale, $1$ at the start and $0$ only
    at a minimum. Steps a run did not take (cut short) count as $\ell = 1$.

    Why each term:

    * the **mean** rewards getting low *early*: of two optimizers that end at the minimum, the one
      that got there in 20 steps scores lower than the one that needed 180;
    * the **last** term rewards *ending* low, so a path that dips and then wanders off does not win;
    * the **penalty** of $2$ exceeds anything a path that stays inside can score (the other two terms
      are at most $1$ each as long as the value does not rise above the start's), so a path that
      flies off the picture never beats one that stays on it;
    * the **log** makes the score count orders of magnitude while the gap is large: from
      $f - f^\star = 1000$ to $100$ is worth about as much as from $100$ to $10$. Near the minimum
      $\log(1 + f - f^\star) \approx f - f^\star$, so the last digits of precision do not dominate.
      Dividing by the start's gap puts every objective on the same scale, from $1$ to $0$.

    A skipped trajectory scores $+\infty$: no learning rate can make it run.

    Three reference points, for $T = 200$:

    | the path | mean | last | penalty | score |
    |---|---|---|---|---|
    | never moves | $1$ | $1$ | $0$ | $2$ |
    | reaches the minimum in one step and stays | $1/201$ | $0$ | $0$ | $\approx 0.005$ |
    | reaches it in one step, then flies off at step 100 | $\approx 0.5$ | $1$ | $2$ | $\approx 3.5$ |

    So a path that stays in the picture and never climbs above its start's value scores below $2$,
    and beats standing still as soon as it ends lower; a path that leaves the picture scores more
    than $2$ and loses to every such path.
    """
    if trajectory.skipped is not None:
        return math.inf
    # $$\log(1 + f_0 - f^\star)$$ the normaliser
    start_gap = math.log1p(objective.value(*objective.start) - objective.minimum_value)
    # $$\ell_t = \frac{\log(1 + f_t - f^\star)}{\log(1 + f_0 - f^\star)}$$ for every recorded step; a value
    # a hair below $f^\star$ from rounding counts as the minimum itself.
    gaps = torch.log1p((trajectory.values - objective.minimum_value).clamp(min=0)) / start_gap
    # $[\text{the path left the region}]$: cut short, or any recorded point outside.
    left = trajectory.diverged or not bool(objective.contains(trajectory.points).all())
    # $$\frac{1}{T+1}\Big(\sum_{t \text{ recorded}} \ell_t + \#\text{missing}\cdot 1\Big)$$
    missing = trajectory.steps + 1 - len(gaps)
    mean = (float(gaps.sum()) + missing) / (len(gaps) + missing)
    # $\ell_T$, which is $1$ for a run that did not reach step $T$.
    final = 1.0 if trajectory.diverged else float(gaps[-1])
    return mean + final + (2.0 if left else 0.0)
