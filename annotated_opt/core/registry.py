r"""
# The registry of optimizers

One list of every optimizer in the library with what is known about it: its paper, its family and
parent, how much state it keeps, the independent implementation it is checked against and in which
configurations. The tests, the site's index table, the plots and the benchmarks all iterate over it,
so adding an optimizer means adding its module and one entry here.

## The property battery

Every entry must also pass a battery of properties (in `tests/test_properties.py` and
`tests/test_property_fuzz.py`), the same bar `torch.optim` sets for its own optimizers: checkpoints
that continue bit-identically, steps without gradients that change nothing, complex and low-precision
parameters, bad gradients, invalid arguments, hooks, random shapes and gradient sequences. `PROPERTIES`
names each one. Where an algorithm legitimately breaks a property (Nero re-projects its weights at
every step, so a zero gradient still moves them), its entry says so in `exemptions`, with the reason;
the battery then skips that property for it and reports the reason. Nothing is exempted by name in the
tests.

## What an entry says

Each entry is an `OptimizerInfo`: facts about the algorithm (paper, year, family, state kept per
parameter, and `parent`, the optimizer whose *idea* it refines: the lineage of ideas, which the
class's Python base need not follow, as RMSprop's does not), how to build it, and how it is checked, as a `Reference`
and a list of configurations for the [verification](verification.md). The configurations are
chosen like test cases, not like recipes: each one switches on an option or a combination whose
code path the others do not reach (weight decay in both modes, momentum with dampening, Nesterov,
`amsgrad`, `maximize`, an unusual $\beta$), with learning rates large enough that 100 steps move
the parameters visibly, so that a wrong update cannot pass as a small one.
"""

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..adabelief import AdaBelief
from ..adadelta import Adadelta
from ..adafactor import Adafactor
from ..adagrad import Adagrad
from ..adam import Adam
from ..adamax import Adamax
from ..adamw import AdamW
from ..adan import Adan
from ..ademamix import AdEMAMix
from ..adopt import ADOPT
from ..amsgrad import AMSGrad
from ..asgd import ASGD
from ..dadapt_adam import DAdaptAdam
from ..galore import GaLore
from ..kron import Kron
from ..lamb import LAMB
from ..lars import LARS
from ..lbfgs import LBFGS
from ..lion import Lion
from ..lookahead import Lookahead
from ..mars import MARS
from ..muon import Muon
from ..nadam import NAdam
from ..nero import Nero
from ..nero_plus import NeroPlus
from ..prodigy import Prodigy
from ..radam import RAdam
from ..rmsprop import RMSprop
from ..rprop import Rprop
from ..sam import SAM
from ..schedule_free_adamw import ScheduleFreeAdamW
from ..schedule_free_sgd import ScheduleFreeSGD
from ..sgd import SGD
from ..shampoo import Shampoo
from ..soap import SOAP
from ..sophia import Sophia
from ..sparse_adam import SparseAdam
from .tuned import TunedHparams, tuned_hparams

# The battery of properties, by name, with the sentence the test report prints for each. The names
# are what `exemptions` may refer to; `register` refuses any other.
PROPERTIES: dict[str, str] = {
    "state_dict_round_trip": "a state dict taken mid-run (in memory, or saved and loaded with weights_only=True) "
                             "continues bit-identically",
    "older_state_dict": "a state dict without the group options that have their default value (one saved "
                        "before those options existed) loads and continues bit-identically",
    "load_does_not_alias": "loading a state dict neither shares nor modifies the source's tensors",
    "deepcopy": "a deep copy of model and optimizer, taken mid-run, continues bit-identically",
    "no_grad_step_is_noop": "a step in which no parameter has a gradient changes no parameter and no state",
    "zero_grad_is_noop": "zero gradients without weight decay, from the first step, leave the parameters unchanged",
    "zero_size_params": "zero-size parameters are accepted and do not change the updates of the others",
    "frozen_then_unfrozen": "a parameter without gradients is untouched and keeps no state; once it gets "
                            "gradients it trains",
    "non_contiguous": "a non-contiguous parameter is updated exactly like a contiguous copy, keeping its strides",
    "add_param_group": "a group added mid-run gets every default, its own settings, state, and checkpoints",
    "complex_as_real": "a complex parameter is optimised exactly as its real view (or is refused clearly)",
    "native_dtypes": "float64, float32, bfloat16 and float16 parameters keep their dtype, and their state's, "
                     "and stay close to float64",
    "master_weights": "with master_weights a bfloat16/float16 parameter follows float32 training exactly, "
                      "also across a checkpoint",
    "nonfinite_raise": "an inf/NaN gradient raises NonFiniteGradientError naming the parameter, changing nothing",
    "nonfinite_skip": "with nonfinite='skip' such a step is skipped in every group, counted and reported",
    "invalid_arguments": "invalid constructor arguments and group options raise ValueError naming the argument",
    "parameter_lists": "an empty list, a parameter in two groups and a duplicate parameter behave as in torch.optim",
    "sparse_gradient": "a sparse gradient raises a clear error (a dense one, for an optimizer of sparse gradients "
                       "only)",
    "hooks": "step, state_dict and load_state_dict hooks fire in the order torch.optim fires them",
    "tensor_lr": "a learning rate given as a tensor (and scheduled in place) gives the same steps as the float",
    "closure": "the closure runs with gradients enabled and its loss is returned",
    "fuzz": "random shapes, hyper-parameters and gradient sequences: only documented exceptions, finite results, "
            "checkpoint/restore equivalence",
}


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
    * `same_rounding` (for a `torch.optim` reference) says that ours performs the reference's
      floating-point operations in the same order, so that in a parameter's own half precision the
      two round alike and agree bit for bit. It is `False` where ours writes the same formula in
      another order (RAdam folds its step size into one number, torch multiplies tensor by tensor):
      equal in float64 to `tolerance`, but not rounding for rounding in `bfloat16`.
    """

    target: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    ours_only: tuple[str, ...] = ()
    tolerance: float = 1e-10
    same_rounding: bool = True

    @property
    def is_torch_optim(self) -> bool:
        r"""Whether the reference is one of `torch.optim`'s own optimizers."""
        return self.target.startswith("torch.optim.")


@dataclass(frozen=True)
class OptimizerInfo:
    r"""
    * `state_tensors` is the number of parameter-sized tensors kept per parameter in the default
      configuration; `state_bytes_per_param` turns it into bytes for float32 parameters.
    * `configs` are the constructor arguments the verification runs (each given to both ours and the
      reference).
    * `toy_hparams` maps a toy objective's name to constructor arguments set by hand; the searched
      ones live in `tuned_hparams.json` and win over these. Read both through `tuned(target)`.
    * `factory`, when set, builds the optimizer instead of `cls(params, **config)`: a wrapper that
      needs a base optimizer. Use `build` everywhere.
    * `prepare`, when set, readies parameters for the optimizer in place and returns them in a form
      the constructor takes, given the constructor arguments: Nero projects each neuron onto its
      constraints, and refuses parameters that are not projected. `build` calls it first; parameters
      added later with `add_param_group` go through `prepared`. It must leave parameters that are
      already prepared exactly as they are, so that building twice over the same parameters (a
      checkpoint restored into a fresh optimizer) changes nothing.
    * `requires_closure` says that `step` must be given a closure (SAM's two passes).
    * `exemptions` maps a property of `PROPERTIES` that does not hold for this optimizer to the reason
      why (the algorithm, not the implementation, must be the reason). Empty by default: everything holds.
    * `parameters`, when set, makes the parameter set of the verification and of the property battery
      instead of the awkward one (`verification.matrix_parameters` for an optimizer of matrices only);
      the battery gives every tensor it makes for this entry a rank the set holds.
    * `negative_args` names constructor arguments that take a negative number, because it is meaningful
      or because the torch twin takes it unchecked (and a drop-in must take what torch takes); every
      other numeric argument must refuse a negative value (and every one must refuse NaN).
    * `after_step`, when set, is called as `after_step(optimizer, t)` after step `t` of the verification,
      on ours and on the reference alike: what a training loop must do between steps besides `step`
      (Sophia's refresh of its Hessian estimate).
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
    prepare: Callable[..., Any] | None = None
    requires_closure: bool = False
    exemptions: Mapping[str, str] = field(default_factory=dict)
    negative_args: tuple[str, ...] = ()
    after_step: Callable[[Any, int], None] | None = None
    parameters: Callable[..., Any] | None = None

    def build(self, params: Any, **config: Any) -> Any:
        r"""A new optimizer over `params` with the constructor arguments `config`."""
        return (self.factory or self.cls)(self.prepared(params, **config), **config)

    def prepared(self, params: Any, **config: Any) -> Any:
        r"""`params` (tensors or groups) made ready for an optimizer built with `config`; see `prepare`."""
        return self.prepare(params, **config) if self.prepare is not None else params

    def tuned(self, target: str) -> TunedHparams:
        r"""The hyper-parameters to use on a toy objective or small task (see [tuned](tuned.md))."""
        return tuned_hparams(self, target)

    @property
    def key(self) -> str:
        r"""The lower-case name used on the command line and in page names."""
        return self.name.lower()

    @property
    def module(self) -> str:
        r"""The module that defines the class: the page the site links the entry to."""
        return self.cls.__module__

    @property
    def defaults(self) -> dict[str, Any]:
        r"""
        The constructor's default hyper-parameters, read from its signature rather than written
        down a second time, so the index table cannot disagree with the code.
        """
        signature = inspect.signature(self.cls.__init__)
        return {
            name: p.default
            for name, p in signature.parameters.items()
            if p.default is not inspect.Parameter.empty and p.kind is not p.VAR_KEYWORD
        }

    @property
    def state_bytes_per_param(self) -> int:
        r"""
        Bytes of state per `float32` parameter: $4$ bytes per state tensor. Adam's $8$, on top of the
        parameter's own $4$ and its gradient's $4$, is why optimizer state dominates the memory of
        training a large model.
        """
        return 4 * self.state_tensors


# Every optimizer, by lower-case name, in the order registered (the order of the site's table).
REGISTRY: dict[str, OptimizerInfo] = {}


def register(info: OptimizerInfo) -> OptimizerInfo:
    r"""
    Add one entry. Two mistakes are caught here, at import time, rather than in a test that would
    silently skip: a name registered twice, and an exemption that names no property (a typo would
    otherwise exempt nothing and look as if it did).
    """
    if info.key in REGISTRY:
        raise ValueError(f"optimizer {info.name!r} is registered twice")
    unknown = set(info.exemptions) - set(PROPERTIES)
    if unknown:
        raise ValueError(f"{info.name}: exemptions name unknown properties {sorted(unknown)}")
    REGISTRY[info.key] = info
    return info


def get(name: str) -> OptimizerInfo:
    r"""Look an optimizer up by name, case-insensitively, with a helpful error."""
    try:
        return REGISTRY[name.lower()]
    except KeyError:
        raise KeyError(f"unknown optimizer {name!r}; known: {', '.join(sorted(REGISTRY))}") from None


# ## The classics, checked against `torch.optim`
#
# SGD's year is Robbins and Monro's. `state_tensors=1` counts the momentum buffer, which exists once
# `momentum > 0` (the constructor's default, $0$, keeps none). The configurations cover the buffer's
# first step ($b_1 = g_1$ even with dampening, the third), Nesterov with L2 decay, and `maximize`
# with momentum; $\eta = 0.05$ makes the steps visible over 100 steps.
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
    # A negative dampening over-weights the fresh gradient; torch accepts it.
    negative_args=("dampening",),
))
# Adagrad keeps one sum per coordinate. The configurations exercise the learning-rate decay with L2,
# and a positive initial accumulator (which changes the first steps most) with a large $\epsilon$ and
# `maximize`.
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
# RMSprop's parent is Adagrad in the family tree of ideas (a forgetting sum), not in the code. Its
# centred variant and its momentum each get a configuration. With the default $\alpha = 0.99$ the
# uncorrected start-up transient lasts through all 100 steps; the last configuration combines both
# options with a short memory, $\alpha = 0.9$, where it is over after a few dozen steps.
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
# The configurations shared by the Adam family: the default $\beta$'s and $\epsilon$, L2 decay,
# short memories with a large $\epsilon$ (so that where $\epsilon$ is added matters) and `maximize`,
# and the folded bias correction, which torch does not have and which must match torch's unfolded
# steps. Each member adds the one configuration that is its own.
ADAM_CONFIGS = (
    {"lr": 0.01},
    {"lr": 0.01, "weight_decay": 0.05},
    {"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-6, "maximize": True},
    {"lr": 0.01, "weight_decay": 0.05, "fold_bias_correction": True},
)
# Adam against `torch.optim.Adam`; its own extra configuration is decoupled decay, which torch's Adam
# also offers (`decoupled_weight_decay=True`).
register(OptimizerInfo(
    name="Adam", cls=Adam, family="Adam", parent=None, year=2015, state_tensors=2,
    paper="Adam: A Method for Stochastic Optimization", url="https://arxiv.org/abs/1412.6980",
    reference=Reference("torch.optim.Adam", ours_only=("fold_bias_correction",)),
    configs=ADAM_CONFIGS + ({"lr": 0.01, "weight_decay": 0.05, "decoupled_weight_decay": True},),
))
# AMSGrad is `torch.optim.Adam(amsgrad=True)`: the reference gets the flag, ours has it by default.
# Three state tensors: the moments and the running maximum.
register(OptimizerInfo(
    name="AMSGrad", cls=AMSGrad, family="Adam", parent="Adam", year=2018, state_tensors=3,
    paper="On the Convergence of Adam and Beyond", url="https://openreview.net/forum?id=ryQu7f-RZ",
    reference=Reference("torch.optim.Adam", kwargs={"amsgrad": True}, ours_only=("fold_bias_correction",)),
    configs=ADAM_CONFIGS + ({"lr": 0.01, "weight_decay": 0.05, "decoupled_weight_decay": True},),
))
# AdamW against `torch.optim.AdamW`. In `ADAM_CONFIGS` its `weight_decay=0.05` is decoupled (AdamW's
# mode), so the same numbers check the other kind of decay; its own configuration adds `amsgrad`.
register(OptimizerInfo(
    name="AdamW", cls=AdamW, family="Adam", parent="Adam", year=2019, state_tensors=2,
    paper="Decoupled Weight Decay Regularization", url="https://arxiv.org/abs/1711.05101",
    reference=Reference("torch.optim.AdamW", ours_only=("fold_bias_correction",)),
    configs=ADAM_CONFIGS + ({"lr": 0.01, "weight_decay": 0.1, "amsgrad": True},),
))
# ## The later Adam family
#
# RAdam and AdaBelief also run with short memories ($\beta_2$ from $0.9$ to $0.99$): there the
# rectification term $r_t$ grows to most or all of its full size within the 100 steps ($r_{100} = 1.0$
# for $\beta_2 = 0.9$, $0.63$ for $0.99$), while with $\beta_2 = 0.999$ it is still $0.21$ at step 100.
# Both ends of $r_t$'s range are then checked.
register(OptimizerInfo(
    name="RAdam", cls=RAdam, family="Adam", parent="Adam", year=2020, state_tensors=2,
    paper="On the Variance of the Adaptive Learning Rate and Beyond", url="https://arxiv.org/abs/1908.03265",
    # torch computes the rectified step as a product of tensors, m/c_1 * lr * sqrt(c_2)/(sqrt(v)+eps) * r_t,
    # each rounded; ours multiplies m/(sqrt(v)+eps) by one step size computed in float64.
    reference=Reference("torch.optim.RAdam", ours_only=("rectify_threshold", "degenerated_to_sgd"),
                        same_rounding=False),
    configs=(
        {"lr": 0.01},
        {"lr": 0.01, "weight_decay": 0.05},
        {"lr": 0.01, "weight_decay": 0.05, "decoupled_weight_decay": True},
        {"lr": 0.01, "betas": (0.8, 0.9), "eps": 1e-6, "maximize": True},
        {"lr": 0.01, "betas": (0.9, 0.99), "weight_decay": 0.05, "decoupled_weight_decay": True,
         "rectify_threshold": "torch", "degenerated_to_sgd": True},
    ),
))
register(OptimizerInfo(
    name="AdaBelief", cls=AdaBelief, family="Adam", parent="RAdam", year=2020, state_tensors=2,
    paper="AdaBelief Optimizer: Adapting Stepsizes by the Belief in Observed Gradients",
    url="https://arxiv.org/abs/2010.07468",
    reference=Reference("adabelief_pytorch.AdaBelief", kwargs={"print_change_log": False}),
    configs=(
        {"lr": 0.01},
        {"lr": 0.01, "betas": (0.9, 0.99), "weight_decay": 0.05},
        {"lr": 0.01, "weight_decay": 0.05, "weight_decouple": False, "rectify": False, "eps": 1e-8},
        {"lr": 0.01, "betas": (0.8, 0.99), "weight_decay": 0.005, "fixed_decay": True, "amsgrad": True},
        {"lr": 0.01, "betas": (0.9, 0.99), "amsgrad": True, "rectify": False},
        {"lr": 0.01, "betas": (0.9, 0.98), "weight_decay": 0.05, "degenerated_to_sgd": False},
    ),
))
register(OptimizerInfo(
    name="NAdam", cls=NAdam, family="Adam", parent="Adam", year=2016, state_tensors=2,
    paper="Incorporating Nesterov Momentum into Adam", url="https://openreview.net/forum?id=OM0jvwB8jIp57ZJjtNEZ",
    reference=Reference("torch.optim.NAdam"),
    configs=(
        {"lr": 0.01},
        {"lr": 0.01, "weight_decay": 0.05},
        {"lr": 0.01, "weight_decay": 0.05, "decoupled_weight_decay": True},
        {"lr": 0.01, "betas": (0.8, 0.9), "eps": 1e-6, "maximize": True, "momentum_decay": 0.01},
    ),
))

LARS_CONFIGS = (
    {"lr": 0.5, "momentum": 0.9, "trust_coefficient": 0.01, "eps": 0.0},
    {"lr": 0.5, "momentum": 0.9, "trust_coefficient": 0.01, "eps": 0.0, "weight_decay": 0.01},
    {"lr": 0.5, "momentum": 0.9, "trust_coefficient": 0.01, "eps": 0.0, "weight_decay": 0.01, "nesterov": True},
    {"lr": 0.5, "momentum": 0.0, "trust_coefficient": 0.02, "eps": 0.0, "weight_decay": 0.01, "maximize": True},
    {"lr": 0.5, "momentum": 0.8, "trust_coefficient": 0.01, "eps": 0.0, "weight_decay": 0.01, "foreach": True},
)
register(OptimizerInfo(
    name="LARS", cls=LARS, family="SGD", parent="SGD", year=2017, state_tensors=1,
    paper="Large Batch Training of Convolutional Networks", url="https://arxiv.org/abs/1708.03888",
    # pytorch_optimizer's LARS is the convention LARS_CONVENTIONS["pytorch_optimizer"]: no eps, vectors
    # and scalars neither adapted nor decayed (our defaults), torch momentum without dampening.
    reference=Reference("pytorch_optimizer.LARS", ours_only=("eps",)),
    configs=LARS_CONFIGS,
    # -1 switches the dimension rules off (the paper's and MXNet's conventions adapt and decay everything).
    negative_args=("max_ndim_without_adaptation", "max_ndim_without_decay", "dampening"),
))
# pytorch_optimizer's Lamb without its default first-moment correction outside the ratio
# (adam_debias=True), with the decay inside the update (weight_decouple=False), an eps in the ratio
# and the weight norm clamped to 10: `pytorch-lamb`'s variant.
LAMB_REFERENCE_VARIANT = {"bias_correction": False, "weight_norm_bounds": (0.0, 10.0), "trust_eps": 1e-6}
register(OptimizerInfo(
    name="LAMB", cls=LAMB, family="Adam", parent="Adam", year=2020, state_tensors=2,
    paper="Large Batch Optimization for Deep Learning: Training BERT in 76 minutes",
    url="https://arxiv.org/abs/1904.00962",
    reference=Reference("pytorch_optimizer.Lamb", kwargs={"adam_debias": True, "weight_decouple": False},
                        ours_only=tuple(LAMB_REFERENCE_VARIANT)),
    configs=(
        {"lr": 0.01, **LAMB_REFERENCE_VARIANT},
        {"lr": 0.01, "weight_decay": 0.05, **LAMB_REFERENCE_VARIANT},
        {"lr": 0.02, "betas": (0.8, 0.99), "eps": 1e-4, "weight_decay": 0.01, "maximize": True,
         **LAMB_REFERENCE_VARIANT, "trust_eps": 1e-4},
    ),
))
# No installable implementation matches Nero or NeroPlus under the shared harness (pytorch_optimizer's
# Nero counts steps per group, ALF is not a package): their tests compare with transcriptions of the
# official code. Both need projected parameters, so the registry prepares them with `initialize_missing`.
NERO_EXEMPTIONS = {
    "zero_grad_is_noop": "the projection after every step re-centres and re-normalises each constrained "
                         "neuron; after a zero step it moves an already projected neuron by rounding errors",
}
register(OptimizerInfo(
    name="Nero", cls=Nero, family="Nero", parent=None, year=2021, state_tensors=0,
    paper="Learning by Turning: Neural Architecture Aware Optimisation", url="https://arxiv.org/abs/2102.07227",
    configs=({"lr": 0.01}, {"lr": 0.01, "beta": 0.99, "constraints": False}),
    prepare=Nero.initialize_missing,
    exemptions=NERO_EXEMPTIONS,
))
register(OptimizerInfo(
    name="NeroPlus", cls=NeroPlus, family="Nero", parent="Nero", year=2022, state_tensors=2,
    paper="NeroPlus in ALF, after Learning by Turning (Liu et al., 2021)",
    url="https://github.com/HorizonRobotics/alf/blob/pytorch/alf/optimizers/nero_plus.py",
    configs=(
        {"lr": 0.01},
        {"lr": 0.01, "normalizing_grad_by_norm": True, "betas": (0.0, 0.999)},
        {"lr": 0.01, "max_norm": 2.0, "fixed_norm": False, "weight_decay": 0.01, "l2_regularization": 0.01},
    ),
    prepare=NeroPlus.initialize_missing,
    exemptions=NERO_EXEMPTIONS,
))


# ## Wrappers
#
# SAM and Lookahead wrap another optimizer. The registry builds them over one of ours, named in the
# configuration by `base`, so that the same verification and battery apply.
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
    paper="Sharpness-Aware Minimization for Efficiently Improving Generalization",
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


# ## Methods of 2023-2024 checked against their authors' packages
#
# The adapters in `tests/references/authors_packages.py` only change how a package is called (the
# Schedule-Free optimizers must be put in train mode, Sophia takes its batch size at each step).
# None of these packages has `maximize`, so no configuration uses it.
#
# Schedule-Free: warmup, $r$ and `weight_lr_power` change the weights of the average, the second
# configuration also an unusual interpolation; the second group's halved learning rate gives it
# its own $\gamma_{\max}$ and weights.
register(OptimizerInfo(
    name="ScheduleFreeSGD", cls=ScheduleFreeSGD, family="Schedule-Free", parent="SGD", year=2024,
    state_tensors=1,
    paper="The Road Less Scheduled", url="https://arxiv.org/abs/2405.15682",
    reference=Reference("tests.references.authors_packages.SGDScheduleFree"),
    configs=(
        {"lr": 0.1},
        {"lr": 0.1, "momentum": 0.5, "weight_decay": 0.05, "warmup_steps": 20},
        {"lr": 0.2, "r": 1.0, "weight_lr_power": 0.0},
    ),
))
register(OptimizerInfo(
    name="ScheduleFreeAdamW", cls=ScheduleFreeAdamW, family="Schedule-Free", parent="ScheduleFreeSGD",
    year=2024, state_tensors=2,
    paper="The Road Less Scheduled", url="https://arxiv.org/abs/2405.15682",
    reference=Reference("tests.references.authors_packages.AdamWScheduleFree"),
    configs=(
        {"lr": 0.01},
        {"lr": 0.01, "betas": (0.95, 0.99), "weight_decay": 0.05, "warmup_steps": 20},
        {"lr": 0.02, "eps": 1e-4, "r": 1.0, "weight_lr_power": 1.0},
    ),
))
# D-Adaptation and Prodigy: `lr` is left at its default, since the authors' code refuses different
# learning rates in different groups (ours accepts them). The configurations reach L2 and decoupled
# decay, the bias correction, a finite growth rate, and for Prodigy the safeguard, $\beta_1 = 0$ (no
# momentum buffer), a sliced estimate and a larger $d_0$.
register(OptimizerInfo(
    name="DAdaptAdam", cls=DAdaptAdam, family="Learning-rate-free", parent="Adam", year=2023, state_tensors=3,
    paper="Learning-Rate-Free Learning by D-Adaptation", url="https://arxiv.org/abs/2301.07733",
    reference=Reference("tests.references.authors_packages.DAdaptAdam"),
    configs=(
        {},
        {"weight_decay": 0.05, "use_bias_correction": True},
        {"weight_decay": 0.05, "decouple": True, "growth_rate": 2.0, "betas": (0.8, 0.99)},
        {"d0": 1e-3, "eps": 1e-4, "layer_scale": 0.5},
    ),
))
register(OptimizerInfo(
    name="Prodigy", cls=Prodigy, family="Learning-rate-free", parent="DAdaptAdam", year=2024, state_tensors=4,
    paper="Prodigy: An Expeditiously Adaptive Parameter-Free Learner", url="https://arxiv.org/abs/2306.06101",
    reference=Reference("prodigyopt.Prodigy"),
    # The moments carry d and d^2: with d_0 = 1e-6, v's first increments are about 1e-12 g^2, below
    # float16's smallest number (6e-8), so v and eps*d round to 0 and the step divides by zero.
    exemptions={"native_dtypes": "the second moment carries d^2 (1e-12 at the start), below float16's range; "
                                 "float16 parameters need master_weights (bfloat16 and float32 are exact enough)"},
    configs=(
        {},
        {"weight_decay": 0.05, "use_bias_correction": True, "safeguard_warmup": True},
        {"weight_decay": 0.05, "decouple": False, "growth_rate": 2.0, "d_coef": 0.5, "beta3": 0.9},
        {"betas": (0.0, 0.99), "slice_p": 3, "d0": 1e-3},
    ),
))


def refresh_hessian_every_other_step(optimizer: Any, step: int) -> None:
    r"""
    Sophia's verification refreshes $h$ after every second step from the gradient just used (the
    harness has no model to sample labels from, and the hook only reads `p.grad`). The parameter
    without a gradient every third step then misses some refreshes, as a frozen one would.
    """
    if step % 2 == 0:
        optimizer.update_hessian()


# Sophia: with the default `bs` the step is Newton-like after the first refresh ($\rho B h$ is large);
# with a small `bs` part of the coordinates clip, so both branches of the clip are checked.
register(OptimizerInfo(
    name="Sophia", cls=Sophia, family="Second-order", parent=None, year=2024, state_tensors=2,
    paper="Sophia: A Scalable Stochastic Second-order Optimizer for Language Model Pre-training",
    url="https://arxiv.org/abs/2305.14342",
    reference=Reference("tests.references.authors_packages.SophiaG"),
    configs=(
        {"lr": 0.05},
        {"lr": 0.05, "bs": 16, "weight_decay": 0.05},
        {"lr": 0.05, "bs": 4, "betas": (0.9, 0.95), "rho": 0.1},
    ),
    after_step=refresh_hessian_every_other_step,
    # Until the first refresh (the battery never refreshes) every step is a sign step of size lr.
    exemptions={"native_dtypes": "without a Hessian estimate the step is lr*sign(m), discontinuous at m = 0: a "
                                 "momentum that rounds to zero in float16 moves by 0 where float64 moves by lr"},
))


# ## Element-wise methods of 2022-2025
#
# Lion is checked against the authors' package, which takes neither `maximize` nor an `eps`; the
# others against transcriptions of the authors' code in `tests/references/`, each naming the file and
# commit it follows and the conventions of the harness it adopts (a step count per parameter,
# `maximize` as a negated gradient). Every sign in Lion's update is $\pm 1$, so its configurations
# use a small learning rate with a large decay, as the paper advises.
register(OptimizerInfo(
    name="Lion", cls=Lion, family="Sign", parent=None, year=2023, state_tensors=1,
    paper="Symbolic Discovery of Optimization Algorithms", url="https://arxiv.org/abs/2302.06675",
    reference=Reference("lion_pytorch.Lion"),
    configs=(
        {"lr": 0.01},
        {"lr": 0.01, "weight_decay": 0.5},
        {"lr": 0.005, "betas": (0.95, 0.98), "weight_decay": 1.0},
    ),
))
# Adan's `betas` follow the official code (one minus the paper's). The third configuration is
# AdamW-style decay (`no_prox`), the fourth short memories for all three averages.
register(OptimizerInfo(
    name="Adan", cls=Adan, family="Adam", parent="Adam", year=2022, state_tensors=4,
    paper="Adan: Adaptive Nesterov Momentum Algorithm for Faster Optimizing Deep Models",
    url="https://arxiv.org/abs/2208.06677",
    reference=Reference("tests.references.adan.Adan"),
    configs=(
        {"lr": 0.01},
        {"lr": 0.01, "weight_decay": 0.05},
        {"lr": 0.01, "weight_decay": 0.05, "no_prox": True},
        {"lr": 0.01, "betas": (0.9, 0.8, 0.95), "eps": 1e-6, "maximize": True},
    ),
))
# ADOPT: L2 and decoupled decay (which start at different steps), a large $\epsilon$ floor with short
# memories, and the first, unclipped version.
register(OptimizerInfo(
    name="ADOPT", cls=ADOPT, family="Adam", parent="Adam", year=2024, state_tensors=2,
    paper="ADOPT: Modified Adam Can Converge with Any beta2 with the Optimal Rate",
    url="https://arxiv.org/abs/2411.02853",
    reference=Reference("tests.references.adopt.ADOPT"),
    exemptions={
        "closure": "the first step only sets the second moment v_0 = g_0^2; the parameters move from the second "
                   "step on (the closure itself is tested in tests/test_modern_optimizers.py)",
    },
    configs=(
        {"lr": 0.01},
        {"lr": 0.01, "weight_decay": 0.05},
        {"lr": 0.01, "weight_decay": 0.05, "decoupled_weight_decay": True},
        {"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-1, "maximize": True},
        {"lr": 0.01, "clip_lambda": None},
    ),
))
# AdEMAMix: both warm-ups end inside the 100 steps (so the schedules and their ends are checked),
# and $\beta_1 = 0$, where the official code keeps no fast average.
register(OptimizerInfo(
    name="AdEMAMix", cls=AdEMAMix, family="Adam", parent="Adam", year=2024, state_tensors=3,
    paper="The AdEMAMix Optimizer: Better, Faster, Older", url="https://arxiv.org/abs/2409.03137",
    reference=Reference("tests.references.ademamix.AdEMAMix"),
    configs=(
        {"lr": 0.01},
        {"lr": 0.01, "weight_decay": 0.05, "alpha": 5.0},
        {"lr": 0.01, "betas": (0.9, 0.99, 0.999), "alpha": 8.0, "alpha_warmup": 50, "beta3_warmup": 60},
        {"lr": 0.01, "betas": (0.0, 0.99, 0.995), "alpha_warmup": 30, "beta3_warmup": 200, "maximize": True},
    ),
))
# MARS: the harness's matrices take the MARS step and its other tensors the AdamW fallback, unless
# `optimize_1d`; the fallback's own settings and `amsgrad` each get a configuration.
register(OptimizerInfo(
    name="MARS", cls=MARS, family="Adam", parent="AdamW", year=2024, state_tensors=3,
    paper="MARS: Unleashing the Power of Variance Reduction for Training Large Models",
    url="https://arxiv.org/abs/2411.10438",
    reference=Reference("tests.references.mars.MARS"),
    configs=(
        {"lr": 0.01},
        {"lr": 0.01, "weight_decay": 0.05},
        {"lr": 0.01, "weight_decay": 0.05, "optimize_1d": True, "gamma": 0.1},
        {"lr": 0.01, "amsgrad": True, "lr_1d": 0.005, "betas_1d": (0.8, 0.9), "weight_decay_1d": 0.0},
        {"lr": 0.01, "betas": (0.9, 0.95), "eps": 1e-6, "maximize": True},
    ),
    exemptions={
        "zero_grad_is_noop": "parameters that are not matrices are decayed by their own weight_decay_1d (0.1 by "
                             "default, as in the official code), which a zero weight_decay leaves on",
    },
))


# ## Adafactor
#
# The configurations are torch's own (`optim_db`), plus `foreach`. torch raises on zero-size parameters,
# which the harness has, so the reference is torch's class with those kept out of its step (nothing else
# changes). `state_tensors=0`: a matrix keeps a row and a column statistic, $n + m$ numbers, not a
# parameter-sized tensor (a vector keeps one, the size of the vector).
register(OptimizerInfo(
    name="Adafactor", cls=Adafactor, family="Adaptive", parent="Adam", year=2018, state_tensors=0,
    paper="Adafactor: Adaptive Learning Rates with Sublinear Memory Cost", url="https://arxiv.org/abs/1804.04235",
    # Ours performs torch's operations in torch's order: equal to the last bit in the tests.
    reference=Reference("tests.references.torch_adafactor.Adafactor", tolerance=1e-12),
    configs=(
        {},
        {"weight_decay": 0.1, "lr": 0.01},
        {"weight_decay": 0.1, "maximize": True},
        {"beta2_decay": -1.0},
        {"d": 1.5, "foreach": True},
    ),
    negative_args=("beta2_decay",),
))


# ## L-BFGS
#
# Checked against torch's class, adapted to the harness without changing its arithmetic (the harness's
# two groups merged into torch's one, non-contiguous gradients flattened). The configurations leave `lr`
# out, since the harness would give the second group its own (L-BFGS has one step length for all);
# torch's configurations with `lr` run in `tests/test_lbfgs.py`. Every call of `step` runs up to
# `max_iter` iterations on the harness's quadratic, with and without the line search, with a history
# short enough to be truncated.
LBFGS_TOY_CONFIG = {"max_iter": 1, "max_eval": 25, "line_search_fn": "strong_wolfe", "history_size": 10}
register(OptimizerInfo(
    name="LBFGS", cls=LBFGS, family="Quasi-Newton", parent=None, year=1989,
    # $2m + 2$ vectors the size of the model: the pairs, the direction and the last gradient.
    state_tensors=2 * 100 + 2,
    paper="On the Limited Memory BFGS Method for Large Scale Optimization (Liu & Nocedal)",
    url="https://doi.org/10.1007/BF01589116",
    reference=Reference("tests.references.torch_lbfgs.LBFGS", tolerance=1e-12),
    # A negative tolerance switches its test off, as in torch.
    negative_args=("tolerance_grad", "tolerance_change"),
    configs=(
        {},
        {"line_search_fn": "strong_wolfe"},
        {"tolerance_grad": 1e-6, "max_iter": 5, "history_size": 3},
        {"line_search_fn": "strong_wolfe", "max_iter": 7, "max_eval": 9, "history_size": 2},
    ),
    # One iteration per step on the toys and tasks, so a step is comparable with the others' (the line search
    # may still evaluate several times); `max_eval` is needed, its default for max_iter=1 is 1.
    toy_hparams={target: LBFGS_TOY_CONFIG for target in ("rosenbrock", "rastrigin", "beale", "quadratic", "saddle",
                                                         "digits-mlp", "digits-cnn", "charlm")},
    requires_closure=True,
    exemptions={
        "add_param_group": "all parameters are one vector with one step length and one curvature history: "
                           "a group with its own learning rate has no meaning, and a parameter added mid-run "
                           "would change the length of every stored pair",
        "master_weights": "the curvature pairs are differences of nearby iterates and of their gradients, which "
                          "half precision does not resolve; L-BFGS runs in float32 or float64, not through "
                          "half-precision masters",
        "frozen_then_unfrozen": "the inner products run over the one vector of all parameters, in which a frozen "
                                "parameter is a run of zeros (as in torch, so that the stored pairs keep their "
                                "length when it unfreezes); the others then train as without it up to the order "
                                "of additions in those sums (2e-15 after 5 steps), not bit for bit. That it stays "
                                "untouched and stateless, and trains once unfrozen, is tested in test_lbfgs.py",
        "no_grad_step_is_noop": "func_evals counts every evaluation of the closure, as torch's does (it is the "
                                "budget max_eval limits), also one that produced no gradient; the parameters and "
                                "every other entry are unchanged (tested in test_lbfgs.py)",
        "sparse_gradient": "the algorithm works on the dense vector of all gradients; a sparse gradient is "
                           "densified exactly, as torch.optim.LBFGS does",
    },
))


# ## Matrix preconditioners
#
# SOAP's configurations: the authors' defaults (the bases refreshed every 10 Adam steps, so nine refreshes
# in 100 steps), a refresh at every step with a separate decay for the statistics and `maximize`, and a
# `max_precond_dim` of 4 that leaves the larger dimensions of the matrix and the kernel unrotated.
register(OptimizerInfo(
    name="SOAP", cls=SOAP, family="Matrix", parent="Adam", year=2024,
    # Adam's two moments, plus for an n x m matrix the statistics and bases, 2(n^2 + m^2) numbers:
    # 6 parameter-sized tensors for a square matrix.
    state_tensors=6,
    paper="SOAP: Improving and Stabilizing Shampoo using Adam", url="https://arxiv.org/abs/2409.11321",
    # Every eigenvector and QR factor is computed from identical float64 matrices by the same LAPACK
    # calls; what differs is the order of a few additions (lerp_ against mul_/add_, the identity round
    # trip of the first moment through an unchanged basis), 1e-16 per step, amplified by the division by
    # sqrt(v) + eps and by the refreshes: measured 9.4e-14 at worst over 100 steps.
    reference=Reference("tests.references.soap.SOAP", tolerance=1e-10),
    configs=(
        {"lr": 0.01},
        {"lr": 0.01, "betas": (0.9, 0.99), "shampoo_beta": 0.9, "precondition_frequency": 1, "weight_decay": 0.0,
         "maximize": True},
        {"lr": 0.01, "weight_decay": 0.05, "max_precond_dim": 4, "eps": 1e-6},
    ),
    exemptions={
        "closure": "the first step only collects the statistics and builds the bases (the authors' design, so "
                   "that no gradient is rotated by a basis it shaped): one step leaves the parameters unchanged",
    },
))
# Shampoo's configurations: every step's roots with Adam grafting (the default); AdaGrad grafting with
# running sums (the paper's form) and blocks of 3, which cut the 5 x 4 matrix into four blocks and the
# kernel's 3 x 18 matrix into six; no grafting with averaged statistics, L2 decay, a root every 5 steps
# from step 10, and `maximize`.
register(OptimizerInfo(
    name="Shampoo", cls=Shampoo, family="Matrix", parent=None, year=2018,
    # The gradient average and the grafting accumulator, plus L, R and their inverse roots, 2(n^2 + m^2):
    # 6 parameter-sized tensors for a square matrix.
    state_tensors=6,
    paper="Shampoo: Preconditioned Stochastic Tensor Optimization", url="https://arxiv.org/abs/1802.09568",
    # The parameters agree to 1e-14. The inverse roots do not, on the null space of a rank-deficient
    # statistic (the kernel's 18 x 18 R has rank <= 3t): there the root is (rounding + eps)^(-1/4), and
    # eigh's rounding, 1e-16 * ||L|| with ||L|| up to 100, is 1e-14 against eps. With eps = 1e-6 that is a
    # relative 1e-8, 2.5e-9 after the fourth root (measured 4.7e-9); with the default 1e-12 it would be
    # 1e-3, on directions no gradient has visited, which is why the configurations use 1e-6.
    reference=Reference("tests.references.shampoo.Shampoo", tolerance=2e-8),
    configs=(
        {"lr": 0.01, "eps": 1e-6},
        {"lr": 0.01, "betas": (0.9, 1.0), "grafting_beta2": 1.0, "max_preconditioner_dim": 3, "weight_decay": 0.05,
         "eps": 1e-6},
        {"lr": 0.001, "betas": (0.0, 0.99), "grafting_beta2": None, "precondition_frequency": 5,
         "start_preconditioning_step": 10, "weight_decay": 0.01, "decoupled_weight_decay": False,
         "eps": 1e-6, "maximize": True},
    ),
))
# ## The rest of `torch.optim`
#
# Each is checked against its `torch.optim` twin on torch's own CPU configurations for it (`optim_db` in
# `torch.testing._internal.common_optimizers`), with a float learning rate where torch's list has a
# tensor one (torch then computes the step size in the tensor's `float32`; ours computes a tensor
# learning rate as the float, see [options](options.md)). Every one agrees to the bit, so the
# tolerance is $10^{-12}$.
TWIN_TOLERANCE = 1e-12
register(OptimizerInfo(
    name="Adadelta", cls=Adadelta, family="Adaptive", parent="Adagrad", year=2012, state_tensors=2,
    paper="ADADELTA: An Adaptive Learning Rate Method", url="https://arxiv.org/abs/1212.5701",
    reference=Reference("torch.optim.Adadelta", tolerance=TWIN_TOLERANCE),
    configs=({}, {"lr": 0.01}, {"weight_decay": 0.1}, {"maximize": True}, {"weight_decay": 0.1, "maximize": True},
             {"rho": 0.95, "weight_decay": 0.9}),
))
register(OptimizerInfo(
    name="Adamax", cls=Adamax, family="Adam", parent="Adam", year=2015, state_tensors=2,
    paper="Adam: A Method for Stochastic Optimization, Section 7.1", url="https://arxiv.org/abs/1412.6980",
    reference=Reference("torch.optim.Adamax", tolerance=TWIN_TOLERANCE),
    configs=({}, {"lr": 0.1}, {"weight_decay": 0.1}, {"maximize": True}, {"weight_decay": 0.1, "maximize": True}),
))
# torch's `t0=100` never starts averaging within 100 steps; the last configuration averages from step 20.
register(OptimizerInfo(
    name="ASGD", cls=ASGD, family="SGD", parent="SGD", year=1992, state_tensors=1,
    paper="Acceleration of Stochastic Approximation by Averaging (Polyak & Juditsky); Xu 2011",
    url="https://doi.org/10.1137/0330046",
    reference=Reference("torch.optim.ASGD", tolerance=TWIN_TOLERANCE),
    configs=({}, {"lambd": 0.1}, {"lr": 0.02}, {"t0": 100}, {"maximize": True}, {"weight_decay": 0.1},
             {"weight_decay": 0.1, "maximize": True}, {"lr": 0.05, "lambd": 0.01, "t0": 20}),
    exemptions={"zero_grad_is_noop": "lambd is a built-in L2 pull, separate from weight_decay and on by default: "
                                     "every step shrinks the weights by (1 - lambd * eta_t), gradient or not"},
    # torch checks none of the three, and steps with a negative one.
    negative_args=("lambd", "alpha", "t0"),
))
register(OptimizerInfo(
    name="Rprop", cls=Rprop, family="Adaptive", parent=None, year=1993, state_tensors=2,
    paper="A Direct Adaptive Method for Faster Backpropagation Learning: The RPROP Algorithm",
    url="https://doi.org/10.1109/ICNN.1993.298623",
    reference=Reference("torch.optim.Rprop", tolerance=TWIN_TOLERANCE),
    configs=({}, {"lr": 2e-4}, {"etas": (0.5, 1.5)}, {"step_sizes": (2e-6, 100)}, {"maximize": True}),
    # torch does not check the clip of the step sizes: `clamp_` takes a negative bound.
    negative_args=("step_sizes",),
))
register(OptimizerInfo(
    name="SparseAdam", cls=SparseAdam, family="Adam", parent="Adam", year=2017, state_tensors=2,
    paper="Adam (Kingma & Ba), updated lazily at the rows of a sparse gradient", url="https://arxiv.org/abs/1412.6980",
    reference=Reference("torch.optim.SparseAdam", tolerance=TWIN_TOLERANCE),
    configs=({}, {"lr": 0.01}, {"maximize": True}),
))
register(OptimizerInfo(
    name="Muon", cls=Muon, family="SGD", parent="SGD", year=2024, state_tensors=1,
    paper="Muon: An optimizer for hidden layers in neural networks (Jordan et al.); Liu et al. 2025",
    url="https://kellerjordan.github.io/posts/muon/",
    reference=Reference("torch.optim.Muon", ours_only=("ns_dtype",), tolerance=TWIN_TOLERANCE),
    configs=({}, {"lr": 0.01}, {"weight_decay": 0.2}, {"momentum": 0.8}, {"ns_steps": 6},
             {"ns_coefficients": (3.4, -4.7, 2.0)},
             {"lr": 0.02, "nesterov": False, "adjust_lr_fn": "match_rms_adamw"}),
    parameters=lambda seed, dtype: _matrix_parameters(seed, dtype),
    # The polynomial's coefficients have both signs ($b < 0$ in every published set); torch checks neither
    # `eps` (a negative one never clamps) nor a negative `ns_steps` (no iteration).
    negative_args=("ns_coefficients", "eps", "ns_steps"),
))


def _matrix_parameters(seed: int, dtype: Any) -> Any:
    r"""Muon's verification parameters (imported here, since `verification` imports this module)."""
    from .verification import matrix_parameters

    return matrix_parameters(seed, dtype)
# GaLore's configurations: rank 2 with a new projection every 5 steps (20 SVDs in 100 steps; the 5 x 4
# matrix is projected on its columns, the transposed 3 x 6 one on its rows); rank 3 every 7 steps with
# the full scale, decay, other betas, a smaller eps and `maximize`.
register(OptimizerInfo(
    name="GaLore", cls=GaLore, family="Matrix", parent="Adam", year=2024,
    # A matrix keeps its moments of the projected gradient and the projection, 2nr + rm numbers: 0.375
    # of its size for 1024 x 1024 and rank 128, so no parameter-sized tensor. Vectors keep Adam's two.
    state_tensors=0,
    paper="GaLore: Memory-Efficient LLM Training by Gradient Low-Rank Projection",
    url="https://arxiv.org/abs/2403.03507",
    # The SVDs are of identical float64 matrices by the same LAPACK call, so the projections agree to the
    # last bit; the decay differs in form (p - lr*wd*p against p*(1 - lr*wd)), 1e-16 per step.
    reference=Reference("tests.references.galore.GaLore", tolerance=1e-10),
    configs=(
        {"lr": 0.01, "rank": 2, "update_proj_gap": 5},
        {"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-8, "rank": 3, "update_proj_gap": 7, "scale": 1.0,
         "weight_decay": 0.05, "maximize": True},
    ),
))
# Kron's configurations: the package's defaults (the preconditioner updated at every one of the 100 steps,
# inside the flat start); a schedule annealed within the run (flat for 10 steps, then p = 0.2 from step 43:
# updates every 5 steps), diagonal factors for the dimensions above 4 (the matrix's 5 rows, the kernel's 18),
# a larger initial scale, decay, a short momentum and `maximize`.
register(OptimizerInfo(
    name="Kron", cls=Kron, family="Matrix", parent=None, year=2018,
    # The momentum, plus for an n x m matrix the factors, n^2 + m^2 numbers: 3 parameter-sized tensors for
    # a square matrix.
    state_tensors=3,
    paper="Preconditioner on Matrix Lie Group for SGD (PSGD Kron)", url="https://arxiv.org/abs/1809.10232",
    # The same float64 arithmetic, written otherwise: einsum against products along each dimension, lerp_
    # against mul_/add_, the triangular solve from the other side, the decay before the step against inside
    # it. Each rounds by 1e-16; the fit divides by
    # norms of A A^T + B B^T and the clip by an RMS; over 100 updates the difference grows to
    # 1.2e-14 at worst (3 seeds x 2 configurations): far inside 1e-10.
    reference=Reference("tests.references.kron.Kron", tolerance=1e-10),
    configs=(
        {"lr": 0.01},
        {"lr": 0.01, "momentum": 0.5, "weight_decay": 0.05, "precond_init_scale": 2.0, "max_size_triangular": 4,
         "update_prob_flat_start": 10, "update_prob_decay": 0.05, "update_prob_min": 0.2, "maximize": True},
    ),
))
