r"""
# D-Adaptation Adam

[Defazio & Mishchenko, 2023](https://arxiv.org/abs/2301.07733) set the learning rate without tuning it.
For a convex problem the best constant step of gradient descent is about $D/G\sqrt{T}$, where
$D = \lVert x_0 - x_*\rVert$ is the distance to the solution: unknown, but it can be bounded from below
while training. D-Adaptation keeps such a lower bound, $d$, and uses it as the step size; `lr` stays
$1.0$ and only multiplies the estimate.

The bound comes from the steps taken so far. With $s_k = \sum_{i\le k} \eta_i g_i$ the sum of the
(weighted) gradients and the steps $x_{i+1} = x_i - \eta_i g_i$ (with $\eta_i = d_i\cdot\text{lr}$),
convexity gives $\sum_i \eta_i\langle g_i, x_i - x_*\rangle \ge 0$, and rearranging bounds $D$:

$$D \;\ge\; \hat d_{k+1} = \frac{\sum_{i\le k} \eta_i\,\langle g_i, s_i\rangle}{\lVert s_{k+1}\rVert}
\qquad d_{k+1} = \max(d_k, \hat d_{k+1}).$$

$d$ starts tiny ($d_0 = 10^{-6}$), so the first steps barely move, and grows by orders of magnitude as
long as the gradients keep pointing the same way; it never decreases.

```algorithm
\textcolor{orange}{r_k = \sqrt{\beta_2}\,r_{k-1}
  + (1-\sqrt{\beta_2})\;\eta_k\,\langle g_k, s_{k-1}/(\sqrt{v_{k-1}} + \epsilon)\rangle}
    @ numerator_weighted = sqrt_beta2 * first["numerator_weighted"] + (1 - sqrt_beta2) * inner_products
m_k = \beta_1 m_{k-1} + (1-\beta_1)\,\textcolor{orange}{\eta_k}\,g_k, \quad v_k = \beta_2 v_{k-1} + (1-\beta_2)\,g_k^2
    @ exp_avg.mul_(beta1).add_(grad, alpha=scale * step_size * (1 - beta1))
\textcolor{orange}{s_k = \sqrt{\beta_2}\,s_{k-1} + (1-\sqrt{\beta_2})\,\eta_k\,g_k}
    @ s.mul_(sqrt_beta2).add_(grad, alpha=step_size * (1 - sqrt_beta2))
\textcolor{orange}{\hat d_{k+1} = r_k \big/ \big((1-\sqrt{\beta_2})\,\lVert s_k\rVert_1\big)}
    @ d_hat = numerator_weighted / ((1 - sqrt_beta2) * s_norm)
\textcolor{orange}{d_{k+1} = \max\big(d_k, \min(\hat d_{k+1}, \text{growth}\cdot d_k)\big)}
    @ d = max(first["d"], min(d_hat, first["d"] * first["growth_rate"]))
\theta_{k+1} = \theta_k - \frac{m_k}{\sqrt{v_k} + \epsilon}
    @ param.addcdiv_(state["exp_avg"], state["exp_avg_sq"].sqrt().add_(group["eps"]), value=-1)
```

## Notation

| symbol | in the code | meaning |
|---|---|---|
| $\theta$ | `param` | the parameter |
| $g_k$ | `grad` | the gradient (with the L2 decay, when on) |
| $m_k$ | `exp_avg` | the first moment, of the steps $\eta_k g_k$ |
| $v_k$ | `exp_avg_sq` | the second moment |
| $s_k$ | `s` | the weighted sum of the gradients |
| $r_k$ | `numerator_weighted` | the weighted sum of the inner products, the numerator of $\hat d$ |
| $d_k$ | `d`, `d_hat` | the estimate of the distance $D$ (the new candidate $\hat d$: `d_hat`) |
| $d_0$ | `d0` | its initial value |
| $\eta_k$ | `step_size` | the step size, $d_k\cdot\text{lr}\cdot\text{bc}_k$ with `lr` the learning rate |
| $\beta_1, \beta_2$ | `beta1`, `beta2` | the decay rates ($\sqrt{\beta_2}$ is `sqrt_beta2`) |
| $\epsilon$ | `eps` | keeps the denominator away from zero |
| $\lambda$ | `weight_decay` | the weight decay |
| $k$ | `k` | the step count |

## The Adam form (Algorithm 4 of the paper, as in the authors' `dadaptation.DAdaptAdam`)

With $\eta_k = d_k \cdot \text{lr} \cdot \text{bc}_k$ (bc the optional bias correction) and every sum and
norm taken over **all parameters of all groups** (one $d$ for the whole model):

$$\begin{aligned}
r_k &= \sqrt{\beta_2}\,r_{k-1}
  + (1-\sqrt{\beta_2})\;\eta_k\,\Big\langle g_k, \frac{s_{k-1}}{\sqrt{v_{k-1}} + \epsilon}\Big\rangle\\
m_k &= \beta_1 m_{k-1} + (1-\beta_1)\,\eta_k\,g_k \qquad v_k = \beta_2 v_{k-1} + (1-\beta_2)\,g_k^2\\
s_k &= \sqrt{\beta_2}\,s_{k-1} + (1-\sqrt{\beta_2})\,\eta_k\,g_k\\
\hat d_{k+1} &= \frac{r_k}{(1-\sqrt{\beta_2})\,\lVert s_k\rVert_1} \qquad
d_{k+1} = \max\big(d_k, \min(\hat d_{k+1}, \text{growth}\cdot d_k)\big)\\
\theta_{k+1} &= \theta_k - \frac{m_k}{\sqrt{v_k} + \epsilon}
\end{aligned}$$

The step size lives *inside* $m_k$: each gradient enters the momentum with the $\eta_k$ of its own step,
so a jump of $d$ changes future contributions, not the momentum already built up. $\lVert\cdot\rVert_1$,
the sum of $|s|$ over every coordinate, and the inner product with $s/(\sqrt v + \epsilon)$ are the Adam
forms of the paper's Euclidean quantities.

## The two passes

$d$ is a single number computed from every parameter, so a step is two passes over the whole model:
the first updates the averages and sums the global inner product and norm, then $d$ is updated, then the
second moves the parameters. This class overrides `step` for that; [Prodigy](prodigy.md) keeps the same
two passes and changes what they compute.

## Where this class differs from the authors' code

* Different learning rates per group are refused by the authors' code (except $0$). Here a group's (or a
  parameter's) `lr` multiplies its own $\eta_k$ everywhere it appears; with equal learning rates this is
  the authors' step. A learning rate of $0$ leaves the parameter untouched (the authors' code keeps
  applying its stale momentum and its decoupled decay to it).
* L2 decay is added to a copy of the gradient; the authors' code adds it to `p.grad` in place.
* `log_every` and `fsdp_in_use` are not here: there is no logging, and sharded parameters are not supported.

State: $s$, $m$, $v$, three tensors per parameter (12 bytes per `float32` parameter).
"""

import math
from collections.abc import Callable
from typing import Any

import torch

from .core.base import GenericAdaptiveOptimizer, ParamsT
from .core.distributed import total
from .core.options import learning_rate
from .core.validation import check_betas, check_non_negative


def check_positive(name: str, value: Any) -> None:
    r"""A quantity that must be $> 0$: $d_0$, and $\epsilon$, which keeps $\sqrt{v} + \epsilon$ from vanishing."""
    if not value > 0:
        raise ValueError(f"Invalid {name}: {value} (must be > 0)")


def check_growth_rate(value: Any) -> None:
    r"""$d$ may never shrink: the growth factor is at least $1$ (`inf`, the default, means no limit)."""
    if not value >= 1:
        raise ValueError(f"Invalid growth_rate: {value} (must be >= 1)")


class DAdaptAdam(GenericAdaptiveOptimizer):
    r"""
    ## Hyper-parameters

    The authors' names and defaults (`dadaptation.DAdaptAdam`).

    * `lr` (default $1.0$) multiplies the estimate $d$; leave it at $1$. A schedule (warmup, cosine
      decay) still helps and multiplies the step as usual.
    * `betas` (default $(0.9, 0.999)$): Adam's. $\sqrt{\beta_2}$ is also the decay of $s$ and $r$.
    * `eps` (default $10^{-8}$, must be $> 0$).
    * `weight_decay` and `decouple`: L2 (default) or, with `decouple=True`, AdamW-style
      $\theta \leftarrow \theta - \lambda\eta_k\theta$.
    * `use_bias_correction`: Adam's $\sqrt{1-\beta_2^k}/(1-\beta_1^k)$ in $\eta_k$ (default off).
    * `d0` (default $10^{-6}$): the initial estimate, far below any real distance; it only sets how long
      the first, tiny steps last.
    * `growth_rate` (default $\infty$): the largest factor by which $d$ may grow in one step; a finite
      value (1.02, say) smooths the first steps.
    * `layer_scale` (default $1$): a group's factor on its momentum increments and its share of the
      estimate, the authors' way to give a group a smaller step.
    * `maximize` ascends the objective instead.

    `betas`, `use_bias_correction`, `growth_rate`, `decouple` and `d0` define the one global estimate:
    they must be the same in every group.
    """

    # The options that define the global estimate; a group that sets another value is refused.
    global_options: tuple[str, ...] = ("betas", "use_bias_correction", "growth_rate", "decouple", "d0")

    def __init__(self, params: ParamsT, lr: float = 1.0, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, decouple: bool = False,
                 use_bias_correction: bool = False, d0: float = 1e-6, growth_rate: float = math.inf,
                 layer_scale: float = 1.0, *, maximize: bool = False) -> None:
        check_betas(betas)
        check_positive("eps", eps)
        check_positive("d0", d0)
        check_growth_rate(growth_rate)
        check_non_negative("weight_decay", weight_decay)
        check_non_negative("layer_scale", layer_scale)
        super().__init__(params, dict(
            lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, decouple=decouple,
            use_bias_correction=use_bias_correction, d0=d0, growth_rate=growth_rate, layer_scale=layer_scale,
            maximize=maximize,
            # The running estimate, kept in every group (the authors' layout; the first group's is read):
            # $d$, the weighted sum $r$, and the step count $k$.
            d=d0, numerator_weighted=0.0, k=0))

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        r"""A group joins the one global estimate, so it may not bring its own value of a global option."""
        if self.param_groups:
            first = self.param_groups[0]
            for key in self.global_options:
                if key in param_group and param_group[key] != first[key]:
                    raise ValueError(f"Invalid {key}: {param_group[key]} (must be the same in every group, "
                                     f"{first[key]}, since {type(self).__name__}'s estimate is global)")
        super().add_param_group(param_group)

    def init_state(self, state: dict[str, Any], group: dict[str, Any], param: torch.Tensor) -> None:
        r"""$s_0 = m_0 = v_0 = 0$, and the parameter's own step count."""
        state["step"] = 0
        state["s"] = torch.zeros_like(param, memory_format=torch.preserve_format)
        state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
        state["exp_avg_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)

    @staticmethod
    def bias_correction(group: dict[str, Any]) -> float:
        r"""$$\text{bc}_k = \frac{\sqrt{1-\beta_2^{k}}}{1-\beta_1^{k}}$$ with `use_bias_correction`, else $1$."""
        if not group["use_bias_correction"]:
            return 1.0
        beta1, beta2 = group["betas"]
        k = group["k"] + 1
        return (1 - beta2**k) ** 0.5 / (1 - beta1**k)

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor | None:
        r"""
        ### The two passes

        `first` is the first group, whose copy of the global values is read (all groups hold the same).
        $\eta_k$ of a parameter is $d_k \cdot \text{bc}_k$ times its own learning rate.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        first = self.param_groups[0]
        d, d_bias_corrected = first["d"], first["d"] * self.bias_correction(first)
        # The parameters taking part, each with its gradient (L2 decay included) and its $\eta_k$;
        # one with a learning rate of 0 is left alone.
        items = []
        for group in self.param_groups:
            for param, grad, state in self.params_with_grads(group):
                lr = learning_rate(group, param)
                if lr == 0:
                    continue
                if group["weight_decay"] != 0 and not group["decouple"]:
                    # $$g \leftarrow g + \lambda\theta$$
                    grad = grad.add(param, alpha=group["weight_decay"])
                items.append((group, param, grad, state, d_bias_corrected * lr))
        if not items:
            return loss

        # Pass 1: the averages, and the global sums, added in float64. Under FSDP2 each term is of a
        # shard; `total` completes the sums over the processes, so every process estimates the same $d$.
        terms = [self.accumulate(state, group, grad, param, step_size, d)
                 for group, param, grad, state, step_size in items]
        numerator = total([numerator_term for numerator_term, _ in terms])
        denominator = total([denominator_term for _, denominator_term in terms])
        # No gradient has moved the sums yet (all zero so far): nothing to estimate, and nothing moves.
        if denominator.item() == 0:
            return loss
        self.update_estimate(first, numerator.item(), denominator.item())

        # Pass 2: the parameters.
        for group, param, grad, state, step_size in items:
            state["step"] += 1
            if group["weight_decay"] != 0 and group["decouple"]:
                # $$\theta \leftarrow \theta - \lambda\,\eta_k\,\theta$$
                param.add_(param, alpha=-group["weight_decay"] * step_size)
            self.update_param(state, group, grad, param, step_size)
        for group in self.param_groups:
            group["k"] += 1
        return loss

    def accumulate(self, state: dict[str, Any], group: dict[str, Any], grad: torch.Tensor, param: torch.Tensor,
                   step_size: float, d: float) -> tuple[torch.Tensor, torch.Tensor]:
        r"""
        ### Pass 1 for one parameter

        Returns its share of the inner product in $r_k$ and of $\lVert s_k\rVert_1$, each scaled by
        `layer_scale`. The inner product uses $s_{k-1}$ and $v_{k-1}$, so it is taken first.
        """
        beta1, beta2 = group["betas"]
        sqrt_beta2 = beta2**0.5
        scale = group["layer_scale"]
        s, exp_avg, exp_avg_sq = state["s"], state["exp_avg"], state["exp_avg_sq"]
        # $$\eta_k\,\Big\langle g_k, \frac{s_{k-1}}{\sqrt{v_{k-1}} + \epsilon}\Big\rangle$$
        denominator = exp_avg_sq.sqrt().add_(group["eps"])
        inner = torch.dot(grad.flatten(), s.div(denominator).flatten()).double()
        # $$m_k = \beta_1 m_{k-1} + (1-\beta_1)\,\eta_k\,g_k$$
        exp_avg.mul_(beta1).add_(grad, alpha=scale * step_size * (1 - beta1))
        # $$v_k = \beta_2 v_{k-1} + (1-\beta_2)\,g_k^2$$
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        # $$s_k = \sqrt{\beta_2}\,s_{k-1} + (1-\sqrt{\beta_2})\,\eta_k\,g_k$$
        s.mul_(sqrt_beta2).add_(grad, alpha=step_size * (1 - sqrt_beta2))
        return scale * step_size * inner, scale * s.abs().sum().double()

    def update_estimate(self, first: dict[str, Any], inner_products: float, s_norm: float) -> None:
        r"""
        ### The new $d$, written to every group

        $$r_k = \sqrt{\beta_2}\,r_{k-1} + (1-\sqrt{\beta_2})\,\textstyle\sum\eta_k\langle\cdot\rangle \qquad
          d_{k+1} = \max\Big(d_k, \min\Big(\frac{r_k}{(1-\sqrt{\beta_2})\lVert s_k\rVert_1},
          \text{growth}\cdot d_k\Big)\Big)$$
        """
        sqrt_beta2 = first["betas"][1] ** 0.5
        numerator_weighted = sqrt_beta2 * first["numerator_weighted"] + (1 - sqrt_beta2) * inner_products
        d_hat = numerator_weighted / ((1 - sqrt_beta2) * s_norm)
        d = max(first["d"], min(d_hat, first["d"] * first["growth_rate"]))
        for group in self.param_groups:
            group["numerator_weighted"], group["d"] = numerator_weighted, d

    def update_param(self, state: dict[str, Any], group: dict[str, Any], grad: torch.Tensor, param: torch.Tensor,
                     step_size: float) -> None:
        r"""
        ### Pass 2 for one parameter

        $$\theta_{k+1} = \theta_k - \frac{m_k}{\sqrt{v_k} + \epsilon}$$ ($\eta_k$ is already inside $m_k$).
        """
        param.addcdiv_(state["exp_avg"], state["exp_avg_sq"].sqrt().add_(group["eps"]), value=-1)
