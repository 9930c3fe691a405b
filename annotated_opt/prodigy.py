r"""
# Prodigy

[Mishchenko & Defazio, 2024](https://arxiv.org/abs/2306.06101) refine [D-Adaptation](dadapt_adam.md):
the same lower bound $d$ on the distance to the solution, estimated differently so that it grows
faster. Two changes:

* the inner product is taken with the **distance travelled**, $\langle g_k, x_0 - x_k\rangle$, rather
  than with the sum of past gradients: it needs the initial point $x_0$ in memory, and is a tighter bound;
* every gradient is weighted by the $d$ in force when it arrived, $\textcolor{orange}{d_k/d_0}$ times
  $\eta_k$, so the newest, largest estimates dominate and $d$ climbs geometrically instead of
  linearly (the paper's $O(\log\log D/d_0)$ steps to reach the right scale, against D-Adaptation's
  $O(\log D/d_0)$).

With $\eta_k = d_k\cdot\text{lr}\cdot\text{bc}_k$, $\beta_3 = \sqrt{\beta_2}$ by default, and the sums
over all parameters of all groups:

$$\begin{aligned}
m_k &= \beta_1 m_{k-1} + (1-\beta_1)\,\textcolor{orange}{d_k}\,g_k \qquad
v_k = \beta_2 v_{k-1} + (1-\beta_2)\,\textcolor{orange}{d_k^2}\,g_k^2\\
r_k &= \beta_3\,r_{k-1} + \tfrac{d_k}{d_0}\,\eta_k\,\langle g_k, \textcolor{orange}{x_0 - x_k}\rangle \qquad
s_k = \beta_3\,s_{k-1} + \tfrac{d_k}{d_0}\,\eta_k\,g_k\\
\hat d_{k+1} &= \frac{r_k}{\lVert s_k\rVert_1} \qquad
d_{k+1} = \min\big(\max_{i \le k+1}\hat d_i,\ \text{growth}\cdot d_k\big)\\
\theta_{k+1} &= \theta_k - \eta_k\,\frac{m_k}{\sqrt{v_k} + d_{k+1}\,\epsilon}
\end{aligned}$$

The moments now carry $d$ and $d^2$, so $m/\sqrt{v}$ is unit-free again and the step size $\eta_k$
stands outside, as in Adam; $\epsilon$ is scaled by $d$ to stay in proportion. The ratio $d_k/d_0$ keeps
the weights from underflowing while $d$ is tiny.

```algorithm
m_k = \beta_1 m_{k-1} + (1-\beta_1)\,\textcolor{orange}{d_k}\,g_k, \quad
  v_k = \beta_2 v_{k-1} + (1-\beta_2)\,\textcolor{orange}{d_k^2}\,g_k^2
    @ state["exp_avg"].mul_(beta1).add_(grad, alpha=d * (1 - beta1))
r_k = \beta_3\,r_{k-1} + \textcolor{orange}{\tfrac{d_k}{d_0}}\,\eta_k\,\langle g_k, \textcolor{orange}{x_0 - x_k}\rangle
    @ d_numerator = first["d_numerator"] * beta3 + inner_products
s_k = \beta_3\,s_{k-1} + \textcolor{orange}{\tfrac{d_k}{d_0}}\,\eta_k\,g_k
    @ s.mul_(beta3).add_(sliced_grad, alpha=weight * (d if group["safeguard_warmup"] else step_size))
\hat d_{k+1} = c\,r_k / \lVert s_k\rVert_1  @ d_hat = first["d_coef"] * d_numerator / s_norm
\textcolor{orange}{d_{k+1} = \min\big(\max_{i \le k+1}\hat d_i,\ \text{growth}\cdot d_k\big)}
    @ d = min(d_max, d * first["growth_rate"])
\theta_{k+1} = \theta_k - \textcolor{orange}{\eta_k}\,\frac{m_k}{\sqrt{v_k} + \textcolor{orange}{d_{k+1}}\,\epsilon}
    @ param.addcdiv_(state["exp_avg"], denominator, value=-step_size)
```

## Notation

| symbol | in the code | meaning |
|---|---|---|
| $\theta$ | `param` | the parameter |
| $x_k$ | `param` | the parameter, as the iterate of the estimate |
| $x_0$ | `p0` | the initial point (every `slice_p`-th coordinate of it) |
| $g_k$ | `grad`, `sliced_grad` | the gradient (with the L2 decay, when on) |
| $m_k$ | `exp_avg` | the first moment, of $d_k g_k$ |
| $v_k$ | `exp_avg_sq` | the second moment, of $d_k^2 g_k^2$ |
| $s_k$ | `s` | the weighted sum of the gradients |
| $r_k$ | `d_numerator` | the weighted sum of the inner products, the numerator of $\hat d$ |
| $d_k$ | `d`, `d_hat`, `d_max` | the estimate of the distance (the candidate $\hat d$: `d_hat`; its maximum: `d_max`) |
| $d_0$ | `d0` | its initial value |
| $c$ | `d_coef` | a factor on $\hat d$ (default $1$) |
| $\eta_k$ | `step_size` | the step size, $d_k\cdot\text{lr}\cdot\text{bc}_k$ with `lr` the learning rate |
| $\beta_1, \beta_2, \beta_3$ | `beta1`, `beta2`, `beta3` | the decay rates |
| $\epsilon$ | `eps` | keeps the denominator away from zero, scaled by $d_{k+1}$ |
| $k$ | `k` | the step count |

## The authors' code and the paper

* **The estimate can fall.** The paper's rule is $d_{k+1} = \max(d_k, \hat d_{k+1})$. The code keeps the
  largest $\hat d$ seen, $d_{\max}$, and sets $d_{k+1} = \min(d_{\max}, \text{growth}\cdot d_k)$, which
  with the default infinite growth is $d_{\max}$: the same. At the very first increase it takes
  $\max(d_k, \hat d)$ regardless of the growth limit (the code's `if d == d0`).
* **$\epsilon$ with the new $d$.** The update divides by $\sqrt{v_k} + d_{k+1}\epsilon$, with the
  estimate just computed, while the step size $\eta_k$ and the decoupled decay use $d_k$.
* **`safeguard_warmup`** drops $\text{lr}\cdot\text{bc}_k$ from $s_k$'s weight, so that a learning-rate
  warmup (small lr) cannot inflate $\hat d$ by shrinking the denominator.
* **$\beta_1 = 0$** keeps no $m$ and steps with $d_{k+1}\,\eta_k\,g_k/(\sqrt{v_k} + d_{k+1}\epsilon)$.
* **All-zero parameters** (fresh biases) store their $x_0$ as a single zero, to save memory.
* **`slice_p`** $= n$ estimates $d$ from every $n$-th coordinate only: $s$ and $x_0$ shrink $n$-fold.
* Per-group learning rates, a learning rate of $0$, L2 decay and the gradient: as for
  [D-Adaptation](dadapt_adam.md). (With $\beta_1 = 0$, the authors' code moves a parameter of an `lr=0`
  group by $\text{lr}_{\max}\,d\,g/\epsilon$.)

State: $s$, $x_0$, $m$, $v$, four tensors per parameter (16 bytes per `float32` parameter; $s$ and
$x_0$ shrink with `slice_p`).
"""

import math
from typing import Any

import torch

from .core.base import GenericAdaptiveOptimizer, ParamsT
from .core.distributed import full
from .core.validation import check_betas, check_in_unit_interval, check_non_negative
from .dadapt_adam import DAdaptAdam, check_growth_rate, check_positive


class Prodigy(DAdaptAdam):
    r"""
    ## Hyper-parameters

    The authors' names and defaults (`prodigyopt.Prodigy`).

    * `lr` (default $1.0$) multiplies $d$; leave it at $1$ (with a cosine schedule, the authors' advice).
    * `betas` (default $(0.9, 0.999)$), and `beta3` (default $\sqrt{\beta_2}$), the decay of $r$ and $s$.
    * `eps` (default $10^{-8}$), multiplied by $d$ in the denominator.
    * `weight_decay` and `decouple` (default `True`, AdamW-style).
    * `use_bias_correction` (default off), `d0` (default $10^{-6}$), `growth_rate` (default $\infty$):
      as in [D-Adaptation](dadapt_adam.md).
    * `d_coef` (default $1$) multiplies $\hat d$: $0.5$ or $2$ make the steps smaller or larger,
      the one knob left.
    * `safeguard_warmup` (default off): use with a learning-rate warmup.
    * `slice_p` (default $1$): estimate from every `slice_p`-th coordinate; $11$ is the authors'
      suggestion for large models. Under FSDP2 a stride crosses the shards: each process then gathers
      the parameter and the gradient to slice them, and keeps $s$ and $x_0$ whole
      ([distributed](../guides/distributed.md)).
    * `maximize` ascends the objective instead.

    `betas`, `beta3`, `use_bias_correction`, `growth_rate`, `decouple`, `d0` and `d_coef` must be the same
    in every group.
    """

    global_options = (*DAdaptAdam.global_options, "beta3", "d_coef")

    def __init__(self, params: ParamsT, lr: float = 1.0, betas: tuple[float, float] = (0.9, 0.999),
                 beta3: float | None = None, eps: float = 1e-8, weight_decay: float = 0.0, decouple: bool = True,
                 use_bias_correction: bool = False, safeguard_warmup: bool = False, d0: float = 1e-6,
                 d_coef: float = 1.0, growth_rate: float = math.inf, slice_p: int = 1, *,
                 maximize: bool = False) -> None:
        check_betas(betas)
        if beta3 is not None:
            check_in_unit_interval("beta3", beta3)
        check_positive("eps", eps)
        check_positive("d0", d0)
        check_positive("d_coef", d_coef)
        check_growth_rate(growth_rate)
        check_non_negative("weight_decay", weight_decay)
        if not (isinstance(slice_p, int) and slice_p >= 1):
            raise ValueError(f"Invalid slice_p: {slice_p} (must be an integer >= 1)")
        # Not `DAdaptAdam.__init__`: Prodigy has no `layer_scale` and keeps other running values.
        GenericAdaptiveOptimizer.__init__(self, params, dict(
            lr=lr, betas=tuple(betas), beta3=beta3, eps=eps, weight_decay=weight_decay, decouple=decouple,
            use_bias_correction=use_bias_correction, safeguard_warmup=safeguard_warmup, d0=d0, d_coef=d_coef,
            growth_rate=growth_rate, slice_p=slice_p, maximize=maximize,
            # The running estimate in every group: $d$, $d_{\max}$, $r$ and $k$.
            d=d0, d_max=d0, d_numerator=0.0, k=0))

    @staticmethod
    def sliced(tensor: torch.Tensor, group: dict[str, Any]) -> torch.Tensor:
        r"""The coordinates the estimate looks at: every `slice_p`-th of the flattened tensor."""
        return tensor.flatten()[:: group["slice_p"]]

    def init_state(self, state: dict[str, Any], group: dict[str, Any], param: torch.Tensor) -> None:
        r"""$s_0 = 0$, $x_0$ (one zero for an all-zero parameter), $m_0 = v_0 = 0$ ($m$ only if $\beta_1 > 0$)."""
        state["step"] = 0
        start = self.sliced(param, group)
        state["s"] = torch.zeros_like(start)
        # Whether the whole parameter is zero: under FSDP2, `param.any()` of a shard is a partial answer,
        # which `full` completes, so that every process keeps $x_0$ in the same form.
        all_zero = not full(param.any())
        state["p0"] = torch.zeros((), dtype=param.dtype, device=param.device) if all_zero else start.clone()
        if group["betas"][0] > 0:
            state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
        state["exp_avg_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)

    def accumulate(self, state: dict[str, Any], group: dict[str, Any], grad: torch.Tensor, param: torch.Tensor,
                   step_size: float, d: float) -> tuple[torch.Tensor, torch.Tensor]:
        r"""
        ### Pass 1 for one parameter

        Returns its share of $r_k$'s increment and of $\lVert s_k\rVert_1$.
        """
        beta1, beta2 = group["betas"]
        beta3 = group["beta3"] if group["beta3"] is not None else beta2**0.5
        weight = d / group["d0"]
        sliced_grad = self.sliced(grad, group)
        # $$\tfrac{d_k}{d_0}\,\eta_k\,\langle g_k, x_0 - x_k\rangle$$
        inner = torch.dot(sliced_grad, state["p0"] - self.sliced(param, group)).double()
        # $$m_k = \beta_1 m_{k-1} + (1-\beta_1)\,d_k\,g_k \qquad v_k = \beta_2 v_{k-1} + (1-\beta_2)\,d_k^2\,g_k^2$$
        if beta1 > 0:
            state["exp_avg"].mul_(beta1).add_(grad, alpha=d * (1 - beta1))
        state["exp_avg_sq"].mul_(beta2).addcmul_(grad, grad, value=d * d * (1 - beta2))
        # $$s_k = \beta_3\,s_{k-1} + \tfrac{d_k}{d_0}\,\eta_k\,g_k$$
        # (or $\tfrac{d_k}{d_0}\,d_k\,g_k$ with the safeguard: no learning rate in the weight)
        s = state["s"]
        s.mul_(beta3).add_(sliced_grad, alpha=weight * (d if group["safeguard_warmup"] else step_size))
        return weight * step_size * inner, s.abs().sum().double()

    def update_estimate(self, first: dict[str, Any], inner_products: float, s_norm: float) -> None:
        r"""
        ### The new $d$, written to every group

        $$r_k = \beta_3 r_{k-1} + \textstyle\sum \tfrac{d_k}{d_0}\eta_k\langle\cdot\rangle \qquad
          \hat d = c\,\frac{r_k}{\lVert s_k\rVert_1} \qquad
          d_{k+1} = \min(d_{\max}, \text{growth}\cdot d_k)$$
        """
        beta3 = first["beta3"] if first["beta3"] is not None else first["betas"][1] ** 0.5
        d_numerator = first["d_numerator"] * beta3 + inner_products
        d_hat = first["d_coef"] * d_numerator / s_norm
        d = first["d"]
        # The first increase is taken whole, whatever the growth limit.
        if d == first["d0"]:
            d = max(d, d_hat)
        d_max = max(first["d_max"], d_hat)
        d = min(d_max, d * first["growth_rate"])
        for group in self.param_groups:
            group["d_numerator"], group["d"], group["d_max"] = d_numerator, d, d_max

    def update_param(self, state: dict[str, Any], group: dict[str, Any], grad: torch.Tensor, param: torch.Tensor,
                     step_size: float) -> None:
        r"""
        ### Pass 2 for one parameter

        $$\theta_{k+1} = \theta_k - \eta_k\,\frac{m_k}{\sqrt{v_k} + d_{k+1}\,\epsilon}$$
        with the new $d_{k+1}$ in the denominator (the group already holds it).
        """
        d = group["d"]
        denominator = state["exp_avg_sq"].sqrt().add_(d * group["eps"])
        if group["betas"][0] > 0:
            param.addcdiv_(state["exp_avg"], denominator, value=-step_size)
        else:
            param.addcdiv_(grad, denominator, value=-step_size * d)
