r"""
# The composable optimizer: hyper-parameters, stats and steppers

Read any optimizer of this library closely and the same few moves come back. Keep a moving average
of the gradient. Keep a moving average of its square. Count the steps. Shrink the weights. Step along
some direction. An optimizer is a choice of these moves and an order to make them in, so this class
takes exactly that: a list of *pieces*, run in order on every parameter that has a gradient.

A piece is one of two kinds:

* a **stat** ([stats](stats.md)) creates some per-parameter state the first time and updates it
  from the gradient at every step: `grad_avg`, `sqr_avg`, `step` ...
* a **stepper** ([steppers](steppers.md)) is a plain function of the parameter, the gradient, the
  hyper-parameters and the state. It changes the parameter in place (the SGD step, decoupled weight
  decay), or returns a new gradient that the pieces after it see instead (L2 regularisation).

So Adam with L2 regularisation is five pieces, run in this order:

$$\begin{aligned}
\texttt{l2\_reg}: &\quad g \leftarrow g + \lambda\theta \\
\texttt{AverageGrad}: &\quad m \leftarrow \beta_1 m + (1-\beta_1)\, g \\
\texttt{AverageSqrGrad}: &\quad v \leftarrow \beta_2 v + (1-\beta_2)\, g^2 \\
\texttt{StepCount}: &\quad t \leftarrow t + 1 \\
\texttt{adam\_step}: &\quad \theta \leftarrow \theta - \eta\,\frac{\hat m}{\sqrt{\hat v}+\epsilon}
\end{aligned}$$

and AdamW replaces the first piece with `decoupled_weight_decay`, $\theta \leftarrow (1-\eta\lambda)\theta$.
The [assembled](assembled.md) page builds the whole family this way.

## Why one ordered list

The course ran all stats first and all steppers after them. That order is fine for most optimizers
but silently breaks L2 regularisation: its stepper adds $\lambda\theta$ to the gradient *after* the
averages have already read it, so momentum and Adam never see the decay term. Here stats and
steppers share one list and run exactly in the order given; a stepper that returns a gradient hands
it to everything after it. Order is part of the algorithm: the
[weight-decay guide](../../guides/weight-decay.md) works out what each order computes, and the tests
check it.

## Hyper-parameters

Every piece declares its own defaults (`AverageGrad` brings `momentum=0.9`, `adam_step` brings
`eps=1e-8`). The optimizer collects them, the first piece that names a hyper-parameter setting its
default; the keyword arguments given to the constructor override them. The result is the `defaults`
of an ordinary `torch.optim.Optimizer`, so each parameter group holds its own copy: any
hyper-parameter can be changed, or [scheduled](param_scheduler.md), for one group without touching
the rest. A parameter's own `opt_args` (see [options](../options.md)) override its group's values, as
for every optimizer of the library.

The names are shared by all pieces, which is the point of the view: `momentum` is the $\beta$ of
the average gradient, whether the stepper after it is SGD's or Adam's; `sqr_momentum` is the $\beta$
of the average squared gradient (RMSprop's $\alpha$, Adam's $\beta_2$).

Because the class extends the library's [`GenericAdaptiveOptimizer`](../base.md), everything torch
offers keeps working: `state_dict` round trips, `add_param_group`, closures, hooks, and the
schedulers of `torch.optim.lr_scheduler`.
"""

import inspect
from collections.abc import Callable, Iterable
from typing import Any

import torch

from ..core.base import GenericAdaptiveOptimizer, ParamsT
from ..core.options import OPTION_ATTRIBUTE, learning_rate, param_option
from ..core.validation import check_in_unit_interval, check_non_negative
from .stats import Stat

Stepper = Callable[..., torch.Tensor | None]
Piece = Stat | Stepper

# Hyper-parameters whose range is known, checked when the optimizer is built.
CHECKS: dict[str, Callable[[str, Any], None]] = {
    "eps": check_non_negative,
    "weight_decay": check_non_negative,
    "momentum": check_in_unit_interval,
    "sqr_momentum": check_in_unit_interval,
}

# Keys of a parameter group that are not hyper-parameters.
GROUP_KEYS = ("params", "param_names")


def piece_defaults(piece: Piece) -> dict[str, Any]:
    r"""The defaults a piece declares: a stat's class attribute, a stepper's function attribute."""
    return dict(getattr(piece, "defaults", {}))


def piece_arguments(piece: Piece) -> set[str]:
    r"""
    The hyper-parameter names a piece reads: the named arguments of a stepper, or of a stat's
    `update`, other than the parameter, the gradient and the state themselves.
    """
    function = piece.update if isinstance(piece, Stat) else piece
    parameters = inspect.signature(function).parameters.values()
    named = {p.name for p in parameters if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}
    return named - {"param", "grad", "state"}


class ComposableOptimizer(GenericAdaptiveOptimizer):
    r"""
    ## Building one

    * `params` are the parameters or parameter groups, as for any `torch.optim.Optimizer`.
    * `pieces` is the ordered list of stats and steppers.
    * `lr` is the learning rate $\eta$ every stepper receives (after any `lr_scale` of a parameter).
    * Any other keyword sets a hyper-parameter's default for every group. A name that no piece reads
      is a `ValueError`: a misspelt `momentun=0.9` would otherwise be ignored without a word.
    """

    # `state["step"]` is torch's 0-d tensor ([step counts](core/scalars.md)).
    tensor_step_count = True

    def __init__(self, params: ParamsT, pieces: Iterable[Piece], lr: float = 1e-3, **hypers: Any) -> None:
        self.pieces = tuple(pieces)
        if not self.pieces:
            raise ValueError("Invalid pieces: [] (an optimizer needs at least one stepper)")

        # The first piece that declares a default sets it; the constructor's keywords win over all.
        defaults: dict[str, Any] = {"lr": lr}
        for piece in self.pieces:
            for name, value in piece_defaults(piece).items():
                defaults.setdefault(name, value)

        known = set(defaults) | {"maximize"}
        for piece in self.pieces:
            known |= piece_arguments(piece)
        for name in hypers:
            if name not in known:
                raise ValueError(f"Invalid hyper-parameter: {name}={hypers[name]!r} (no piece reads {name!r}; "
                                 f"known: {', '.join(sorted(known))})")
        defaults.update(hypers)

        for name, check in CHECKS.items():
            if name in defaults:
                check(name, defaults[name])
        super().__init__(params, defaults)

    def __repr__(self) -> str:
        r"""Torch's listing of the groups, with the pieces, in order, on the first line."""
        names = ", ".join(repr(piece) if isinstance(piece, Stat) else getattr(piece, "__name__", repr(piece))
                          for piece in self.pieces)
        return super().__repr__().replace(" (\n", f" (\npieces: {names}\n", 1)

    def init_state(self, state: dict[str, Any], group: dict[str, Any], param: torch.Tensor) -> None:
        r"""
        ### The state of a new parameter

        Each stat contributes its entries; steppers keep no state of their own.
        """
        for piece in self.pieces:
            if isinstance(piece, Stat):
                state.update(piece.init_state(param))

    def step_param(
        self, state: dict[str, Any], group: dict[str, Any], grad: torch.Tensor, param: torch.Tensor
    ) -> None:
        r"""
        ### One step of one parameter: the pieces in order
        """
        hypers = hyper_parameters(group, param)
        for piece in self.pieces:
            if isinstance(piece, Stat):
                # A stat reads the gradient as it is at this point of the list and updates the state.
                piece.update(state, grad, **hypers)
            else:
                # A stepper sees the hyper-parameters and the state as keyword arguments, so its
                # signature lists exactly what it reads. A name present in both is a `TypeError`,
                # never a silent choice between the two.
                new_grad = piece(param, grad, **hypers, **state)
                # A stepper that returns a tensor replaces the gradient for the pieces after it.
                if new_grad is not None:
                    grad = new_grad


def hyper_parameters(group: dict[str, Any], param: torch.Tensor) -> dict[str, Any]:
    r"""
    ### The hyper-parameters in force for one parameter

    The group's values, with the parameter's own `opt_args` taking precedence, and the learning rate
    multiplied by the parameter's `lr_scale`. Read at every step, so a scheduler's change to the group
    takes effect at the next step.
    """
    hypers = {name: value for name, value in group.items() if name not in GROUP_KEYS}
    if getattr(param, OPTION_ATTRIBUTE, None):
        hypers = {name: param_option(group, param, name) for name in hypers}
    hypers["lr"] = learning_rate(group, param)
    return hypers
