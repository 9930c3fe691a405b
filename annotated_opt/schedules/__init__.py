r"""
# Schedules

A hyper-parameter rarely stays fixed for a whole run: the learning rate warms up and decays, the
momentum may move the other way. Everything about schedules lives in this folder, built from one
idea: **a schedule is a curve from a start value to an end value, traced as training progresses.**

* [Annealing](annealing.md) holds the curves themselves: linear, cosine, exponential and constant,
  each a function of `(start, end, position)` with the position $p \in [0, 1]$.
* [Learning-rate schedules](lr_schedules.md) are the three schedules that come with the Adam family
  (linear warmup, Noam, warmup then cosine to a floor), counted in *updates* $t = 1, 2, \dots$. They are
  used as an ordinary `torch.optim.lr_scheduler.LRScheduler` (`ScheduledLR`), or attached to an
  optimizer so that its `step` applies them (`attach`). This is the view to use with `torch.optim`
  code: anything that drives a torch scheduler drives these.
* [Functional schedules](functional.md) are the composable view's: a schedule of *any*
  hyper-parameter as a function of the position $p$ alone (`sched_cos(start, end)`), joined into
  phases with `combine_scheds` (the one-cycle policy), and driven per parameter group by the
  [parameter scheduler](../composable/param_scheduler.md).

The two views share the curves, so a cosine is the same cosine in both. They differ in what they
count and what they set: a learning-rate schedule counts updates and multiplies the learning rate,
which is what torch's schedulers do and what checkpoints of torch code expect; a functional schedule
reads the fraction of training done and may set any option, which is what the one-cycle policy and
the [learning-rate finder](../composable/lr_finder.md) need. The guide on
[schedules](../../guides/schedules.md) draws both.
"""

from . import annealing, functional, lr_schedules
from .lr_schedules import LinearWarmup, LRSchedule, Noam, ScheduledLR, WarmupCosine, attach, detach

__all__ = [
    "LRSchedule",
    "LinearWarmup",
    "Noam",
    "ScheduledLR",
    "WarmupCosine",
    "annealing",
    "attach",
    "detach",
    "functional",
    "lr_schedules",
]
