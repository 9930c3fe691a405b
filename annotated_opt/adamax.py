r"""
# Adamax: Adam with the infinity norm

Section 7.1 of the [Adam paper](https://arxiv.org/abs/1412.6980) generalises Adam's second moment
from the $L^2$ norm of the past gradients to the $L^p$ norm, $v_t = \beta_2^p v_{t-1} + (1-\beta_2^p)|g_t|^p$
with the step divided by $v_t^{1/p}$, and notes that large $p$ is unstable except in the limit
$p \to \infty$, where the rule becomes simple. Unrolled, $v_t^{1/p}$ is a weighted $p$-norm:

$$v_t^{1/p} = (1-\beta_2^p)^{1/p}\Big(\sum_{i=1}^{t} \beta_2^{p(t-i)} |g_i|^p\Big)^{1/p}
\;\xrightarrow{\;p\to\infty\;}\; \max\big(\beta_2^{t-1}|g_1|,\; \beta_2^{t-2}|g_2|,\;\dots,\; |g_t|\big) = u_t,$$

because $(1-\beta_2^p)^{1/p} \to 1$ and a $p$-norm tends to the largest of its terms. The maximum
satisfies a one-line recursion, and the whole rule is

$$
\begin{aligned}
m_t &= \beta_1 m_{t-1} + (1-\beta_1)\, g_t \\
u_t &= \max\big(\beta_2\, u_{t-1},\; |g_t| + \epsilon\big) \\
\theta_t &= \theta_{t-1} - \frac{\eta}{1-\beta_1^t}\cdot\frac{m_t}{u_t}
\end{aligned}
$$

($m$ is `exp_avg`, $u$ is `exp_inf`.) It differs from [Adam](adam.md) in the second line and in
the step: no square root, no second bias correction, and $\epsilon$ inside the maximum.

```algorithm
g_t \leftarrow g_t + \lambda\,\theta_{t-1} \quad \text{(L2 decay, when } \lambda > 0\text{)}
    @ grad = self.weight_decay(param, grad, group)
m_t = \beta_1 m_{t-1} + (1 - \beta_1)\, g_t  @ exp_avg.lerp_(grad, 1 - beta1)
\textcolor{orange}{u_t = \max\big(\beta_2\, u_{t-1},\; |g_t| + \epsilon\big)}
    @ maximum_into(exp_inf.mul_(beta2), grad.abs().add_(group["eps"]), group["differentiable"])
\theta_t = \theta_{t-1} - \frac{\eta}{1 - \beta_1^t}\cdot\frac{m_t}{\textcolor{orange}{u_t}}
    @ param.addcdiv_(exp_avg, exp_inf, value=-step_size)
```

## Notation

| symbol | in the code | meaning |
|---|---|---|
| $\theta$ | `param` | the parameter |
| $g_t$ | `grad` | the gradient |
| $m_t$ | `exp_avg` | the first moment, as in Adam |
| $u_t$ | `exp_inf` | the decayed maximum of $\lvert g\rvert$, in place of the second moment |
| $\beta_1, \beta_2$ | `beta1`, `beta2` | the decay rates (`betas`) |
| $\eta$ | `lr` | the learning rate |
| $\epsilon$ | `eps` | the floor of $u_t$ |
| $\lambda$ | `weight_decay` | the weight decay (L2) |
| $t$ | `step` | the step count |

## Why the maximum needs no bias correction

Adam corrects $v_t$ because an average that starts at zero is too small by the factor
$1-\beta_2^t$, the sum of its weights: after one step $v_1 = (1-\beta_2)\,g_1^2$, a thousandth of
$g_1^2$. That factor comes from the $(1-\beta_2)$ in front of the new term. In the limit above it
disappears, $(1-\beta_2^p)^{1/p} \to 1$, so the maximum takes each new $|g_t|$ at **full weight**:
$u_1 = |g_1| + \epsilon$, already the right scale. A maximum is not an average of weights summing to
less than one, and starting it at zero biases nothing: $\max(0, x) = x$ for $x \ge 0$. Only the
first moment, still an average, is corrected, and the first step is $\eta\,g_1/(|g_1|+\epsilon)$, of
size $\eta$, as in Adam.

The maximum also gives a hard bound on every step, which Adam lacks (its steps can reach several
$\eta$ after a quiet period). With $\beta_1 < \beta_2$, and since $u_t \ge \beta_2^{t-i}|g_i|$ for every $i \le t$,

$$|m_t| \le (1-\beta_1)\sum_{k=0}^{t-1} \beta_1^k |g_{t-k}|
       \le (1-\beta_1)\sum_{k=0}^{t-1} \Big(\frac{\beta_1}{\beta_2}\Big)^k u_t
       < \frac{1-\beta_1}{1-\beta_1/\beta_2}\, u_t,$$

so a step is never longer than $\frac{1-\beta_1}{1-\beta_1/\beta_2}\cdot\frac{\eta}{1-\beta_1^t}$, which is
$1.009\,\eta/(1-\beta_1^t)$ for the defaults, whatever the gradients do.

## Where $\epsilon$ goes

Torch adds $\epsilon$ to $|g_t|$ *inside* the maximum (the paper has no $\epsilon$). So $u_t \ge \epsilon$
always, and since $u$ is stored, $\epsilon$ enters the state: a coordinate whose gradient has been
zero for a while decays to $u = \epsilon$, not to zero, and $0/0$ cannot occur.

State: two tensors the size of the parameter (8 bytes per `float32` parameter), as Adam; the step
is one `max` instead of a square, a root and a division.
"""

from typing import Any

import torch

from .core.base import GenericAdaptiveOptimizer, ParamsT
from .core.implementation import maximum_into
from .core.options import learning_rate
from .core.scalars import advance, new_step_count
from .core.validation import check_betas, check_non_negative
from .core.weight_decay import WeightDecay


class Adamax(GenericAdaptiveOptimizer):
    r"""
    ## Hyper-parameters

    The arguments, their order and their defaults are those of `torch.optim.Adamax`.

    * `lr` is $\eta$ (default $2\times10^{-3}$, the paper's), the largest step a coordinate takes
      once $1-\beta_1^t \approx 1$.
    * `betas` are $(\beta_1, \beta_2)$ (default $(0.9, 0.999)$). $\beta_2$ is now the rate at which
      the remembered maximum fades: a spike of size $G$ keeps the steps of its coordinate small until
      $\beta_2^k G$ falls to the current gradient's size, $k = \ln(G/|g|)/(1-\beta_2)$ steps, 2300
      for a spike ten times the usual gradient.
    * `eps` is $\epsilon$ (default $10^{-8}$), the floor of $u_t$.
    * `weight_decay` is $\lambda$, L2 as in Adam (it joins the gradient, and so the maximum).
    * `maximize` ascends the objective instead.
    * `foreach`, `differentiable` and `capturable` are stored as torch stores them (see
      [Adadelta](adadelta.md)); they do not change what is computed.

    Adamax extends the [base](core/base.md) rather than [Adam](adam.md): it shares Adam's first moment
    but none of its update, and it stores in each group exactly the options torch stores.
    """

    # `state["step"]` is torch's 0-d tensor ([step counts](core/scalars.md)).
    tensor_step_count = True

    def __init__(
        self,
        params: ParamsT,
        lr: float = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        foreach: bool | None = None,
        *,
        maximize: bool = False,
        differentiable: bool = False,
        capturable: bool = False,
    ) -> None:
        check_betas(betas)
        check_non_negative("eps", eps)
        self.weight_decay = WeightDecay.coerce(weight_decay, weight_decouple=False)
        defaults = dict(
            lr=lr,
            betas=tuple(betas),
            eps=eps,
            **self.weight_decay.defaults(),
            foreach=foreach,
            maximize=maximize,
            differentiable=differentiable,
            capturable=capturable,
        )
        super().__init__(params, defaults)

    def init_state(self, state: dict[str, Any], group: dict[str, Any], param: torch.Tensor) -> None:
        r"""The step count (a 0-d tensor, as torch keeps it), $m_0 = 0$ and $u_0 = 0$."""
        state["step"] = new_step_count(group, param)
        state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
        state["exp_inf"] = torch.zeros_like(param, memory_format=torch.preserve_format)

    def step_param(
        self, state: dict[str, Any], group: dict[str, Any], grad: torch.Tensor, param: torch.Tensor
    ) -> None:
        r"""
        ### One Adamax step

        Adam's first moment, the decayed maximum in place of the second, and the step with one bias
        correction.
        """
        beta1, beta2 = group["betas"]
        step = advance(state)
        grad = self.weight_decay(param, grad, group)
        exp_avg, exp_inf = state["exp_avg"], state["exp_inf"]
        # $$m_t = \beta_1 m_{t-1} + (1-\beta_1)\, g_t$$
        exp_avg.lerp_(grad, 1 - beta1)
        # The maximum is written straight into the state (`out=`, see
        # [`maximum_into`](core/implementation.md)), after decaying it in place; the temporary
        # $|g_t| + \epsilon$ is the only new tensor.
        # $$u_t = \max\big(\textcolor{red}{\beta_2 u_{t-1},\; |g_t| + \epsilon}\big)$$
        maximum_into(exp_inf.mul_(beta2), grad.abs().add_(group["eps"]), group["differentiable"])
        # Only $m_t$ is bias-corrected; the correction is a Python number, folded into the step size.
        # $$\theta_t = \theta_{t-1} - \frac{\eta}{\textcolor{red}{1-\beta_1^t}}\cdot\frac{m_t}{u_t}$$
        step_size = learning_rate(group, param) / (1 - beta1**step)
        param.addcdiv_(exp_avg, exp_inf, value=-step_size)
