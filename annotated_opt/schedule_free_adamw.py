r"""
# Schedule-Free AdamW

The [Schedule-Free](schedule_free_sgd.md) interpolation and averaging around an Adam-style base step:
$z$ takes a step of RMSprop with Adam's bias correction (no first moment: the interpolation between
$z$ and $x$ already is the momentum), and everything else is as in Schedule-Free SGD. The winning
entry of the AlgoPerf 2024 self-tuning track.

$$\begin{aligned}
y_t &= (1-\beta_1)\,z_t + \beta_1\,x_t\\
v_t &= \beta_2\,v_{t-1} + (1-\beta_2)\,g(y_t)^2\\
\textcolor{orange}{d_t} &\textcolor{orange}{= \frac{g(y_t)}{\sqrt{v_t/(1-\beta_2^t)} + \epsilon}} + \lambda\,y_t\\
z_{t+1} &= z_t - \eta_t\,d_t \qquad x_{t+1} = (1-c_{t+1})\,x_t + c_{t+1}\,z_{t+1}
\end{aligned}$$

What differs from Schedule-Free SGD is the coloured direction: the gradient divided by the root of its
bias-corrected second moment. Weight decay is taken at $y$ and added *after* the normalisation, so it is
decoupled from $v_t$ as in AdamW (but multiplied by $\eta_t$, and it enters $z$, not the parameter).

```algorithm
\eta_t, \ c_{t+1} \ \text{as in Schedule-Free SGD}
    @ schedule_free_sgd.py: warmup, average_weight = self.advance_average(group)
\textcolor{orange}{v_t = \beta_2\,v_{t-1} + (1-\beta_2)\,g(y_t)^2}
    @ exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
d_t = \textcolor{orange}{\frac{g(y_t)}{\sqrt{v_t/(1-\beta_2^t)} + \epsilon}} + \lambda\,y_t  @ return grad / denominator
y_{t+1} = (1-c_{t+1})\,y_t + c_{t+1}\,z_t + \eta_t\,\big(\beta_1(1-c_{t+1}) - 1\big)\,d_t
    @ schedule_free_sgd.py: param.lerp_(z, average_weight)
z_{t+1} = z_t - \eta_t\,d_t  @ schedule_free_sgd.py: z.sub_(direction, alpha=lr)
```

## Notation

| symbol | in the code | meaning |
|---|---|---|
| $y$ | `param` | the point the model holds while training |
| $g$ | `grad` | the gradient, at $y_t$ |
| $v_t$ | `exp_avg_sq` | the second moment of the gradient |
| $d_t$ | `direction` | the direction of $z$'s step (the decay added by Schedule-Free SGD) |
| $\beta_1$ | `betas` | the interpolation between $z$ and $x$, the first of `betas` |
| $\beta_2$ | `beta2` | the second moment's decay rate |
| $\epsilon$ | `eps` | keeps the denominator away from zero |
| $\eta$ | `lr` | the learning rate |
| $\lambda$ | `weight_decay` | the weight decay |
| $t$ | `k` | the group's step count |

The other symbols ($z$, $x$, $c_{t+1}$) are [Schedule-Free SGD](schedule_free_sgd.md)'s.

## The authors' code and the paper

* **Bias correction.** The paper's Algorithm 1 folds $\sqrt{1-\beta_2^t}$ into the learning rate,
  $\eta_t = \eta\sqrt{1-\beta_2^t}\cdot\text{warmup}_t$, and adds $\epsilon$ to the uncorrected
  $\sqrt{v_t}$; that $\eta_t$ then also enters $\eta_{\max}$ and so the weights of the average. The
  package's `AdamWScheduleFree` (what this class follows) corrects $v_t$ instead and leaves
  $\eta_t$ and the weights alone; its `AdamWScheduleFreePaper` keeps the paper's form. The two differ
  while $1-\beta_2^t$ is far from 1, about the first $5/(1-\beta_2)$ steps.
* **The step count** $t$ is the group's, not the parameter's: a parameter that first gets a gradient
  at step 500 has its $v$ corrected by $1-\beta_2^{500}$, not $1-\beta_2^{1}$, so its first steps are
  up to $1/\sqrt{1-\beta_2} \approx 32$ times smaller than Adam's would be.
* **The gradient.** The package divides `p.grad` in place by the denominator (and adds the decay to it),
  so after a step `p.grad` no longer holds the gradient. Here the gradient is left as it was.

State: $z$ and $v$, two tensors per parameter (8 bytes per `float32` parameter), as many as Adam.
"""

from typing import Any

import torch

from .core.base import GenericAdaptiveOptimizer, ParamsT
from .core.validation import check_in_unit_interval, check_non_negative
from .schedule_free_sgd import ScheduleFreeSGD, check_interpolation


class ScheduleFreeAdamW(ScheduleFreeSGD):
    r"""
    ## Hyper-parameters

    The authors' names and defaults (`schedulefree.AdamWScheduleFree`).

    * `lr` is $\eta$ (default $0.0025$): constant, with a warmup; typically 1-10x the peak learning
      rate of AdamW with a schedule.
    * `betas` are $(\beta_1, \beta_2)$ (default $(0.9, 0.999)$): $\beta_1$ is the interpolation
      (momentum), in $(0, 1]$; $\beta_2$ the second moment's decay. $\beta_1 = 0.95$ and
      $\beta_2 = 0.95$ to $0.99$ are the authors' advice for long or unstable runs.
    * `eps` is $\epsilon$ (default $10^{-8}$), added to the corrected $\sqrt{\hat v_t}$.
    * `weight_decay`, `warmup_steps`, `r`, `weight_lr_power`, `foreach`, `maximize`, `fused`: as in
      [Schedule-Free SGD](schedule_free_sgd.md). The authors recommend a warmup (a few percent of the
      run).
    """

    def __init__(self, params: ParamsT, lr: float = 0.0025, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, warmup_steps: int = 0, r: float = 0.0,
                 weight_lr_power: float = 2.0, foreach: bool | None = None, *, maximize: bool = False,
                 fused: bool | None = None) -> None:
        # $\beta_1 \in (0, 1]$, as the SGD form's momentum; $\beta_2 \in [0, 1)$, as Adam's.
        if len(betas) != 2:
            raise ValueError(f"Invalid betas: {betas} (expected two values)")
        check_interpolation("beta parameter at index 0", betas[0])
        check_in_unit_interval("beta parameter at index 1", betas[1])
        check_non_negative("eps", eps)
        # Not `ScheduleFreeSGD.__init__`: its `momentum` is this class's `betas[0]`.
        GenericAdaptiveOptimizer.__init__(self, params, dict(
            lr=lr, betas=tuple(betas), eps=eps, foreach=foreach, fused=fused,
            **self.averaging_defaults(weight_decay, warmup_steps, r, weight_lr_power, maximize)))

    def interpolation(self, group: dict[str, Any]) -> float:
        r"""$\beta_1$ is the interpolation between $z$ and $x$."""
        return group["betas"][0]

    def init_state(self, state: dict[str, Any], group: dict[str, Any], param: torch.Tensor) -> None:
        r"""$z_1 = y_1$ as in the SGD form, and $v_0 = 0$."""
        super().init_state(state, group, param)
        state["exp_avg_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)

    def group_arguments(self, group: dict[str, Any]) -> dict[str, Any]:
        r"""
        The averaging's numbers, and $1 - \beta_2^t$ for the second moment: one number per group, since
        $t$ is the group's step count (advanced for this step by the averaging). Computed here, once,
        rather than in `direction` from the count: on the [fast path](core/fastpath.md) the count is a
        symbol, and the compiler would evaluate the power for every vector of elements.
        """
        arguments = super().group_arguments(group)
        # $$1 - \beta_2^t$$
        return {**arguments, "bias_correction2": 1 - group["betas"][1] ** group["k"]}

    def direction(self, state: dict[str, Any], group: dict[str, Any], grad: torch.Tensor,
                  bias_correction2: float) -> torch.Tensor:
        r"""
        ### The one override: the gradient normalised by its second moment

        `bias_correction2` is $1 - \beta_2^t$, from the group's step count (`group_arguments`).
        """
        beta2 = group["betas"][1]
        exp_avg_sq = state["exp_avg_sq"]
        # $$v_t = \beta_2\,v_{t-1} + (1-\beta_2)\,g_t^2$$
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        # $$\frac{g_t}{\sqrt{v_t / (1-\beta_2^t)} + \epsilon}$$
        denominator = (exp_avg_sq / bias_correction2).sqrt_().add_(group["eps"])
        return grad / denominator

