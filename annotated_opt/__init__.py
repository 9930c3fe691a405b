r"""
# The package: where things live

A literate, annotated reference library of deep-learning optimizers for PyTorch. Every optimizer is a
small, heavily commented module extending [`GenericAdaptiveOptimizer`](core/base.md), and each is checked
against an independent implementation.

## Where things live

* `annotated_opt/*.py`: the optimizers, one algorithm per module, as `torch/optim/` lists its
  algorithms. `annotated_opt.Adam` is `annotated_opt.adam.Adam`.
* `annotated_opt/core/`: the [machinery they share](core/index.md): the base class, weight decay,
  per-parameter options, the non-finite policy, master weights, argument checks, wrappers, the
  registry and the verification harness.
* `annotated_opt/schedules/`: every [schedule](schedules/index.md), for `torch.optim` code and for the
  composable view.
* `annotated_opt/composable/`: the [composable view](composable/index.md), optimizers as stats and
  steppers.
* `annotated_opt/toys/`: the [toy experiments](toys/index.md) and the demonstrations: the toy
  surfaces, the digits and character tasks, the AMSGrad counter-example, and the command line.

Modules that moved into the subpackages stay importable under their earlier names
(`annotated_opt.base`, `annotated_opt.digits`, `annotated_opt.lr_schedules`, ...), so code written
against those names keeps working.
"""

import importlib
import sys

from . import composable, schedules
from .adabelief import AdaBelief
from .adadelta import Adadelta
from .adafactor import ADAFACTOR_CONVENTIONS, Adafactor
from .adagrad import Adagrad
from .adam import Adam
from .adamax import Adamax
from .adamw import AdamW
from .adan import Adan
from .ademamix import AdEMAMix
from .adopt import ADOPT
from .amsgrad import AMSGrad
from .asgd import ASGD
from .core.base import GenericAdaptiveOptimizer
from .core.fastpath import FastPathFallbackWarning
from .core.nonfinite import NonFiniteGradientError
from .core.options import learning_rate, param_groups_without_decay, param_option
from .core.registry import REGISTRY, OptimizerInfo, Reference
from .core.weight_decay import WeightDecay
from .core.wrapper import OptimizerWrapper
from .dadapt_adam import DAdaptAdam
from .galore import GaLore
from .kron import Kron
from .lamb import LAMB
from .lars import LARS, LARS_CONVENTIONS
from .lbfgs import LBFGS
from .lion import Lion
from .lookahead import Lookahead
from .mars import MARS
from .muon import Muon, split_for_muon
from .nadam import NAdam
from .nero import Nero
from .nero_plus import NeroPlus
from .prodigy import Prodigy
from .radam import RAdam
from .rmsprop import RMSprop
from .rprop import Rprop
from .sam import SAM, disable_running_stats, enable_running_stats, running_stats_frozen, second_pass_frozen
from .schedule_free_adamw import ScheduleFreeAdamW
from .schedule_free_sgd import ScheduleFreeSGD, recompute_batchnorm_statistics
from .schedules import annealing, lr_schedules
from .sgd import SGD
from .shampoo import Shampoo
from .soap import SOAP
from .sophia import Sophia
from .sparse_adam import SparseAdam

# The earlier module paths, each an alias of the module that now holds its code: `import
# annotated_opt.base` and `from annotated_opt.digits import train` keep working.
MOVED_MODULES = {
    "base": "core.base",
    "nonfinite": "core.nonfinite",
    "options": "core.options",
    "precision": "core.precision",
    "registry": "core.registry",
    "tuned": "core.tuned",
    "validation": "core.validation",
    "verification": "core.verification",
    "weight_decay": "core.weight_decay",
    "wrapper": "core.wrapper",
    "annealing": "schedules.annealing",
    "lr_schedules": "schedules.lr_schedules",
    "composable.schedules": "schedules.functional",
    "digits": "toys.digits",
    "adam_counterexample": "toys.counterexample",
}


def _alias_moved_modules() -> None:
    for old, new in MOVED_MODULES.items():
        module = importlib.import_module(f".{new}", __name__)
        parent, _, name = f"{__name__}.{old}".rpartition(".")
        setattr(sys.modules[parent], name, module)
        sys.modules[f"{parent}.{name}"] = module


_alias_moved_modules()

__all__ = [
    "REGISTRY",
    "annealing",
    "composable",
    "lr_schedules",
    "schedules",
    "SGD",
    "ADOPT",
    "Shampoo",
    "SOAP",
    "GaLore",
    "Kron",
    "AMSGrad",
    "AdEMAMix",
    "Adan",
    "ADAFACTOR_CONVENTIONS",
    "AdaBelief",
    "Adafactor",
    "Adagrad",
    "Adam",
    "AdamW",
    "GenericAdaptiveOptimizer",
    "NAdam",
    "LAMB",
    "LARS",
    "LARS_CONVENTIONS",
    "Lion",
    "MARS",
    "LBFGS",
    "Nero",
    "NeroPlus",
    "NonFiniteGradientError",
    "FastPathFallbackWarning",
    "OptimizerInfo",
    "RAdam",
    "Lookahead",
    "OptimizerWrapper",
    "RMSprop",
    "Reference",
    "SAM",
    "WeightDecay",
    "disable_running_stats",
    "enable_running_stats",
    "learning_rate",
    "param_groups_without_decay",
    "param_option",
    "running_stats_frozen",
    "DAdaptAdam",
    "Prodigy",
    "ScheduleFreeAdamW",
    "ScheduleFreeSGD",
    "Sophia",
    "recompute_batchnorm_statistics",
    "second_pass_frozen",
    "ASGD",
    "Adadelta",
    "Adamax",
    "Muon",
    "Rprop",
    "SparseAdam",
    "split_for_muon",
]
