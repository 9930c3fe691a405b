r"""
# The registry of optimizers

One list of every optimizer in the library with what is known about it: its paper, its family and
parent, how much state it keeps, the independent implementation it is checked against and in which
configurations. The tests, the site's index table, the plots and the benchmarks all iterate over it,
so adding an optimizer means adding its module and one entry here.
"""

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .adagrad import Adagrad
from .adam import Adam
from .adamw import AdamW
from .amsgrad import AMSGrad
from .lookahead import Lookahead
from .rmsprop import RMSprop
from .sam import SAM
from .sgd import SGD


@dataclass(frozen=True)
class Reference:
    r"""
    An independent implementation to compare against.

    * `target` is its dotted import path, imported only when a check runs (`torch.optim.Adam`).
    * `kwargs` are passed to the reference only, on top of the configuration being checked
      (`amsgrad=True` turns `torch.optim.Adam` into our `AMSGrad`).
    * `ours_only` names our options that the reference does not take (they select an equivalent
      form, such as Adam's folded bias correction, and are left out of the reference's arguments).
    * `tolerance` is the largest relative error accepted in float64.
    """

    target: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    ours_only: tuple[str, ...] = ()
    tolerance: float = 1e-10


@dataclass(frozen=True)
class OptimizerInfo:
    r"""
    * `state_tensors` is the number of parameter-sized tensors kept per parameter in the default
      configuration; `state_bytes_per_param` turns it into bytes for float32 parameters.
    * `configs` are the constructor arguments the verification runs (each given to both ours and the
      reference).
    * `toy_hparams` maps a toy objective's name to tuned constructor arguments.
    * `factory`, when set, builds the optimizer instead of `cls(params, **config)`: a wrapper that
      needs a base optimizer, or one that must prepare its parameters first. Use `build` everywhere.
    * `requires_closure` says that `step` must be given a closure (SAM's two passes).
    """

    name: str
    cls: type
    paper: str
    url: str
    year: int
    family: str
    parent: str | None
    state_tensors: int
    reference: Reference | None = None
    configs: tuple[Mapping[str, Any], ...] = ({},)
    toy_hparams: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    factory: Callable[..., Any] | None = None
    requires_closure: bool = False

    def build(self, params: Any, **config: Any) -> Any:
        """A new optimizer over `params` with the constructor arguments `config`."""
        return (self.factory or self.cls)(params, **config)

    @property
    def key(self) -> str:
        """The lower-case name used on the command line and in page names."""
        return self.name.lower()

    @property
    def module(self) -> str:
        return self.cls.__module__

    @property
    def defaults(self) -> dict[str, Any]:
        """The constructor's default hyper-parameters, read from its signature."""
        signature = inspect.signature(self.cls.__init__)
        return {
            name: p.default
            for name, p in signature.parameters.items()
            if p.default is not inspect.Parameter.empty and p.kind is not p.VAR_KEYWORD
        }

    @property
    def state_bytes_per_param(self) -> int:
        return 4 * self.state_tensors


REGISTRY: dict[str, OptimizerInfo] = {}


def register(info: OptimizerInfo) -> OptimizerInfo:
    if info.key in REGISTRY:
        raise ValueError(f"optimizer {info.name!r} is registered twice")
    REGISTRY[info.key] = info
    return info


def get(name: str) -> OptimizerInfo:
    """Look an optimizer up by name, case-insensitively, with a helpful error."""
    try:
        return REGISTRY[name.lower()]
    except KeyError:
        raise KeyError(f"unknown optimizer {name!r}; known: {', '.join(sorted(REGISTRY))}") from None


register(OptimizerInfo(
    name="SGD", cls=SGD, family="SGD", parent=None, year=1951, state_tensors=1,
    paper="A Stochastic Approximation Method (Robbins & Monro); momentum: Polyak 1964",
    url="https://doi.org/10.1214/aoms/1177729586",
    reference=Reference("torch.optim.SGD"),
    configs=(
        {"lr": 0.05},
        {"lr": 0.05, "momentum": 0.9},
        {"lr": 0.05, "momentum": 0.9, "dampening": 0.5, "weight_decay": 0.01},
        {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01},
        {"lr": 0.05, "momentum": 0.5, "maximize": True},
    ),
))
register(OptimizerInfo(
    name="Adagrad", cls=Adagrad, family="Adaptive", parent=None, year=2011, state_tensors=1,
    paper="Adaptive Subgradient Methods for Online Learning and Stochastic Optimization",
    url="https://jmlr.org/papers/v12/duchi11a.html",
    reference=Reference("torch.optim.Adagrad"),
    configs=(
        {"lr": 0.05},
        {"lr": 0.05, "lr_decay": 0.01, "weight_decay": 0.01},
        {"lr": 0.05, "initial_accumulator_value": 0.1, "eps": 1e-6, "maximize": True},
    ),
))
register(OptimizerInfo(
    name="RMSprop", cls=RMSprop, family="Adaptive", parent="Adagrad", year=2012, state_tensors=1,
    paper="Neural Networks for Machine Learning, Lecture 6e (Tieleman & Hinton)",
    url="https://www.cs.toronto.edu/~tijmen/csc321/slides/lecture_slides_lec6.pdf",
    reference=Reference("torch.optim.RMSprop"),
    configs=(
        {"lr": 0.01},
        {"lr": 0.01, "centered": True, "weight_decay": 0.01},
        {"lr": 0.01, "momentum": 0.9},
        {"lr": 0.01, "momentum": 0.9, "centered": True, "alpha": 0.9, "maximize": True},
    ),
))
ADAM_CONFIGS = (
    {"lr": 0.01},
    {"lr": 0.01, "weight_decay": 0.05},
    {"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-6, "maximize": True},
    {"lr": 0.01, "weight_decay": 0.05, "fold_bias_correction": True},
)
register(OptimizerInfo(
    name="Adam", cls=Adam, family="Adam", parent=None, year=2015, state_tensors=2,
    paper="Adam: A Method for Stochastic Optimization", url="https://arxiv.org/abs/1412.6980",
    reference=Reference("torch.optim.Adam", ours_only=("fold_bias_correction",)),
    configs=ADAM_CONFIGS + ({"lr": 0.01, "weight_decay": 0.05, "decoupled_weight_decay": True},),
))
register(OptimizerInfo(
    name="AMSGrad", cls=AMSGrad, family="Adam", parent="Adam", year=2018, state_tensors=3,
    paper="On the Convergence of Adam and Beyond", url="https://openreview.net/forum?id=ryQu7f-RZ",
    reference=Reference("torch.optim.Adam", kwargs={"amsgrad": True}, ours_only=("fold_bias_correction",)),
    configs=ADAM_CONFIGS + ({"lr": 0.01, "weight_decay": 0.05, "decoupled_weight_decay": True},),
))
register(OptimizerInfo(
    name="AdamW", cls=AdamW, family="Adam", parent="Adam", year=2019, state_tensors=2,
    paper="Decoupled Weight Decay Regularization", url="https://arxiv.org/abs/1711.05101",
    reference=Reference("torch.optim.AdamW", ours_only=("fold_bias_correction",)),
    configs=ADAM_CONFIGS + ({"lr": 0.01, "weight_decay": 0.1, "amsgrad": True},),
))


WRAPPER_BASES: dict[str, type] = {"SGD": SGD, "Adam": Adam}


def build_sam(params: Any, base: str = "SGD", **config: Any) -> SAM:
    r"""SAM over one of our optimizers, named by `base`; over SGD, momentum defaults to 0.9 (the paper's)."""
    if base == "SGD":
        config.setdefault("momentum", 0.9)
    return SAM(params, WRAPPER_BASES[base], **config)


def build_lookahead(params: Any, base: str = "Adam", k: int = 5, alpha: float = 0.5, **config: Any) -> Lookahead:
    r"""Lookahead over one of our optimizers, named by `base`, built over `params` with `config`."""
    return Lookahead(WRAPPER_BASES[base](params, **config), k=k, alpha=alpha)


register(OptimizerInfo(
    name="SAM", cls=SAM, family="Wrapper", parent=None, year=2021,
    # The base's state (SGD's momentum) and the saved weights, held during the step.
    state_tensors=2,
    paper="Sharpness-Aware Minimization for Efficiently Improving Generalization; ASAM: Kwon et al. 2021",
    url="https://arxiv.org/abs/2010.01412",
    reference=Reference("tests.references.sam.SAM"),
    configs=(
        {"lr": 0.05, "momentum": 0.9, "rho": 0.05},
        {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01, "rho": 0.2},
        {"lr": 0.05, "momentum": 0.9, "rho": 1.0, "adaptive": True},
        {"lr": 0.05, "momentum": 0.5, "rho": 0.1, "maximize": True},
        {"base": "Adam", "lr": 0.01, "rho": 0.05},
        {"base": "Adam", "lr": 0.01, "weight_decay": 0.05, "rho": 0.5, "adaptive": True},
    ),
    factory=build_sam,
    requires_closure=True,
))
register(OptimizerInfo(
    name="Lookahead", cls=Lookahead, family="Wrapper", parent=None, year=2019,
    # The base's state (Adam's two moments) and the slow weights.
    state_tensors=3,
    paper="Lookahead Optimizer: k steps forward, 1 step back", url="https://arxiv.org/abs/1907.08610",
    reference=Reference("tests.references.lookahead.Lookahead"),
    configs=(
        {"lr": 0.01, "k": 5, "alpha": 0.5},
        {"lr": 0.01, "k": 3, "alpha": 0.8, "weight_decay": 0.05},
        {"base": "SGD", "lr": 0.05, "momentum": 0.9, "k": 4, "alpha": 0.5},
        {"base": "SGD", "lr": 0.05, "k": 1, "alpha": 0.3, "maximize": True},
    ),
    factory=build_lookahead,
))
