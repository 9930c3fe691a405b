r"""
# AdEMAMix: a second, slow momentum

[Pagliardini, Ablin & Grangier, 2024](https://arxiv.org/abs/2409.03137) (ICLR 2025) observe that a
single exponential moving average cannot both follow the recent gradients and remember old ones: with
$\beta_1 = 0.9$ a gradient's weight has halved after 7 steps, and raising $\beta_1$ to remember longer
makes the momentum sluggish. Yet old gradients stay useful for a surprisingly long time (tens of
thousands of steps in their language-model runs). So AdEMAMix keeps [Adam](adam.md)'s fast average
and adds a second, slow one with $\beta_3 = 0.9999$ (a half-life of about 6900 steps), and mixes the
two in the numerator:

$$\begin{aligned}
m^{(1)}_t &= \beta_1 m^{(1)}_{t-1} + (1-\beta_1)\, g_t \qquad
\textcolor{orange}{m^{(2)}_t = \beta_3(t)\, m^{(2)}_{t-1} + (1-\beta_3(t))\, g_t} \\
v_t &= \beta_2 v_{t-1} + (1-\beta_2)\, g_t^2 \\
\theta_t &= \theta_{t-1} - \eta\left(
  \frac{\hat m^{(1)}_t + \textcolor{orange}{\alpha(t)\, m^{(2)}_t}}{\sqrt{\hat v_t} + \epsilon}
  + \lambda\,\theta_{t-1}\right)
\end{aligned}$$

with Adam's bias corrections $\hat m^{(1)}_t$, $\hat v_t$, and AdamW's decoupled decay. The slow
average is *not* bias-corrected: early in training it is small, and so is its contribution, which is
the point (a gradient from step one should not weigh like a gradient seen ten thousand times).
$\alpha = 5$ to $8$ makes the slow momentum the larger part of the step once it has filled.

```algorithm
\theta \leftarrow (1 - \eta\lambda)\,\theta_{t-1}
    @ core/weight_decay.py: return 1 - learning_rate(group, param) * decay
m^{(1)}_t, \ v_t \ \text{as in Adam}  @ exp_avg = super().update_moments(state, group, grad)
\textcolor{orange}{\beta_3(t) = \big(\tfrac12\big)^{1/h_t} \ (t < T_{\beta_3}), \quad
  h_t = (1-a)\,h(\beta_1) + a\,h(\beta_3), \quad a = \tfrac{t}{T_{\beta_3}}, \quad
  h(\beta) = \frac{\ln\frac12}{\ln(\beta + 10^{-8})}}
    @ warming = 0.5 ** (1 / ((1 - fraction) * half_life(beta_start) + fraction * half_life(beta_end)))
\textcolor{orange}{m^{(2)}_t = \beta_3(t)\, m^{(2)}_{t-1} + (1-\beta_3(t))\, g_t}
    @ state["exp_avg_slow"].lerp_(grad, 1 - beta3_now)
\textcolor{orange}{\alpha(t) = \alpha\,\min(1, t/T_\alpha)}
    @ alpha_now = alpha_schedule(step, group["alpha"], group["alpha_warmup"])
\theta_t = \theta - \eta\,\frac{\hat m^{(1)}_t + \textcolor{orange}{\alpha(t)\, m^{(2)}_t}}{\sqrt{\hat v_t} + \epsilon}
    @ param.addcdiv_(mixed, denominator, value=-learning_rate(group, param))
```

## Notation

| symbol | in the code | meaning |
|---|---|---|
| $\theta$ | `param` | the parameter |
| $g_t$ | `grad` | the gradient |
| $m^{(1)}_t, m^{(2)}_t$ | `exp_avg`, `exp_avg_slow` | the fast and the slow first moment |
| $v_t$ | `exp_avg_sq` | the second moment |
| $\beta_1, \beta_2$ | `beta1`, `beta2` | Adam's decay rates |
| $\beta_3$ | `beta3`, `beta3_now` | the slow moment's decay rate ($\beta_3(t)$, in the warm-up: `beta3_now`) |
| $\alpha$ | `alpha`, `alpha_now` | the weight of the slow moment ($\alpha(t)$, in the warm-up: `alpha_now`) |
| $T_\alpha, T_{\beta_3}$ | `alpha_warmup`, `beta3_warmup` | the lengths of the two warm-ups |
| $h$ | `half_life` | the half-life of a decay rate, in steps |
| $a$ | `fraction` | how far the warm-up of $\beta_3$ has got |
| $\eta$ | `lr` | the learning rate |
| $\epsilon$ | `eps` | keeps the denominator away from zero |
| $\lambda$ | `weight_decay` | the weight decay, decoupled |
| $t$ | `step` | the step count |

## The warm-up schedules

From step one, a slow average with $\beta_3 = 0.9999$ and weight $\alpha = 8$ would be dominated by
the first, large and fast-changing gradients of training, and keep pushing along them for thousands
of steps: the paper reports instabilities early on. Both are therefore warmed up over
`alpha_warmup` and `beta3_warmup` steps (the paper sets both to the length of the run):

* $\alpha(t)$ rises linearly from $0$ to $\alpha$: $\alpha(t) = \alpha\, t/T_\alpha$ for $t < T_\alpha$.
* $\beta_3(t)$ rises from $\beta_1$ to $\beta_3$ so that the **half-life** $h(\beta) = \ln\tfrac12/\ln\beta$
  (the number of steps after which a gradient's weight has halved) grows linearly, rather than
  $\beta$ itself: a linear $\beta$ would spend most of the warm-up with a short memory and then jump
  to $6900$ steps at the end, since $h$ explodes as $\beta \to 1$. Interpolating $h$ linearly and
  solving for $\beta$ gives
  $$\beta_3(t) = \exp\left(\frac{\ln\beta_1\,\ln\beta_3}{(1-a)\ln\beta_3 + a\ln\beta_1}\right),
    \qquad a = t/T_{\beta_3}.$$

Both schedules are functions of a parameter's own step count and end exactly at $\alpha$ and $\beta_3$.

## Where the official code differs from the paper

* The code computes the half-life of $\beta$ as $\ln\tfrac12/\ln(\beta + 10^{-8}) - 1$, with
  $10^{-8}$ added inside the logarithm. The $-1$ cancels when solving back for $\beta$; the
  $10^{-8}$ does not: for $\beta_3 = 0.9999$ it lengthens the half-life the warm-up heads for by
  $10^{-4}$ relative, and $\beta_3(t)$ is larger than the paper's formula during the warm-up, by
  up to $2.5\times10^{-6}$ at its first steps (for $\beta_1 = 0.9$, $T_{\beta_3} = 1000$); after
  it, both are exactly $\beta_3$. This class computes what
  the code computes (`beta3_schedule`), so that it equals the official optimizer.
* With $\beta_1 = 0$ the code keeps no fast average (the gradient takes its place, saving one
  tensor); here the fast average is kept and equals the gradient ($\mathrm{lerp}$ with weight one).

## Memory and compute

Three tensors per parameter ($m^{(1)}$, $m^{(2)}$, $v$): 12 bytes per `float32` parameter, half as
much again as Adam, and one more pass over memory per step.
"""

import math
from typing import Any

import torch

from .adam import Adam
from .core.base import ParamsT
from .core.options import learning_rate
from .core.scalars import choose
from .core.validation import check_non_negative
from .core.weight_decay import WeightDecay

# The official code's guard inside the logarithm of the half-life (see above).
HALF_LIFE_EPS = 1e-8


def alpha_schedule(step: int, alpha: float, warmup: int | None) -> float:
    r"""
    $\alpha(t) = \alpha\,\min(1, t/T_\alpha)$; no warm-up when `warmup` is `None`. The end of the
    warm-up is a [choice by the step count](core/scalars.md), which the fast path makes on the device.
    """
    if not warmup:
        # No warm-up (`None`), or one of no steps.
        return alpha
    return choose(step >= warmup, alpha, alpha * step / warmup)


def beta3_schedule(step: int, beta_start: float, beta_end: float, warmup: int | None) -> float:
    r"""
    $\beta_3(t)$ with a half-life growing linearly from that of `beta_start` to that of `beta_end`
    over `warmup` steps.
    """
    if not warmup:
        return beta_end
    fraction = step / warmup

    # $h(\beta) + 1 = \ln\frac12/\ln\beta$: the official code's half-life minus one, plus one.
    def half_life(beta: float) -> float:
        return math.log(0.5) / math.log(beta + HALF_LIFE_EPS)

    # $$h_t = (1-a)\,h(\beta_1) + a\,h(\beta_3) \qquad \beta_3(t) = \left(\tfrac12\right)^{1/h_t}$$
    warming = 0.5 ** (1 / ((1 - fraction) * half_life(beta_start) + fraction * half_life(beta_end)))
    return choose(step >= warmup, beta_end, warming)


class AdEMAMix(Adam):
    r"""
    ## Hyper-parameters

    The defaults and names are those of the official code (`apple/ml-ademamix`).

    * `lr` is $\eta$ (default $10^{-3}$), on the scale of AdamW's.
    * `betas` are $(\beta_1, \beta_2, \beta_3)$ (default $(0.9, 0.999, 0.9999)$): Adam's two and the
      slow momentum's. The larger $\beta_3$, the larger the gain and the longer the warm-up needed.
    * `alpha` is $\alpha$ (default $2$; the paper uses $5$ to $8$ for language models), the weight of
      the slow momentum.
    * `beta3_warmup` and `alpha_warmup` are $T_{\beta_3}$ and $T_\alpha$, in steps (default `None`:
      no warm-up). The paper sets both to the total number of steps.
    * `eps` is $\epsilon$ (default $10^{-8}$), added to $\sqrt{\hat v_t}$.
    * `weight_decay` is $\lambda$, decoupled as in [AdamW](adamw.md) (default $0$).
    * `maximize` ascends the objective instead.
    """

    beta_count = 3

    def __init__(self, params: ParamsT, lr: float = 1e-3,
                 betas: tuple[float, float, float] = (0.9, 0.999, 0.9999), alpha: float = 2.0,
                 beta3_warmup: int | None = None, alpha_warmup: int | None = None, eps: float = 1e-8,
                 weight_decay: float | WeightDecay = 0.0, *, maximize: bool = False, foreach: bool | None = None,
                 fused: bool | None = None) -> None:
        check_non_negative("alpha", alpha)
        for name, warmup in (("beta3_warmup", beta3_warmup), ("alpha_warmup", alpha_warmup)):
            if warmup is not None:
                check_non_negative(name, warmup)
        super().__init__(params, lr, betas, eps, weight_decay, maximize=maximize, foreach=foreach, fused=fused,
                         decoupled_weight_decay=True, alpha=alpha, beta3_warmup=beta3_warmup, alpha_warmup=alpha_warmup)

    def init_state(self, state: dict[str, Any], group: dict[str, Any], param: torch.Tensor) -> None:
        r"""Adam's state, with the fast average under its name `exp_avg`, and the slow one, $m^{(2)}_0 = 0$."""
        super().init_state(state, group, param)
        state["exp_avg_slow"] = torch.zeros_like(param, memory_format=torch.preserve_format)

    def update_moments(self, state: dict[str, Any], group: dict[str, Any], grad: torch.Tensor) -> torch.Tensor:
        r"""
        ### Three averages

        Adam's two, then the slow one, with $\beta_3$ from its warm-up schedule.
        """
        exp_avg = super().update_moments(state, group, grad)
        beta1, _, beta3 = group["betas"]
        beta3_now = beta3_schedule(state["step"].item(), beta1, beta3, group["beta3_warmup"])
        # $$m^{(2)}_t = \beta_3(t)\, m^{(2)}_{t-1} + (1-\beta_3(t))\, g_t$$
        state["exp_avg_slow"].lerp_(grad, 1 - beta3_now)
        return exp_avg

    def adam_update(self, state: dict[str, Any], group: dict[str, Any], param: torch.Tensor,
                    exp_avg: torch.Tensor, exp_avg_sq: torch.Tensor) -> None:
        r"""
        ### The mixed step

        Adam's denominator; the numerator mixes the corrected fast average with the uncorrected slow
        one. The decay has already been applied to $\theta_{t-1}$ by the `WeightDecay` object.
        """
        beta1, beta2, _ = group["betas"]
        step = state["step"].item()
        alpha_now = alpha_schedule(step, group["alpha"], group["alpha_warmup"])
        # $$\sqrt{\hat v_t} + \epsilon = \sqrt{v_t}/\sqrt{1-\beta_2^t} + \epsilon$$
        denominator = (exp_avg_sq.sqrt() / (1 - beta2**step) ** 0.5).add_(group["eps"])
        # $$\hat m^{(1)}_t + \alpha(t)\, m^{(2)}_t$$
        mixed = state["exp_avg_slow"].mul(alpha_now).add_(exp_avg, alpha=1 / (1 - beta1**step))
        # $$\theta_t = \theta_{t-1} - \eta\,\frac{\hat m^{(1)}_t + \alpha(t)\, m^{(2)}_t}{\sqrt{\hat v_t} + \epsilon}$$
        param.addcdiv_(mixed, denominator, value=-learning_rate(group, param))
