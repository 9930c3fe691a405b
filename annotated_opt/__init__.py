r"""
# annotated_opt

A literate, annotated reference library of deep-learning optimizers for PyTorch. Every optimizer is a
small, heavily commented module extending [`GenericAdaptiveOptimizer`](base.md), and each is checked
against an independent implementation.
"""

from . import annealing
from .adagrad import Adagrad
from .adam import Adam
from .adamw import AdamW
from .amsgrad import AMSGrad
from .base import GenericAdaptiveOptimizer
from .nonfinite import NonFiniteGradientError
from .options import learning_rate, param_groups_without_decay, param_option
from .registry import REGISTRY, OptimizerInfo, Reference
from .rmsprop import RMSprop
from .sgd import SGD
from .weight_decay import WeightDecay

__all__ = [
    "REGISTRY",
    "annealing",
    "SGD",
    "AMSGrad",
    "Adagrad",
    "Adam",
    "AdamW",
    "GenericAdaptiveOptimizer",
    "NonFiniteGradientError",
    "OptimizerInfo",
    "RMSprop",
    "Reference",
    "WeightDecay",
    "learning_rate",
    "param_groups_without_decay",
    "param_option",
]
