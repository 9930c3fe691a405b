r"""
# annotated_opt

A literate, annotated reference library of deep-learning optimizers for PyTorch. Every optimizer is a
small, heavily commented module extending [`GenericAdaptiveOptimizer`](base.md), and each is checked
against an independent implementation.
"""

from . import annealing, composable, lr_schedules
from .adabelief import AdaBelief
from .adagrad import Adagrad
from .adam import Adam
from .adamw import AdamW
from .amsgrad import AMSGrad
from .base import GenericAdaptiveOptimizer
from .lamb import LAMB
from .lars import LARS, LARS_CONVENTIONS
from .lookahead import Lookahead
from .nadam import NAdam
from .nero import Nero
from .nero_plus import NeroPlus
from .nonfinite import NonFiniteGradientError
from .options import learning_rate, param_groups_without_decay, param_option
from .radam import RAdam
from .registry import REGISTRY, OptimizerInfo, Reference
from .rmsprop import RMSprop
from .sam import SAM, disable_running_stats, enable_running_stats, running_stats_frozen
from .sgd import SGD
from .weight_decay import WeightDecay
from .wrapper import OptimizerWrapper

__all__ = [
    "REGISTRY",
    "annealing",
    "composable",
    "lr_schedules",
    "SGD",
    "AMSGrad",
    "AdaBelief",
    "Adagrad",
    "Adam",
    "AdamW",
    "GenericAdaptiveOptimizer",
    "NAdam",
    "LAMB",
    "LARS",
    "LARS_CONVENTIONS",
    "Nero",
    "NeroPlus",
    "NonFiniteGradientError",
    "OptimizerInfo",
    "RAdam",
    "Lookahead",
    "OptimizerInfo",
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
]
