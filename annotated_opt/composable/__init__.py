r"""
# The composable view: every optimizer is a few small pieces

The class-based optimizers of this library each read like their paper. This subpackage reads them a
second way, the way the [fastai course](https://course19.fast.ai/videos/?lesson=11) taught it: strip
away the names and every optimizer is a short list of small pieces, run in order on each parameter.

* **Stats** ([stats](stats.md)) keep running statistics of the gradient in the parameter's state:
  the average gradient (with or without dampening), the average squared gradient, the step count.
* **Steppers** ([steppers](steppers.md)) are plain functions that change the parameter, or the
  gradient the later pieces see: weight decay, L2, the SGD step, the momentum step, the Adam step,
  the LAMB step.
* **The optimizer** ([optimizer](optimizer.md)) keeps the hyper-parameters per parameter group,
  collects each piece's defaults, and runs the pieces in the order it was given.

[Assembled](assembled.md) shows SGD, momentum, RMSprop, Adam, AdamW and LAMB built from these
pieces; the tests check each against its class-based twin to $10^{-12}$ in float64.

Around the optimizer, the same smallness gives the training tools: [schedules](../schedules/functional.md) of
any hyper-parameter built from the annealing primitives, a [parameter
scheduler](param_scheduler.md) that drives them per group, a [recorder](recorder.md) of the
learning rate and the loss, and the [learning-rate finder](lr_finder.md). These four work with any
`torch.optim.Optimizer`, not only the composable one.

The composable optimizers are *views* of the registered optimizers, not new algorithms, so they are
not in the registry.
"""

from ..schedules import functional as schedules
from ..schedules.functional import combine_scheds, sched_const, sched_cos, sched_exp, sched_lin
from . import assembled, stats, steppers
from .assembled import adam, adamw, lamb, momentum, rmsprop, sgd
from .lr_finder import LRFinderResult, lr_find
from .optimizer import ComposableOptimizer
from .param_scheduler import ParamScheduler
from .recorder import Recorder
from .stats import AverageGrad, AverageSqrGrad, Stat, StepCount
from .steppers import (
    adam_step,
    decoupled_weight_decay,
    l2_reg,
    lamb_step,
    momentum_step,
    rmsprop_step,
    sgd_step,
    stepper,
)

__all__ = [
    "AverageGrad",
    "AverageSqrGrad",
    "ComposableOptimizer",
    "LRFinderResult",
    "ParamScheduler",
    "Recorder",
    "Stat",
    "StepCount",
    "adam",
    "adam_step",
    "adamw",
    "assembled",
    "combine_scheds",
    "decoupled_weight_decay",
    "l2_reg",
    "lamb",
    "lamb_step",
    "lr_find",
    "momentum",
    "momentum_step",
    "rmsprop",
    "rmsprop_step",
    "sched_const",
    "sched_cos",
    "sched_exp",
    "sched_lin",
    "schedules",
    "sgd",
    "sgd_step",
    "stats",
    "stepper",
    "steppers",
]
