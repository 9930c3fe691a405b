r"""
# Adam

[Kingma & Ba, 2015](https://arxiv.org/abs/1412.6980) combined the two ideas before it:
[momentum](sgd.md), a moving average of the gradient, and [RMSprop](rmsprop.md), a moving average of
its square. Adam keeps both,

$$m_t = \beta_1 m_{t-1} + (1 - \beta_1)\, g_t \qquad v_t = \beta_2 v_{t-1} + (1 - \beta_2)\, g_t^2,$$

and steps along the first, divided coordinate-wise by the root of the second:

$$\theta_t = \theta_{t-1} - \eta\,\frac{\hat m_t}{\sqrt{\hat v_t} + \epsilon}.$$

The ratio $\hat m_t / \sqrt{\hat v_t}$ has no units: scaling the loss by 100 leaves the step unchanged,
and each coordinate moves by roughly $\eta$ at most. That is why one learning rate works across layers
whose gradients differ by orders of magnitude.

## Bias correction

Both averages start at zero, so early on they are too small: after one step $m_1 = (1-\beta_1)\,g_1$,
a tenth of the gradient for $\beta_1 = 0.9$. Unrolling the average,
$m_t = (1-\beta_1)\sum_{i=1}^{t} \beta_1^{t-i} g_i$, whose weights sum to $1 - \beta_1^t$. Dividing by
that sum makes the estimate unbiased when the gradients are stationary:

$$\hat m_t = \frac{m_t}{1-\beta_1^t} \qquad \hat v_t = \frac{v_t}{1-\beta_2^t}.$$

## The same step with fewer operations

The corrections are scalars, so they can be folded into the step size. Writing
$c_1 = 1-\beta_1^t$ and $c_2 = 1-\beta_2^t$,

$$\eta\,\frac{m_t / c_1}{\sqrt{v_t / c_2} + \epsilon}
 = \eta\,\frac{\sqrt{c_2}}{c_1}\cdot\frac{m_t}{\sqrt{v_t} + \hat\epsilon}
 \qquad\text{with}\quad \hat\epsilon = \epsilon\sqrt{c_2}.$$

The two forms are equal exactly, not approximately, provided $\epsilon$ is rescaled to
$\hat\epsilon$; the folded form saves a full pass over $v_t$. Both are here (`fold_bias_correction`),
and the tests check both against `torch.optim.Adam`. The paper's Algorithm 1 uses the first; its
Section 2 suggests the second but keeps $\epsilon$ unscaled, which is *not* the same optimizer.

## Weight decay

`Adam`'s `weight_decay` is L2 regularisation, as in torch: $\lambda\theta$ is added to the gradient and
then divided by $\sqrt{\hat v_t}$ like the rest of it. [AdamW](adamw.md) decouples it.
[AMSGrad](amsgrad.md), [AdamW](adamw.md) and the rest of the family extend this class and override
one of its three steps: `update_moments`, `second_moment`, `adam_update`.
"""

import inspect
import math
from typing import Any

import torch

from .base import BASE_DEFAULTS, GenericAdaptiveOptimizer, ParamsT
from .options import learning_rate
from .validation import check_betas, check_non_negative
from .weight_decay import WeightDecay


def constructor_arguments(cls: type) -> set[str]:
    r"""The names any constructor in `cls`'s family tree declares: the hyper-parameters it may hold."""
    names: set[str] = set()
    for klass in cls.__mro__:
        if "__init__" in vars(klass) and klass is not object:
            parameters = inspect.signature(vars(klass)["__init__"]).parameters.values()
            names |= {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    return names - {"self", "params", "defaults"}


class Adam(GenericAdaptiveOptimizer):
    r"""
    ## Hyper-parameters

    * `lr` is $\eta$ (default $10^{-3}$).
    * `betas` are $(\beta_1, \beta_2)$ (default $(0.9, 0.999)$): memories of about 10 and 1000 steps.
    * `eps` is $\epsilon$ (default $10^{-8}$), added to $\sqrt{\hat v_t}$; it bounds the step of a
      coordinate whose gradient has been zero.
    * `weight_decay` is $\lambda$; L2 unless `decoupled_weight_decay=True` (which is AdamW).
    * `fold_bias_correction` uses the folded form derived above.
    * `amsgrad` is accepted for compatibility with `torch.optim.Adam`, but the running maximum lives in
      its own class: use [`AMSGrad`](amsgrad.md).
    """

    supports_amsgrad = False
    # Group options a child computes from its arguments rather than takes as one (LAMB's decay mode).
    derived_options: tuple[str, ...] = ()

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float | WeightDecay = 0.0,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        decoupled_weight_decay: bool = False,
        fold_bias_correction: bool = False,
        **extra_defaults: Any,
    ) -> None:
        check_betas(betas)
        check_non_negative("eps", eps)
        # Children pass their own hyper-parameters up through `extra_defaults`; anything else is a typo
        # (`momentum=0.9` given to Adam) and must not be stored silently.
        known = constructor_arguments(type(self)) | set(self.derived_options) | set(BASE_DEFAULTS)
        unknown = sorted(set(extra_defaults) - known)
        if unknown:
            raise TypeError(f"{type(self).__name__}() got unexpected keyword arguments: {', '.join(unknown)}")
        if amsgrad and not self.supports_amsgrad:
            raise ValueError(
                f"Invalid amsgrad: True for {type(self).__name__}; the running maximum is in "
                "annotated_opt.AMSGrad (with decoupled_weight_decay=True for AdamW with amsgrad)"
            )
        self.weight_decay = WeightDecay.coerce(weight_decay, weight_decouple=decoupled_weight_decay)
        defaults = dict(
            lr=lr,
            betas=tuple(betas),
            eps=eps,
            amsgrad=amsgrad,
            maximize=maximize,
            fold_bias_correction=fold_bias_correction,
            **self.weight_decay.defaults(),
            **extra_defaults,
        )
        super().__init__(params, defaults)

    def init_state(self, state: dict[str, Any], group: dict[str, Any], param: torch.Tensor) -> None:
        r"""The step count $t$ and the two moments $m_0 = v_0 = 0$."""
        state["step"] = 0
        state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
        state["exp_avg_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)

    def step_param(
        self, state: dict[str, Any], group: dict[str, Any], grad: torch.Tensor, param: torch.Tensor
    ) -> None:
        r"""
        ### One Adam step

        Weight decay first (it may change the gradient), then the moments, then the update.
        """
        grad = self.weight_decay(param, grad, group)
        state["step"] += 1
        exp_avg = self.update_moments(state, group, grad)
        self.adam_update(state, group, param, exp_avg, self.second_moment(state, group))

    def update_moments(self, state: dict[str, Any], group: dict[str, Any], grad: torch.Tensor) -> torch.Tensor:
        r"""
        ### The moving averages

        Returns $m_t$; $v_t$ stays in the state for `second_moment`.
        """
        beta1, beta2 = group["betas"]
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        # $$m_t = \beta_1 m_{t-1} + (1 - \beta_1)\, g_t$$
        # `lerp_` computes $m + (1-\beta_1)(g - m)$, the same average in one operation.
        exp_avg.lerp_(grad, 1 - beta1)
        # $$v_t = \beta_2 v_{t-1} + (1 - \beta_2)\, g_t^2$$
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        return exp_avg

    def second_moment(self, state: dict[str, Any], group: dict[str, Any]) -> torch.Tensor:
        r"""
        ### The second moment used in the denominator

        For Adam simply $v_t$; [AMSGrad](amsgrad.md) replaces it with a running maximum.
        """
        return state["exp_avg_sq"]

    def adam_update(
        self,
        state: dict[str, Any],
        group: dict[str, Any],
        param: torch.Tensor,
        exp_avg: torch.Tensor,
        exp_avg_sq: torch.Tensor,
    ) -> None:
        r"""
        ### The bias-corrected update
        """
        beta1, beta2 = group["betas"]
        step = state["step"]
        lr = learning_rate(group, param)
        # $c_1 = 1 - \beta_1^t$ and $\sqrt{c_2} = \sqrt{1 - \beta_2^t}$
        bias_correction1 = 1 - beta1**step
        bias_correction2_sqrt = math.sqrt(1 - beta2**step)

        if group["fold_bias_correction"]:
            # $$\theta_t = \theta_{t-1} - \eta\frac{\sqrt{c_2}}{c_1}\cdot\frac{m_t}{\sqrt{v_t} + \hat\epsilon}
            #   \qquad \hat\epsilon = \epsilon\sqrt{c_2}$$
            step_size = lr * bias_correction2_sqrt / bias_correction1
            denominator = exp_avg_sq.sqrt().add_(group["eps"] * bias_correction2_sqrt)
        else:
            # $$\theta_t = \theta_{t-1} - \frac{\eta}{c_1}\cdot\frac{m_t}{\sqrt{v_t}/\sqrt{c_2} + \epsilon}
            #   = \theta_{t-1} - \eta\,\frac{\hat m_t}{\sqrt{\hat v_t} + \epsilon}$$
            step_size = lr / bias_correction1
            denominator = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(group["eps"])
        param.addcdiv_(exp_avg, denominator, value=-step_size)
