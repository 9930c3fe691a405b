r"""
# NeroPlus: Nero with momentum, Adam-like steps and softer constraints

[Nero](nero.md) fixes every neuron's mean and norm and takes steps normalised per neuron. ALF's
[NeroPlus](https://github.com/HorizonRobotics/alf/blob/pytorch/alf/optimizers/nero_plus.py) keeps the
projection and makes the rest configurable:

$$\begin{aligned}
g_t &\leftarrow g_t + \textcolor{orange}{\lambda_2\, w_{t-1}} \\
\textcolor{orange}{m_t} &\textcolor{orange}{= \beta_1 m_{t-1} + (1-\beta_1)\, g_t}
  \qquad (m_t = g_t \text{ when } \beta_1 = 0) \\
v_t &= \beta_2 v_{t-1} + (1-\beta_2)\, s(g_t) \qquad
  s(g) = \lVert g_i\rVert^2 \text{ per neuron, or } \textcolor{orange}{g^2 \text{ element-wise}} \\
w &\leftarrow \textcolor{orange}{(1 - \eta\lambda)}\, w \\
w &\leftarrow w - \eta\,\frac{\sqrt{1-\beta_2^t}}{1-\beta_1^t}\cdot\frac{m_t}{\sqrt{v_t} + \hat\epsilon} \\
w_i &\leftarrow \text{project}(w_i)
\end{aligned}$$

* **Momentum** ($\beta_1$, default $0.9$), which Nero does not have.
* **An Adam-like second moment.** With `normalizing_grad_by_norm=False` (the default; ALF found it
  works better) $v$ is element-wise, as in [Adam](adam.md); `True` is Nero's per-neuron $v$. The
  bias corrections are folded into the step size with $\hat\epsilon$ added to the uncorrected
  $\sqrt{v_t}$, Adam's "folded" form (see [Adam](adam.md)): `eps` here is $\hat\epsilon$.
* **Softer constraints**, per parameter: `zero_mean`, and a norm that is either fixed at `max_norm`
  (`fixed_norm=True`) or only bounded by it (`False`), or free (`max_norm=inf`).
* **Weight decay** ($\lambda$, decoupled, as [AdamW](adamw.md)) and **L2 regularisation**
  ($\lambda_2$, added to the gradient). Decay is pointless for a neuron whose norm is fixed (the
  projection undoes it); it matters for bounded and free ones. (The first ALF version shrank by
  $1 - \eta$ whenever $\lambda > 0$, forgetting the factor $\lambda$; the current one, followed here,
  multiplies it in.)

Nero has no $\sigma$ scale factor here: the step size is Adam's.

```algorithm
g_t \leftarrow g_t + \lambda_2\, w  @ grad = grad.add(param, alpha=l2)
m_t = \beta_1 m_{t-1} + (1 - \beta_1)\, g_t  @ exp_avg = state["exp_avg"].lerp_(grad, 1 - beta1)
v_t = \beta_2 v_{t-1} + (1 - \beta_2)\, g_t^2 \ \text{(or the neuron's } \lVert g\rVert^2\text{)}
    @ exp_avg_sq = state["exp_avg_sq"].lerp_(square, 1 - beta2)
w \leftarrow (1 - \eta\lambda)\, w  @ self.weight_decay(param, grad, group)
w \leftarrow w - \eta\, \hat m_t / (\sqrt{\hat v_t} + \epsilon)
    @ param.addcdiv_(exp_avg, denominator, value=-step_size)
w_i \leftarrow \text{project}(w_i)  @ project(param, *self.constraint(group, param))
```

## Notation

| symbol | in the code | meaning |
|---|---|---|
| $w$ | `param` | the weights |
| $g_t$ | `grad` | the gradient |
| $m_t$ | `exp_avg` | the first moment |
| $v_t$ | `exp_avg_sq` | the second moment, per coordinate or per neuron |
| $\beta_1, \beta_2$ | `beta1`, `beta2` | the decay rates |
| $\lambda$ | `weight_decay` | the decoupled weight decay |
| $\lambda_2$ | `l2` | the L2 regularisation |
| $\eta$ | `lr` | the learning rate |
| $\epsilon$ | `eps` | keeps the denominator away from zero |

## Per-parameter options

Every option above can be set on a single parameter through the `opt_args` dictionary that the whole
library reads ([options](options.md)): `lr`, `lr_scale`, `weight_decay`, `l2_regularization`,
`max_norm`, `fixed_norm`, `zero_mean`. The attribute is called `opt_args` as in ALF, its keys are
ALF's, and as there a key set to `None` falls back to the group. So the ALF advice carries over
unchanged: leave the output layer unconstrained with
`head.weight.opt_args = dict(fixed_norm=False, max_norm=math.inf, zero_mean=False)`.

Vectors and scalars (biases, gains) are unconstrained by default whatever the group says
(`zero_mean=False`, `fixed_norm=False`, `max_norm=inf`); their own `opt_args` can still constrain
them, and then the whole vector is one neuron. ALF applies that default to vectors only: a *scalar*
parameter there gets the group's constraints, so with the defaults it is pinned to $\pm 1$. Here
scalars are treated like vectors, and so is a matrix whose neurons have a single weight each (a linear
layer with one input), which the group's zero mean would set to zero and ALF then refuses as not
initialised.

## Initialisation

As in ALF, `NeroPlus.initialize(model)` projects the model first, and the constructor (and
`add_param_group`) refuses a constrained parameter that is not within $0.01$ of zero mean and $1\%$ of
its norm, with a message that says what to call. `NeroPlus.initialize_missing(model)` projects only the
parameters that are not, for a model resumed from a checkpoint (see [Nero](nero.md)). Complex
parameters are refused, as in Nero.

## Why NeroPlus extends Nero, and not the reverse

Nero is the paper's rule: few lines, no options. NeroPlus is a superset, so it inherits what it shares
with Nero (the per-neuron views, the projection, `initialize`, the check that refuses an uninitialised
model) and replaces the update, the state, the constraint lookup and the neuron norm of vectors (ALF
takes the norm of the whole vector, Nero the absolute value of each element). The other direction
would make Nero's page show NeroPlus's options, and make Nero a child that *removes* what its parent
does. One deliberate difference from ALF: with `eps=0` a neuron whose gradient is exactly zero would
divide 0 by 0; here, as in Nero, that gives a zero step instead of NaN.

## On the toy surfaces NeroPlus is Adam

The toy surfaces optimise one vector of two coordinates. A vector is not a layer of neurons, so
NeroPlus leaves it unconstrained (no projection, no fixed norm) and keeps a second moment per
coordinate: what remains is Adam's step with $\epsilon = 10^{-7}$, decoupled decay of zero, and no
projection. Its trajectories on the [gallery](../gallery.md) therefore coincide with Adam's at the same
learning rate (they differ only where $\sqrt{\hat v_t}$ is near $\epsilon$). The constraints show on
real layers: the digits and character tasks on the [results](../results.md) page.
"""

import math
from typing import Any

import torch

from .core.base import GenericAdaptiveOptimizer, ParamsT
from .core.options import learning_rate, param_option
from .core.scalars import advance, new_step_count
from .core.validation import check_betas, check_non_negative
from .core.weight_decay import WeightDecay
from .nero import Nero, has_neurons_with_several_weights, project, row_norms


class NeroPlus(Nero):
    r"""
    ## Hyper-parameters

    Defaults are ALF's.

    * `lr` is $\eta$ (default $0.01$).
    * `betas` are $(\beta_1, \beta_2)$ (default $(0.9, 0.999)$); $\beta_1 = 0$ turns momentum off,
      $\beta_2$ must be positive.
    * `eps` is $\hat\epsilon$ (default $10^{-7}$).
    * `normalizing_grad_by_norm` (default `False`): Nero's per-neuron second moment instead of Adam's.
    * `max_norm` (default 1), `fixed_norm` (default `True`), `zero_mean` (default `True`): the
      constraint of matrices and convolutions.
    * `weight_decay` $\lambda$ (decoupled) and `l2_regularization` $\lambda_2$ (both default 0).
    """

    constraint_defaults: dict[str, Any] = {"max_norm": 1.0, "fixed_norm": True, "zero_mean": True}

    def __init__(
        self,
        params: ParamsT,
        lr: float = 0.01,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-7,
        normalizing_grad_by_norm: bool = False,
        max_norm: float = 1.0,
        weight_decay: float = 0.0,
        l2_regularization: float = 0.0,
        fixed_norm: bool = True,
        zero_mean: bool = True,
        *,
        maximize: bool = False, foreach: bool | None = None, fused: bool | None = None,
    ) -> None:
        check_betas(betas)
        if not betas[1] > 0:
            raise ValueError(f"Invalid beta parameter at index 1: {betas[1]} (must be in (0, 1))")
        check_non_negative("eps", eps)
        check_non_negative("l2_regularization", l2_regularization)
        if not max_norm > 0:
            raise ValueError(f"Invalid max_norm: {max_norm} (must be > 0)")
        self.weight_decay = WeightDecay(weight_decay, weight_decouple=True)
        defaults = dict(
            lr=lr,
            betas=tuple(betas),
            eps=eps,
            normalizing_grad_by_norm=normalizing_grad_by_norm,
            max_norm=max_norm,
            weight_decay=weight_decay,
            l2_regularization=l2_regularization,
            fixed_norm=fixed_norm,
            zero_mean=zero_mean,
            maximize=maximize, foreach=foreach, fused=fused,
        )
        # Nero's constructor takes Nero's hyper-parameters; the base class takes any defaults.
        GenericAdaptiveOptimizer.__init__(self, params, defaults)

    @classmethod
    def constraint(cls, group: dict[str, Any], param: torch.Tensor) -> tuple[float, bool, bool]:
        r"""
        `(max_norm, fixed_norm, zero_mean)` for one parameter: the parameter's `opt_args`, else the
        group's values for a matrix or convolution (with more than one weight per neuron), else no
        constraint (a vector, a scalar, or a matrix of one-weight neurons).
        """
        if has_neurons_with_several_weights(param):
            return (param_option(group, param, "max_norm"), param_option(group, param, "fixed_norm"),
                    param_option(group, param, "zero_mean"))
        return (param_option({}, param, "max_norm", math.inf), param_option({}, param, "fixed_norm", False),
                param_option({}, param, "zero_mean", False))

    @staticmethod
    def neuron_norm(x: torch.Tensor) -> torch.Tensor:
        r"""The row norm for a matrix or convolution; $\textcolor{orange}{\lVert x\rVert}$ of the whole
        vector (a 0-d tensor) for a vector or scalar."""
        return row_norms(x)

    def init_state(self, state: dict[str, Any], group: dict[str, Any], param: torch.Tensor) -> None:
        r"""
        The step count, $v_0 = 0$ (per neuron or per element), and $m_0 = 0$ when $\beta_1 > 0$.
        """
        state["step"] = new_step_count(group, param)
        if group["normalizing_grad_by_norm"]:
            state["exp_avg_sq"] = torch.zeros_like(self.neuron_norm(param.detach()))
        else:
            state["exp_avg_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)
        if group["betas"][0] > 0:
            state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)

    def step_param(
        self, state: dict[str, Any], group: dict[str, Any], grad: torch.Tensor, param: torch.Tensor
    ) -> None:
        r"""
        ### One NeroPlus step
        """
        beta1, beta2 = group["betas"]
        step = advance(state)
        lr = learning_rate(group, param)

        l2 = param_option(group, param, "l2_regularization")
        if l2 != 0:
            # $$\textcolor{orange}{g_t \leftarrow g_t + \lambda_2\, w_{t-1}}$$
            grad = grad.add(param, alpha=l2)

        bias_correction1 = 1.0
        if beta1 > 0:
            # $$\textcolor{orange}{m_t = \beta_1 m_{t-1} + (1-\beta_1)\, g_t}$$
            bias_correction1 = 1 - beta1**step
            exp_avg = state["exp_avg"].lerp_(grad, 1 - beta1)
        else:
            exp_avg = grad

        if group["normalizing_grad_by_norm"]:
            # $$s(g) = \lVert g_i\rVert^2 \text{ per neuron}$$
            square = self.neuron_norm(grad).square()
        else:
            # $$\textcolor{orange}{s(g) = g^2}$$
            square = grad.square()
        # $$v_t = \beta_2 v_{t-1} + (1-\beta_2)\, s(g_t)$$
        exp_avg_sq = state["exp_avg_sq"].lerp_(square, 1 - beta2)
        denominator = exp_avg_sq.sqrt().add_(group["eps"])

        # $$\textcolor{orange}{w \leftarrow (1 - \eta\lambda)\, w}$$
        self.weight_decay(param, grad, group)

        # $$w \leftarrow w - \eta\,\frac{\sqrt{1-\beta_2^t}}{1-\beta_1^t}\cdot\frac{m_t}{\sqrt{v_t} + \hat\epsilon}$$
        step_size = lr * (1 - beta2**step) ** 0.5 / bias_correction1
        if group["eps"] == 0:
            # Only possible without $\hat\epsilon$: a zero gradient row gives 0/0; step by 0 instead.
            ratio = exp_avg / denominator
            param.add_(ratio.nan_to_num_(nan=0.0, posinf=math.inf, neginf=-math.inf), alpha=-step_size)
        else:
            param.addcdiv_(exp_avg, denominator, value=-step_size)

        # Back onto the constraint set of this parameter.
        project(param, *self.constraint(group, param))
