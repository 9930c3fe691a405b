r"""
# Adagrad: a learning rate per coordinate

[Duchi, Hazan & Singer, 2011](https://jmlr.org/papers/v12/duchi11a.html) gave every coordinate its own
step size. Each coordinate remembers the sum of its squared gradients,
$$s_t = s_{t-1} + g_t^2,$$
and the step divides by its square root:
$$\theta_t = \theta_{t-1} - \eta_t \frac{g_t}{\sqrt{s_t} + \epsilon}.$$

A coordinate that has seen large gradients takes small steps; a rarely-active one (a rare word's
embedding) keeps large steps. That made Adagrad the optimizer of choice for sparse features.
Its weakness is the same sum: it only grows, so every step size decays like $1/\sqrt{t}$ for good,
which stops training too early on long non-convex runs. RMSprop and Adam replace the sum with a
moving average to forget old gradients.

As in `torch.optim.Adagrad`, the learning rate may also decay with the step count,
$\eta_t = \eta / (1 + (t-1)\,\delta)$, and the sum may start from a positive value $s_0$.
"""

from typing import Any

import torch

from .base import GenericAdaptiveOptimizer, ParamsT
from .options import learning_rate
from .validation import check_non_negative
from .weight_decay import WeightDecay


class Adagrad(GenericAdaptiveOptimizer):
    r"""
    ## Hyper-parameters

    * `lr` is $\eta$ (default $10^{-2}$).
    * `lr_decay` is $\delta$ in $\eta_t = \eta / (1 + (t-1)\delta)$.
    * `weight_decay` is $\lambda$, L2 by default.
    * `initial_accumulator_value` is $s_0$; a positive value tames the very first steps, which
      otherwise have size $\eta$ whatever the gradient's scale.
    * `eps` is $\epsilon$, added to $\sqrt{s_t}$ (default $10^{-10}$).
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-2,
        lr_decay: float = 0.0,
        weight_decay: float | WeightDecay = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
        *,
        maximize: bool = False,
    ) -> None:
        check_non_negative("lr_decay", lr_decay)
        check_non_negative("initial_accumulator_value", initial_accumulator_value)
        check_non_negative("eps", eps)
        self.weight_decay = WeightDecay.coerce(weight_decay, weight_decouple=False)
        defaults = dict(
            lr=lr,
            lr_decay=lr_decay,
            initial_accumulator_value=initial_accumulator_value,
            eps=eps,
            maximize=maximize,
            **self.weight_decay.defaults(),
        )
        super().__init__(params, defaults)

    def init_state(self, state: dict[str, Any], group: dict[str, Any], param: torch.Tensor) -> None:
        state["step"] = 0
        # $s_0$, one accumulator per coordinate.
        state["sum"] = torch.full_like(
            param, group["initial_accumulator_value"], memory_format=torch.preserve_format
        )

    def step_param(
        self, state: dict[str, Any], group: dict[str, Any], grad: torch.Tensor, param: torch.Tensor
    ) -> None:
        state["step"] += 1
        grad = self.weight_decay(param, grad, group)
        # $$\eta_t = \frac{\eta}{1 + (t-1)\,\delta}$$
        step_size = learning_rate(group, param) / (1 + (state["step"] - 1) * group["lr_decay"])
        # $$s_t = s_{t-1} + g_t^2$$
        state["sum"].addcmul_(grad, grad, value=1)
        # $$\theta_t = \theta_{t-1} - \eta_t \frac{g_t}{\sqrt{s_t} + \epsilon}$$
        denominator = state["sum"].sqrt().add_(group["eps"])
        param.addcdiv_(grad, denominator, value=-step_size)
